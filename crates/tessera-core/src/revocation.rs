//! Revocation of self-contained access tokens (SPEC §1, §4).
//!
//! A JWT is valid until `exp` by construction; revoking one early needs state somewhere.
//! [`RevocationCheck`] says where:
//! - `None`: nowhere. Logout ends the refresh family; access tokens live out their minutes.
//! - `Denylist`: revoked `sid`s, `jti`s and per-user cut-offs, each kept only as long as the
//!   tokens it covers could live, in an in-process [`Denylist`] — so the hot path has no store
//!   round trip. The store holds the durable copy; a sync task feeds every instance.
//! - `Allowlist`: the token's session must be live in the store on every request ("a JWT used
//!   like a session"): instant, at the price of one lookup.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::id::{SessionId, TokenId, UserId};
use crate::store::{Denied, DenyEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationCheck {
    None,
    Denylist,
    Allowlist,
}

impl RevocationCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Denylist => "denylist",
            Self::Allowlist => "allowlist",
        }
    }
}

/// What the denylist needs to know of a token.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts {
    pub sub: UserId,
    pub sid: Option<SessionId>,
    pub jti: TokenId,
    pub iat: OffsetDateTime,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DenylistError {
    /// The copy has not been synchronised for longer than the allowed staleness: a
    /// revocation elsewhere might be missing, so no answer is safe (fail closed, 503).
    #[error("the denylist is stale")]
    Stale,
}

#[derive(Default)]
struct Entries {
    sessions: HashMap<SessionId, OffsetDateTime>,
    tokens: HashMap<TokenId, OffsetDateTime>,
    /// Per user: tokens issued at or before the cut-off are denied, until the entry expires.
    users: HashMap<UserId, (OffsetDateTime, OffsetDateTime)>,
}

/// The in-process copy of the denylist.
pub struct Denylist {
    entries: RwLock<Entries>,
    /// When the copy last caught up with the store; `None` before the first sync.
    synced_at: RwLock<Option<Instant>>,
    max_staleness: Duration,
}

impl Denylist {
    pub fn new(max_staleness: Duration) -> Self {
        Self { entries: RwLock::default(), synced_at: RwLock::new(None), max_staleness }
    }

    /// Adds entries (from this instance's own revocations, or from a sync).
    pub fn apply(&self, new: &[DenyEntry]) {
        let mut e = self.entries.write().unwrap_or_else(|p| p.into_inner());
        for entry in new {
            match entry.denied {
                Denied::Session(sid) => keep_later(e.sessions.entry(sid).or_insert(entry.expires_at), entry.expires_at),
                Denied::Token(jti) => keep_later(e.tokens.entry(jti).or_insert(entry.expires_at), entry.expires_at),
                Denied::IssuedBefore(user, cutoff) => {
                    let slot = e.users.entry(user).or_insert((cutoff, entry.expires_at));
                    slot.0 = slot.0.max(cutoff);
                    slot.1 = slot.1.max(entry.expires_at);
                }
            }
        }
    }

    /// Records that the copy caught up with the store just now.
    pub fn mark_synced(&self) {
        self.mark_synced_as_of(Instant::now());
    }

    /// Records a sync whose read started at `started`: the copy is as fresh as the moment the
    /// store was asked, not the moment its answer arrived (a slow answer must not buy time).
    pub fn mark_synced_as_of(&self, started: Instant) {
        let mut synced = self.synced_at.write().unwrap_or_else(|p| p.into_inner());
        if synced.is_none_or(|s| s < started) {
            *synced = Some(started);
        }
    }

    /// Whether the copy caught up with the store within the allowed staleness.
    pub fn is_fresh(&self) -> bool {
        self.synced_at.read().unwrap_or_else(|p| p.into_inner()).is_some_and(|at| at.elapsed() <= self.max_staleness)
    }

    /// Whether a live entry already stops every token `denied` would.
    pub fn covers(&self, denied: &Denied, now: OffsetDateTime) -> bool {
        let e = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let live = |exp: &OffsetDateTime| now < *exp;
        match denied {
            Denied::Session(sid) => e.sessions.get(sid).is_some_and(live),
            Denied::Token(jti) => e.tokens.get(jti).is_some_and(live),
            Denied::IssuedBefore(user, cutoff) => e.users.get(user).is_some_and(|(c, exp)| live(exp) && *c >= *cutoff),
        }
    }

