//! [`MeteredStore`]: any [`Store`] with every call timed and every failure counted, and the
//! events the domain records (audit events, won refresh rotations) counted on their way
//! through. The domain does not know it is being measured.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tessera_core::account::Account;
use tessera_core::audit::AuditEvent;
use tessera_core::id::{SessionId, UserId};
use tessera_core::password::PasswordHash;
use tessera_core::session::{RefreshState, Session};
use tessera_core::store::{
    AccountStore, AuditStore, DenyEntry, DenylistRead, DenylistStore, KeyStore, SessionStore, Store, StoreError,
    StoredKey, ThrottleStore,
};
use tessera_core::throttle::{Failures, LockRule, Reservation, Reserved, ThrottleKey};
use tessera_core::username::Username;
use time::{Duration, OffsetDateTime};

use super::Metrics;

/// The store operations, one label value each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    InsertAccount,
    AccountByUsername,
    AccountById,
    ListAccounts,
    SetPasswordHash,
    SetDisabled,
    InsertSession,
    Session,
    TouchSession,
    SessionsOf,
    DeleteSession,
    DeleteSessionsOf,
    RotateRefresh,
    Keys,
    InsertKey,
    RetireKeys,
    DeleteKey,
    Secret,
    Deny,
    DeniedSince,
    Failures,
    RecordFailure,
    ClearFailures,
    ReserveAttempt,
    ReleaseAttempt,
    AppendAudit,
    Ping,
}

impl StoreOp {
    pub const ALL: [StoreOp; 27] = [
        Self::InsertAccount,
        Self::AccountByUsername,
        Self::AccountById,
        Self::ListAccounts,
        Self::SetPasswordHash,
        Self::SetDisabled,
        Self::InsertSession,
        Self::Session,
        Self::TouchSession,
        Self::SessionsOf,
        Self::DeleteSession,
        Self::DeleteSessionsOf,
        Self::RotateRefresh,
        Self::Keys,
        Self::InsertKey,
        Self::RetireKeys,
        Self::DeleteKey,
        Self::Secret,
        Self::Deny,
        Self::DeniedSince,
        Self::Failures,
        Self::RecordFailure,
        Self::ClearFailures,
        Self::ReserveAttempt,
        Self::ReleaseAttempt,
        Self::AppendAudit,
        Self::Ping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InsertAccount => "insert_account",
            Self::AccountByUsername => "account_by_username",
            Self::AccountById => "account_by_id",
            Self::ListAccounts => "list_accounts",
            Self::SetPasswordHash => "set_password_hash",
            Self::SetDisabled => "set_disabled",
            Self::InsertSession => "insert_session",
            Self::Session => "session",
            Self::TouchSession => "touch_session",
            Self::SessionsOf => "sessions_of",
            Self::DeleteSession => "delete_session",
            Self::DeleteSessionsOf => "delete_sessions_of",
            Self::RotateRefresh => "rotate_refresh",
            Self::Keys => "keys",
            Self::InsertKey => "insert_key",
            Self::RetireKeys => "retire_keys",
            Self::DeleteKey => "delete_key",
            Self::Secret => "secret",
            Self::Deny => "deny",
            Self::DeniedSince => "denied_since",
            Self::Failures => "throttle_failures",
            Self::RecordFailure => "throttle_record_failure",
            Self::ClearFailures => "throttle_clear_failures",
            Self::ReserveAttempt => "throttle_reserve_attempt",
            Self::ReleaseAttempt => "throttle_release_attempt",
            Self::AppendAudit => "append_audit",
            Self::Ping => "ping",
        }
    }
}

pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(&self, op: StoreOp, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics.observe_store(op, started.elapsed().as_secs_f64(), result.as_ref().err());
        result
    }
}

#[async_trait]
impl AccountStore for MeteredStore {
    async fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        self.timed(StoreOp::InsertAccount, self.inner.insert_account(account)).await
    }
    async fn account_by_username(&self, username: &Username) -> Result<Option<Account>, StoreError> {
        self.timed(StoreOp::AccountByUsername, self.inner.account_by_username(username)).await
    }
    async fn account_by_id(&self, id: &UserId) -> Result<Option<Account>, StoreError> {
        self.timed(StoreOp::AccountById, self.inner.account_by_id(id)).await
    }
    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.timed(StoreOp::ListAccounts, self.inner.list_accounts()).await
    }
    async fn set_password_hash(
        &self,
        id: &UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, StoreError> {
        self.timed(StoreOp::SetPasswordHash, self.inner.set_password_hash(id, current, new)).await
    }
    async fn set_disabled(&self, id: &UserId, disabled: bool) -> Result<bool, StoreError> {
        self.timed(StoreOp::SetDisabled, self.inner.set_disabled(id, disabled)).await
    }
}

