//! The narrow traits every storage backend implements. The embedded SQLite store implements
//! all of them; the distributed backend splits them between PostgreSQL (accounts, audit) and
//! Redis (sessions, throttle counters). Methods are per-user wherever they can be, so a
//! backend can keep one user's keys together (one Redis Cluster hash slot).

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::account::Account;
use crate::audit::AuditEvent;
use crate::id::{SessionId, UserId};
use crate::password::PasswordHash;
use crate::session::Session;
use crate::throttle::{Failures, ThrottleKey};
use crate::username::Username;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (a username already taken).
    #[error("conflict")]
    Conflict,
    /// The store could not be reached or did not answer in time. Callers fail closed (503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the message is for logs, never for clients.
    #[error("store error: {0}")]
    Other(String),
}

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Fails with [`StoreError::Conflict`] when the username is taken.
    async fn insert_account(&self, account: &Account) -> Result<(), StoreError>;
    async fn account_by_username(&self, username: &Username) -> Result<Option<Account>, StoreError>;
    async fn account_by_id(&self, id: &UserId) -> Result<Option<Account>, StoreError>;
    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError>;
    async fn set_password_hash(&self, id: &UserId, hash: &PasswordHash) -> Result<(), StoreError>;
    /// Returns `false` when there is no such account.
    async fn set_disabled(&self, id: &UserId, disabled: bool) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    /// The session `id` of `user`, if it exists (expired or not: expiry is the domain's call).
    async fn session(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError>;
    async fn touch_session(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) -> Result<(), StoreError>;
    /// Every stored session of `user`, oldest first.
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError>;
    /// Returns `false` when `user` has no session `id`.
    async fn delete_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError>;
    /// Deletes every session of `user` except `keep`; returns the ids deleted.
    async fn delete_sessions_of(&self, user: &UserId, keep: Option<&SessionId>) -> Result<Vec<SessionId>, StoreError>;
}

#[async_trait]
pub trait ThrottleStore: Send + Sync + 'static {
    async fn failures(&self, key: &ThrottleKey) -> Result<Option<Failures>, StoreError>;
    /// Adds one failure at `now`; a counter idle for `forget_after` starts again from one.
    async fn record_failure(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
        forget_after: Duration,
    ) -> Result<Failures, StoreError>;
    async fn clear_failures(&self, key: &ThrottleKey) -> Result<(), StoreError>;
}

#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;
}

/// Everything the domain needs from storage, plus a readiness probe.
#[async_trait]
pub trait Store: AccountStore + SessionStore + ThrottleStore + AuditStore {
    /// Succeeds when every backing service answers; drives `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
}