    /// Every live entry (a user's cut-offs merged into one), for a consumer starting afresh.
    pub fn snapshot(&self, now: OffsetDateTime) -> Vec<DenyEntry> {
        let e = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let entry = |denied, expires_at| DenyEntry { denied, expires_at };
        e.sessions
            .iter()
            .filter(|(_, exp)| now < **exp)
            .map(|(sid, exp)| entry(Denied::Session(*sid), *exp))
            .chain(e.tokens.iter().filter(|(_, exp)| now < **exp).map(|(jti, exp)| entry(Denied::Token(*jti), *exp)))
            .chain(
                e.users
                    .iter()
                    .filter(|(_, (_, exp))| now < *exp)
                    .map(|(user, (cutoff, exp))| entry(Denied::IssuedBefore(*user, *cutoff), *exp)),
            )
            .collect()
    }

    /// Whether a token is revoked. Fails when the copy is too stale to answer safely.
    pub fn is_denied(&self, t: &TokenFacts, now: OffsetDateTime) -> Result<bool, DenylistError> {
        if !self.is_fresh() {
            return Err(DenylistError::Stale);
        }
        let e = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let live = |exp: &OffsetDateTime| now < *exp;
        Ok(t.sid.and_then(|sid| e.sessions.get(&sid)).is_some_and(live)
            || e.tokens.get(&t.jti).is_some_and(live)
            || e.users.get(&t.sub).is_some_and(|(cutoff, exp)| live(exp) && t.iat <= *cutoff))
    }

    /// Drops entries whose tokens have all expired.
    pub fn purge(&self, now: OffsetDateTime) {
        let mut e = self.entries.write().unwrap_or_else(|p| p.into_inner());
        e.sessions.retain(|_, exp| now < *exp);
        e.tokens.retain(|_, exp| now < *exp);
        e.users.retain(|_, (_, exp)| now < *exp);
    }

    pub fn len(&self) -> usize {
        let e = self.entries.read().unwrap_or_else(|p| p.into_inner());
        e.sessions.len() + e.tokens.len() + e.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn keep_later(slot: &mut OffsetDateTime, exp: OffsetDateTime) {
    *slot = (*slot).max(exp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration as TDuration;

    fn facts(sid: Option<SessionId>, iat: OffsetDateTime) -> TokenFacts {
        TokenFacts { sub: UserId::generate(), sid, jti: TokenId::generate(), iat }
    }

    #[test]
    fn denied_session_stops_its_tokens_until_the_entry_expires() {
        let d = Denylist::new(Duration::from_secs(1));
        d.mark_synced();
        let now = OffsetDateTime::UNIX_EPOCH + TDuration::days(20_000);
        let sid = SessionId::generate();
        let t = facts(Some(sid), now);
        assert_eq!(d.is_denied(&t, now), Ok(false));
        d.apply(&[DenyEntry { denied: Denied::Session(sid), expires_at: now + TDuration::minutes(5) }]);
        assert_eq!(d.is_denied(&t, now), Ok(true));
        assert_eq!(d.is_denied(&t, now + TDuration::minutes(5)), Ok(false));
        d.purge(now + TDuration::minutes(5));
        assert!(d.is_empty());
    }

    #[test]
    fn user_cutoff_denies_older_tokens_only() {
        let d = Denylist::new(Duration::from_secs(1));
        d.mark_synced();
        let now = OffsetDateTime::UNIX_EPOCH + TDuration::days(20_000);
        let old = facts(None, now - TDuration::seconds(10));
        let newer = TokenFacts { iat: now + TDuration::seconds(1), ..old };
        d.apply(&[DenyEntry { denied: Denied::IssuedBefore(old.sub, now), expires_at: now + TDuration::minutes(5) }]);
        assert_eq!(d.is_denied(&old, now), Ok(true));
        assert_eq!(d.is_denied(&newer, now), Ok(false));
    }

    #[test]
    fn a_copy_never_synced_or_too_stale_fails_closed() {
        let d = Denylist::new(Duration::from_millis(0));
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(d.is_denied(&facts(None, now), now), Err(DenylistError::Stale));
        d.mark_synced();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(d.is_denied(&facts(None, now), now), Err(DenylistError::Stale));
    }
}
