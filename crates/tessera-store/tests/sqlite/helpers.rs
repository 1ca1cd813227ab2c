//! Fixtures: a fresh store per test, and sessions to put in it.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tempfile::TempDir;
use tessera_core::account::Account;
use tessera_core::id::SessionId;
use tessera_core::secret::TokenHash;
use tessera_core::session::{RefreshState, Session};
use tessera_store::SqliteStore;

use crate::sql::fixtures::t;

/// A store in its own temporary directory, removed when the `TempDir` drops.
pub async fn open_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (dir, store)
}

/// Another store on the database file in `dir`: another process, or this one restarted.
pub async fn open_again(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.path()).await.unwrap()
}

/// A session of `account` created at `t(created)`.
pub fn session(account: &Account, created: i64) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: account.id,
        username: account.username.clone(),
        secret_hash: TokenHash::of(b"secret"),
        csrf_hash: TokenHash::of(b"csrf"),
        created_at: t(created),
        last_seen_at: t(created),
        expires_at: t(created + 30 * 86_400),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        ip: Some("192.0.2.7".into()),
        refresh: None,
    }
}

/// A session of `account` created at `t(created)`, with a refresh family at generation 0.
pub fn session_with_refresh(account: &Account, created: i64) -> Session {
    Session { refresh: Some(refresh_state(0, created)), ..session(account, created) }
}

/// A refresh family at `generation`, rotated at `t(rotated)`; the hash differs per generation.
pub fn refresh_state(generation: u32, rotated: i64) -> RefreshState {
    RefreshState { generation, hash: TokenHash::of(&generation.to_be_bytes()), rotated_at: t(rotated) }
}

/// Polls `check` every 20 ms until it holds or `within` has passed: for effects of another
/// store's background task, which runs on real time.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain connection to the database file, standing in for the `sqlite3` shell.
pub async fn raw_connection(db_path: &Path) -> SqliteConnection {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(db_path)).await.unwrap()
}
