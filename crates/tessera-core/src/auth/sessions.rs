use time::Duration;

use crate::audit::{AuditEvent, AuditKind};
use crate::error::AuthError;
use crate::id::{SessionId, UserId};
use crate::password::Password;
use crate::revocation::RevocationCheck;
use crate::session::{Session, SessionToken};
use crate::store::{Denied, DenyEntry};
use crate::throttle::ThrottleKey;

use super::login::ip_string;
use super::{Auth, Authenticated, ClientInfo, IssuedSession};

impl Auth {
    /// Decides whether a session token is valid now: the session exists, the secret matches
    /// (constant time), and neither the idle nor the absolute timeout has passed — enforced
    /// here, not left to cookie expiry. Refreshes `last_seen_at` at a bounded rate.
    pub async fn authenticate(&self, token: &SessionToken) -> Result<Authenticated, AuthError> {
        self.check_session(token, true).await
    }

    /// [`Self::authenticate`], refreshing `last_seen_at` only when `touch`: introspection
    /// looks at a session without using it.
    pub(super) async fn check_session(&self, token: &SessionToken, touch: bool) -> Result<Authenticated, AuthError> {
        let (user, id) = (token.0.user_id, token.0.session_id);
        let session = self.store.session(&user, &id).await?.ok_or(AuthError::Unauthenticated)?;
        // A session of a token mode has no session-token secret worth matching; the kind
        // check keeps it from being used here at all.
        if session.refresh.is_some() || !session.secret_hash.ct_eq(&token.0.secret_hash()) {
            return Err(AuthError::Unauthenticated);
        }
        let now = self.now();
        let policy = &self.policy.session;
        let idle_end = policy.idle_expires_at(&session);
        if now >= idle_end {
            // Expired sessions are removed on sight; a sweeper is not needed for correctness.
            self.store.delete_session(&user, &id).await?;
            return Err(AuthError::Unauthenticated);
        }
        let (session, idle_end) = if touch && policy.needs_touch(&session, now) {
            self.store.touch_session(&user, &id, now).await?;
            let touched = Session { last_seen_at: now, ..session };
            let idle_end = policy.idle_expires_at(&touched);
            (touched, idle_end)
        } else {
            (session, idle_end)
        };
        Ok(Authenticated {
            user_id: session.user_id,
            username: session.username.clone(),
            expires_at: idle_end,
            session_id: Some(session.id),
            token_id: None,
            session: Some(session),
        })
    }

    /// Ends one session and, in denylist mode, every access token bound to it. Returns whether
    /// the session existed.
    ///
    /// In denylist mode the `sid` is denied before the session is deleted: a delete whose
    /// answer is lost (a timeout, a script the client library retried) would otherwise report
    /// nothing deleted on the retry, and the session's access tokens would stay valid.
    pub(super) async fn end_session(&self, user: &UserId, id: &SessionId) -> Result<bool, AuthError> {
        let existed = if self.uses_denylist() {
            let exists = self.store.session_fresh(user, id).await?.is_some();
            if exists {
                self.deny(&[Denied::Session(*id)]).await?;
            }
            exists
        } else {
            false
        };
        let ended = self.store.delete_session(user, id).await?;
        Ok(ended || existed)
    }

    /// Ends every session of `user` and, in denylist mode, every access token of theirs —
    /// denied before the sessions are deleted, for the reason [`Self::end_session`] gives.
    pub(super) async fn end_all_sessions(&self, user: &UserId) -> Result<usize, AuthError> {
        let listed: Vec<SessionId> = if self.uses_denylist() {
            self.store.sessions_of(user).await?.iter().map(|s| s.id).collect()
        } else {
            Vec::new()
        };
        let mut denied: Vec<Denied> = listed.iter().map(|id| Denied::Session(*id)).collect();
        // Tokens of the jwt mode without refresh have no session to deny: cut them off by
        // issue time. One second back, so the credentials this very call may issue next (a
        // password change) are not caught; a token minted in that second lives to its `exp`.
        if self.tokens.as_ref().is_some_and(|t| t.policy.refresh.is_none()) {
            denied.push(Denied::IssuedBefore(*user, self.now() - Duration::seconds(1)));
        }
        self.deny(&denied).await?;
        let ended = self.store.delete_sessions_of(user, None).await?;
        // Sessions created between the listing and the delete.
        let late: Vec<Denied> = ended.iter().filter(|id| !listed.contains(id)).map(|id| Denied::Session(*id)).collect();
        self.deny(&late).await?;
        Ok(ended.len().max(listed.len()))
    }

    fn uses_denylist(&self) -> bool {
        self.tokens.as_ref().is_some_and(|t| t.policy.revocation == RevocationCheck::Denylist)
    }

    /// Records denylist entries that last as long as the tokens they cover, in the store
    /// (for other instances and restarts) and in this process's copy at once. Returns whether
    /// any of them was new to this process's copy (a repeat is written all the same — the
    /// store keeps one entry per target — but callers need not audit it again).
    pub(super) async fn deny(&self, denied: &[Denied]) -> Result<bool, AuthError> {
        let Some(t) = &self.tokens else { return Ok(false) };
        if t.policy.revocation != RevocationCheck::Denylist || denied.is_empty() {
            return Ok(false);
        }
        let now = self.now();
        let new = denied.iter().any(|d| !t.denylist.covers(d, now));
        let expires_at = now + t.policy.jwt.access_ttl + t.policy.jwt.leeway;
        let entries: Vec<DenyEntry> = denied.iter().map(|d| DenyEntry { denied: *d, expires_at }).collect();
        self.store.deny(&entries).await?;
        t.denylist.apply(&entries);
        t.note_denied_here();
        Ok(new)
    }

