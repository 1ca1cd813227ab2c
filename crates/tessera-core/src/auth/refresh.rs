//! Refresh rotation (SPEC §3): every use rotates; a predecessor presented again within
//! `refresh.reuse_grace` gets the very same successor (a client retrying a lost answer); any
//! older token, or a predecessor after the grace, revokes the whole family and is audited;
//! of N concurrent refreshes with one token exactly one family continues, because the store
//! advances a family only by compare-and-set on its generation.

use crate::audit::{AuditEvent, AuditKind};
use crate::clock::whole_seconds;
use crate::error::AuthError;
use crate::id::TokenId;
use crate::refresh::RefreshToken;
use crate::session::{RefreshState, Session};
use crate::throttle::{Reservation, ThrottleKey};

use super::login::ip_string;
use super::{Auth, ClientInfo, IssuedSession};

/// How far back a presented token is traced to recognise it as the family's: at most this many
/// HMACs per refresh, which is what a forged token for a known session costs us. A genuine
/// token more than 100 rotations old is refused like a forged one (it cannot be told apart
/// without walking further), so its reuse ends nothing; every younger one is recognised and
/// its reuse ends the family.
pub const MAX_TRACE: u32 = 100;
/// Compare-and-set retries before giving up; each failure means another rotation won.
const MAX_ATTEMPTS: usize = 4;

enum Verdict {
    /// The current token: rotate.
    Rotate,
    /// The predecessor within the grace: answer with the successor that was already issued.
    Replay,
    /// A genuine token of this family used again too late or too old: revoke the family.
    Reuse,
    /// Not a token of this family.
    Unknown,
}

impl Auth {
    /// `POST /v1/refresh`. Refused refresh tokens are counted per client IP; past the
    /// allowance the answer is [`AuthError::Throttled`] before any work is done.
    /// The attempt is reserved before any work (atomically, like a login's), so parallel
    /// forged tokens cost what sequential ones do, and given back unless it was refused.
    pub async fn refresh(&self, raw: &str, client: &ClientInfo) -> Result<IssuedSession, AuthError> {
        let Some(key) = client.ip.map(ThrottleKey::refresh) else {
            return self.refresh_unthrottled(raw, client).await;
        };
        let now = self.now();
        let reserved = match self.store.reserve_attempt(&key, &self.policy.throttle.rule(&key), now).await? {
            Reservation::Locked(failures) => {
                let retry_after = self.policy.throttle.retry_after(&key, failures, now).unwrap_or(1);
                return Err(AuthError::Throttled { retry_after });
            }
            Reservation::Reserved(r) => r,
        };
        let outcome = self.refresh_unthrottled(raw, client).await;
        if !matches!(outcome, Err(AuthError::Unauthenticated)) {
            self.release_attempts(&[(key, reserved)]).await;
        }
        outcome
    }

    async fn refresh_unthrottled(&self, raw: &str, client: &ClientInfo) -> Result<IssuedSession, AuthError> {
        let t = self.tokens_or_internal()?;
        let policy = t.policy.refresh.ok_or(AuthError::Unauthenticated)?;
        let presented = RefreshToken::parse(raw).ok_or(AuthError::Unauthenticated)?;
        let (user, sid) = (presented.user_id, presented.session_id);
        for _ in 0..MAX_ATTEMPTS {
            // Milliseconds: a rotation's time decides whether a replay is inside the grace.
            let now = self.now_precise();
            let session = self.store.session_fresh(&user, &sid).await?.ok_or(AuthError::Unauthenticated)?;
            let state = session.refresh.ok_or(AuthError::Unauthenticated)?;
            if !self.policy.session.is_live(&session, now) {
                self.end_session(&user, &sid).await?;
                return Err(AuthError::Unauthenticated);
            }
            match self.judge(&presented, &state, now, policy.reuse_grace) {
                Verdict::Rotate => {
                    let next = t.chain.successor(&presented);
                    let new_state = RefreshState { generation: next.generation, hash: next.hash(), rotated_at: now };
                    if self.store.rotate_refresh(&user, &sid, state.generation, &new_state).await? {
                        // Answer with the session as it now stands, so a replay inside the grace
                        // (which reads it back) describes it identically.
                        let last_seen_at = session.last_seen_at.max(whole_seconds(now));
                        let session = Session { last_seen_at, refresh: Some(new_state), ..session };
                        return self.answer_refresh(session, next, whole_seconds(now));
                    }
                    // Another rotation won the race: look again; we are now its predecessor.
                }
                Verdict::Replay => {
                    let next = t.chain.successor(&presented);
                    return self.answer_refresh(session, next, whole_seconds(state.rotated_at));
                }
                Verdict::Reuse => {
                    self.end_session(&user, &sid).await?;
                    self.audit(
                        AuditEvent::new(now, AuditKind::RefreshReuseDetected)
                            .user(user)
                            .session(sid)
                            .ip(ip_string(client))
                            .detail(format!("generation {} presented at {}", presented.generation, state.generation)),
                    )
                    .await;
                    return Err(AuthError::Unauthenticated);
                }
                Verdict::Unknown => return Err(AuthError::Unauthenticated),
            }
        }
        Err(AuthError::Unavailable("refresh contention".into()))
    }

