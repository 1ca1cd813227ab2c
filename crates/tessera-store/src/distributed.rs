//! The distributed backend: PostgreSQL for what must last (accounts, signing keys, server
//! secrets, audit records) and Redis for what is hot and short-lived (sessions and refresh
//! families, the denylist, throttle counters). Any number of tessera instances can share one
//! of each and nothing else.
//!
//! # Revocations outlive Redis
//!
//! Redis acknowledges a write before it is on disk or on a replica, so a Redis restarted from
//! an older snapshot, or a replica promoted before it caught up, can come back without the
//! last logouts — and with the sessions they ended. The contract:
//!
//! 1. Every revocation (a session deleted, a denylist entry written) is made in Redis and then
//!    recorded in PostgreSQL (`revocations`) before the caller answers. The row lives until
//!    what it ended could no longer be used (when the session's key was to expire — no older
//!    copy of it expires later —, the access tokens' expiry) and is pruned after.
//! 2. If PostgreSQL cannot take the record, the revocation still stands in Redis (the logout
//!    answers 204: cutting the attacker off now matters most) and the record is kept in this
//!    process and retried until PostgreSQL is back. Only a Redis data loss in that window, with
//!    this process gone too, can undo such a logout.
//! 3. Every sign that Redis may have restarted raises a doubt (see the `redis` module). While
//!    one is pending, every read that authenticates (a session, a refresh family, the
//!    denylist) fails as unavailable — 503, never a resurrected session. A check then compares
//!    the server's `run_id` — new at every start of a Redis process, so no snapshot can carry
//!    the current one — with the one recorded in Redis after the last replay: the same, and
//!    nothing was lost since; different (or none), and every live record is replayed into
//!    Redis (sessions deleted again, denylist entries written again) before the run is
//!    recorded and the doubt cleared. A rollback that also loses the recorded run only makes
//!    the replay run again. The same check runs every few seconds as a backstop, and once at
//!    start-up before the store is handed out.
//!
//! The hot path reads no PostgreSQL: only the check and the replay do.

use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use futures_util::StreamExt as _;
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
use tokio::task::JoinHandle;

use crate::postgres::{PgStore, Revocation, Revoked};
use crate::redis::{RedisSettings, RedisStore};

/// How often the background task looks at Redis's `run_id` when no doubt is pending (a
/// backstop for a restart no connection noticed), and how soon it retries a failed check.
const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// How often expired revocation records are deleted.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);
/// Records are pruned this long after they expired: the instances' clocks differ.
const PRUNE_MARGIN: Duration = Duration::minutes(5);
/// How long a revocation waits for PostgreSQL before its record is left to the background
/// retry (the revocation itself already stands in Redis).
const RECORD_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
/// Session deletions replayed at once, and denylist entries per write.
const REPLAY_CONCURRENCY: usize = 32;
const REPLAY_DENY_BATCH: usize = 500;

#[derive(Clone)]
pub struct DistributedStore {
    pub postgres: PgStore,
    pub redis: RedisStore,
    durable: Arc<Durable>,
}

/// What keeps revocations durable (see the module docs), shared by the clones of one store.
struct Durable {
    postgres: PgStore,
    redis: RedisStore,
    /// Revocations PostgreSQL could not record yet, oldest first.
    pending: Mutex<Vec<Revocation>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Durable {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.take() {
            task.abort();
        }
    }
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
        let durable = Arc::new(Durable {
            postgres: postgres.clone(),
            redis: redis.clone(),
            pending: Mutex::new(Vec::new()),
            task: Mutex::new(None),
        });
        // Nothing is served from a Redis not made sure of.
        if let Err(e) = durable.make_sure_of_redis().await {
            durable.redis.close().await;
            durable.postgres.close().await;
            return Err(naming(e, "replaying the recorded revocations into Redis"));
        }
        let task = tokio::spawn(watch_redis(Arc::downgrade(&durable), durable.redis.doubt_signal()));
        *durable.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(Self { postgres, redis, durable })
    }

    pub async fn close(&self) {
        let task = self.durable.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.durable.flush_pending().await;
        let lost = self.durable.pending.lock().unwrap_or_else(|e| e.into_inner()).len();
        if lost > 0 {
            tracing::error!(
                revocations = lost,
                "shutting down with revocations PostgreSQL could not record: they stand in Redis, but a Redis that \
                 loses its last writes would undo them"
            );
        }
        self.redis.close().await;
        self.postgres.close().await;
    }

    /// Fails while Redis may have lost writes that the replay has not restored yet.
    fn trusted(&self) -> Result<(), StoreError> {
        if self.redis.is_trusted() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "Redis may have restarted without its last writes; replaying the recorded revocations".into(),
            ))
        }
    }

    /// `r`, raising a doubt about Redis when it says Redis could not answer: a reconnect may
    /// follow, to a server that lost writes.
    fn watched<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if matches!(r, Err(StoreError::Unavailable(_))) {
            self.redis.doubt();
        }
        r
    }

    /// Records revocations made in Redis, before the caller answers; see the module docs.
    async fn record(&self, revocations: Vec<Revocation>) {
        let now = OffsetDateTime::now_utc();
        let live: Vec<Revocation> = revocations.into_iter().filter(|r| r.until > now).collect();
        if live.is_empty() {
            return;
        }
        // While earlier records wait for PostgreSQL, do not make each revocation wait too.
        let failing = !self.durable.pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
        if !failing {
            match tokio::time::timeout(RECORD_TIMEOUT, self.postgres.record_revocations(&live)).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot record a revocation in PostgreSQL; retrying"),
                Err(_) => tracing::warn!("recording a revocation in PostgreSQL timed out; retrying"),
            }
        }
        self.durable.pending.lock().unwrap_or_else(|e| e.into_inner()).extend(live);
    }
}

