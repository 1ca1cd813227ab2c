//! A [`Store`] in memory, with one seam: a hook that runs inside the next `insert_session`,
//! before the session is stored. A test puts another request there — a password change, a
//! disable — to land it exactly between a login's password check and its insert, the race
//! that a black-box test can only hope to hit.
//!
//! Every method takes the lock once and does its whole job under it, so each is atomic, as
//! the real backends' are; the hook runs with the lock released.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use async_trait::async_trait;
use tessera_core::account::Account;
use tessera_core::audit::AuditEvent;
use tessera_core::clock::{from_unix, to_unix};
use tessera_core::id::{SessionId, UserId};
use tessera_core::password::PasswordHash;
use tessera_core::session::{RefreshState, Session};
use tessera_core::store::{
    AccountStore, AuditStore, DenyEntry, DenylistStore, KeyStore, SessionStore, Store, StoreError, StoredKey,
    ThrottleStore,
};
use tessera_core::throttle::{Failures, LockRule, Reservation, Reserved, ThrottleKey, unix_ms};
use tessera_core::username::Username;
use time::{Duration, OffsetDateTime};

/// What runs inside the next `insert_session`; it is shown the session about to be stored.
pub type Hook = Box<dyn FnOnce(Session) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    before_next_insert: Mutex<Option<Hook>>,
}

#[derive(Default)]
struct State {
    accounts: Vec<Account>,
    /// In insertion order, which is creation order: oldest first.
    sessions: Vec<Session>,
    failures: HashMap<String, Failures>,
    audit: Vec<AuditEvent>,
    keys: Vec<StoredKey>,
    secrets: HashMap<String, Vec<u8>>,
    /// The log's cursor is the index after an entry.
    denied: Vec<DenyEntry>,
}

impl MemoryStore {
    /// Runs `hook` inside the next `insert_session` (once), before that session is stored.
    pub fn before_next_session_insert(&self, hook: Hook) {
        *self.before_next_insert.lock().unwrap() = Some(hook);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The audit trail so far, oldest first.
    pub fn audit(&self) -> Vec<AuditEvent> {
        self.state().audit.clone()
    }
}

impl State {
    fn account_mut(&mut self, id: &UserId) -> Option<&mut Account> {
        self.accounts.iter_mut().find(|a| a.id == *id)
    }

    fn session_mut(&mut self, user: &UserId, id: &SessionId) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|s| s.user_id == *user && s.id == *id)
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.accounts.iter().any(|a| a.username == account.username) {
            return Err(StoreError::Conflict);
        }
        state.accounts.push(account.clone());
        Ok(())
    }

    async fn account_by_username(&self, username: &Username) -> Result<Option<Account>, StoreError> {
        Ok(self.state().accounts.iter().find(|a| a.username == *username).cloned())
    }

    async fn account_by_id(&self, id: &UserId) -> Result<Option<Account>, StoreError> {
        Ok(self.state().accounts.iter().find(|a| a.id == *id).cloned())
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        Ok(self.state().accounts.clone())
    }

    async fn set_password_hash(
        &self,
        id: &UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, StoreError> {
        Ok(match self.state().account_mut(id) {
            Some(a) if a.password_hash == *current => {
                a.password_hash = new.clone();
                true
            }
            _ => false,
        })
    }

    async fn set_disabled(&self, id: &UserId, disabled: bool) -> Result<bool, StoreError> {
        Ok(self.state().account_mut(id).map(|a| a.disabled = disabled).is_some())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let hook = self.before_next_insert.lock().unwrap().take();
        if let Some(hook) = hook {
            hook(session.clone()).await;
        }
        self.state().sessions.push(session.clone());
        Ok(())
    }

    async fn session(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.state().session_mut(user, id).map(|s| s.clone()))
    }

    async fn touch_session(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(s) = self.state().session_mut(user, id) {
            s.last_seen_at = s.last_seen_at.max(at);
        }
        Ok(())
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError> {
        Ok(self.state().sessions.iter().filter(|s| s.user_id == *user).cloned().collect())
    }

    async fn delete_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        let mut state = self.state();
        let before = state.sessions.len();
        state.sessions.retain(|s| !(s.user_id == *user && s.id == *id));
        Ok(state.sessions.len() < before)
    }

    async fn delete_sessions_of(&self, user: &UserId, keep: Option<&SessionId>) -> Result<Vec<SessionId>, StoreError> {
        let mut state = self.state();
        let doomed = |s: &Session| s.user_id == *user && Some(&s.id) != keep;
        let ids = state.sessions.iter().filter(|s| doomed(s)).map(|s| s.id).collect();
        state.sessions.retain(|s| !doomed(s));
        Ok(ids)
    }

    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        from_generation: u32,
        next: &RefreshState,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(s) = state.session_mut(user, id) else { return Ok(false) };
        if s.refresh.is_none_or(|r| r.generation != from_generation) {
            return Ok(false);
        }
        s.refresh = Some(*next);
        s.last_seen_at = next.rotated_at;
        Ok(true)
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        Ok(self.state().keys.clone())
    }

    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        self.state().keys.push(key.clone());
        Ok(())
    }

    async fn insert_key_if_none_usable(&self, key: &StoredKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.keys.iter().any(|k| k.alg == key.alg && k.retires_at.is_none_or(|r| r > now)) {
            return Ok(false);
        }
        state.keys.push(key.clone());
        Ok(true)
    }

    async fn retire_keys(&self, except: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        for k in self.state().keys.iter_mut().filter(|k| k.kid != except && k.retires_at.is_none()) {
            k.retires_at = Some(at);
        }
        Ok(())
    }

    async fn delete_key(&self, kid: &str) -> Result<(), StoreError> {
        self.state().keys.retain(|k| k.kid != kid);
        Ok(())
    }

    async fn secret_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(self.state().secrets.entry(name.to_owned()).or_insert_with(|| value.to_vec()).clone())
    }
}

