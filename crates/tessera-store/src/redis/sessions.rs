//! [`SessionStore`] on Redis: one hash per session (see `codec.rs`) that expires with the
//! session, plus a per-user sorted set of session ids by creation time. Both share the user's
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

use super::codec::{decode, encode_data, encode_refresh};
use super::{RedisStore, corrupt, redis_err};

/// KEYS: session, index. ARGV: d, l, expires_at (unix ms), created_at, session id[, g, r].
/// The index lives as long as the longest-lived session in it.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('HSET', KEYS[1], 'd', ARGV[1], 'l', ARGV[2])
        if ARGV[6] then redis.call('HSET', KEYS[1], 'g', ARGV[6], 'r', ARGV[7]) end
        redis.call('PEXPIREAT', KEYS[1], ARGV[3])
        redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
        local t = redis.call('PEXPIRETIME', KEYS[2])
        if t == -1 or t < tonumber(ARGV[3]) then redis.call('PEXPIREAT', KEYS[2], ARGV[3]) end
        return 1
        ",
    )
});

/// KEYS: session. ARGV: last_seen_at. Never recreates a deleted session.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'l', ARGV[1]) end
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

/// KEYS: index. ARGV: session key prefix. Returns id, d, l, g, r for each live session,
/// oldest first, and drops ids whose session has expired from the index.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local out = {}
        for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
            local v = redis.call('HMGET', ARGV[1] .. id, 'd', 'l', 'g', 'r')
            if v[1] then
                table.insert(out, id)
                for i = 1, 4 do table.insert(out, v[i]) end
            else
                redis.call('ZREM', KEYS[1], id)
            end
        end
        return out
        ",
    )
});

/// KEYS: session. ARGV: expected generation, next generation, next r, last_seen_at.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('HGET', KEYS[1], 'g') == ARGV[1] then
            redis.call('HSET', KEYS[1], 'g', ARGV[2], 'r', ARGV[3], 'l', ARGV[4])
            return 1
        end
        return 0
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
        let mut call = INSERT.prepare_invoke();
        call.key(keys.session(&session.user_id, &session.id))
            .key(keys.session_index(&session.user_id))
            .arg(encode_data(session)?)
            .arg(to_unix(session.last_seen_at))
            .arg(unix_ms(session.expires_at))
            .arg(to_unix(session.created_at))
            .arg(session.id.to_string());
        if let Some(refresh) = &session.refresh {
            call.arg(refresh.generation).arg(encode_refresh(refresh));
        }
        let _: i64 = call.invoke_async(&mut self.conn()).await.map_err(redis_err)?;
        Ok(())
    }

    async fn session(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let fields: (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>) = redis::cmd("HMGET")
            .arg(self.keys().session(user, id))
            .arg(&["d", "l", "g", "r"])
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        decode(*user, *id, [fields.0, fields.1, fields.2, fields.3])
    }

    async fn touch_session(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        let _: i64 = TOUCH
            .key(self.keys().session(user, id))
            .arg(to_unix(at))
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
        let mut sessions = Vec::with_capacity(flat.len() / 5);
        let mut rows = flat.into_iter();
        while let Some(id) = rows.next() {
            let id = session_id(id)?;
            let mut field = || rows.next().ok_or_else(|| corrupt("session listing"));
            let fields = [field()?, field()?, field()?, field()?];
            sessions.extend(decode(*user, id, fields)?);
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
            .arg(from_generation)
            .arg(next.generation)
            .arg(encode_refresh(next))
            .arg(to_unix(next.rotated_at))
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