impl Durable {
    /// Makes sure Redis holds every recorded revocation: replays them unless Redis is the very
    /// server they were last replayed into. Clears the doubts raised before it started.
    async fn make_sure_of_redis(&self) -> Result<(), StoreError> {
        let raised = self.redis.doubts_raised();
        let run = self.redis.run_id().await?;
        if run.is_none() && self.redis.is_trusted() {
            // A Cluster has no one run id to compare: replay on a doubt only, not on the timer.
            return Ok(());
        }
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if run.is_some() && self.redis.replayed_run().await? == run {
            // Another instance may have replayed, but not what only this one holds.
            self.apply(&pending).await?;
            self.redis.clear_doubts(raised);
            return Ok(());
        }
        // A server not replayed into (the timer's check may be the first to see it): fail
        // closed until it is. Doubts raised from here on are cleared by this replay too — a
        // restart before it ends shows as a different run id at the end.
        self.redis.doubt();
        let raised = self.redis.doubts_raised();
        let started = std::time::Instant::now();
        self.flush_pending().await;
        let mut live = self.postgres.live_revocations(OffsetDateTime::now_utc()).await?;
        live.extend(self.pending.lock().unwrap_or_else(|e| e.into_inner()).iter().copied());
        self.apply(&live).await?;
        if let Some(run) = &run {
            if self.redis.run_id().await?.as_ref() != Some(run) {
                return Err(StoreError::Unavailable("Redis restarted during the replay".into()));
            }
            self.redis.set_replayed_run(run).await?;
        }
        tracing::info!(
            revocations = live.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "replayed the recorded revocations into Redis (a Redis server not replayed into before)"
        );
        self.redis.clear_doubts(raised);
        Ok(())
    }

    /// Makes each revocation again in Redis (idempotent).
    async fn apply(&self, revocations: &[Revocation]) -> Result<(), StoreError> {
        let entries: Vec<DenyEntry> = revocations.iter().filter_map(Revocation::deny_entry).collect();
        for batch in entries.chunks(REPLAY_DENY_BATCH) {
            self.redis.deny(batch).await?;
        }
        let sessions: Vec<(UserId, SessionId)> = revocations
            .iter()
            .filter_map(|r| match r.revoked {
                Revoked::Session(user, sid) => Some((user, sid)),
                Revoked::Denied(_) => None,
            })
            .collect();
        let mut deletes = futures_util::stream::iter(sessions)
            .map(|(user, sid)| {
                let redis = self.redis.clone();
                async move { redis.end_session(&user, &sid).await }
            })
            .buffer_unordered(REPLAY_CONCURRENCY);
        while let Some(done) = deletes.next().await {
            done?;
        }
        Ok(())
    }

    /// Records what PostgreSQL could not take before; keeps what it still cannot.
    async fn flush_pending(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return;
        }
        match self.postgres.record_revocations(&pending).await {
            Ok(()) => tracing::info!(revocations = pending.len(), "recorded the revocations PostgreSQL missed"),
            Err(e) => {
                match &e {
                    StoreError::Unavailable(_) => tracing::debug!(error = %e, "still cannot record revocations"),
                    _ => tracing::warn!(error = %e, "cannot record revocations in PostgreSQL; retrying"),
                }
                let mut kept = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                let newer = std::mem::replace(&mut *kept, pending);
                kept.extend(newer);
            }
        }
    }
}

