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
use tessera_core::throttle::{Failures, LockRule, Reservation, Reserved, ThrottleKey};
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
    /// An error names the service that failed and where it was looked for (without a password).
    pub async fn connect(postgres_url: &str, redis: &RedisSettings) -> Result<Self, StoreError> {
        let postgres = PgStore::connect(postgres_url)
            .await
            .map_err(|e| naming(e, &format!("PostgreSQL at {} (store.postgres_url)", redact_url(postgres_url))))?;
        let redis = match RedisStore::connect(redis).await {
            Ok(r) => r,
            Err(e) => {
                postgres.close().await;
                return Err(naming(e, &format!("Redis at {} (store.redis_url)", redact_url(&redis.url))));
            }
        };
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
    async fn set_password_hash(
        &self,
        id: &UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, StoreError> {
        self.postgres.set_password_hash(id, current, new).await
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
    async fn insert_session_capped(&self, session: &Session, max: u32) -> Result<Vec<SessionId>, StoreError> {
        self.redis.insert_session_capped(session, max).await
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
    async fn reserve_attempt(
        &self,
        key: &ThrottleKey,
        rule: &LockRule,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        self.redis.reserve_attempt(key, rule, now).await
    }
    async fn release_attempt(&self, key: &ThrottleKey, reserved: &Reserved) -> Result<(), StoreError> {
        self.redis.release_attempt(key, reserved).await
    }
}

/// `e` with `what` in front of its message, keeping its kind.
fn naming(e: StoreError, what: &str) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!("{what}: {m}")),
        StoreError::Other(m) => StoreError::Other(format!("{what}: {m}")),
        StoreError::Conflict => StoreError::Other(format!("{what}: unexpected conflict")),
    }
}

/// A URL (or a comma-separated list of them) with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|u| {
            let Some((scheme, rest)) = u.split_once("://") else { return u.to_owned() };
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => {
                    let userinfo = &rest[..at];
                    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
                    let shown = if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
                    format!("{scheme}://{shown}{}", &rest[at..])
                }
                None => u.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        use super::redact_url;
        assert_eq!(redact_url("postgres://tessera:s3cret@db:5432/t"), "postgres://tessera:***@db:5432/t");
        assert_eq!(redact_url("redis://:pw@a:6379,redis://b:6379"), "redis://:***@a:6379,redis://b:6379");
        assert_eq!(redact_url("postgres://db/t"), "postgres://db/t");
        assert_eq!(redact_url("redis://user@host/0"), "redis://user@host/0");
    }
}
