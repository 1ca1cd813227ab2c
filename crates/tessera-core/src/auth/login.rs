use crate::account::Account;
use crate::audit::{AuditEvent, AuditKind};
use crate::error::AuthError;
use time::OffsetDateTime;

use crate::id::{SessionId, TokenId};
use crate::password::Password;
use crate::refresh::RefreshToken;
use crate::secret::{TokenHash, b64_decode_exact, random_bytes};
use crate::session::{CsrfToken, OpaqueToken, RefreshState, Session, SessionToken, TokenKind};
use crate::store::Denied;
use crate::throttle::ThrottleKey;
use crate::username::Username;

use super::{Auth, ClientInfo, IssuedSession};

impl Auth {
    /// Password login. Unknown usernames and wrong passwords get one answer, in the same time
    /// (a dummy hash is verified for unknown names), and both count towards the throttle.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        client: &ClientInfo,
    ) -> Result<IssuedSession, AuthError> {
        let password = Password::presented(password);
        // A username that cannot exist is simply an unknown one: same answer, same cost.
        let username = Username::parse(username).ok();
        let keys = throttle_keys(username.as_ref(), client);
        self.check_throttle(&keys, username.as_ref(), client).await?;

        let account = match &username {
            Some(u) => self.store.account_by_username(u).await?,
            None => None,
        };
        let verified = match &account {
            Some(a) => self.hasher.verify(&password, &a.password_hash).await?,
            None => self.hasher.verify_dummy(&password).await?,
        };
        let account = match account {
            Some(a) if verified && !a.disabled => a,
            other => {
                let reason = match (&other, verified) {
                    (None, _) => "unknown user",
                    (Some(_), false) => "wrong password",
                    (Some(_), true) => "account disabled",
                };
                self.record_failure(&keys, username.as_ref(), other.as_ref(), client, reason).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };

        if let Some(u) = &username {
            self.store.clear_failures(&ThrottleKey::account(u)).await?;
        }
        let issued = self.start_session(account.clone(), client).await?;
        if !self.still_as_verified(&account, &issued).await? {
            self.record_failure(&keys, username.as_ref(), Some(&account), client, "account changed during login")
                .await?;
            return Err(AuthError::InvalidCredentials);
        }
        let mut event =
            AuditEvent::new(self.now(), AuditKind::LoginSucceeded).user(issued.account_id).ip(ip_string(client));
        if let Some(s) = &issued.session {
            event = event.session(s.id);
        }
        self.audit(event).await;
        Ok(issued)
    }

    async fn check_throttle(
        &self,
        keys: &[ThrottleKey],
        username: Option<&Username>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.now();
        let mut wait = None;
        for key in keys {
            let failures = self.store.failures(key).await?;
            wait = wait.max(self.policy.throttle.retry_after(key, failures, now));
        }
        match wait {
            None => Ok(()),
            Some(retry_after) => {
                let mut event = AuditEvent::new(now, AuditKind::LoginThrottled).ip(ip_string(client));
                if let Some(u) = username {
                    event = event.username(u.as_str());
                }
                self.audit(event).await;
                Err(AuthError::Throttled { retry_after })
            }
        }
    }

    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        username: Option<&Username>,
        account: Option<&Account>,
        client: &ClientInfo,
        reason: &str,
    ) -> Result<(), AuthError> {
        let now = self.now();
        for key in keys {
            self.store.record_failure(key, now, self.policy.throttle.forget_after).await?;
        }
        let mut event = AuditEvent::new(now, AuditKind::LoginFailed).ip(ip_string(client)).detail(reason);
        if let Some(u) = username {
            event = event.username(u.as_str());
        }
        if let Some(a) = account {
            event = event.user(a.id);
        }
        self.audit(event).await;
        Ok(())
    }

    /// Hands out what the mode gives a logged-in client: a session token (session mode); an
    /// access token bound to a new session and the first refresh token of its family
    /// (hybrid, jwt with refresh); or a lone access token (jwt without refresh). A new session
    /// id every time: no fixation. `session.max_per_user` revokes the oldest.
    pub(super) async fn start_session(
        &self,
        account: Account,
        client: &ClientInfo,
    ) -> Result<IssuedSession, AuthError> {
        let now = self.now();
        let Some(tokens) = &self.tokens else {
            return self.start_opaque_session(account, client, now).await;
        };
        let refresh_policy = tokens.policy.refresh;
        let jti = TokenId::generate();
        let Some(refresh_policy) = refresh_policy else {
            let access = self.sign_access(account.id, None, jti, now)?;
            return Ok(IssuedSession {
                account_id: account.id,
                username: account.username,
                session: None,
                session_token: None,
                csrf: self.csrf_for(jti.as_bytes())?,
                access: Some(access),
                refresh: None,
            });
        };
        let id = SessionId::generate();
        let refresh = RefreshToken::first(account.id, id);
        let csrf = self.csrf_for(id.as_bytes())?;
        let session = Session {
            id,
            user_id: account.id,
            username: account.username.clone(),
            // Never used to authenticate: the refresh family is the credential.
            secret_hash: TokenHash::of(&random_bytes::<32>()),
            csrf_hash: csrf_hash(&csrf),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.session.absolute_timeout.min(refresh_policy.ttl),
            user_agent: client.user_agent.as_deref().map(truncate_user_agent),
            ip: ip_string(client),
            refresh: Some(RefreshState { generation: 0, hash: refresh.hash(), rotated_at: now }),
        };
        self.store.insert_session(&session).await?;
        self.enforce_session_limit(&account, &session).await?;
        let access = self.sign_access(account.id, Some(id), jti, now)?;
        Ok(IssuedSession {
            account_id: account.id,
            username: account.username,
            session: Some(session),
            session_token: None,
            csrf,
            access: Some(access),
            refresh: Some(refresh),
        })
    }

    /// Whether `verified` — the account as it stood when its password was checked — still
    /// stands now that `issued` exists; if not, `issued` is withdrawn before anyone sees it.
    ///
    /// A password change or a disable writes the account first, then ends every session of
    /// it. A login that checked the old hash can insert its session after that sweep and would
    /// keep it, refresh family and all, for someone who only knew the old password. Reading
    /// the account again after the insert closes that gap: if the read still shows what was
    /// verified, the account write comes later, so its sweep will find the new session; if
    /// not, the sweep may have missed it, and it is ended here.
    pub(super) async fn still_as_verified(
        &self,
        verified: &Account,
        issued: &IssuedSession,
    ) -> Result<bool, AuthError> {
        let current = match self.store.account_by_id(&verified.id).await {
            Ok(a) => a,
            Err(e) => {
                // Undecided: the credentials are not handed out, and neither should they last.
                if let Err(w) = self.withdraw(issued).await {
                    tracing::warn!(error = %w, "could not withdraw the credentials of a failed login");
                }
                return Err(e.into());
            }
        };
        let unchanged = current.is_some_and(|a| !a.disabled && a.password_hash == verified.password_hash);
        if !unchanged {
            self.withdraw(issued).await?;
        }
        Ok(unchanged)
    }

    /// Ends what `issued` created in the store and denies its tokens where the denylist is the
    /// revocation check: the session (and its `sid`), or a lone access token's `jti`.
    async fn withdraw(&self, issued: &IssuedSession) -> Result<(), AuthError> {
        match (&issued.session, &issued.access) {
            (Some(s), _) => {
                self.store.delete_session(&s.user_id, &s.id).await?;
                self.deny(&[Denied::Session(s.id)]).await.map(|_| ())
            }
            (None, Some(a)) => self.deny(&[Denied::Token(a.jti)]).await.map(|_| ()),
            (None, None) => Ok(()),
        }
    }

    async fn start_opaque_session(
        &self,
        account: Account,
        client: &ClientInfo,
        now: OffsetDateTime,
    ) -> Result<IssuedSession, AuthError> {
        let id = SessionId::generate();
        let token = SessionToken(OpaqueToken::generate(TokenKind::Session, account.id, id));
        let csrf = CsrfToken::generate();
        let session = Session {
            id,
            user_id: account.id,
            username: account.username.clone(),
            secret_hash: token.0.secret_hash(),
            csrf_hash: csrf.hash(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.session.absolute_timeout,
            user_agent: client.user_agent.as_deref().map(truncate_user_agent),
            ip: ip_string(client),
            refresh: None,
        };
        self.store.insert_session(&session).await?;
        self.enforce_session_limit(&account, &session).await?;
        Ok(IssuedSession {
            account_id: account.id,
            username: account.username,
            session: Some(session),
            session_token: Some(token),
            csrf: csrf.encode(),
            access: None,
            refresh: None,
        })
    }

    async fn enforce_session_limit(&self, account: &Account, newest: &Session) -> Result<(), AuthError> {
        let max = self.policy.session.max_per_user as usize;
        if max == 0 {
            return Ok(());
        }
        let sessions = self.store.sessions_of(&account.id).await?;
        let excess = sessions.len().saturating_sub(max);
        for old in sessions.iter().filter(|s| s.id != newest.id).take(excess) {
            if self.end_session(&account.id, &old.id).await? {
                self.audit(
                    AuditEvent::new(self.now(), AuditKind::SessionRevoked)
                        .user(account.id)
                        .session(old.id)
                        .detail("session.max_per_user"),
                )
                .await;
            }
        }
        Ok(())
    }
}

fn throttle_keys(username: Option<&Username>, client: &ClientInfo) -> Vec<ThrottleKey> {
    let mut keys = Vec::with_capacity(2);
    if let Some(u) = username {
        keys.push(ThrottleKey::account(u));
    }
    if let Some(ip) = client.ip {
        keys.push(ThrottleKey::ip(ip));
    }
    keys
}

fn csrf_hash(csrf: &str) -> TokenHash {
    TokenHash::of(&b64_decode_exact::<32>(csrf).unwrap_or_default())
}

pub(super) fn ip_string(client: &ClientInfo) -> Option<String> {
    client.ip.map(|ip| ip.to_canonical().to_string())
}

/// User agents are attacker-chosen; keep enough to recognise a device and no more.
fn truncate_user_agent(ua: &str) -> String {
    const MAX: usize = 256;
    if ua.len() <= MAX {
        return ua.to_owned();
    }
    let mut end = MAX;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    ua[..end].to_owned()
}
