//! The embedded default store: one SQLite file, `tessera.db`, under `store.data_dir`.
//!
//! - WAL journal: readers never wait for the writer, and a `tessera` CLI process can write
//!   to the same file while the server runs.
//! - `synchronous = FULL`: in WAL mode, `NORMAL` may lose the last commits on power loss; the
//!   SPEC says nothing acknowledged is lost on a crash, so every commit is synced.
//! - `busy_timeout` of 5 s: writers from several connections and processes queue for the one
//!   write lock instead of failing at once; transactions that write start with
//!   `BEGIN IMMEDIATE` so that wait applies to them too.
//!
//! Accounts, the audit trail and signing keys run the statements shared with PostgreSQL
//! ([`crate::sql`]); the other storage traits are implemented in a file each. `cache.rs` keeps
//! the in-process copy of sessions that makes a session lookup cheap, and the task that keeps it
//! coherent (also across refresh rotations) and prunes what has expired.

mod cache;
mod denylist;
mod keys;
mod sessions;
mod throttle;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tessera_core::secret::TokenHash;
use tessera_core::store::{Store, StoreError};
use tokio::task::JoinHandle;

pub use crate::sql::{AuditQuery, AuditRecord};
use crate::sql::{corrupt, impl_account_store, impl_audit_store, session_id, user_id};
use cache::SessionCache;

/// The database file's name inside `store.data_dir`.
pub const DB_FILE: &str = "tessera.db";
/// Readers run in parallel under WAL; writes serialise on SQLite's lock whatever the count.
const MAX_CONNECTIONS: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The embedded store. Cheap to clone: clones share one pool, one session cache and one
/// background task.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    db_path: PathBuf,
    cache: Arc<SessionCache>,
    /// The task that applies other processes' revocations to `cache`.
    sync_task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let task = self.sync_task.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

impl SqliteStore {
    /// Creates `data_dir` if missing, opens (or creates) `data_dir/tessera.db`, applies the
    /// migrations and starts the task that keeps the session cache coherent with other
    /// processes. Must be called inside a tokio runtime.
    ///
    /// An error names the database file (or the directory) and says what is wrong with it in
    /// words: a file or directory tessera may not write is refused here, before the server
    /// starts, rather than answering every write with 503 later.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(data_dir)?;
        let db_path = data_dir.join(DB_FILE);
        check_writable(data_dir, &db_path)?;
        let named = |e: sqlx::Error| naming(db_err(e), &db_path);
        let options = SqliteConnectOptions::new()
            .filename(&db_path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(named)?;
        MIGRATOR.run(&pool).await.map_err(|e| naming(migrate_err(e), &db_path))?;

        let cache = Arc::new(SessionCache::new(cache::CAPACITY));
        let from_seq = cache::latest_revocation(&pool).await?;
        let sync_task = cache::spawn_sync(pool.clone(), Arc::clone(&cache), from_seq);
        Ok(Self { inner: Arc::new(Inner { pool, db_path, cache, sync_task: Mutex::new(Some(sync_task)) }) })
    }

    /// Applies any migration not yet applied (`tessera migrate`). [`SqliteStore::open`]
    /// already does this; running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.inner.pool).await.map_err(migrate_err)
    }

    /// The database file, for start-up messages.
    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }

    /// Stops the background task and closes every connection. Later calls on any clone fail
    /// with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        let task = self.inner.sync_task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            // The task only ends by being aborted; the error says just that.
            let _ = task.await;
        }
        self.inner.pool.close().await;
    }

    /// How many sessions the in-process cache holds; lets tests check that lookups use it.
    #[doc(hidden)]
    pub fn cached_sessions(&self) -> usize {
        self.inner.cache.len()
    }

    fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    fn cache(&self) -> &SessionCache {
        &self.inner.cache
    }
}

impl_account_store!(SqliteStore, db_err);
impl_audit_store!(SqliteStore, db_err);

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool()).await.map_err(db_err)?;
        Ok(())
    }
}

/// The data directory holds password hashes and session hashes: only its owner may enter it.
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        StoreError::Other(format!(
            "SQLite database {}: cannot create the data directory {} ({})",
            dir.join(DB_FILE).display(),
            dir.display(),
            io_cause(&e)
        ))
    })
}