#[async_trait]
impl DenylistStore for MemoryStore {
    async fn deny(&self, entries: &[DenyEntry]) -> Result<(), StoreError> {
        self.state().denied.extend_from_slice(entries);
        Ok(())
    }

    async fn denied_since(&self, cursor: u64, now: OffsetDateTime) -> Result<(Vec<DenyEntry>, u64), StoreError> {
        let state = self.state();
        let from = usize::try_from(cursor).unwrap_or(usize::MAX).min(state.denied.len());
        let live = state.denied[from..].iter().filter(|e| now < e.expires_at).copied().collect();
        Ok((live, state.denied.len() as u64))
    }
}

#[async_trait]
impl ThrottleStore for MemoryStore {
    async fn failures(&self, key: &ThrottleKey) -> Result<Option<Failures>, StoreError> {
        Ok(self.state().failures.get(&key.as_store_key()).copied())
    }

    async fn record_failure(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
        forget_after: Duration,
    ) -> Result<Failures, StoreError> {
        let mut state = self.state();
        let slot = state.failures.entry(key.as_store_key()).or_insert(Failures { count: 0, last_at: now });
        let count = if now - slot.last_at >= forget_after { 1 } else { slot.count + 1 };
        *slot = Failures { count, last_at: now };
        Ok(*slot)
    }

    async fn clear_failures(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        self.state().failures.remove(&key.as_store_key());
        Ok(())
    }

    async fn reserve_attempt(
        &self,
        key: &ThrottleKey,
        rule: &LockRule,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        let mut state = self.state();
        let now_ms = unix_ms(now);
        let current = state.failures.get(&key.as_store_key()).copied();
        let (count, last_at) = current.map_or((0, 0), |f| (f.count, to_unix(f.last_at)));
        if rule.is_locked(count, last_at, now_ms) {
            return Ok(Reservation::Locked(current));
        }
        let live = rule.live_count(count, last_at, now_ms);
        let failures = Failures { count: live + 1, last_at: from_unix(to_unix(now)) };
        state.failures.insert(key.as_store_key(), failures);
        let previous_last_at = current.filter(|_| live > 0).map(|f| f.last_at);
        Ok(Reservation::Reserved(Reserved { failures, previous_last_at }))
    }

    async fn release_attempt(&self, key: &ThrottleKey, reserved: &Reserved) -> Result<(), StoreError> {
        let mut state = self.state();
        let k = key.as_store_key();
        let Some(slot) = state.failures.get_mut(&k) else { return Ok(()) };
        if slot.count <= 1 {
            state.failures.remove(&k);
            return Ok(());
        }
        slot.count -= 1;
        if let Some(previous) = reserved.previous_last_at.filter(|_| slot.last_at == reserved.failures.last_at) {
            slot.last_at = previous;
        }
        Ok(())
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.state().audit.push(event.clone());
        Ok(())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
