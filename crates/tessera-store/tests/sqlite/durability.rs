//! What a restart must keep, and how the store is opened and shared.

use std::sync::Arc;

use tessera_core::audit::{AuditEvent, AuditKind};
use tessera_core::store::{AccountStore, AuditStore, SessionStore, Store, ThrottleStore};
use tessera_core::throttle::ThrottleKey;
use tessera_store::SqliteStore;
use time::Duration;

use crate::helpers::session;
use crate::sql::fixtures::{given_account, t};

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let alice = given_account(&store, "alice").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();
    let key = ThrottleKey::Account("alice".into());
    store.record_failure(&key, t(0), Duration::hours(1)).await.unwrap();
    store.append_audit(&AuditEvent::new(t(0), AuditKind::AccountCreated).user(alice.id)).await.unwrap();
    store.close().await;

    let reopened = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(reopened.account_by_id(&alice.id).await.unwrap().map(|a| a.username), Some(alice.username));
    assert_eq!(reopened.session(&alice.id, &s.id).await.unwrap(), Some(s));
    assert_eq!(reopened.failures(&key).await.unwrap().map(|f| f.count), Some(1));
    assert_eq!(reopened.recent_audit(10).await.unwrap()[0].user_id, Some(alice.id));
    reopened.close().await;
}

#[tokio::test]
async fn data_survives_a_drop_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let alice = given_account(&store, "alice").await;
    drop(store);

    let reopened = SqliteStore::open(dir.path()).await.unwrap();
    assert!(reopened.account_by_id(&alice.id).await.unwrap().is_some());
}

#[tokio::test]
async fn open_creates_a_missing_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested").join("tessera-data");
    let store = SqliteStore::open(&data_dir).await.unwrap();
    assert_eq!(store.db_path(), data_dir.join("tessera.db"));
    assert!(store.db_path().is_file());
}

#[cfg(unix)]
#[tokio::test]
async fn created_data_directory_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("tessera-data");
    SqliteStore::open(&data_dir).await.unwrap();
    assert_eq!(std::fs::metadata(&data_dir).unwrap().permissions().mode() & 0o777, 0o700);
}

#[tokio::test]
async fn store_serves_as_a_shared_dyn_store() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    store.ping().await.unwrap();
    assert!(store.list_accounts().await.unwrap().is_empty());
}
