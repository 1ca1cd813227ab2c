//! [`SessionStore`] on Redis: one packed string per session (see `codec.rs`) that expires
//! when the session does — at its idle end, which every touch moves forward in the same round
//! trip, never past its absolute end — plus a per-user sorted set of session ids by creation time. Both share the user's
//! hash tag, and every change that touches both, or reads before it writes, is one Lua script:
//! atomic against every other instance, and on one Cluster slot.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use tessera_core::clock::{from_unix_ms, to_unix_ms};
use tessera_core::id::{SessionId, UserId};
use tessera_core::session::{RefreshState, Session};
use tessera_core::store::{SessionStore, StoreError};
use time::OffsetDateTime;

use super::codec::{
    EXPIRES_AT, EXPIRES_AT_V1, EXPIRES_AT_V1_WITH_REFRESH, EXPIRES_AT_WITH_REFRESH, LAST_SEEN_AT, REFRESH_AT, decode,
    encode, encode_refresh, encode_refresh_v1, instant,
};
use super::{RedisStore, corrupt, redis_err};

/// Scripts that read the user's index and then touch the sessions it names declare those
/// session keys too (Redis requires every key a script touches to be in KEYS): the caller
/// reads the index first and passes each id (ARGV, from `first_id` on) with its key (KEYS,
/// from 3 on for INSERT, from 2 on for the others). If the index names an id the caller did not
/// declare — a session created in between — the script changes nothing and answers nil, and
/// the caller reads the index again.
const DECLARED: &str = r"
    local function declared(first_key, first_id)
        local map = {}
        for i = first_id, #ARGV do map[ARGV[i]] = KEYS[first_key + i - first_id] end
        return map
    end
";

/// Lua: `expires_at_offset(flags, first)` picks, from the four offsets passed in ARGV from
/// `first` on (layout 1 without and with a refresh family, then layout 2 without and with),
/// the one for this value: the layout version is the first byte's high nibble, the family its
/// low bit. Nil for an unknown layout.
const EXPIRES_AT_OFFSET: &str = r"
    local function expires_at_offset(flags, first)
        local b = string.byte(flags)
        local version = math.floor(b / 16)
        if version ~= 1 and version ~= 2 then return nil end
        return tonumber(ARGV[first + (version - 1) * 2 + b % 2])
    end
    local function u32(s) local a, b, c, d = string.byte(s, 1, 4); return ((a * 256 + b) * 256 + c) * 256 + d end
    -- Moves the key's expiry to `idle_end` (unix ms, '' to leave it), never past the absolute
    -- end stored at offset `e`, never earlier than it already is.
    local function expire_at_idle_end(e, idle_end)
        if idle_end == '' then return end
        local absolute = u32(redis.call('GETRANGE', KEYS[1], e, e + 3)) * 1000
        redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', math.min(tonumber(idle_end), absolute)), 'GT')
    end
";

/// KEYS: session, index, then the declared sessions. ARGV: value, when the key expires (unix
/// ms: the idle end, capped by the absolute end), created_at (unix ms), session id, the cap
/// (0: none), the absolute end (unix ms), then the declared ids. Returns the ids evicted beyond
/// the cap (oldest first by creation, the new session never), or nil when the index names an
/// undeclared session. The index lives as long as the longest absolute lifetime of a session
/// in it, so it outlives every session key however often they are touched: logout-all always
/// finds them all.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{DECLARED}
        local cap = tonumber(ARGV[5])
        local keys = declared(3, 7)
        local evict = {{}}
        if cap > 0 then
            local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
            for _, id in ipairs(ids) do
                if id ~= ARGV[4] and not keys[id] then return false end
            end
            local others = 0
            for _, id in ipairs(ids) do if id ~= ARGV[4] then others = others + 1 end end
            local excess = others + 1 - cap
            for _, id in ipairs(ids) do
                if excess <= 0 then break end
                if id ~= ARGV[4] then
                    table.insert(evict, id)
                    excess = excess - 1
                end
            end
        end
        redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
        -- Ordered by creation (ms), then by insertion, as on SQLite, so eviction takes the
        -- truly oldest: a sorted set orders equal scores by member (a random id), so a session
        -- created in the same millisecond as others goes just after the last of them
        -- (1/1024 ms steps: exact in a double at these magnitudes). A session created
        -- earlier still sorts before later ones, whatever the order of insertion.
        local score = tonumber(ARGV[3])
        local same = redis.call('ZREVRANGEBYSCORE', KEYS[2], '(' .. string.format('%.17g', score + 1),
            string.format('%.17g', score), 'WITHSCORES', 'LIMIT', 0, 1)
        if same[2] then score = tonumber(same[2]) + 1 / 1024 end
        redis.call('ZADD', KEYS[2], string.format('%.17g', score), ARGV[4])
        local t = redis.call('PEXPIRETIME', KEYS[2])
        if t == -1 or t < tonumber(ARGV[6]) then redis.call('PEXPIREAT', KEYS[2], ARGV[6]) end
        local evicted = {{}}
        for _, id in ipairs(evict) do
            if redis.call('DEL', keys[id]) == 1 then table.insert(evicted, id) end
            redis.call('ZREM', KEYS[2], id)
        end
        return evicted
        ",
    ))
});

