//! [`ThrottleStore`] on Redis: one small hash per key, counted by a Lua script so concurrent
//! failures from any number of instances are each counted once, and expiring when the
//! counter would be forgotten anyway.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use tessera_core::clock::{from_unix, to_unix};
use tessera_core::store::{StoreError, ThrottleStore};
use tessera_core::throttle::{Failures, LockRule, Reservation, Reserved, ThrottleKey, unix_ms};
use time::{Duration, OffsetDateTime};

use super::{RedisStore, redis_err};

/// KEYS: counter. ARGV: now, forgotten_before (both unix s), ttl (ms). Returns the new count.
/// Same rule as the embedded store: a counter last bumped at or before `forgotten_before`
/// starts again from one.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local v = redis.call('HMGET', KEYS[1], 'c', 'l')
        local c = 1
        if v[1] and v[2] and tonumber(v[2]) > tonumber(ARGV[2]) then c = tonumber(v[1]) + 1 end
        redis.call('HSET', KEYS[1], 'c', c, 'l', ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return c
        ",
    )
});

/// KEYS: counter. ARGV: now (unix s), now (unix ms), forget_after (ms), free, base (ms),
/// max (ms), max shift, ttl (ms). `LockRule::is_locked` and the count in one step: returns
/// `{0, count, last}` (locked, nothing counted; count -1 when absent) or
/// `{1, count, last, previous last or 0}` (counted).
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local v = redis.call('HMGET', KEYS[1], 'c', 'l')
        local now_s, now_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
        local free, base, max = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
        local c, l = 0, 0
        if v[1] and v[2] then c, l = tonumber(v[1]), tonumber(v[2]) end
        if l * 1000 <= now_ms - tonumber(ARGV[3]) then c = 0 end
        if c > free then
            local delay = math.min(base * 2 ^ math.min(c - free - 1, tonumber(ARGV[7])), max)
            if l * 1000 + delay > now_ms then
                if v[1] and v[2] then return {0, tonumber(v[1]), l} end
                return {0, -1, 0}
            end
        end
        local previous = 0
        if c > 0 then previous = l end
        redis.call('HSET', KEYS[1], 'c', c + 1, 'l', now_s)
        redis.call('PEXPIRE', KEYS[1], ARGV[8])
        return {1, c + 1, now_s, previous}
        ",
    )
});

/// KEYS: counter. ARGV: the reservation's last (unix s), the previous last or 0. One off the
/// count (the key goes at zero); the previous `last_at` back if nobody bumped it since.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local v = redis.call('HMGET', KEYS[1], 'c', 'l')
        if not v[1] then return 0 end
        local c = tonumber(v[1]) - 1
        if c <= 0 then
            redis.call('DEL', KEYS[1])
            return 0
        end
        redis.call('HSET', KEYS[1], 'c', c)
        if v[2] == ARGV[1] and ARGV[2] ~= '0' then redis.call('HSET', KEYS[1], 'l', ARGV[2]) end
        return c
        ",
    )
});

#[async_trait]
impl ThrottleStore for RedisStore {
    async fn failures(&self, key: &ThrottleKey) -> Result<Option<Failures>, StoreError> {
        let (count, last): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.keys().throttle(&key.as_store_key()))
            .arg(&["c", "l"])
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(count.zip(last).map(|(count, last)| failures(count, last)))
    }

    async fn record_failure(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
        forget_after: Duration,
    ) -> Result<Failures, StoreError> {
        let ttl_ms = i64::try_from(forget_after.whole_milliseconds()).unwrap_or(i64::MAX).max(1);
        let count: i64 = RECORD
            .key(self.keys().throttle(&key.as_store_key()))
            .arg(to_unix(now))
            .arg(to_unix(now - forget_after))
            .arg(ttl_ms)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(failures(count, to_unix(now)))
    }

    async fn reserve_attempt(
        &self,
        key: &ThrottleKey,
        rule: &LockRule,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        let reply: Vec<i64> = RESERVE
            .key(self.keys().throttle(&key.as_store_key()))
            .arg(to_unix(now))
            .arg(unix_ms(now))
            .arg(rule.forget_after_ms)
            .arg(rule.free)
            .arg(rule.base_ms)
            .arg(rule.max_ms)
            .arg(LockRule::MAX_SHIFT)
            .arg(rule.forget_after_ms.max(1))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        match reply.as_slice() {
            [1, count, last, previous] => Ok(Reservation::Reserved(Reserved {
                failures: failures(*count, *last),
                previous_last_at: (*previous > 0).then(|| from_unix(*previous)),
            })),
            [0, count, last] => Ok(Reservation::Locked((*count >= 0).then(|| failures(*count, *last)))),
            other => Err(StoreError::Other(format!("throttle reservation answered {other:?}"))),
        }
    }

    async fn release_attempt(&self, key: &ThrottleKey, reserved: &Reserved) -> Result<(), StoreError> {
        let _: i64 = RELEASE
            .key(self.keys().throttle(&key.as_store_key()))
            .arg(to_unix(reserved.failures.last_at))
            .arg(reserved.previous_last_at.map_or(0, to_unix))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn clear_failures(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        let _: i64 = redis::cmd("DEL")
            .arg(self.keys().throttle(&key.as_store_key()))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(())
    }
}

fn failures(count: i64, last_at: i64) -> Failures {
    Failures { count: u32::try_from(count.max(0)).unwrap_or(u32::MAX), last_at: from_unix(last_at) }
}
