//! [`DenylistStore`] on Redis: a log of revocations every instance reads incrementally.
//!
//! `<prefix>:{deny}:log` is a sorted set scored by a sequence number (`…:seq`, `INCR`ed in
//! the same script that appends), whose members spell the entry: `seq|kind|id|issued_before|
//! expires_at`. `…:exp` scores the same members by expiry so a write can prune what no token
//! can need any more. Each write publishes on the denylist channel; readers wake and ask for
//! everything after their cursor.
//!
//! The cursor carries an epoch (`…:epoch`, random, set once) beside the sequence number: if
//! Redis loses its data (a restart without persistence, a flush), the sequence starts again
//! from 1 under a new epoch, and a reader whose cursor names the old epoch rereads from the
//! start instead of waiting for the new numbers to pass its old position — which would hide
//! every revocation until then.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use redis::Script;
use tessera_core::clock::{from_unix, to_unix};
use tessera_core::id::{SessionId, TokenId, UserId};
use tessera_core::store::{Denied, DenyEntry, DenylistRead, DenylistStore, StoreError};
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::{RedisStore, corrupt, redis_err};

const SEQ_BITS: u32 = 44;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
const EPOCH_MASK: u64 = (1 << (64 - SEQ_BITS)) - 1;
/// Expired entries pruned per write, at most: a write's cost stays bounded.
const PRUNE_BATCH: u32 = 1000;
/// Entries are pruned this long after they expired, and the log outlives its last entry by as
/// much: instances' clocks differ, and no reader should lose an entry to a skewed clock.
const PRUNE_MARGIN_SECS: i64 = 300;

/// KEYS: epoch, seq, log, exp, ids. ARGV: epoch candidate, prune-before instant, channel,
/// prune batch, keep-until instant, then (payload, expires_at, identity) triples. Returns the
/// last sequence number.
///
/// One entry per identity (`session|<sid>|`, `token|<jti>|`, `issued_before|<user>|<t>`):
/// `ids` maps each live identity to its member, and an entry whose identity is already there
/// is skipped — the one already logged covers every token the new one would (a session or a
/// token is denied once and for all; the same cut-off covers the same tokens). Revoking the
/// same token a thousand times adds one member, publishes once, and wakes no reader after.
/// Pruning never removes the newest member: it is the readers' anchor (see `SINCE`).
static DENY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('SET', KEYS[1], ARGV[1], 'NX')
        local top = redis.call('GET', KEYS[2]) or '0'
        local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])
        for _, m in ipairs(expired) do
            if string.sub(m, 1, #top + 1) ~= top .. '|' then
                redis.call('ZREM', KEYS[3], m)
                redis.call('ZREM', KEYS[4], m)
                local ident = string.match(m, '^%d+|(.*)|[^|]*$')
                if ident and redis.call('HGET', KEYS[5], ident) == m then redis.call('HDEL', KEYS[5], ident) end
            end
        end
        local last = tonumber(top)
        local added = 0
        local latest = tonumber(ARGV[5])
        for i = 6, #ARGV, 3 do
            if redis.call('HEXISTS', KEYS[5], ARGV[i + 2]) == 0 then
                last = redis.call('INCR', KEYS[2])
                added = added + 1
                local m = last .. '|' .. ARGV[i]
                redis.call('ZADD', KEYS[3], last, m)
                redis.call('ZADD', KEYS[4], ARGV[i + 1], m)
                redis.call('HSET', KEYS[5], ARGV[i + 2], m)
                latest = math.max(latest, tonumber(ARGV[i + 1]))
            end
        end
        if added > 0 then
            for k = 3, 5 do
                local t = redis.call('EXPIRETIME', KEYS[k])
                if t == -1 or t < latest then redis.call('EXPIREAT', KEYS[k], latest) end
            end
            redis.call('PUBLISH', ARGV[3], last)
        end
        return last
        ",
    )
});

/// KEYS: epoch, seq, log. ARGV: the cursor's epoch and sequence number, and the reader's
/// anchor: the member it last read at that sequence number, or ''. Returns the current epoch,
/// the last sequence number, whether the log restarted, and every member after the cursor —
/// all of them when it restarted: the epoch changed (the data was lost), the sequence is
/// behind the cursor, or the anchor is gone (the data was rolled back, e.g. restored from a
/// snapshot a moment old, and written past the old position since). A reader therefore never
/// needs to reread the whole log on a timer, and an attacker cannot make its reads expensive.
static SINCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local epoch = tonumber(redis.call('GET', KEYS[1]) or '0')
        local last = tonumber(redis.call('GET', KEYS[2]) or '0')
        local from = tonumber(ARGV[2])
        local restarted = 0
        if from > 0 then
            if epoch ~= tonumber(ARGV[1]) or last < from then
                restarted = 1
            elseif ARGV[3] ~= '' and not redis.call('ZSCORE', KEYS[3], ARGV[3]) then
                restarted = 1
            end
        end
        if restarted == 1 then from = 0 end
        return {epoch, last, restarted, redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. from, '+inf')}
        ",
    )
});

