use crate::account::Account;
use crate::audit::{AuditEvent, AuditKind};
use crate::error::AuthError;
use crate::id::UserId;
use crate::password::Password;
use crate::store::StoreError;
use crate::username::Username;

use super::Auth;

impl Auth {
    /// `POST /v1/accounts`: open sign-up, when the policy allows it.
    pub async fn sign_up(&self, username: &str, password: String) -> Result<Account, AuthError> {
        if !self.policy.signup {
            return Err(AuthError::SignUpClosed);
        }
        self.create_account(username, password).await
    }

    /// Creates an account regardless of the sign-up setting (the CLI's `user add`).
    pub async fn create_account(&self, username: &str, password: String) -> Result<Account, AuthError> {
        let username = Username::parse_new(username, self.policy.username_confusables)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let password = Password::new_choice(password).map_err(|e| AuthError::Invalid(e.to_string()))?;
        // Cheap check first so a taken name does not cost a hash; the insert below still
        // enforces uniqueness against a concurrent sign-up.
        if self.store.account_by_username(&username).await?.is_some() {
            return Err(AuthError::UsernameTaken);
        }
        let account = Account {
            id: UserId::generate(),
            username,
            password_hash: self.hasher.hash(&password).await?,
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

    pub async fn list_accounts(&self) -> Result<Vec<Account>, AuthError> {
        Ok(self.store.list_accounts().await?)
    }

    pub async fn account_by_username(&self, username: &str) -> Result<Account, AuthError> {
        let username = Username::parse(username).map_err(|_| AuthError::NotFound)?;
        self.store.account_by_username(&username).await?.ok_or(AuthError::NotFound)
    }

    /// Disables an account and revokes every session it has, so it stops working at once,
    /// not at the next expiry.
    pub async fn disable_account(&self, user: &UserId) -> Result<(), AuthError> {
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