/// The background half of [`Durable`]: checks Redis whenever a doubt is raised (and every
/// [`CHECK_EVERY`] regardless), retries unrecorded revocations, prunes expired records. Holds
/// the store only while it works, so it ends with the store.
async fn watch_redis(durable: Weak<Durable>, doubt: Arc<Notify>) {
    let mut last_check = tokio::time::Instant::now();
    let mut last_prune: Option<tokio::time::Instant> = None;
    let mut failing = false;
    loop {
        let wait = if failing { RETRY_EVERY } else { CHECK_EVERY.saturating_sub(last_check.elapsed()) };
        tokio::select! {
            () = doubt.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
        let Some(d) = durable.upgrade() else { return };
        if !d.redis.is_trusted() || failing || last_check.elapsed() >= CHECK_EVERY {
            last_check = tokio::time::Instant::now();
            match d.make_sure_of_redis().await {
                Ok(()) => failing = false,
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot make sure Redis holds the recorded revocations; retrying");
                    }
                    failing = true;
                }
            }
        }
        // After the check: with PostgreSQL down this waits for its pool, and the check of a
        // Redis that did not lose anything needs no PostgreSQL.
        d.flush_pending().await;
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            match d.postgres.prune_revocations(OffsetDateTime::now_utc() - PRUNE_MARGIN).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "pruned expired revocation records"),
                Err(e) => tracing::debug!(error = %e, "cannot prune revocation records"),
            }
        }
    }
}

#[async_trait]
impl Store for DistributedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let (pg, redis) = tokio::join!(self.postgres.ping(), self.redis.ping());
        pg.and(self.watched(redis)).and(self.trusted())
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

/// Reads that decide whether a credential is valid fail while Redis is doubted ([`DistributedStore::trusted`]);
/// every revocation is recorded in PostgreSQL too ([`DistributedStore::record`]).
#[async_trait]
impl SessionStore for DistributedStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.insert_session_capped(session, 0).await.map(drop)
    }
    async fn insert_session_capped(&self, session: &Session, max: u32) -> Result<Vec<SessionId>, StoreError> {
        let evicted = self.watched(self.redis.insert_session_capped(session, max).await)?;
        // An evicted session was created before this one under the same policy: it could not
        // have outlived this one's absolute end.
        let until = session.expires_at;
        self.record(
            evicted.iter().map(|id| Revocation { revoked: Revoked::Session(session.user_id, *id), until }).collect(),
        )
        .await;
        Ok(evicted)
    }
    async fn session(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.trusted()?;
        self.watched(self.redis.session(user, id).await)
    }
    async fn touch_session(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.watched(self.redis.touch_session(user, id, at).await)
    }
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError> {
        self.trusted()?;
        self.watched(self.redis.sessions_of(user).await)
    }
    async fn delete_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        let ended = self.watched(self.redis.end_session(user, id).await)?;
        if let Some(until) = ended {
            self.record(vec![Revocation { revoked: Revoked::Session(*user, *id), until }]).await;
        }
        Ok(ended.is_some())
    }
    async fn delete_sessions_of(&self, user: &UserId, keep: Option<&SessionId>) -> Result<Vec<SessionId>, StoreError> {
        let ended = self.watched(self.redis.end_sessions_of(user, keep).await)?;
        self.record(
            ended
                .iter()
                .map(|(id, until)| Revocation { revoked: Revoked::Session(*user, *id), until: *until })
                .collect(),
        )
        .await;
        Ok(ended.into_iter().map(|(id, _)| id).collect())
    }
    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        from_generation: u32,
        next: &RefreshState,
    ) -> Result<bool, StoreError> {
        self.trusted()?;
        self.watched(self.redis.rotate_refresh(user, id, from_generation, next).await)
    }
}

#[async_trait]
impl DenylistStore for DistributedStore {
    async fn deny(&self, entries: &[DenyEntry]) -> Result<(), StoreError> {
        self.watched(self.redis.deny(entries).await)?;
        self.record(
            entries.iter().map(|e| Revocation { revoked: Revoked::Denied(e.denied), until: e.expires_at }).collect(),
        )
        .await;
        Ok(())
    }
    async fn denied_since(&self, cursor: u64, now: OffsetDateTime) -> Result<(Vec<DenyEntry>, u64), StoreError> {
        let read = self.read_denylist(cursor, now).await?;
        Ok((read.entries.into_iter().map(|(_, e)| e).collect(), read.next))
    }
    async fn read_denylist(&self, cursor: u64, now: OffsetDateTime) -> Result<DenylistRead, StoreError> {
        self.trusted()?;
        let read = self.watched(self.redis.read_denylist(cursor, now).await)?;
        if read.restarted {
            // The log was lost or rolled back: so may the sessions have been. The readers keep
            // what they had; the replay writes the lost entries again, after this cursor.
            self.redis.doubt();
        }
        Ok(read)
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
