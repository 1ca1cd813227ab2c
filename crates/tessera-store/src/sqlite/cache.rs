//! The in-process session cache, and the task that keeps it coherent with other processes.
//!
//! Why it exists: in session mode every request looks its session up. sqlx's SQLite driver
//! runs each query on a worker thread, and that hand-off alone costs more than the rest of a
//! `GET /v1/me`. A hit here is a hash-map read under a read lock.
//!
//! Why it is coherent — a session deleted anywhere stops being served:
//! - This process writes SQLite first and the cache after: inserts, touches and refresh
//!   rotations write through, deletions evict once their transaction has committed.
//! - Only sessions that exist are cached (never a miss), so a new session is never hidden.
//! - A read-through (a miss answered by SQLite) or write-through insert lands only if no
//!   eviction happened since before its query began (the generation guard, see
//!   [`SessionCache::insert_if_current`]), so a lookup racing a delete cannot put the
//!   deleted session back, nor one racing a refresh rotation an older refresh family.
//! - Another process (the `tessera` CLI revoking sessions or disabling a user, or a second
//!   server rotating a refresh family) cannot reach this memory. Every session deletion and
//!   every refresh rotation also appends a row to `session_revocations` in the same
//!   transaction (triggers); [`spawn_sync`] polls that log every 100 ms and evicts what it
//!   names, so such a change takes effect here within about that interval. Until then a
//!   rotation from the stale cached generation fails its compare-and-set in SQL, and that
//!   failure evicts the entry, so the caller's re-read is fresh.
//! - If the poll keeps failing, hits stop being served after [`MAX_STALENESS`]: lookups fall
//!   through to SQLite, which either answers (and is then current) or fails closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use sqlx::sqlite::SqlitePool;
use tessera_core::id::{SessionId, UserId};
use tessera_core::session::{RefreshState, Session};
use tessera_core::store::StoreError;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{db_err, session_id, user_id};

/// Entries kept before the cache is emptied and refilled from misses. At ~300 bytes a
/// session this bounds the cache near 30 MB.
pub(super) const CAPACITY: usize = 100_000;
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long hits may be served without a successful poll of the revocation log.
pub(super) const MAX_STALENESS: Duration = Duration::from_secs(2);
/// Revocation log rows older than this (SQLite's clock) are deleted, every `PRUNE_EVERY`.
/// Denylist rows are kept this long past their expiry too: the domain decides what is live
/// against its own clock, so pruning by SQLite's leaves a margin.
const PRUNE_AFTER_SECS: i64 = 600;
/// Throttle counters idle this long are deleted (the policy forgets them after an hour).
const THROTTLE_PRUNE_AFTER_SECS: i64 = 7 * 86_400;
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const POLL_BATCH: i64 = 1000;

/// What a deletion removed: one session, or every session of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Revocation {
    Session(SessionId),
    AllOf(UserId),
}

pub(super) struct SessionCache {
    /// Keyed by random ids the server made, so a fast hash is safe.
    entries: RwLock<HashMap<SessionId, Session, foldhash::fast::RandomState>>,
    /// Bumped, under the write lock, by every eviction. See [`SessionCache::insert_if_current`].
    generation: AtomicU64,
    capacity: usize,
    /// `synced_ms` counts milliseconds from here.
    epoch: Instant,
    /// When the last successful poll of the revocation log *started*.
    synced_ms: AtomicU64,
}

