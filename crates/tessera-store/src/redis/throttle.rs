//! [`ThrottleStore`] on Redis: one small hash per key, counted by a Lua script so concurrent
//! failures from any number of instances are each counted once, and expiring when the
//! counter would be forgotten anyway.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use tessera_core::clock::{from_unix, to_unix};
use tessera_core::store::{StoreError, ThrottleStore};
use tessera_core::throttle::{Failures, ThrottleKey};
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