#[async_trait]
impl SessionStore for MeteredStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.timed(StoreOp::InsertSession, self.inner.insert_session(session)).await
    }
    async fn insert_session_capped(&self, session: &Session, max: u32) -> Result<Vec<SessionId>, StoreError> {
        self.timed(StoreOp::InsertSession, self.inner.insert_session_capped(session, max)).await
    }
    async fn session(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.timed(StoreOp::Session, self.inner.session(user, id)).await
    }
    async fn session_fresh(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.timed(StoreOp::Session, self.inner.session_fresh(user, id)).await
    }
    async fn touch_session(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.timed(StoreOp::TouchSession, self.inner.touch_session(user, id, at)).await
    }
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError> {
        self.timed(StoreOp::SessionsOf, self.inner.sessions_of(user)).await
    }
    async fn delete_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        self.timed(StoreOp::DeleteSession, self.inner.delete_session(user, id)).await
    }
    async fn delete_sessions_of(&self, user: &UserId, keep: Option<&SessionId>) -> Result<Vec<SessionId>, StoreError> {
        self.timed(StoreOp::DeleteSessionsOf, self.inner.delete_sessions_of(user, keep)).await
    }
    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        from_generation: u32,
        next: &RefreshState,
    ) -> Result<bool, StoreError> {
        let won =
            self.timed(StoreOp::RotateRefresh, self.inner.rotate_refresh(user, id, from_generation, next)).await?;
        if won {
            self.metrics.refresh_rotated();
        }
        Ok(won)
    }
}

#[async_trait]
impl KeyStore for MeteredStore {
    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.timed(StoreOp::Keys, self.inner.keys()).await
    }
    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        self.timed(StoreOp::InsertKey, self.inner.insert_key(key)).await
    }
    async fn insert_key_if_none_usable(&self, key: &StoredKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.timed(StoreOp::InsertKey, self.inner.insert_key_if_none_usable(key, now)).await
    }
    async fn retire_keys(&self, except: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        self.timed(StoreOp::RetireKeys, self.inner.retire_keys(except, at)).await
    }
    async fn delete_key(&self, kid: &str) -> Result<(), StoreError> {
        self.timed(StoreOp::DeleteKey, self.inner.delete_key(kid)).await
    }
    async fn secret_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.timed(StoreOp::Secret, self.inner.secret_or_insert(name, value)).await
    }
}

#[async_trait]
impl DenylistStore for MeteredStore {
    async fn deny(&self, entries: &[DenyEntry]) -> Result<(), StoreError> {
        self.timed(StoreOp::Deny, self.inner.deny(entries)).await
    }
    async fn denied_since(&self, cursor: u64, now: OffsetDateTime) -> Result<(Vec<DenyEntry>, u64), StoreError> {
        self.timed(StoreOp::DeniedSince, self.inner.denied_since(cursor, now)).await
    }
    async fn read_denylist(&self, cursor: u64, now: OffsetDateTime) -> Result<DenylistRead, StoreError> {
        self.timed(StoreOp::DeniedSince, self.inner.read_denylist(cursor, now)).await
    }
    fn denylist_changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.inner.denylist_changes()
    }
}

#[async_trait]
impl ThrottleStore for MeteredStore {
    async fn failures(&self, key: &ThrottleKey) -> Result<Option<Failures>, StoreError> {
        self.timed(StoreOp::Failures, self.inner.failures(key)).await
    }
    async fn record_failure(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
        forget_after: Duration,
    ) -> Result<Failures, StoreError> {
        self.timed(StoreOp::RecordFailure, self.inner.record_failure(key, now, forget_after)).await
    }
    async fn clear_failures(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        self.timed(StoreOp::ClearFailures, self.inner.clear_failures(key)).await
    }
    async fn reserve_attempt(
        &self,
        key: &ThrottleKey,
        rule: &LockRule,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        self.timed(StoreOp::ReserveAttempt, self.inner.reserve_attempt(key, rule, now)).await
    }
    async fn release_attempt(&self, key: &ThrottleKey, reserved: &Reserved) -> Result<(), StoreError> {
        self.timed(StoreOp::ReleaseAttempt, self.inner.release_attempt(key, reserved)).await
    }
}

#[async_trait]
impl AuditStore for MeteredStore {
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.metrics.audited(event.kind);
        self.timed(StoreOp::AppendAudit, self.inner.append_audit(event)).await
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.timed(StoreOp::Ping, self.inner.ping()).await
    }
}
