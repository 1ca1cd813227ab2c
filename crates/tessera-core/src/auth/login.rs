use crate::account::Account;
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::whole_seconds;
use crate::error::AuthError;
use time::OffsetDateTime;

use crate::id::{SessionId, TokenId};
use crate::password::Password;
use crate::refresh::RefreshToken;
use crate::secret::{TokenHash, b64_decode_exact, random_bytes};
use crate::session::{CsrfToken, OpaqueToken, RefreshState, Session, SessionToken, TokenKind};
use crate::store::Denied;
use crate::throttle::{Reservation, Reserved, ThrottleKey};
use crate::username::Username;

use super::{Auth, ClientInfo, IssuedSession};

impl Auth {
    /// Password login. Unknown usernames and wrong passwords get one answer, in the same time
    /// (a dummy hash is verified for unknown names), and both count towards the throttle.
    ///
    /// The attempt is counted as a failure (per account and per client IP) before the password
    /// is hashed, atomically with the check that the throttle allows it, so N concurrent
    /// guesses cost exactly what N sequential ones do. A success clears the account's counter
    /// and gives the IP's reservation back; an error that judged nothing gives both back.
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
        let reserved = self.reserve_attempts(&keys, username.as_ref(), client).await?;
        let outcome = self.login_reserved(username.as_ref(), password, client).await;
        match &outcome {
            Ok(_) => {
                for (key, r) in &reserved {
                    match key {
                        ThrottleKey::Account(_) => self.store.clear_failures(key).await?,
                        _ => self.store.release_attempt(key, r).await?,
                    }
                }
            }
            // The failure stands, counted in advance.
            Err(AuthError::InvalidCredentials) => {}
            Err(_) => self.release_attempts(&reserved).await,
        }
        outcome
    }

    async fn login_reserved(
        &self,
        username: Option<&Username>,
        password: Password,
        client: &ClientInfo,
    ) -> Result<IssuedSession, AuthError> {
        let account = match username {
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
                self.audit_failure(username, other.as_ref(), client, reason).await;
                return Err(AuthError::InvalidCredentials);
            }
        };

        let issued = self.start_session(account.clone(), client).await?;
        if !self.still_as_verified(&account, &issued).await? {
            self.audit_failure(username, Some(&account), client, "account changed during login").await;
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

    /// Reserves one attempt under every key, or none: when one key is locked, the ones
    /// already reserved are given back and the answer is [`AuthError::Throttled`] (audited).
    pub(super) async fn reserve_attempts(
        &self,
        keys: &[ThrottleKey],
        username: Option<&Username>,
        client: &ClientInfo,
    ) -> Result<Vec<(ThrottleKey, Reserved)>, AuthError> {
        let now = self.now();
        let mut reserved = Vec::with_capacity(keys.len());
        for key in keys {
            let attempt = match self.store.reserve_attempt(key, &self.policy.throttle.rule(key), now).await {
                Ok(a) => a,
                Err(e) => {
                    self.release_attempts(&reserved).await;
                    return Err(e.into());
                }
            };
            match attempt {
                Reservation::Reserved(r) => reserved.push((key.clone(), r)),
                Reservation::Locked(failures) => {
                    self.release_attempts(&reserved).await;
                    // The counter moved between the store's decision and this read: the
                    // shortest wait there is.
                    let retry_after = self.policy.throttle.retry_after(key, failures, now).unwrap_or(1);
                    let mut event = AuditEvent::new(now, AuditKind::LoginThrottled).ip(ip_string(client));
                    if let Some(u) = username {
                        event = event.username(u.as_str());
                    }
                    self.audit(event).await;
                    return Err(AuthError::Throttled { retry_after });
                }
            }
        }
        Ok(reserved)
    }

    /// Gives reservations back, best effort: a store that fails here leaves them counted,
    /// which errs on the attacker's side of the ledger.
    pub(super) async fn release_attempts(&self, reserved: &[(ThrottleKey, Reserved)]) {
        for (key, r) in reserved {
            if let Err(e) = self.store.release_attempt(key, r).await {
                tracing::warn!(error = %e, "could not give back a throttle reservation");
            }
        }
    }

    async fn audit_failure(
        &self,
        username: Option<&Username>,
        account: Option<&Account>,
        client: &ClientInfo,
        reason: &str,
    ) {
        let mut event = AuditEvent::new(self.now(), AuditKind::LoginFailed).ip(ip_string(client)).detail(reason);
        if let Some(u) = username {
            event = event.username(u.as_str());
        }
        if let Some(a) = account {
            event = event.user(a.id);
        }
        self.audit(event).await;
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
        let precise = self.now_precise();
        let now = whole_seconds(precise);
        let Some(tokens) = &self.tokens else {
            return self.start_opaque_session(account, client, precise).await;
        };
        let refresh_policy = tokens.policy.refresh;
        let jti = TokenId::generate();
        let Some(refresh_policy) = refresh_policy else {
            let access = self.sign_access(account.id, None, jti, now, None)?;
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
            created_at: precise,
            last_seen_at: now,
            expires_at: now + self.policy.session.absolute_timeout.min(refresh_policy.ttl),
            user_agent: client.user_agent.as_deref().map(|ua| truncate_user_agent(ua).into()),
            ip: ip_string(client).map(Into::into),
            refresh: Some(RefreshState { generation: 0, hash: refresh.hash(), rotated_at: precise }),
        };
        self.insert_capped(&account, &session).await?;
        let access = self.sign_access(account.id, Some(id), jti, now, Some(session.expires_at))?;
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
        precise: OffsetDateTime,
    ) -> Result<IssuedSession, AuthError> {
        let now = whole_seconds(precise);
        let id = SessionId::generate();
        let token = SessionToken(OpaqueToken::generate(TokenKind::Session, account.id, id));
        let csrf = CsrfToken::generate();
        let session = Session {
            id,
            user_id: account.id,
            username: account.username.clone(),
            secret_hash: token.0.secret_hash(),
            csrf_hash: csrf.hash(),
            created_at: precise,
            last_seen_at: now,
            expires_at: now + self.policy.session.absolute_timeout,
            user_agent: client.user_agent.as_deref().map(|ua| truncate_user_agent(ua).into()),
            ip: ip_string(client).map(Into::into),
            refresh: None,
        };
        self.insert_capped(&account, &session).await?;
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

    /// Stores a new session and, in the same atomic step of the store, ends the oldest
    /// sessions beyond `session.max_per_user`; their access tokens are denied after (they
    /// are already gone from the store, so a lost answer here leaves at most access tokens
    /// that expire on their own, never a session).
    async fn insert_capped(&self, account: &Account, session: &Session) -> Result<(), AuthError> {
        let evicted = self.store.insert_session_capped(session, self.policy.session.max_per_user).await?;
        if evicted.is_empty() {
            return Ok(());
        }
        let denied: Vec<Denied> = evicted.iter().map(|id| Denied::Session(*id)).collect();
        self.deny(&denied).await?;
        for old in evicted {
            self.audit(
                AuditEvent::new(self.now(), AuditKind::SessionRevoked)
                    .user(account.id)
                    .session(old)
                    .detail("session.max_per_user"),
            )
            .await;
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
