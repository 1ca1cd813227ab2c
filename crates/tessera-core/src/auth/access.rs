use std::sync::Arc;

use aws_lc_rs::hmac;
use time::OffsetDateTime;

use crate::clock::{from_unix, to_unix};
use crate::error::AuthError;
use crate::id::{SessionId, TokenId, UserId};
use crate::jwt::{self, AccessClaims};
use crate::revocation::{RevocationCheck, TokenFacts};
use crate::secret::{TokenHash, b64, b64_decode_exact};
use crate::username::Username;

use super::{Auth, Authenticated, Tokens};

/// An access token just signed.
#[derive(Debug, Clone)]
pub struct IssuedAccess {
    pub token: String,
    pub expires_at: OffsetDateTime,
    pub jti: TokenId,
}

impl Auth {
    pub(super) fn tokens_or_internal(&self) -> Result<&Tokens, AuthError> {
        self.tokens.as_ref().ok_or_else(|| AuthError::Internal("token machinery used in session mode".into()))
    }

    /// Signs an access token for `user`, bound to `sid` where a server session exists.
    /// `iat` and `jti` are parameters so a refresh retry can reproduce a token exactly.
    /// `session_ends_at` is the session's absolute end: the token's `exp` never passes it, so
    /// no access token outlives the lifetime the server gave its session.
    pub(super) fn sign_access(
        &self,
        user: UserId,
        sid: Option<SessionId>,
        jti: TokenId,
        iat: OffsetDateTime,
        session_ends_at: Option<OffsetDateTime>,
    ) -> Result<IssuedAccess, AuthError> {
        let t = self.tokens_or_internal()?;
        let s = &t.policy.jwt;
        let expires_at = session_ends_at.map_or(iat + s.access_ttl, |end| (iat + s.access_ttl).min(end));
        let claims = AccessClaims {
            iss: s.issuer.clone(),
            sub: user,
            aud: s.audience.clone(),
            exp: to_unix(expires_at),
            iat: to_unix(iat),
            jti,
            sid,
        };
        let token = jwt::sign(&t.keys.current(), &claims).map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok(IssuedAccess { token, expires_at, jti })
    }

    /// Decides whether an access token is valid now: signature and claims (pinned algorithm,
    /// our keys only), expiry against the clock, then the configured revocation check. A
    /// token seen before skips the signature check (the verified cache), never the others.
    pub async fn authenticate_access(&self, raw: &str) -> Result<Authenticated, AuthError> {
        let t = self.tokens_or_internal()?;
        let now = self.now();
        let claims = self.genuine_access_claims(raw, now)?;
        let facts = TokenFacts { sub: claims.sub, sid: claims.sid, jti: claims.jti, iat: from_unix(claims.iat) };
        let session = match t.policy.revocation {
            RevocationCheck::None => None,
            RevocationCheck::Denylist => {
                if t.denylist.is_denied(&facts, now).map_err(|e| AuthError::Unavailable(e.to_string()))? {
                    return Err(AuthError::Unauthenticated);
                }
                None
            }
            RevocationCheck::Allowlist => {
                let sid = claims.sid.ok_or(AuthError::Unauthenticated)?;
                let session = self.store.session(&claims.sub, &sid).await?.ok_or(AuthError::Unauthenticated)?;
                if !self.policy.session.is_live(&session, now) {
                    return Err(AuthError::Unauthenticated);
                }
                Some(session)
            }
        };
        let username = match &session {
            Some(s) => s.username.clone(),
            None => self.username_of(&claims.sub).await?,
        };
        Ok(Authenticated {
            user_id: claims.sub,
            username,
            session,
            session_id: claims.sid,
            token_id: Some(claims.jti),
            expires_at: from_unix(claims.exp),
        })
    }

    /// The claims of an access token we signed that has not expired — and nothing more: not
    /// whether it was revoked, not whose it is. Revoking a token needs no more than this, and
    /// must not fail for want of a username (PostgreSQL) or of a fresh denylist copy.
    pub(super) fn genuine_access_claims(&self, raw: &str, now: OffsetDateTime) -> Result<Arc<AccessClaims>, AuthError> {
        let t = self.tokens_or_internal()?;
        let claims = match t.verified.get(raw) {
            Some(c) => c,
            None => {
                let keys = t.keys.current();
                let claims = jwt::verify(&keys, &t.policy.jwt, raw, now).map_err(|e| {
                    tracing::debug!(error = %e, "access token refused");
                    AuthError::Unauthenticated
                })?;
                let claims = Arc::new(claims);
                t.verified.insert(raw, &keys, Arc::clone(&claims));
                claims
            }
        };
        // Checked on every use, cached or not — and without the leeway: `exp` is a lifetime
        // this server decided (capped at its session's absolute end), and tolerating clock
        // skew must not lengthen it. The leeway applies to `iat` only (a token signed by an
        // instance whose clock runs ahead is not "from the future"); an instance whose clock
        // runs ahead ends a token a little early, never late.
        if now >= from_unix(claims.exp) {
            return Err(AuthError::Unauthenticated);
        }
        Ok(claims)
    }

    /// The username of `user`, from the per-process cache or the store. A vanished account
    /// makes its tokens useless.
    async fn username_of(&self, user: &UserId) -> Result<Username, AuthError> {
        let t = self.tokens_or_internal()?;
        if let Some(u) = t.usernames.read().unwrap_or_else(|p| p.into_inner()).get(user) {
            return Ok(u.clone());
        }
        let account = self.store.account_by_id(user).await?.ok_or(AuthError::Unauthenticated)?;
        let mut cache = t.usernames.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 100_000 {
            cache.clear();
        }
        cache.insert(*user, account.username.clone());
        Ok(account.username)
    }

    /// The CSRF token of a token-mode credential: an HMAC of its session id (or, without a
    /// session, its `jti`) under a server secret. Checking it needs no store read, which is
    /// the point of the token modes; it changes whenever the session does.
    pub(super) fn csrf_for(&self, binding: &[u8; 16]) -> Result<String, AuthError> {
        let t = self.tokens_or_internal()?;
        let tag = hmac::sign(&t.csrf, binding);
        Ok(b64(&tag.as_ref()[..32]))
    }

    /// Checks `presented` against the CSRF token of `auth`, in constant time.
    pub fn csrf_matches(&self, auth: &Authenticated, presented: &str) -> bool {
        if self.tokens.is_none() {
            return auth.session.as_ref().is_some_and(|s| s.csrf_matches(presented));
        }
        let binding = match (auth.session_id, auth.token_id) {
            (Some(sid), _) => *sid.as_bytes(),
            (None, Some(jti)) => *jti.as_bytes(),
            (None, None) => return false,
        };
        let (Ok(expected), Some(given)) = (self.csrf_for(&binding), b64_decode_exact::<32>(presented)) else {
            return false;
        };
        b64_decode_exact::<32>(&expected).is_some_and(|e| TokenHash::of(&e).ct_eq(&TokenHash::of(&given)))
    }
}

impl Auth {
    /// Checks `presented` against the CSRF token of session `sid` (the refresh cookie's).
    pub fn csrf_matches_session(&self, sid: &SessionId, presented: &str) -> bool {
        let (Ok(expected), Some(given)) = (self.csrf_for(sid.as_bytes()), b64_decode_exact::<32>(presented)) else {
            return false;
        };
        b64_decode_exact::<32>(&expected).is_some_and(|e| TokenHash::of(&e).ct_eq(&TokenHash::of(&given)))
    }
}
