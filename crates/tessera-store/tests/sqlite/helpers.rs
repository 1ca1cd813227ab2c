//! Fixtures: a fresh store per test, and accounts and sessions to put in it.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tempfile::TempDir;
use tessera_core::account::Account;
use tessera_core::clock::from_unix;
use tessera_core::id::{SessionId, UserId};
use tessera_core::password::PasswordHash;
use tessera_core::secret::TokenHash;
use tessera_core::session::{RefreshState, Session};
use tessera_core::store::AccountStore;
use tessera_core::username::Username;
use tessera_store::SqliteStore;
use time::OffsetDateTime;

/// A store in its own temporary directory, removed when the `TempDir` drops.
pub async fn open_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (dir, store)
}

/// A fixed instant, so stored timestamps can be compared exactly.
pub fn t(offset_secs: i64) -> OffsetDateTime {
    from_unix(1_700_000_000 + offset_secs)
}

pub fn account(name: &str) -> Account {
    Account {
        id: UserId::generate(),
        username: Username::parse(name).unwrap(),
        password_hash: PasswordHash::from_stored(format!("hash-of-{name}")),
        created_at: t(0),
        disabled: false,
    }
}

/// Inserts an account named `name` and returns it.
pub async fn given_account(store: &SqliteStore, name: &str) -> Account {
    let account = account(name);
    store.insert_account(&account).await.unwrap();
    account
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