/// KEYS: session. ARGV: offset of last_seen_at, its new bytes, the new idle end (unix ms, or
/// '' when the key keeps its expiry), then where `expires_at` sits: layout 1 without and with
/// a refresh family, layout 2 without and with (see `EXPIRES_AT_OFFSET`). One round trip: the
/// key's expiry follows the idle end (never past the absolute end, read from the value; never
/// earlier than it already is, so a late touch from an instance whose clock runs behind does
/// not shorten it), and `last_seen_at` is rewritten but never moved back: two instances
/// touching at once land in either order. The bytes are big-endian u32 seconds, compared as
/// numbers (Lua compares strings by locale). Never recreates a deleted session (`SETRANGE` on
/// a missing key would).
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXPIRES_AT_OFFSET}
        local flags = redis.call('GETRANGE', KEYS[1], 0, 0)
        if flags == '' then return 0 end
        local e = expires_at_offset(flags, 4)
        if not e then return 0 end
        local at = tonumber(ARGV[1])
        if u32(redis.call('GETRANGE', KEYS[1], at, at + 3)) < u32(ARGV[2]) then
            redis.call('SETRANGE', KEYS[1], at, ARGV[2])
        end
        expire_at_idle_end(e, ARGV[3])
        return 1
        ",
    ))
});

/// KEYS: session, index. ARGV: session id. Returns, if the session existed, when its key was
/// to expire (`PEXPIRETIME`, as a string): the distributed store records until when the ended
/// session could have come back. A touch only ever moves that expiry later, so no older copy
/// of the key (a snapshot) outlives it.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('PEXPIRETIME', KEYS[1])
        local n = redis.call('DEL', KEYS[1])
        redis.call('ZREM', KEYS[2], ARGV[1])
        if n == 0 then return false end
        return tostring(t)
        ",
    )
});

/// KEYS: index, then the declared sessions. ARGV: the id to keep (or ''), then the declared
/// ids. Returns id, expiry (as in `DELETE`) of each session deleted, or nil when the index
/// names an undeclared session.
static DELETE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{DECLARED}
        local keys = declared(2, 2)
        local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
        for _, id in ipairs(ids) do
            if id ~= ARGV[1] and not keys[id] then return false end
        end
        local deleted = {{}}
        for _, id in ipairs(ids) do
            if id ~= ARGV[1] then
                local t = redis.call('PEXPIRETIME', keys[id])
                if redis.call('DEL', keys[id]) == 1 then
                    table.insert(deleted, id)
                    table.insert(deleted, tostring(t))
                end
                redis.call('ZREM', KEYS[1], id)
            end
        end
        return deleted
        ",
    ))
});

/// KEYS: index, then the declared sessions. ARGV: the declared ids. Returns id, value for
/// each live session, oldest first, and drops ids whose session has expired from the index;
/// nil when the index names an undeclared session.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{DECLARED}
        local keys = declared(2, 1)
        local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
        for _, id in ipairs(ids) do
            if not keys[id] then return false end
        end
        local out = {{}}
        for _, id in ipairs(ids) do
            local v = redis.call('GET', keys[id])
            if v then
                table.insert(out, id)
                table.insert(out, v)
            else
                redis.call('ZREM', KEYS[1], id)
            end
        end
        return out
        ",
    ))
});

