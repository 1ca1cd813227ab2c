//! The distributed backend: PostgreSQL for what must last (accounts, signing keys, server
//! secrets, audit records) and Redis for what is hot and short-lived (sessions and refresh
//! families, the denylist, throttle counters). Any number of tessera instances can share one
//! of each and nothing else.

use std::sync::Arc;

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
use tessera_core::throttle::{Failures, ThrottleKey};
use tessera_core::username::Username;
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

use crate::postgres::PgStore;
use crate::redis::{RedisSettings, RedisStore};

#[derive(Clone)]
pub struct DistributedStore {
    pub postgres: PgStore,
    pub redis: RedisStore,
}

impl DistributedStore {
    /// Connects to both (applying PostgreSQL migrations); fails if either does not answer.
    pub async fn connect(postgres_url: &str, redis: &RedisSettings) -> Result<Self, StoreError> {
        let postgres = PgStore::connect(postgres_url).await?;
        let redis = RedisStore::connect(redis).await?;
        Ok(Self { postgres, redis })
    }

    pub async fn close(&self) {
        self.redis.close().await;
        self.postgres.close().await;
    }
}

#[async_trait]
impl Store for DistributedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let (pg, redis) = tokio::join!(self.postgres.ping(), self.redis.ping());
        pg.and(redis)
    }
}

#[async_trait]
impl AccountStore for DistributedStore {
    async fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        self.postgres.insert_account(account).await
    }
    async fn account_by_username(&self, username: &Username) -> Result<Option<Account>, StoreError> {
        self.postgres.account_by_username(username).await
    }
    async fn account_by_id(&self, id: &UserId) -> Result<Option<Account>, StoreError> {
        self.postgres.account_by_id(id).await
    }
    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.postgres.list_accounts().await
    }
    async fn set_password_hash(&self, id: &UserId, hash: &PasswordHash) -> Result<(), StoreError> {
        self.postgres.set_password_hash(id, hash).await
    }
    async fn set_disabled(&self, id: &UserId, disabled: bool) -> Result<bool, StoreError> {
        self.postgres.set_disabled(id, disabled).await
    }
}

#[async_trait]
impl AuditStore for DistributedStore {
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.postgres.append_audit(event).await
    }
}

#[async_trait]
impl KeyStore for DistributedStore {
    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.postgres.keys().await
    }
    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        self.postgres.insert_key(key).await
    }
    async fn insert_key_if_none_usable(&self, key: &StoredKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.postgres.insert_key_if_none_usable(key, now).await
    }
    async fn retire_keys(&self, except: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        self.postgres.retire_keys(except, at).await
    }
    async fn delete_key(&self, kid: &str) -> Result<(), StoreError> {
        self.postgres.delete_key(kid).await
    }
    async fn secret_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.postgres.secret_or_insert(name, value).await
    }
}

#[async_trait]
impl SessionStore for DistributedStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.redis.insert_session(session).await
    }
    async fn session(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.redis.session(user, id).await
    }
    async fn touch_session(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.redis.touch_session(user, id, at).await
    }
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError> {
        self.redis.sessions_of(user).await
    }
    async fn delete_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        self.redis.delete_session(user, id).await
    }
    async fn delete_sessions_of(&self, user: &UserId, keep: Option<&SessionId>) -> Result<Vec<SessionId>, StoreError> {
        self.redis.delete_sessions_of(user, keep).await
    }
    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        from_generation: u32,
        next: &RefreshState,
    ) -> Result<bool, StoreError> {
        self.redis.rotate_refresh(user, id, from_generation, next).await
    }
}

#[async_trait]
impl DenylistStore for DistributedStore {
    async fn deny(&self, entries: &[DenyEntry]) -> Result<(), StoreError> {
        self.redis.deny(entries).await
    }
    async fn denied_since(&self, cursor: u64, now: OffsetDateTime) -> Result<(Vec<DenyEntry>, u64), StoreError> {
        self.redis.denied_since(cursor, now).await
    }
    async fn read_denylist(&self, cursor: u64, now: OffsetDateTime) -> Result<DenylistRead, StoreError> {
        self.redis.read_denylist(cursor, now).await
    }
    fn denylist_changes(&self) -> Option<Arc<Notify>> {
        self.redis.denylist_changes()
    }
}

#[async_trait]
impl ThrottleStore for DistributedStore {
    async fn failures(&self, key: &ThrottleKey) -> Result<Option<Failures>, StoreError> {
        self.redis.failures(key).await
    }
    async fn record_failure(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
        forget_after: Duration,
    ) -> Result<Failures, StoreError> {
        self.redis.record_failure(key, now, forget_after).await
    }
    async fn clear_failures(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        self.redis.clear_failures(key).await
    }
}
