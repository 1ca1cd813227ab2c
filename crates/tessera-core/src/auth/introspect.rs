//! RFC 7662 introspection and RFC 7009 revocation of any token tessera issues.

use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditKind};
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
    /// `None` for anything not active now: unknown, malformed, expired or revoked.
    pub async fn introspect(&self, raw: &str) -> Result<Option<Introspection>, AuthError> {
        if self.tokens.is_some() && raw.contains('.') {
            return match self.authenticate_access(raw).await {
                Ok(a) => Ok(Some(Introspection {
                    token_type: "access_token",
                    sub: a.user_id,
                    username: a.username.to_string(),
                    sid: a.session_id,
                    jti: a.token_id,
                    iat: None,
                    exp: a.expires_at,
                })),
                Err(AuthError::Unauthenticated) => Ok(None),
                Err(e) => Err(e),
            };
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
        if let Some(t) = SessionToken::parse(raw) {
            return match self.authenticate(&t).await {
                Ok(a) => Ok(Some(Introspection {
                    token_type: "session_token",
                    sub: a.user_id,
                    username: a.username.to_string(),
                    sid: a.session_id,
                    jti: None,
                    iat: a.session.as_ref().map(|s| s.created_at),
                    exp: a.expires_at,
                })),
                Err(AuthError::Unauthenticated) => Ok(None),
                Err(e) => Err(e),
            };
        }
        Ok(None)
    }

    /// RFC 7009: revokes whatever token this is, if it is ours and valid; silently does
    /// nothing otherwise. A refresh token ends its family; a session token ends its session.
    /// An access token is denylisted by its `jti` under the denylist check (the session
    /// stays). Under the allowlist check the only state is the session, so its session ends
    /// (RFC 7009 §2.1 allows revoking related tokens). Under `none` nothing can stop it
    /// before `exp`; that is what the setting means.
    pub async fn revoke_token(&self, raw: &str) -> Result<(), AuthError> {
        if let Some(t) = &self.tokens
            && raw.contains('.')
        {
            if let Ok(a) = self.authenticate_access(raw).await {
                match (t.policy.revocation, a.session_id, a.token_id) {
                    (RevocationCheck::Allowlist, Some(sid), _) => {
                        self.end_session(&a.user_id, &sid).await?;
                    }
                    (_, _, Some(jti)) => self.deny(&[Denied::Token(jti)]).await?,
                    _ => {}
                }
                self.audit(AuditEvent::new(self.now(), AuditKind::TokenRevoked).user(a.user_id).detail("access_token"))
                    .await;
            }
            return Ok(());
        }
        if RefreshToken::parse(raw).is_some() {
            return self.revoke_refresh(raw).await;
        }
        if let Some(t) = SessionToken::parse(raw)
            && let Ok(a) = self.authenticate(&t).await
            && let Some(sid) = a.session_id
        {
            self.revoke_session(&a.user_id, &sid).await?;
        }
        Ok(())
    }
}