impl SessionCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::default()),
            generation: AtomicU64::new(0),
            capacity,
            epoch: Instant::now(),
            synced_ms: AtomicU64::new(0),
        }
    }

    /// The cached session `id` of `user`, if the cache holds it and is known to be current.
    pub(super) fn get(&self, user: &UserId, id: &SessionId) -> Option<Session> {
        if !self.is_fresh_at(Instant::now()) {
            return None;
        }
        self.read().get(id).filter(|s| s.user_id == *user).cloned()
    }

    /// Read before querying SQLite for a session that is to be cached; pass it to
    /// [`SessionCache::insert_if_current`].
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches `session` unless an eviction happened since `generation` was read.
    ///
    /// The race this prevents: a lookup misses and queries SQLite; before its answer comes
    /// back, another request (or the sync task, for another process) deletes the session and
    /// evicts it — from a cache that does not hold it yet. The lookup then inserts the copy it
    /// read, and the deleted session would be served until something evicted it again. With
    /// the guard, either the eviction came first, so it bumped the generation and the insert is
    /// refused; or the insert came first, and the eviction removes it. (An eviction that comes
    /// before the generation is read follows the delete's commit, so that query cannot see the
    /// session.) The check and the bump both happen under the write lock, so they cannot
    /// interleave. Returns whether the session was cached.
    pub(super) fn insert_if_current(&self, generation: u64, session: Session) -> bool {
        let mut entries = self.write();
        if self.generation.load(Ordering::Acquire) != generation {
            return false;
        }
        if entries.len() >= self.capacity && !entries.contains_key(&session.id) {
            // Simple and correct: dropping entries never serves anything stale.
            entries.clear();
        }
        entries.insert(session.id, session);
        true
    }

    /// Moves a cached session's `last_seen_at` forward (never back, whatever the order of
    /// concurrent touches). A session not cached stays uncached.
    pub(super) fn touch(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) {
        if let Some(s) = self.write().get_mut(id)
            && s.user_id == *user
        {
            s.last_seen_at = s.last_seen_at.max(at);
        }
    }

    /// Applies a refresh rotation that has committed: a cached copy still at `from_generation`
    /// takes `next` (and its `last_seen_at` moves forward to `next.rotated_at`, as in SQL).
    /// A cached copy at any other generation is behind or ahead of what this rotation saw, so
    /// it is dropped rather than patched: two rotations of one family (5→6, 6→7) may reach here
    /// in either order, and 7 must not be overwritten by 6.
    ///
    /// Bumps the generation like an eviction: a read-through that queried SQLite before the
    /// rotation committed holds the old family, and must not cache it after this (the same
    /// race as with a delete, see [`SessionCache::insert_if_current`]). Without the bump that
    /// copy would be served until evicted, and the domain would judge the family's current
    /// token against a generation it has already left behind (refusing it as unknown).
    pub(super) fn rotate_refresh(&self, user: &UserId, id: &SessionId, from_generation: u32, next: &RefreshState) {
        let mut entries = self.write();
        if let Some(s) = entries.get_mut(id)
            && s.user_id == *user
        {
            if s.refresh.is_some_and(|r| r.generation == from_generation) {
                s.refresh = Some(*next);
                s.last_seen_at = s.last_seen_at.max(next.rotated_at);
            } else {
                entries.remove(id);
            }
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Drops the cached session `id` of `user`, so the next lookup reads SQLite; bumps the
    /// generation so a read-through already in flight cannot put an older copy back. A
    /// session of another user is left alone: naming an id is not enough to disturb it.
    pub(super) fn forget(&self, user: &UserId, id: &SessionId) {
        let mut entries = self.write();
        if entries.get(id).is_some_and(|s| s.user_id == *user) {
            entries.remove(id);
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Removes what `revocations` name and bumps the generation, even when nothing was cached:
    /// a read-through in flight may be about to insert one of them.
    pub(super) fn evict(&self, revocations: &[Revocation]) {
        let mut entries = self.write();
        let mut users = Vec::new();
        for r in revocations {
            match r {
                Revocation::Session(id) => {
                    entries.remove(id);
                }
                Revocation::AllOf(user) => users.push(*user),
            }
        }
        if !users.is_empty() {
            entries.retain(|_, s| !users.contains(&s.user_id));
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Forgets everything: for when revocations may have been missed.
    pub(super) fn clear(&self) {
        let mut entries = self.write();
        entries.clear();
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub(super) fn len(&self) -> usize {
        self.read().len()
    }

    /// Records that every revocation committed before `started` has been applied.
    fn mark_synced(&self, started: Instant) {
        let ms = started.saturating_duration_since(self.epoch).as_millis();
        self.synced_ms.fetch_max(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Release);
    }

    fn is_fresh_at(&self, now: Instant) -> bool {
        let synced = self.epoch + Duration::from_millis(self.synced_ms.load(Ordering::Acquire));
        now.saturating_duration_since(synced) <= MAX_STALENESS
    }

    // A panic while holding the lock cannot leave the map half-updated in a way that matters
    // (every operation is a single map call), so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<SessionId, Session, foldhash::fast::RandomState>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<SessionId, Session, foldhash::fast::RandomState>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The last sequence number the revocation log handed out: a cache created now has nothing
/// older to evict. Read from `sqlite_sequence` rather than the table, which pruning may have
/// emptied, so that the next entry does not look like a gap.
pub(super) async fn latest_revocation(pool: &SqlitePool) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'session_revocations'), 0)")
        .fetch_one(pool)
        .await
        .map_err(db_err)
}

/// Starts the task that applies revocations logged after `from_seq` (by any process) to
/// `cache`, every [`POLL_INTERVAL`], and prunes old log rows. It runs until aborted.
pub(super) fn spawn_sync(pool: SqlitePool, cache: Arc<SessionCache>, from_seq: i64) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = from_seq;
        let mut failures: u64 = 0;
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_prune = Instant::now();
        loop {
            ticks.tick().await;
            let started = Instant::now();
            match apply_revocations(&pool, &cache, seen).await {
                Ok(next) => {
                    if failures > 0 {
                        tracing::info!(failures, "reading the session revocation log works again");
                    }
                    failures = 0;
                    seen = next;
                    cache.mark_synced(started);
                }
                Err(e) => {
                    failures += 1;
                    // Every 100 ms would flood the log during an outage.
                    if failures == 1 || failures.is_multiple_of(100) {
                        tracing::warn!(error = %e, failures, "cannot read the session revocation log; retrying");
                    }
                }
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                if let Err(e) = prune(&pool).await {
                    tracing::warn!(error = %e, "cannot prune the session revocation log");
                }
            }
        }
    })
}

type LogRow = (i64, Vec<u8>, Option<Vec<u8>>);

/// Evicts every revocation logged after `seen`; returns the last sequence number applied.
async fn apply_revocations(pool: &SqlitePool, cache: &SessionCache, mut seen: i64) -> Result<i64, StoreError> {
    loop {
        let rows: Vec<LogRow> = sqlx::query_as(
            "SELECT seq, user_id, session_id FROM session_revocations WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(seen)
        .bind(POLL_BATCH)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
        let Some(&(last, _, _)) = rows.last() else {
            return Ok(seen);
        };
        // Sequence numbers have no holes (AUTOINCREMENT, one writer at a time, a rolled-back
        // insert gives its number back), so a jump means rows we never read were pruned: this
        // process stalled for longer than the log is kept. Whatever they revoked may be
        // cached, so start over; a false alarm would only cost refilling the cache.
        let skipped = rows[0].0 != seen + 1;
        match parse(&rows) {
            Ok(revocations) if !skipped => cache.evict(&revocations),
            _ => {
                tracing::warn!("session revocations were missed or unreadable; emptying the session cache");
                cache.clear();
            }
        }
        seen = last;
        if (rows.len() as i64) < POLL_BATCH {
            return Ok(seen);
        }
    }
}

fn parse(rows: &[LogRow]) -> Result<Vec<Revocation>, StoreError> {
    rows.iter()
        .map(|(_, user, session)| match session {
            Some(id) => session_id(id).map(Revocation::Session),
            None => user_id(user).map(Revocation::AllOf),
        })
        .collect()
}

async fn prune(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM session_revocations WHERE at < unixepoch() - ?1")
        .bind(PRUNE_AFTER_SECS)
        .execute(pool)
        .await
        .map_err(db_err)?;
    // Every username or address ever tried leaves a throttle row; one idle far longer than any
    // sensible `forget_after` counts for nothing and would only grow the file.
    sqlx::query("DELETE FROM throttle WHERE last_at < unixepoch() - ?1")
        .bind(THROTTLE_PRUNE_AFTER_SECS)
        .execute(pool)
        .await
        .map_err(db_err)?;
    // An expired denylist entry covers only tokens that have expired as well.
    sqlx::query("DELETE FROM denylist WHERE expires_at < unixepoch() - ?1")
        .bind(PRUNE_AFTER_SECS)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::secret::TokenHash;
    use tessera_core::username::Username;

    fn session(user: UserId) -> Session {
        let now = tessera_core::clock::from_unix(1_700_000_000);
        Session {
            id: SessionId::generate(),
            user_id: user,
            username: Username::parse("alice").unwrap(),
            secret_hash: TokenHash::of(b"secret"),
            csrf_hash: TokenHash::of(b"csrf"),
            created_at: now,
            last_seen_at: now,
            expires_at: now + time::Duration::days(30),
            user_agent: None,
            ip: None,
            refresh: Some(refresh(1, now)),
        }
    }

    fn refresh(generation: u32, rotated_at: OffsetDateTime) -> RefreshState {
        RefreshState { generation, hash: TokenHash::of(&generation.to_be_bytes()), rotated_at }
    }

    #[test]
    fn read_through_that_began_before_an_eviction_is_not_cached() {
        let cache = SessionCache::new(10);
        let s = session(UserId::generate());
        let before_query = cache.generation();
        // A delete commits and evicts while the lookup's query is in flight.
        cache.evict(&[Revocation::Session(s.id)]);
        assert!(!cache.insert_if_current(before_query, s.clone()));
        assert_eq!(cache.get(&s.user_id, &s.id), None);
    }

    #[test]
    fn read_through_with_no_eviction_meanwhile_is_cached() {
        let cache = SessionCache::new(10);
        let s = session(UserId::generate());
        assert!(cache.insert_if_current(cache.generation(), s.clone()));
        assert_eq!(cache.get(&s.user_id, &s.id), Some(s));
    }

    #[test]
    fn eviction_of_something_not_cached_still_guards_inflight_reads() {
        let cache = SessionCache::new(10);
        let s = session(UserId::generate());
        let other = session(UserId::generate());
        let before_query = cache.generation();
        cache.evict(&[Revocation::Session(other.id)]);
        assert!(!cache.insert_if_current(before_query, s));
    }

    #[test]
    fn cached_session_is_not_served_for_another_user() {
        let cache = SessionCache::new(10);
        let s = session(UserId::generate());
        cache.insert_if_current(cache.generation(), s.clone());
        assert_eq!(cache.get(&UserId::generate(), &s.id), None);
    }

    #[test]
    fn revoking_all_of_a_user_evicts_only_that_user() {
        let cache = SessionCache::new(10);
        let alice = UserId::generate();
        let (a1, a2, b) = (session(alice), session(alice), session(UserId::generate()));
        for s in [&a1, &a2, &b] {
            cache.insert_if_current(cache.generation(), s.clone());
        }
        cache.evict(&[Revocation::AllOf(alice)]);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&b.user_id, &b.id), Some(b));
    }

    #[test]
    fn full_cache_is_emptied_before_it_grows_past_capacity() {
        let cache = SessionCache::new(2);
        let user = UserId::generate();
        for _ in 0..3 {
            cache.insert_if_current(cache.generation(), session(user));
        }
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn touch_only_moves_last_seen_forward() {
        let cache = SessionCache::new(10);
        let s = session(UserId::generate());
        cache.insert_if_current(cache.generation(), s.clone());
        let later = s.last_seen_at + time::Duration::minutes(5);
        cache.touch(&s.user_id, &s.id, later);
        cache.touch(&s.user_id, &s.id, s.last_seen_at);
        assert_eq!(cache.get(&s.user_id, &s.id).map(|c| c.last_seen_at), Some(later));
    }

    #[test]
    fn hits_stop_when_the_revocation_log_has_not_been_read_for_too_long() {
        let cache = SessionCache::new(10);
        let start = Instant::now();
        cache.mark_synced(start);
        assert!(cache.is_fresh_at(start + MAX_STALENESS - Duration::from_millis(10)));
        assert!(!cache.is_fresh_at(start + MAX_STALENESS + Duration::from_millis(10)));
        cache.mark_synced(start + Duration::from_secs(5));
        assert!(cache.is_fresh_at(start + Duration::from_secs(6)));
    }

    #[test]
    fn committed_rotation_updates_the_cached_family_and_last_seen() {
        let cache = SessionCache::new(10);
        let s = session(UserId::generate());
        cache.insert_if_current(cache.generation(), s.clone());
        let next = refresh(2, s.last_seen_at + time::Duration::minutes(5));
        cache.rotate_refresh(&s.user_id, &s.id, 1, &next);
        let cached = cache.get(&s.user_id, &s.id);
        assert_eq!(cached.as_ref().and_then(|c| c.refresh), Some(next));
        assert_eq!(cached.map(|c| c.last_seen_at), Some(next.rotated_at));
    }

    #[test]
    fn rotation_never_moves_cached_last_seen_back() {
        let cache = SessionCache::new(10);
        let s = session(UserId::generate());
        cache.insert_if_current(cache.generation(), s.clone());
        cache.touch(&s.user_id, &s.id, s.last_seen_at + time::Duration::minutes(10));
        cache.rotate_refresh(&s.user_id, &s.id, 1, &refresh(2, s.last_seen_at));
        assert_eq!(
            cache.get(&s.user_id, &s.id).map(|c| c.last_seen_at),
            Some(s.last_seen_at + time::Duration::minutes(10))
        );
    }

    #[test]
    fn rotations_applied_out_of_order_drop_the_entry_instead_of_going_back() {
        let cache = SessionCache::new(10);
        let s = session(UserId::generate());
        cache.insert_if_current(cache.generation(), s.clone());
        // 1→2 and 2→3 both committed; the second one's cache update lands first.
        cache.rotate_refresh(&s.user_id, &s.id, 2, &refresh(3, s.created_at));
        assert_eq!(cache.get(&s.user_id, &s.id), None);
        cache.rotate_refresh(&s.user_id, &s.id, 1, &refresh(2, s.created_at));
        assert_eq!(cache.get(&s.user_id, &s.id), None);
    }

    #[test]
    fn read_through_that_began_before_a_rotation_is_not_cached() {
        let cache = SessionCache::new(10);
        let s = session(UserId::generate());
        let before_query = cache.generation();
        // The lookup read generation 1; a rotation to 2 commits before it caches what it read.
        cache.rotate_refresh(&s.user_id, &s.id, 1, &refresh(2, s.created_at));
        assert!(!cache.insert_if_current(before_query, s.clone()));
        assert_eq!(cache.get(&s.user_id, &s.id), None);
    }

    #[test]
    fn rotation_by_another_user_leaves_the_cached_session_alone() {
        let cache = SessionCache::new(10);
        let s = session(UserId::generate());
        cache.insert_if_current(cache.generation(), s.clone());
        let mallory = UserId::generate();
        cache.rotate_refresh(&mallory, &s.id, 1, &refresh(2, s.created_at));
        cache.forget(&mallory, &s.id);
        assert_eq!(cache.get(&s.user_id, &s.id), Some(s));
    }

    #[test]
    fn forget_drops_the_entry_and_guards_inflight_reads() {
        let cache = SessionCache::new(10);
        let (s, other) = (session(UserId::generate()), session(UserId::generate()));
        cache.insert_if_current(cache.generation(), s.clone());
        let before_query = cache.generation();
        cache.forget(&s.user_id, &s.id);
        assert_eq!(cache.get(&s.user_id, &s.id), None);
        assert!(!cache.insert_if_current(before_query, other));
    }

    #[tokio::test]
    async fn prune_deletes_expired_denylist_rows_and_keeps_live_ones() {
        use tessera_core::id::TokenId;
        use tessera_core::store::{Denied, DenyEntry, DenylistStore};

        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(dir.path()).await.unwrap();
        // Whole seconds, as stored; pruning goes by SQLite's clock, so this one is real too.
        let now = tessera_core::clock::Clock::now(&tessera_core::clock::SystemClock);
        let long_expired = DenyEntry {
            denied: Denied::Token(TokenId::generate()),
            expires_at: now - Duration::from_secs(PRUNE_AFTER_SECS.unsigned_abs() + 60),
        };
        let live = DenyEntry { denied: Denied::Token(TokenId::generate()), expires_at: now + Duration::from_secs(300) };
        store.deny(&[long_expired, live]).await.unwrap();

        prune(store.pool()).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM denylist").fetch_one(store.pool()).await.unwrap();
        assert_eq!(left, 1);
        let (entries, _) = store.denied_since(0, now).await.unwrap();
        assert_eq!(entries, vec![live]);
    }
}
