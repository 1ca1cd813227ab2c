//! Accounts: who can log in.

use serde::Serialize;
use time::OffsetDateTime;

use crate::id::UserId;
use crate::password::PasswordHash;
use crate::username::Username;

#[derive(Debug, Clone)]
pub struct Account {
    pub id: UserId,
    pub username: Username,
    pub password_hash: PasswordHash,
    pub created_at: OffsetDateTime,
    /// A disabled account cannot log in, and its sessions were revoked when it was disabled.
    pub disabled: bool,
}

/// The public face of an account: what `POST /v1/accounts` and `GET /v1/me` show.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserView {
    pub id: UserId,
    pub username: Username,
}

impl From<&Account> for UserView {
    fn from(a: &Account) -> Self {
        Self { id: a.id, username: a.username.clone() }
    }
}