    /// Logout: ends the caller's session, or (jwt mode without sessions) denies the token.
    pub async fn logout(&self, auth: &Authenticated) -> Result<(), AuthError> {
        match auth.session_id {
            Some(sid) => {
                let ended = self.end_session(&auth.user_id, &sid).await?;
                // A self-contained access token outlives the record of its session when the
                // store has lost it (Redis restarted without persistence, a flush, an eviction):
                // deny the `sid` anyway, or the token stays valid to its `exp` after a 204.
                if !ended && auth.token_id.is_some() {
                    self.deny(&[Denied::Session(sid)]).await?;
                }
            }
            None => {
                if let Some(jti) = auth.token_id {
                    self.deny(&[Denied::Token(jti)]).await?;
                }
            }
        }
        let mut event = AuditEvent::new(self.now(), AuditKind::Logout).user(auth.user_id);
        if let Some(sid) = auth.session_id {
            event = event.session(sid);
        }
        self.audit(event).await;
        Ok(())
    }

    /// Revokes every session of `user` (logout everywhere; the admin endpoint).
    pub async fn revoke_all_sessions(&self, user: &UserId, why: &str) -> Result<usize, AuthError> {
        let revoked = self.end_all_sessions(user).await?;
        self.audit(AuditEvent::new(self.now(), AuditKind::AllSessionsRevoked).user(*user).detail(why)).await;
        Ok(revoked)
    }

    /// The live sessions of `user`, oldest first. Expired ones are left out (and removed).
    pub async fn sessions(&self, user: &UserId) -> Result<Vec<Session>, AuthError> {
        let now = self.now();
        let mut live = Vec::new();
        for s in self.store.sessions_of(user).await? {
            if self.policy.session.is_live(&s, now) {
                live.push(s);
            } else {
                self.end_session(user, &s.id).await?;
            }
        }
        Ok(live)
    }

    /// Revokes one session of `user`. [`AuthError::NotFound`] when `user` has no such session,
    /// so one user cannot probe for another's session ids.
    pub async fn revoke_session(&self, user: &UserId, id: &SessionId) -> Result<(), AuthError> {
        if !self.end_session(user, id).await? {
            return Err(AuthError::NotFound);
        }
        self.audit(AuditEvent::new(self.now(), AuditKind::SessionRevoked).user(*user).session(*id)).await;
        Ok(())
    }

    /// Changes the password of the authenticated user. Every session of the user ends,
    /// including the current one, which is replaced by new credentials with a new session id:
    /// a thief holding any old token is locked out, and the caller stays logged in.
    ///
    /// The order is what makes a failure half-way safe: the sessions are ended (fenced)
    /// *before* the new hash is written, so a store that fails in between leaves the old
    /// password and no session — never the new password beside a thief's live session. The
    /// write is a compare-and-set on the hash that was verified: of two concurrent changes
    /// exactly one takes effect, and the other fails with [`AuthError::Conflict`]. A second
    /// sweep after the write ends the sessions of logins that verified the old password while
    /// this ran (a login that rereads the account after the write withdraws itself).
    pub async fn change_password(
        &self,
        auth: &Authenticated,
        current: String,
        new: String,
        client: &ClientInfo,
    ) -> Result<IssuedSession, AuthError> {
        let new = Password::new_choice(new).map_err(|e| AuthError::Invalid(format!("new_password: {e}")))?;
        let user = auth.user_id;
        let account = self.store.account_by_id(&user).await?.ok_or(AuthError::Unauthenticated)?;
        // A stolen session must not become an oracle for guessing the password: the attempt is
        // reserved against the account's counter before the hash, as a login's is.
        let key = ThrottleKey::account(&account.username);
        let reserved = self.reserve_attempts(std::slice::from_ref(&key), Some(&account.username), client).await?;
        match self.hasher.verify(&Password::presented(current), &account.password_hash).await {
            Ok(true) => self.release_attempts(&reserved).await,
            Ok(false) => return Err(AuthError::InvalidCredentials),
            Err(e) => {
                self.release_attempts(&reserved).await;
                return Err(e.into());
            }
        }
        let hash = self.hasher.hash(&new).await?;
        // Another change that won while we hashed: say so before ending anyone's sessions,
        // so the loser does not log the winner out. The compare-and-set below decides anyway.
        let current = self.store.account_by_id(&user).await?.ok_or(AuthError::Unauthenticated)?;
        if current.disabled {
            return Err(AuthError::Unauthenticated);
        }
        if current.password_hash != account.password_hash {
            return Err(password_changed_meanwhile());
        }
        self.end_all_sessions(&user).await?;
        if !self.store.set_password_hash(&user, &account.password_hash, &hash).await? {
            return Err(password_changed_meanwhile());
        }
        self.end_all_sessions(&user).await?;
        let account = crate::account::Account { password_hash: hash, ..account };
        let issued = self.start_session(account.clone(), client).await?;
        // Disabled, or its password changed again, while this ran: the caller is logged out.
        if !self.still_as_verified(&account, &issued).await? {
            return Err(AuthError::Unauthenticated);
        }
        let mut event = AuditEvent::new(self.now(), AuditKind::PasswordChanged).user(user).ip(ip_string(client));
        if let Some(s) = &issued.session {
            event = event.session(s.id);
        }
        self.audit(event).await;
        Ok(issued)
    }
}

fn password_changed_meanwhile() -> AuthError {
    AuthError::Conflict("the password was changed by another request meanwhile; log in again with the new one".into())
}
