//! [`SessionStore`] on Redis: one packed string per session (see `codec.rs`) that expires
//! when the session does — at its idle end, which every touch moves forward in the same round
//! trip, never past its absolute end — plus a per-user sorted set of session ids by creation time. Both share the user's
//! hash tag, and every change that touches both, or reads before it writes, is one Lua script:
//! atomic against every other instance, and on one Cluster slot.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use tessera_core::clock::to_unix;
use tessera_core::id::{SessionId, UserId};
use tessera_core::session::{RefreshState, Session};
use tessera_core::store::{SessionStore, StoreError};
use time::OffsetDateTime;

use super::codec::{
    EXPIRES_AT, EXPIRES_AT_WITH_REFRESH, LAST_SEEN_AT, REFRESH_AT, decode, encode, encode_refresh, instant,
};
use super::{RedisStore, corrupt, redis_err};

/// KEYS: session, index. ARGV: value, when the key expires (unix ms: the idle end, capped by
/// the absolute end), created_at, session id, the absolute end (unix ms).
/// The index lives as long as the longest absolute lifetime of a session in it, so it outlives
/// every session key however often they are touched: logout-all always finds them all.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
        redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
        local t = redis.call('PEXPIRETIME', KEYS[2])
        if t == -1 or t < tonumber(ARGV[5]) then redis.call('PEXPIREAT', KEYS[2], ARGV[5]) end
        return 1
        ",
    )
});

/// KEYS: session. ARGV: offset of last_seen_at, its new bytes, the new idle end (unix ms, or
/// '' when the key keeps its expiry), where `expires_at` sits without and with a refresh
/// family. One round trip: the key's TTL follows the idle end (never past the absolute end,
/// read from the value), and `last_seen_at` is rewritten. Never recreates a deleted session
/// (`SETRANGE` on a missing key would).
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local flags = redis.call('GETRANGE', KEYS[1], 0, 0)
        if flags == '' then return 0 end
        if ARGV[3] ~= '' then
            local at = tonumber(ARGV[4])
            if string.byte(flags) % 2 == 1 then at = tonumber(ARGV[5]) end
            local b1, b2, b3, b4 = string.byte(redis.call('GETRANGE', KEYS[1], at, at + 3), 1, 4)
            local absolute = (((b1 * 256 + b2) * 256 + b3) * 256 + b4) * 1000
            redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', math.min(tonumber(ARGV[3]), absolute)))
        end
        redis.call('SETRANGE', KEYS[1], ARGV[1], ARGV[2])
        return 1
        ",
    )
});

/// KEYS: session, index. ARGV: session id. Returns 1 if the session existed.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local n = redis.call('DEL', KEYS[1])
        redis.call('ZREM', KEYS[2], ARGV[1])
        return n
        ",
    )
});

/// KEYS: index. ARGV: session key prefix, the id to keep (or ''). Returns the ids deleted.
static DELETE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local deleted = {}
        for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
            if id ~= ARGV[2] then
                if redis.call('DEL', ARGV[1] .. id) == 1 then table.insert(deleted, id) end
                redis.call('ZREM', KEYS[1], id)
            end
        end
        return deleted
        ",
    )
});

/// KEYS: index. ARGV: session key prefix. Returns id, value for each live session, oldest
/// first, and drops ids whose session has expired from the index.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local out = {}
        for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
            local v = redis.call('GET', ARGV[1] .. id)
            if v then
                table.insert(out, id)
                table.insert(out, v)
            else
                redis.call('ZREM', KEYS[1], id)
            end
        end
        return out
        ",
    )
});