#[async_trait]
impl DenylistStore for RedisStore {
    async fn deny(&self, entries: &[DenyEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let keys = self.keys();
        let mut call = DENY.prepare_invoke();
        call.key(keys.deny("epoch"))
            .key(keys.deny("seq"))
            .key(keys.deny("log"))
            .key(keys.deny("exp"))
            .key(keys.deny("ids"))
            .arg(new_epoch())
            // Pruning goes by this instance's wall clock, with a margin for the others' clocks
            // and for entries stamped by a clock of their own; the log never expires sooner.
            .arg(to_unix(OffsetDateTime::now_utc()) - PRUNE_MARGIN_SECS)
            .arg(keys.deny_channel())
            .arg(PRUNE_BATCH)
            .arg(to_unix(OffsetDateTime::now_utc()) + PRUNE_MARGIN_SECS);
        for entry in entries {
            let payload = encode(entry);
            let identity = identity(&payload);
            call.arg(&payload).arg(to_unix(entry.expires_at)).arg(identity);
        }
        let _: i64 = call.invoke_async(&mut self.conn()).await.map_err(redis_err)?;
        Ok(())
    }

    async fn denied_since(&self, cursor: u64, now: OffsetDateTime) -> Result<(Vec<DenyEntry>, u64), StoreError> {
        let read = self.read_denylist(cursor, now).await?;
        Ok((read.entries.into_iter().map(|(_, e)| e).collect(), read.next))
    }

    async fn read_denylist(&self, cursor: u64, now: OffsetDateTime) -> Result<DenylistRead, StoreError> {
        let keys = self.keys();
        let (epoch, seq) = (cursor >> SEQ_BITS, cursor & SEQ_MASK);
        let anchor = {
            let anchor = self.inner.deny_anchor.lock().unwrap_or_else(|p| p.into_inner());
            anchor.as_ref().filter(|(at, _)| *at == cursor).map(|(_, m)| m.clone()).unwrap_or_default()
        };
        let (current, last, restarted, members): (u64, u64, u8, Vec<String>) = SINCE
            .key(keys.deny("epoch"))
            .key(keys.deny("seq"))
            .key(keys.deny("log"))
            .arg(epoch)
            .arg(seq)
            .arg(&anchor)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let epoch_bits = (current & EPOCH_MASK) << SEQ_BITS;
        let mut entries = Vec::with_capacity(members.len());
        let mut newest = None;
        for member in &members {
            let (member_seq, entry) = decode(member)?;
            newest = Some((member_seq, member));
            if entry.expires_at > now {
                entries.push((epoch_bits | (member_seq & SEQ_MASK), entry));
            }
        }
        // The store's own position: after a loss or a rollback that is behind the old cursor,
        // and the next read must start from there.
        let next = epoch_bits | (last & SEQ_MASK);
        {
            let mut anchor = self.inner.deny_anchor.lock().unwrap_or_else(|p| p.into_inner());
            match newest {
                Some((s, m)) if s == last => *anchor = Some((next, m.clone())),
                Some(_) => *anchor = None,
                None if next == cursor => {}
                None => *anchor = None,
            }
        }
        Ok(DenylistRead { entries, next, restarted: restarted == 1 })
    }

    fn denylist_changes(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.inner.changes))
    }
}

/// A random epoch, never 0 (0 is "nothing written yet").
fn new_epoch() -> u64 {
    let bytes = tessera_core::secret::random_bytes::<8>();
    (u64::from_le_bytes(bytes) & EPOCH_MASK).max(1)
}

/// `kind|id|issued_before|expires_at`, the id in base64url; see `migrations/sqlite/0002_jwt.sql`
/// for the kinds.
fn encode(entry: &DenyEntry) -> String {
    let expires = to_unix(entry.expires_at);
    match &entry.denied {
        Denied::Session(sid) => format!("session|{sid}||{expires}"),
        Denied::Token(jti) => format!("token|{jti}||{expires}"),
        Denied::IssuedBefore(user, before) => format!("issued_before|{user}|{}|{expires}", to_unix(*before)),
    }
}

/// What makes two entries the same revocation: the payload without its expiry.
fn identity(payload: &str) -> &str {
    payload.rsplit_once('|').map_or(payload, |(ident, _)| ident)
}

/// A member: its sequence number and the entry it spells.
fn decode(member: &str) -> Result<(u64, DenyEntry), StoreError> {
    let bad = || corrupt("denylist entry");
    let mut parts = member.split('|');
    let seq: u64 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let (kind, id, before, expires) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    if parts.next().is_some() {
        return Err(bad());
    }
    let expires_at = from_unix(expires.parse().map_err(|_| bad())?);
    let denied = match (kind, before) {
        ("session", "") => Denied::Session(SessionId::parse(id).ok_or_else(bad)?),
        ("token", "") => Denied::Token(TokenId::parse(id).ok_or_else(bad)?),
        ("issued_before", before) => {
            Denied::IssuedBefore(UserId::parse(id).ok_or_else(bad)?, from_unix(before.parse().map_err(|_| bad())?))
        }
        _ => return Err(bad()),
    };
    Ok((seq, DenyEntry { denied, expires_at }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_their_member_form() {
        let at = from_unix(1_900_000_000);
        for denied in [
            Denied::Session(SessionId::generate()),
            Denied::Token(TokenId::generate()),
            Denied::IssuedBefore(UserId::generate(), from_unix(1_899_999_000)),
        ] {
            let entry = DenyEntry { denied, expires_at: at };
            assert_eq!(decode(&format!("17|{}", encode(&entry))).unwrap(), (17, entry));
        }
    }

    #[test]
    fn malformed_members_are_errors() {
        for m in [
            "",
            "1",
            "1|session|x||5",
            "1|token|AAAAAAAAAAAAAAAAAAAAAA|3|5",
            "1|what|AAAAAAAAAAAAAAAAAAAAAA||5",
            "1|session|AAAAAAAAAAAAAAAAAAAAAA||5|6",
            "x|session|AAAAAAAAAAAAAAAAAAAAAA||5",
        ] {
            assert!(decode(m).is_err(), "{m}");
        }
    }

    #[test]
    fn epochs_are_never_zero_and_fit_beside_the_sequence() {
        for _ in 0..1000 {
            let e = new_epoch();
            assert!((1..=EPOCH_MASK).contains(&e));
        }
    }
}
