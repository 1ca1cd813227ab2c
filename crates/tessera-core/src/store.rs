//! The narrow traits every storage backend implements. The embedded SQLite store implements
//! all of them; the distributed backend splits them between PostgreSQL (accounts, audit) and
//! Redis (sessions, throttle counters). Methods are per-user wherever they can be, so a
//! backend can keep one user's keys together (one Redis Cluster hash slot).

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::account::Account;
use crate::audit::AuditEvent;
use crate::id::{SessionId, TokenId, UserId};
use crate::password::PasswordHash;
use crate::session::{RefreshState, Session};
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
    /// Like [`SessionStore::session`], but never answered from a copy another process may have
    /// moved past (a cache). Refresh decisions use it: judging a refresh token against a stale
    /// family could miss a reuse. Backends without a cache need not override it.
    async fn session_fresh(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.session(user, id).await
    }
    async fn touch_session(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) -> Result<(), StoreError>;
    /// Every stored session of `user`, oldest first.
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError>;
    /// Returns `false` when `user` has no session `id`.
    async fn delete_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError>;
    /// Deletes every session of `user` except `keep`; returns the ids deleted.
    async fn delete_sessions_of(&self, user: &UserId, keep: Option<&SessionId>) -> Result<Vec<SessionId>, StoreError>;
    /// Compare-and-set of the refresh family: replaces the session's refresh state with `next`
    /// only if its generation is still `from_generation`, and refreshes `last_seen_at` to
    /// `next.rotated_at`. Returns `false` when another rotation won, or the session is gone.
    /// This is what makes "of N concurrent refreshes, exactly one family continues" hold.
    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        from_generation: u32,
        next: &RefreshState,
    ) -> Result<bool, StoreError>;
}

/// A signing key as stored. `private` is PKCS#8 DER (or the raw secret for HS256), sealed with
/// AES-256-GCM when `sealed` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub private: Vec<u8>,
    pub sealed: bool,
    pub created_at: OffsetDateTime,
    /// Signs from this moment; published in JWKS from creation, so verifiers know it first.
    pub activates_at: OffsetDateTime,
    /// Stops signing at this moment (a successor took over); stays published until the
    /// tokens it signed have expired.
    pub retires_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Every stored key, oldest first.
    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError>;
    /// Inserts `key` only if no key of the same `alg` is usable at `now` (not retired, or
    /// retiring later), atomically: of several instances starting at once on an empty store,
    /// exactly one key is created and all of them use it. Returns whether `key` was inserted.
    async fn insert_key_if_none_usable(&self, key: &StoredKey, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Sets `retires_at` of every key that has none, except `except`.
    async fn retire_keys(&self, except: &str, at: OffsetDateTime) -> Result<(), StoreError>;
    async fn delete_key(&self, kid: &str) -> Result<(), StoreError>;
    /// The server secret `name`, creating it with `value` if absent; returns the stored value
    /// (so concurrent first starts of several instances agree on one).
    async fn secret_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// What a denylist entry stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Denied {
    /// Every access token carrying this `sid`.
    Session(SessionId),
    /// The one access token with this `jti`.
    Token(TokenId),
    /// Every access token of this user issued (`iat`) before the instant.
    IssuedBefore(UserId, OffsetDateTime),
}

/// A denylist entry lives exactly as long as the tokens it covers could.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenyEntry {
    pub denied: Denied,
    pub expires_at: OffsetDateTime,
}

/// What [`DenylistStore::read_denylist`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenylistRead {
    /// Live entries after the cursor, each with the cursor just after it, in log order.
    pub entries: Vec<(u64, DenyEntry)>,
    /// The cursor to read from next time.
    pub next: u64,
    /// The store could not continue from the cursor given (its log was lost, or rolled back
    /// past it): `entries` is the whole live log, and older cursors mean nothing any more.
    pub restarted: bool,
}

#[async_trait]
pub trait DenylistStore: Send + Sync + 'static {
    async fn deny(&self, entries: &[DenyEntry]) -> Result<(), StoreError>;
    /// Entries added after `cursor` that are unexpired at `now`, and the cursor to pass next
    /// time. Cursor 0 returns every live entry (start-up).
    async fn denied_since(&self, cursor: u64, now: OffsetDateTime) -> Result<(Vec<DenyEntry>, u64), StoreError>;
    /// Like [`DenylistStore::denied_since`], with the cursor just after each entry (what the
    /// revocation feed sends as event ids), and whether the store could continue from
    /// `cursor` at all. The default gives every entry but the last the cursor it started from,
    /// which is safe (resuming from it repeats entries, never skips one) but coarse.
    async fn read_denylist(&self, cursor: u64, now: OffsetDateTime) -> Result<DenylistRead, StoreError> {
        let (entries, next) = self.denied_since(cursor, now).await?;
        let last = entries.len().saturating_sub(1);
        let events =
            entries.into_iter().enumerate().map(|(i, entry)| (if i == last { next } else { cursor }, entry)).collect();
        Ok(DenylistRead { entries: events, next, restarted: next < cursor })
    }
    /// Signalled when entries may have been added by any process (a push channel, such as
    /// Redis pub/sub), and after the channel reconnects, so a reader can catch up at once
    /// instead of at its next poll. `None`: the backend has no such channel; poll.
    fn denylist_changes(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
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
pub trait Store: AccountStore + SessionStore + ThrottleStore + AuditStore + KeyStore + DenylistStore {
    /// Succeeds when every backing service answers; drives `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
}