/// Refuses a data directory tessera cannot create files in (SQLite creates the database and
/// its `-wal` and `-shm` files there) and a database file (or WAL file) it cannot write: SQLite
/// would open such a file read-only without a word, and every write would fail later.
fn check_writable(dir: &Path, db_path: &Path) -> Result<(), StoreError> {
    let probe = dir.join(format!(".{DB_FILE}.write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            return Err(StoreError::Other(format!(
                "SQLite database {}: cannot create files in the data directory {} ({}); tessera keeps the \
                 database and its -wal and -shm files there, so the user running it needs write access to it",
                db_path.display(),
                dir.display(),
                io_cause(&e)
            )));
        }
    }
    let files = [
        ("the file", db_path.to_path_buf()),
        ("its WAL file", sidecar(db_path, "-wal")),
        ("its shared-memory file", sidecar(db_path, "-shm")),
    ];
    for (what, file) in files {
        if !file.exists() {
            continue;
        }
        if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(&file) {
            let name = if file == db_path { String::new() } else { format!(" {}", file.display()) };
            return Err(StoreError::Other(format!(
                "SQLite database {}: {what}{name} cannot be opened for writing ({}); tessera writes to it, so the \
                 user running it needs read and write access to it",
                db_path.display(),
                io_cause(&e)
            )));
        }
    }
    Ok(())
}

/// `db_path` with `suffix` appended to its file name (`tessera.db-wal`).
fn sidecar(db_path: &Path, suffix: &str) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// An I/O error in words, without the `(os error N)` suffix.
fn io_cause(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::ReadOnlyFilesystem => "read-only file system".to_owned(),
        std::io::ErrorKind::StorageFull => "no space left on the device".to_owned(),
        _ => e.to_string(),
    }
}

/// `e` with the database file it concerns in front.
fn naming(e: StoreError, db_path: &Path) -> StoreError {
    let what = format!("SQLite database {}", db_path.display());
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!("{what}: {m}")),
        StoreError::Other(m) => StoreError::Other(format!("{what}: {m}")),
        StoreError::Conflict => StoreError::Other(format!("{what}: unexpected conflict")),
    }
}

/// SQLite primary result codes that mean "cannot answer now" rather than "wrong request":
/// BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL (<https://sqlite.org/rescode.html>).
const UNAVAILABLE_CODES: [i64; 7] = [5, 6, 8, 10, 13, 14, 15];

/// The one mapping from sqlx's errors to the domain's: a broken uniqueness rule is a
/// conflict, anything that may pass by itself is unavailability (callers fail closed), and
/// the rest is a bug or corruption to log.
fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) => {
            // The driver reports the extended code; its low byte is the primary code.
            let primary = db.code().and_then(|c| c.parse::<i64>().ok()).map(|c| c & 0xff);
            // The message and the code, without sqlx's "error returned from database" wrapper.
            let message = match db.code() {
                Some(code) => format!("{} (SQLite code {code})", db.message()),
                None => db.message().to_owned(),
            };
            if primary.is_some_and(|c| UNAVAILABLE_CODES.contains(&c)) {
                StoreError::Unavailable(message)
            } else {
                StoreError::Other(message)
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

fn migrate_err(e: MigrateError) -> StoreError {
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => db_err(e),
        other => StoreError::Other(other.to_string()),
    }
}

fn token_hash(bytes: &[u8]) -> Result<TokenHash, StoreError> {
    bytes.try_into().map(TokenHash::from_bytes).map_err(|_| corrupt("token hash"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a pragma on one pooled connection, as every connection is set up alike.
    async fn pragma<T>(store: &SqliteStore, pragma: &'static str) -> T
    where
        T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        let mut conn = store.pool().acquire().await.unwrap();
        sqlx::query_scalar(pragma).fetch_one(&mut *conn).await.unwrap()
    }

    #[tokio::test]
    async fn database_runs_in_wal_mode_with_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(pragma::<String>(&store, "PRAGMA journal_mode").await, "wal");
        assert_eq!(pragma::<i64>(&store, "PRAGMA synchronous").await, 2, "2 = FULL");
        assert_eq!(pragma::<i64>(&store, "PRAGMA foreign_keys").await, 1);
        assert_eq!(pragma::<i64>(&store, "PRAGMA busy_timeout").await, 5000);
        assert_eq!(store.db_path(), dir.path().join("tessera.db"));
        store.close().await;
    }

    #[tokio::test]
    async fn migrate_again_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.migrate().await.unwrap();
        store.ping().await.unwrap();
        store.close().await;
    }

    #[tokio::test]
    async fn closed_store_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.close().await;
        assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
    }
}