/// How often a script that found an undeclared session (one created between reading the
/// index and running the script) is retried before the call counts as unavailable.
const DECLARE_ATTEMPTS: usize = 8;

/// KEYS: session. ARGV: offset of the refresh family, the expected generation (4 bytes), the
/// next family (generation, hash, rotated_at) in the current layout, offset of last_seen_at,
/// its new bytes, the next family in layout version 1 (a value written before the upgrade),
/// the new idle end (unix ms, or ''), then where `expires_at` sits (the four offsets of
/// `EXPIRES_AT_OFFSET`). The first byte's high nibble is the layout version; its low
/// bit says whether the session has a family at all. A rotation is a use of the session, as in
/// a touch: `last_seen_at` only moves forward, and the key's expiry follows the new idle end
/// (never past the absolute end read from the value, never earlier than it already is).
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXPIRES_AT_OFFSET}
        local flags = redis.call('GETRANGE', KEYS[1], 0, 0)
        if flags == '' or string.byte(flags) % 2 ~= 1 then return 0 end
        local e = expires_at_offset(flags, 8)
        if not e then return 0 end
        local at = tonumber(ARGV[1])
        if redis.call('GETRANGE', KEYS[1], at, at + 3) ~= ARGV[2] then return 0 end
        if math.floor(string.byte(flags) / 16) == 1 then
            redis.call('SETRANGE', KEYS[1], at, ARGV[6])
        else
            redis.call('SETRANGE', KEYS[1], at, ARGV[3])
        end
        local seen = tonumber(ARGV[4])
        if u32(redis.call('GETRANGE', KEYS[1], seen, seen + 3)) < u32(ARGV[5]) then
            redis.call('SETRANGE', KEYS[1], seen, ARGV[5])
        end
        expire_at_idle_end(e, ARGV[7])
        return 1
        ",
    ))
});

fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.insert_session_capped(session, 0).await.map(drop)
    }

    async fn insert_session_capped(&self, session: &Session, max: u32) -> Result<Vec<SessionId>, StoreError> {
        let keys = self.keys();
        let key_expires = self
            .idle_end_ms(session.last_seen_at)
            .map_or(unix_ms(session.expires_at), |idle| idle.min(unix_ms(session.expires_at)));
        let user = &session.user_id;
        let value = encode(session)?;
        for _ in 0..DECLARE_ATTEMPTS {
            let declared = if max == 0 { Vec::new() } else { self.index(user).await? };
            let mut invocation = INSERT.prepare_invoke();
            invocation.key(keys.session(user, &session.id)).key(keys.session_index(user));
            invocation
                .arg(&value[..])
                .arg(key_expires)
                .arg(to_unix_ms(session.created_at))
                .arg(session.id.to_string())
                .arg(max)
                .arg(unix_ms(session.expires_at));
            for id in &declared {
                invocation.key(format!("{}{id}", keys.sessions_of(user))).arg(id);
            }
            let evicted: Option<Vec<Option<Vec<u8>>>> =
                invocation.invoke_async(&mut self.conn()).await.map_err(redis_err)?;
            if let Some(evicted) = evicted {
                return evicted.into_iter().map(session_id).collect();
            }
        }
        Err(busy_index())
    }

    async fn session(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&*self.session_key(user, id))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        // The same bytes decode to the same session: a session read again unchanged is
        // given back as decoded last time.
        value.map(|v| self.inner.decoded.get_or_render((*user, *id), v, |v| decode(*user, *id, v))).transpose()
    }

    async fn touch_session(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        let _: i64 = TOUCH
            .key(self.keys().session(user, id))
            .arg(LAST_SEEN_AT)
            .arg(&instant(at)[..])
            .arg(self.idle_end_ms(at).map(|t| t.to_string()).unwrap_or_default())
            .arg(EXPIRES_AT_V1)
            .arg(EXPIRES_AT_V1_WITH_REFRESH)
            .arg(EXPIRES_AT)
            .arg(EXPIRES_AT_WITH_REFRESH)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError> {
        let mut listed = None;
        for _ in 0..DECLARE_ATTEMPTS {
            let declared = self.index(user).await?;
            let mut invocation = LIST.prepare_invoke();
            invocation.key(self.keys().session_index(user));
            for id in &declared {
                invocation.key(format!("{}{id}", self.keys().sessions_of(user))).arg(id);
            }
            let flat: Option<Vec<Option<Vec<u8>>>> =
                invocation.invoke_async(&mut self.conn()).await.map_err(redis_err)?;
            if flat.is_some() {
                listed = flat;
                break;
            }
        }
        let flat = listed.ok_or_else(busy_index)?;
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
        Ok(self.end_session(user, id).await?.is_some())
    }

    async fn delete_sessions_of(&self, user: &UserId, keep: Option<&SessionId>) -> Result<Vec<SessionId>, StoreError> {
        Ok(self.end_sessions_of(user, keep).await?.into_iter().map(|(id, _)| id).collect())
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
            .arg(encode_refresh_v1(next))
            .arg(self.idle_end_ms(next.rotated_at).map(|t| t.to_string()).unwrap_or_default())
            .arg(EXPIRES_AT_V1)
            .arg(EXPIRES_AT_V1_WITH_REFRESH)
            .arg(EXPIRES_AT)
            .arg(EXPIRES_AT_WITH_REFRESH)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(won == 1)
    }
}

