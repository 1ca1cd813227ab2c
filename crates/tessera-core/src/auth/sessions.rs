use crate::audit::{AuditEvent, AuditKind};
use crate::error::AuthError;
use crate::id::{SessionId, UserId};
use crate::password::Password;
use crate::session::{Session, SessionToken};
use crate::throttle::ThrottleKey;

use super::login::ip_string;
use super::{Auth, Authenticated, ClientInfo, IssuedSession};

impl Auth {
    /// Decides whether a session token is valid now: the session exists, the secret matches
    /// (constant time), and neither the idle nor the absolute timeout has passed — enforced
    /// here, not left to cookie expiry. Refreshes `last_seen_at` at a bounded rate.
    pub async fn authenticate(&self, token: &SessionToken) -> Result<Authenticated, AuthError> {
        let (user, id) = (token.0.user_id, token.0.session_id);
        let session = self.store.session(&user, &id).await?.ok_or(AuthError::Unauthenticated)?;
        if !session.secret_hash.ct_eq(&token.0.secret_hash()) {
            return Err(AuthError::Unauthenticated);
        }
        let now = self.now();
        let policy = &self.policy.session;
        if !policy.is_live(&session, now) {
            // Expired sessions are removed on sight; a sweeper is not needed for correctness.
            self.store.delete_session(&user, &id).await?;
            return Err(AuthError::Unauthenticated);
        }
        let session = if policy.needs_touch(&session, now) {
            self.store.touch_session(&user, &id, now).await?;
            Session { last_seen_at: now, ..session }
        } else {
            session
        };
        let expires_at = policy.idle_expires_at(&session);
        Ok(Authenticated { session, expires_at })
    }

    pub async fn logout(&self, auth: &Authenticated) -> Result<(), AuthError> {
        let s = &auth.session;
        self.store.delete_session(&s.user_id, &s.id).await?;
        self.audit(AuditEvent::new(self.now(), AuditKind::Logout).user(s.user_id).session(s.id)).await;
        Ok(())
    }

    /// Revokes every session of `user` (logout everywhere; the admin endpoint).
    pub async fn revoke_all_sessions(&self, user: &UserId, why: &str) -> Result<usize, AuthError> {
        let revoked = self.store.delete_sessions_of(user, None).await?;
        self.audit(AuditEvent::new(self.now(), AuditKind::AllSessionsRevoked).user(*user).detail(why)).await;
        Ok(revoked.len())
    }

    /// The live sessions of `user`, oldest first. Expired ones are left out (and removed).
    pub async fn sessions(&self, user: &UserId) -> Result<Vec<Session>, AuthError> {
        let now = self.now();
        let mut live = Vec::new();
        for s in self.store.sessions_of(user).await? {
            if self.policy.session.is_live(&s, now) {
                live.push(s);
            } else {
                self.store.delete_session(user, &s.id).await?;
            }
        }
        Ok(live)
    }

    /// Revokes one session of `user`. [`AuthError::NotFound`] when `user` has no such session,
    /// so one user cannot probe for another's session ids.
    pub async fn revoke_session(&self, user: &UserId, id: &SessionId) -> Result<(), AuthError> {
        if !self.store.delete_session(user, id).await? {
            return Err(AuthError::NotFound);
        }
        self.audit(AuditEvent::new(self.now(), AuditKind::SessionRevoked).user(*user).session(*id)).await;
        Ok(())
    }

    /// Changes the password of the authenticated user. Every session of the user ends,
    /// including the current one, which is replaced by a new session with a new id: a thief
    /// holding any old token is locked out, and the caller stays logged in.
    pub async fn change_password(
        &self,
        auth: &Authenticated,
        current: String,
        new: String,
        client: &ClientInfo,
    ) -> Result<IssuedSession, AuthError> {
        let new = Password::new_choice(new).map_err(|e| AuthError::Invalid(format!("new_password: {e}")))?;
        let user = auth.session.user_id;
        let account = self.store.account_by_id(&user).await?.ok_or(AuthError::Unauthenticated)?;
        // A stolen session must not become an oracle for guessing the password.
        let key = ThrottleKey::account(&account.username);
        let now = self.now();
        if let Some(retry_after) = self.policy.throttle.retry_after(&key, self.store.failures(&key).await?, now) {
            return Err(AuthError::Throttled { retry_after });
        }
        if !self.hasher.verify(&Password::presented(current), &account.password_hash).await? {
            self.store.record_failure(&key, now, self.policy.throttle.forget_after).await?;
            return Err(AuthError::InvalidCredentials);
        }
        let hash = self.hasher.hash(&new).await?;
        self.store.set_password_hash(&user, &hash).await?;
        self.store.delete_sessions_of(&user, None).await?;
        let account = crate::account::Account { password_hash: hash, ..account };
        let issued = self.start_session(account, client).await?;
        self.audit(
            AuditEvent::new(self.now(), AuditKind::PasswordChanged)
                .user(user)
                .session(issued.session.id)
                .ip(ip_string(client)),
        )
        .await;
        Ok(issued)
    }
}
