use crate::account::Account;
use crate::audit::{AuditEvent, AuditKind};
use crate::error::AuthError;
use crate::id::UserId;
use crate::password::Password;
use crate::store::StoreError;
use crate::throttle::{Reservation, ThrottleKey};
use crate::username::Username;

use super::{Auth, ClientInfo};

impl Auth {
    /// `POST /v1/accounts`: open sign-up, when the policy allows it. Throttled per client IP:
    /// every sign-up that gets as far as hashing its password counts (created or not), so one
    /// client cannot mass-create accounts or burn hashing time. The count is reserved before
    /// the hash, atomically, like a login's.
    ///
    /// Fails open: when the throttle's store cannot be reached (Redis down on the distributed
    /// backend) the sign-up goes ahead unthrottled, with a warning — it decides nothing Redis
    /// knows, writes only to the account store, and hands out no credential.
    pub async fn sign_up(&self, username: &str, password: String, client: &ClientInfo) -> Result<Account, AuthError> {
        if !self.policy.signup {
            return Err(AuthError::SignUpClosed);
        }
        let (username, password) = self.new_account_checks(username, password).await?;
        let reserved = match client.ip.map(ThrottleKey::signup) {
            None => None,
            Some(key) => match self.store.reserve_attempt(&key, &self.policy.throttle.rule(&key), self.now()).await {
                Ok(Reservation::Reserved(r)) => Some((key, r)),
                Ok(Reservation::Locked(failures)) => {
                    let retry_after = self.policy.throttle.retry_after(&key, failures, self.now()).unwrap_or(1);
                    return Err(AuthError::Throttled { retry_after });
                }
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "sign-up throttle unreachable; signing up without it (fail-open)");
                    None
                }
                Err(e) => return Err(e.into()),
            },
        };
        let created = self.insert_new_account(username, &password).await;
        if let (Err(e), Some(r)) = (&created, &reserved) {
            // Nothing was hashed or nothing was decided: the attempt does not count. A taken
            // name found by the insert did cost a hash, and counts.
            if !matches!(e, AuthError::UsernameTaken) {
                self.release_attempts(std::slice::from_ref(r)).await;
            }
        }
        created
    }

    /// Creates an account regardless of the sign-up setting (the CLI's `user add`).
    pub async fn create_account(&self, username: &str, password: String) -> Result<Account, AuthError> {
        let (username, password) = self.new_account_checks(username, password).await?;
        self.insert_new_account(username, &password).await
    }

    /// What a new account must pass before its password is hashed.
    async fn new_account_checks(&self, username: &str, password: String) -> Result<(Username, Password), AuthError> {
        let username = Username::parse_new(username, self.policy.username_confusables)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let password = Password::new_choice(password).map_err(|e| AuthError::Invalid(e.to_string()))?;
        // Cheap check first so a taken name does not cost a hash; the insert below still
        // enforces uniqueness against a concurrent sign-up.
        if self.store.account_by_username(&username).await?.is_some() {
            return Err(AuthError::UsernameTaken);
        }
        Ok((username, password))
    }

    async fn insert_new_account(&self, username: Username, password: &Password) -> Result<Account, AuthError> {
        let account = Account {
            id: UserId::generate(),
            username,
            password_hash: self.hasher.hash(password).await?,
            created_at: self.now(),
            disabled: false,
        };
        match self.store.insert_account(&account).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AuthError::UsernameTaken),
            Err(e) => return Err(e.into()),
        }
        self.audit(AuditEvent::new(self.now(), AuditKind::AccountCreated).user(account.id)).await;
        Ok(account)
    }

    /// An admin key presented at the admin endpoints, judged under the per-IP throttle for
    /// wrong keys: the attempt is reserved before `matches` is looked at, given back when the
    /// key was right. [`AuthError::Unauthenticated`] for a wrong key.
    pub async fn admin_key_attempt(&self, client: &ClientInfo, matches: bool) -> Result<(), AuthError> {
        let Some(key) = client.ip.map(ThrottleKey::admin_key) else {
            return if matches { Ok(()) } else { Err(AuthError::Unauthenticated) };
        };
        let now = self.now();
        match self.store.reserve_attempt(&key, &self.policy.throttle.rule(&key), now).await? {
            Reservation::Locked(failures) => {
                let retry_after = self.policy.throttle.retry_after(&key, failures, now).unwrap_or(1);
                Err(AuthError::Throttled { retry_after })
            }
            Reservation::Reserved(r) if matches => {
                self.release_attempts(&[(key, r)]).await;
                Ok(())
            }
            Reservation::Reserved(_) => {
                self.audit(AuditEvent::new(now, AuditKind::AdminKeyRefused).ip(super::login::ip_string(client))).await;
                Err(AuthError::Unauthenticated)
            }
        }
    }

    pub async fn list_accounts(&self) -> Result<Vec<Account>, AuthError> {
        Ok(self.store.list_accounts().await?)
    }

    pub async fn account_by_username(&self, username: &str) -> Result<Account, AuthError> {
        let username = Username::parse(username).map_err(|_| AuthError::NotFound)?;
        self.store.account_by_username(&username).await?.ok_or(AuthError::NotFound)
    }

    /// Disables an account and revokes every session it has, so it stops working at once,
    /// not at the next expiry.
    ///
    /// The sessions are ended before the account is written, so a store failing in between
    /// leaves an enabled account without sessions, never a disabled one whose sessions still
    /// work (they never reread the account). A second sweep after the write ends the sessions
    /// of logins that checked the account before the write and stored their session after
    /// the first sweep.
    pub async fn disable_account(&self, user: &UserId) -> Result<(), AuthError> {
        if self.store.account_by_id(user).await?.is_none() {
            return Err(AuthError::NotFound);
        }
        self.end_all_sessions(user).await?;
        if !self.store.set_disabled(user, true).await? {
            return Err(AuthError::NotFound);
        }
        self.end_all_sessions(user).await?;
        self.audit(AuditEvent::new(self.now(), AuditKind::AccountDisabled).user(*user)).await;
        Ok(())
    }

    pub async fn enable_account(&self, user: &UserId) -> Result<(), AuthError> {
        if !self.store.set_disabled(user, false).await? {
            return Err(AuthError::NotFound);
        }
        self.audit(AuditEvent::new(self.now(), AuditKind::AccountEnabled).user(*user)).await;
        Ok(())
    }

    /// Revokes every session of an account on an operator's behalf.
    pub async fn admin_revoke_sessions(&self, user: &UserId) -> Result<usize, AuthError> {
        if self.store.account_by_id(user).await?.is_none() {
            return Err(AuthError::NotFound);
        }
        self.revoke_all_sessions(user, "admin").await
    }
}