    fn judge(
        &self,
        presented: &RefreshToken,
        state: &RefreshState,
        now: time::OffsetDateTime,
        grace: time::Duration,
    ) -> Verdict {
        let Some(t) = &self.tokens else { return Verdict::Unknown };
        // Walk the presented token forward to the family's current generation; only a
        // genuine token of this family lands on the stored hash.
        let Some(at_current) = t.chain.advance(presented, state.generation, MAX_TRACE) else {
            return Verdict::Unknown;
        };
        if !at_current.hash().ct_eq(&state.hash) {
            return Verdict::Unknown;
        }
        match state.generation - presented.generation {
            0 => Verdict::Rotate,
            // Strictly inside: a zero grace admits no replay at all, not one in the same instant.
            1 if now - state.rotated_at < grace => Verdict::Replay,
            _ => Verdict::Reuse,
        }
    }

    /// The successor pair. The access token's `jti` and `iat` derive from the successor, so
    /// a replay inside the grace reproduces the same token (EdDSA and HMAC are deterministic;
    /// ECDSA and RSA-PSS would differ only in signature bytes, not in meaning).
    fn answer_refresh(
        &self,
        session: Session,
        next: RefreshToken,
        issued_at: time::OffsetDateTime,
    ) -> Result<IssuedSession, AuthError> {
        let t = self.tokens_or_internal()?;
        let jti = TokenId::from_bytes(t.chain.derive_id(&next, b"tessera access jti v1"));
        let access = self.sign_access(session.user_id, Some(session.id), jti, issued_at, Some(session.expires_at))?;
        Ok(IssuedSession {
            account_id: session.user_id,
            username: session.username.clone(),
            csrf: self.csrf_for(session.id.as_bytes())?,
            session: Some(session),
            session_token: None,
            access: Some(access),
            refresh: Some(next),
        })
    }

    /// Logout by a refresh token: a browser whose short-lived access cookie has expired still
    /// holds its refresh cookie, and a logout must end the session by whatever it still holds.
    /// Any genuine token of the family ends it (an older one too: it is ended all the same);
    /// one that is not is [`AuthError::Unauthenticated`], and nothing changes.
    pub async fn logout_refresh(&self, raw: &str) -> Result<(), AuthError> {
        let presented = RefreshToken::parse(raw).ok_or(AuthError::Unauthenticated)?;
        let (user, sid) = (presented.user_id, presented.session_id);
        let session = self.store.session_fresh(&user, &sid).await?.ok_or(AuthError::Unauthenticated)?;
        let state = session.refresh.ok_or(AuthError::Unauthenticated)?;
        if matches!(self.judge(&presented, &state, self.now(), time::Duration::ZERO), Verdict::Unknown) {
            return Err(AuthError::Unauthenticated);
        }
        self.end_session(&user, &sid).await?;
        self.audit(AuditEvent::new(self.now(), AuditKind::Logout).user(user).session(sid)).await;
        Ok(())
    }

    /// RFC 7009 revocation of a refresh token: the whole family ends. Unknown tokens are
    /// ignored (the RFC wants 200 either way).
    pub async fn revoke_refresh(&self, raw: &str) -> Result<(), AuthError> {
        let Some(presented) = RefreshToken::parse(raw) else { return Ok(()) };
        let Some(session) = self.store.session_fresh(&presented.user_id, &presented.session_id).await? else {
            return Ok(());
        };
        let Some(state) = session.refresh else { return Ok(()) };
        let now = self.now();
        if matches!(self.judge(&presented, &state, now, time::Duration::ZERO), Verdict::Unknown) {
            return Ok(());
        }
        self.end_session(&session.user_id, &session.id).await?;
        self.audit(
            AuditEvent::new(now, AuditKind::TokenRevoked)
                .user(session.user_id)
                .session(session.id)
                .detail("refresh_token"),
        )
        .await;
        Ok(())
    }
}
