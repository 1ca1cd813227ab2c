//! RFC 7662 introspection and RFC 7009 revocation of any token tessera issues.

use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditKind};
use crate::clock::from_unix;
use crate::error::AuthError;
use crate::id::{SessionId, TokenId, UserId};
use crate::refresh::RefreshToken;
use crate::revocation::RevocationCheck;
use crate::session::SessionToken;
use crate::store::Denied;

use super::Auth;

/// What introspection reveals of an active token.
#[derive(Debug, Clone)]
pub struct Introspection {
    pub token_type: &'static str,
    pub sub: UserId,
    pub username: String,
    pub sid: Option<SessionId>,
    pub jti: Option<TokenId>,
    pub iat: Option<OffsetDateTime>,
    pub exp: OffsetDateTime,
}

impl Auth {
    /// `None` for anything not active now: unknown, malformed, expired or revoked. A store
    /// that cannot answer is an error (503), not `None`: `{"active": false}` would tell a
    /// resource server that a token is dead when nobody knows (RFC 7662 §2.2 has no "unknown").
    pub async fn introspect(&self, raw: &str) -> Result<Option<Introspection>, AuthError> {
        if self.tokens.is_some() && raw.contains('.') {
            let Some(claims) = valid_or_none(self.genuine_access_claims(raw, self.now()))? else { return Ok(None) };
            // The whole check (revocation included); the signature is not checked twice.
            let Some(a) = valid_or_none(self.authenticate_access(raw).await)? else { return Ok(None) };
            return Ok(Some(Introspection {
                token_type: "access_token",
                sub: a.user_id,
                username: a.username.to_string(),
                sid: a.session_id,
                jti: a.token_id,
                iat: Some(from_unix(claims.iat)),
                exp: a.expires_at,
            }));
        }
        if let Some(r) = RefreshToken::parse(raw) {
            let Some(session) = self.store.session(&r.user_id, &r.session_id).await? else { return Ok(None) };
            let current = session.refresh.is_some_and(|s| s.generation == r.generation && s.hash.ct_eq(&r.hash()));
            if !current || !self.policy.session.is_live(&session, self.now()) {
                return Ok(None);
            }
            return Ok(Some(Introspection {
                token_type: "refresh_token",
                sub: session.user_id,
                username: session.username.to_string(),
                sid: Some(session.id),
                jti: None,
                iat: Some(session.created_at),
                exp: session.expires_at,
            }));
        }
        let Some(t) = SessionToken::parse(raw) else { return Ok(None) };
        // Looking at a session is not using it: its idle timer must not restart.
        let Some(a) = valid_or_none(self.check_session(&t, false).await)? else { return Ok(None) };
        Ok(Some(Introspection {
            token_type: "session_token",
            sub: a.user_id,
            username: a.username.to_string(),
            sid: a.session_id,
            jti: None,
            iat: a.session.as_ref().map(|s| s.created_at),
            exp: a.expires_at,
        }))
    }

    /// RFC 7009: revokes whatever token this is, if it is ours and valid; an unknown or invalid
    /// token gets the same answer and changes nothing (§2.2). A refresh token ends its family;
    /// a session token ends its session; an access token, see [`Auth::revoke_access`]. A store
    /// that cannot answer is an error (503, §2.2.1), never that same answer: a 200 tells the
    /// client its token is dead, and it would still work.
    pub async fn revoke_token(&self, raw: &str) -> Result<(), AuthError> {
        if self.tokens.is_some() && raw.contains('.') {
            return self.revoke_access(raw).await;
        }
        if RefreshToken::parse(raw).is_some() {
            return self.revoke_refresh(raw).await;
        }
        let Some(t) = SessionToken::parse(raw) else { return Ok(()) };
        let Some(a) = valid_or_none(self.authenticate(&t).await)? else { return Ok(()) };
        let Some(sid) = a.session_id else { return Ok(()) };
        match self.revoke_session(&a.user_id, &sid).await {
            // Ended by someone else since the check: the client's wish holds all the same.
            Err(AuthError::NotFound) => Ok(()),
            other => other,
        }
    }

    /// An access token is denylisted by its `jti` under the denylist check (the session
    /// stays). Under the allowlist check the only state is the session, so its session ends
    /// (RFC 7009 §2.1 allows revoking related tokens). Under `none` nothing can stop it before
    /// `exp`; that is what the setting means.
    ///
    /// Only signature, claims and expiry are checked first, not whether the token is already
    /// revoked nor whose it is: denying a token twice is harmless, while asking would make
    /// revocation fail with PostgreSQL down (the username) or a stale denylist copy — exactly
    /// when a client may most want a token gone.
    async fn revoke_access(&self, raw: &str) -> Result<(), AuthError> {
        let t = self.tokens_or_internal()?;
        let Some(claims) = valid_or_none(self.genuine_access_claims(raw, self.now()))? else { return Ok(()) };
        let revoked = match (t.policy.revocation, claims.sid) {
            (RevocationCheck::Allowlist, Some(sid)) => self.end_session(&claims.sub, &sid).await?,
            // Revoking a token already revoked changes nothing and is not audited again; new
            // entries count against the owner's allowance, so one account holder cannot grow
            // the denylist (which every instance holds in memory) without bound.
            (RevocationCheck::Denylist, _) => {
                let denied = Denied::Token(claims.jti);
                if t.denylist.covers(&denied, self.now()) {
                    false
                } else {
                    self.count_revocation(&claims.sub).await?;
                    self.deny(&[denied]).await?
                }
            }
            _ => false,
        };
        if revoked {
            self.audit(AuditEvent::new(self.now(), AuditKind::TokenRevoked).user(claims.sub).detail("access_token"))
                .await;
        }
        Ok(())
    }
}

impl Auth {
    /// Counts one new revocation by `user` through `/v1/revoke`, or refuses it (429) once the
    /// allowance is spent.
    async fn count_revocation(&self, user: &UserId) -> Result<(), AuthError> {
        let key = crate::throttle::ThrottleKey::Revocations(user.to_string());
        let now = self.now();
        // Reserved atomically: parallel revocations cannot overrun the allowance.
        match self.store.reserve_attempt(&key, &self.policy.throttle.rule(&key), now).await? {
            crate::throttle::Reservation::Locked(failures) => {
                let retry_after = self.policy.throttle.retry_after(&key, failures, now).unwrap_or(1);
                Err(AuthError::Throttled { retry_after })
            }
            crate::throttle::Reservation::Reserved(_) => Ok(()),
        }
    }
}

/// What RFC 7009 §2.2 and RFC 7662 §2.2 answer for a token that is not valid: nothing to
/// revoke, not active. Only [`AuthError::Unauthenticated`] means that; every other error
/// (a store down, a stale denylist copy) says nothing about the token and is passed on.
fn valid_or_none<T>(checked: Result<T, AuthError>) -> Result<Option<T>, AuthError> {
    match checked {
        Ok(v) => Ok(Some(v)),
        Err(AuthError::Unauthenticated) => Ok(None),
        Err(e) => Err(e),
    }
}
