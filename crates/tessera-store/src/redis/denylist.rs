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
use tessera_core::store::{Denied, DenyEntry, DenylistStore, StoreError};
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

/// KEYS: epoch, seq, log, exp. ARGV: epoch candidate, prune-before instant, channel, prune
/// batch, keep-until instant, then (payload, expires_at) pairs. Returns the last sequence
/// number.
static DENY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('SET', KEYS[1], ARGV[1], 'NX')
        local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])
        for _, m in ipairs(expired) do
            redis.call('ZREM', KEYS[3], m)
            redis.call('ZREM', KEYS[4], m)
        end
        local last = 0
        local latest = tonumber(ARGV[5])
        for i = 6, #ARGV, 2 do
            last = redis.call('INCR', KEYS[2])
            local m = last .. '|' .. ARGV[i]
            redis.call('ZADD', KEYS[3], last, m)
            redis.call('ZADD', KEYS[4], ARGV[i + 1], m)
            latest = math.max(latest, tonumber(ARGV[i + 1]))
        end
        for k = 3, 4 do
            local t = redis.call('EXPIRETIME', KEYS[k])
            if t == -1 or t < latest then redis.call('EXPIREAT', KEYS[k], latest) end
        end
        redis.call('PUBLISH', ARGV[3], last)
        return last
        ",
    )
});

/// KEYS: epoch, seq, log. ARGV: the cursor's epoch and sequence number. Returns the current
/// epoch, the last sequence number, and every member after the cursor — all of them when the
/// epoch changed (the data was lost) or the sequence is behind the cursor (the data was
/// rolled back, e.g. restored from a snapshot a moment old).
static SINCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local epoch = tonumber(redis.call('GET', KEYS[1]) or '0')
        local last = tonumber(redis.call('GET', KEYS[2]) or '0')
        local from = tonumber(ARGV[2])
        if epoch ~= tonumber(ARGV[1]) or last < from then from = 0 end
        return {epoch, last, redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. from, '+inf')}
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
            .arg(new_epoch())
            // Pruning goes by this instance's wall clock, with a margin for the others' clocks
            // and for entries stamped by a clock of their own; the log never expires sooner.
            .arg(to_unix(OffsetDateTime::now_utc()) - PRUNE_MARGIN_SECS)
            .arg(keys.deny_channel())
            .arg(PRUNE_BATCH)
            .arg(to_unix(OffsetDateTime::now_utc()) + PRUNE_MARGIN_SECS);
        for entry in entries {
            call.arg(encode(entry)).arg(to_unix(entry.expires_at));
        }
        let _: i64 = call.invoke_async(&mut self.conn()).await.map_err(redis_err)?;
        Ok(())
    }

    async fn denied_since(&self, cursor: u64, now: OffsetDateTime) -> Result<(Vec<DenyEntry>, u64), StoreError> {
        let keys = self.keys();
        let (epoch, seq) = (cursor >> SEQ_BITS, cursor & SEQ_MASK);
        let (current, last, members): (u64, u64, Vec<String>) = SINCE
            .key(keys.deny("epoch"))
            .key(keys.deny("seq"))
            .key(keys.deny("log"))
            .arg(epoch)
            .arg(seq)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let mut entries = Vec::with_capacity(members.len());
        for member in &members {
            let entry = decode(member)?;
            if entry.expires_at > now {
                entries.push(entry);
            }
        }
        // The store's own position: after a loss or a rollback that is behind the old cursor,
        // and the next read must start from there.
        let next_seq = last;
        Ok((entries, (current & EPOCH_MASK) << SEQ_BITS | (next_seq & SEQ_MASK)))
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

fn decode(member: &str) -> Result<DenyEntry, StoreError> {
    let bad = || corrupt("denylist entry");
    let mut parts = member.split('|');
    let _seq = parts.next().ok_or_else(bad)?;
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
    Ok(DenyEntry { denied, expires_at })
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
            assert_eq!(decode(&format!("17|{}", encode(&entry))).unwrap(), entry);
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