/// KEYS: session. ARGV: offset of the refresh family, the expected generation (4 bytes), the
/// next family (generation, hash, rotated_at), offset of last_seen_at, its new bytes, the new
/// idle end (unix ms, or ''), where `expires_at` sits (a session with a family).
/// The first byte's low bit says whether the session has a family at all. A rotation is a use
/// of the session: the key's TTL follows the new idle end, as in a touch.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local flags = redis.call('GETRANGE', KEYS[1], 0, 0)
        if flags == '' or string.byte(flags) % 2 ~= 1 then return 0 end
        local at = tonumber(ARGV[1])
        if redis.call('GETRANGE', KEYS[1], at, at + 3) ~= ARGV[2] then return 0 end
        redis.call('SETRANGE', KEYS[1], at, ARGV[3])
        redis.call('SETRANGE', KEYS[1], ARGV[4], ARGV[5])
        if ARGV[6] ~= '' then
            local e = tonumber(ARGV[7])
            local b1, b2, b3, b4 = string.byte(redis.call('GETRANGE', KEYS[1], e, e + 3), 1, 4)
            local absolute = (((b1 * 256 + b2) * 256 + b3) * 256 + b4) * 1000
            redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', math.min(tonumber(ARGV[6]), absolute)))
        end
        return 1
        ",
    )
});

fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let keys = self.keys();
        let key_expires = self
            .idle_end_ms(session.last_seen_at)
            .map_or(unix_ms(session.expires_at), |idle| idle.min(unix_ms(session.expires_at)));
        let _: i64 = INSERT
            .key(keys.session(&session.user_id, &session.id))
            .key(keys.session_index(&session.user_id))
            .arg(encode(session)?)
            .arg(key_expires)
            .arg(to_unix(session.created_at))
            .arg(session.id.to_string())
            .arg(unix_ms(session.expires_at))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn session(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.keys().session(user, id))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        value.map(|v| decode(*user, *id, &v)).transpose()
    }

    async fn touch_session(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        let _: i64 = TOUCH
            .key(self.keys().session(user, id))
            .arg(LAST_SEEN_AT)
            .arg(&instant(at)[..])
            .arg(self.idle_end_ms(at).map(|t| t.to_string()).unwrap_or_default())
            .arg(EXPIRES_AT)
            .arg(EXPIRES_AT_WITH_REFRESH)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError> {
        let flat: Vec<Option<Vec<u8>>> = LIST
            .key(self.keys().session_index(user))
            .arg(self.keys().sessions_of(user))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let mut sessions = Vec::with_capacity(flat.len() / 2);
        let mut rows = flat.into_iter();
        while let Some(id) = rows.next() {
            let id = session_id(id)?;
            let value = rows.next().flatten().ok_or_else(|| corrupt("session listing"))?;
            sessions.push(decode(*user, id, &value)?);
        }
        Ok(sessions)
    }

    async fn delete_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        let deleted: i64 = DELETE
            .key(self.keys().session(user, id))
            .key(self.keys().session_index(user))
            .arg(id.to_string())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(deleted == 1)
    }

    async fn delete_sessions_of(&self, user: &UserId, keep: Option<&SessionId>) -> Result<Vec<SessionId>, StoreError> {
        let deleted: Vec<Option<Vec<u8>>> = DELETE_ALL
            .key(self.keys().session_index(user))
            .arg(self.keys().sessions_of(user))
            .arg(keep.map(ToString::to_string).unwrap_or_default())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        deleted.into_iter().map(session_id).collect()
    }

    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        from_generation: u32,
        next: &RefreshState,
    ) -> Result<bool, StoreError> {
        let won: i64 = ROTATE
            .key(self.keys().session(user, id))
            .arg(REFRESH_AT)
            .arg(&from_generation.to_be_bytes()[..])
            .arg(encode_refresh(next))
            .arg(LAST_SEEN_AT)
            .arg(&instant(next.rotated_at)[..])
            .arg(self.idle_end_ms(next.rotated_at).map(|t| t.to_string()).unwrap_or_default())
            .arg(EXPIRES_AT_WITH_REFRESH)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(won == 1)
    }
}

fn session_id(raw: Option<Vec<u8>>) -> Result<SessionId, StoreError> {
    raw.as_deref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(SessionId::parse)
        .ok_or_else(|| corrupt("session id"))
}