impl RedisStore {
    /// [`SessionStore::delete_session`], answering until when the deleted session could have
    /// been used — when its key was to expire: its idle end, never after its absolute end — or
    /// `None` when there was no such session.
    pub async fn end_session(&self, user: &UserId, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        let value: Option<Vec<u8>> = DELETE
            .key(self.keys().session(user, id))
            .key(self.keys().session_index(user))
            .arg(id.to_string())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        self.forget_session(user, id);
        value.map(|v| usable_until(&v)).transpose()
    }

    /// [`SessionStore::delete_sessions_of`], answering each deleted session with until when it
    /// could have been used.
    pub async fn end_sessions_of(
        &self,
        user: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<Vec<(SessionId, OffsetDateTime)>, StoreError> {
        let keep = keep.map(ToString::to_string).unwrap_or_default();
        for _ in 0..DECLARE_ATTEMPTS {
            let declared = self.index(user).await?;
            let mut invocation = DELETE_ALL.prepare_invoke();
            invocation.key(self.keys().session_index(user)).arg(&keep);
            for id in declared.iter().filter(|id| **id != keep) {
                invocation.key(format!("{}{id}", self.keys().sessions_of(user))).arg(id);
            }
            let deleted: Option<Vec<Option<Vec<u8>>>> =
                invocation.invoke_async(&mut self.conn()).await.map_err(redis_err)?;
            if let Some(deleted) = deleted {
                let mut ended = Vec::with_capacity(deleted.len() / 2);
                let mut rows = deleted.into_iter();
                while let Some(id) = rows.next() {
                    let id = session_id(id)?;
                    self.forget_session(user, &id);
                    let value = rows.next().flatten().ok_or_else(|| corrupt("session listing"))?;
                    ended.push((id, usable_until(&value)?));
                }
                return Ok(ended);
            }
        }
        Err(busy_index())
    }

    /// The ids in `user`'s session index, oldest first: what a script is told to declare.
    async fn index(&self, user: &UserId) -> Result<Vec<String>, StoreError> {
        redis::cmd("ZRANGE")
            .arg(self.keys().session_index(user))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)
    }
}

/// Until when a deleted session's key was to expire, from the `PEXPIRETIME` a script answered.
/// A key without an expiry (none is written so) counts as usable for as long as any session.
fn usable_until(raw: &[u8]) -> Result<OffsetDateTime, StoreError> {
    let ms: i64 = std::str::from_utf8(raw).ok().and_then(|t| t.parse().ok()).ok_or_else(|| corrupt("key expiry"))?;
    Ok(if ms < 0 { OffsetDateTime::now_utc() + time::Duration::days(366) } else { from_unix_ms(ms) })
}

/// Sessions kept appearing between reading the index and running the script: this user is
/// logging in faster than a script can follow.
fn busy_index() -> StoreError {
    StoreError::Unavailable("the session index kept changing under the script".into())
}

fn session_id(raw: Option<Vec<u8>>) -> Result<SessionId, StoreError> {
    raw.as_deref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(SessionId::parse)
        .ok_or_else(|| corrupt("session id"))
}
