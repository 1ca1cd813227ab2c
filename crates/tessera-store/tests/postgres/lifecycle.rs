//! How the store is connected, migrated, shared by instances and closed, and what an outage
//! or a misconfiguration turns into.

use std::time::{Duration, Instant};

use tessera_core::id::UserId;
use tessera_core::store::{AccountStore, StoreError};
use tessera_store::PgStore;

use crate::helpers::{TestSchema, admin_connection, open_store, server_url, with_database};
use crate::sql::fixtures::given_account;

/// Rows in sqlx's bookkeeping table: one per applied migration.
async fn applied_migrations(schema: &TestSchema) -> i64 {
    let mut conn = schema.connection().await;
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&mut conn).await.unwrap()
}

#[tokio::test]
async fn migrate_again_is_a_no_op() {
    let (schema, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let applied = applied_migrations(&schema).await;
    assert!(applied >= 1);

    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(applied_migrations(&schema).await, applied);
    assert!(store.account_by_id(&alice.id).await.unwrap().is_some(), "data kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_at_once_both_start() {
    let schema = TestSchema::create().await;
    let url = schema.url();
    let (first, second) = tokio::join!(PgStore::connect(&url), PgStore::connect(&url));
    let (first, second) = (first.unwrap(), second.unwrap());

    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).unwrap().count();
    assert_eq!(applied_migrations(&schema).await, migrations as i64, "every migration ran once");
    let alice = given_account(&first, "alice").await;
    assert!(second.account_by_id(&alice.id).await.unwrap().is_some(), "one database behind both");
}

#[tokio::test]
async fn closed_store_is_unavailable() {
    let (_schema, store) = open_store().await;
    store.ping().await.unwrap();
    let clone = store.clone();
    store.close().await;
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(clone.account_by_id(&UserId::generate()).await, Err(StoreError::Unavailable(_))), "every clone");
}

#[tokio::test]
async fn unreachable_server_is_unavailable_within_seconds() {
    let started = Instant::now();
    // Port 1 (tcpmux) is closed on any machine that runs these tests: connections are refused.
    let result = PgStore::connect("postgres://postgres@127.0.0.1:1/test").await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{:?}", result.err());
    assert!(started.elapsed() < Duration::from_secs(5), "gave up after {:?}", started.elapsed());
}

#[tokio::test]
async fn unknown_database_is_an_error_not_an_outage() {
    // Make sure the server is up, so the failure below is the database name's.
    drop(admin_connection().await);
    let url = with_database(&server_url(), "tessera_no_such_database");

    match PgStore::connect(&url).await {
        Err(StoreError::Other(message)) => assert!(message.contains("tessera_no_such_database"), "{message}"),
        Err(e) => panic!("expected Other, got {e}"),
        Ok(_) => panic!("connected to a database that does not exist"),
    }
}

#[tokio::test]
async fn store_reconnects_after_its_connections_are_terminated() {
    let (schema, store) = open_store().await;
    given_account(&store, "alice").await;

    // What a PostgreSQL restart or failover does to the pool's idle connections.
    let mut admin = admin_connection().await;
    let terminated: Vec<bool> =
        sqlx::query_scalar("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(schema.name())
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert!(!terminated.is_empty() && terminated.iter().all(|done| *done), "{terminated:?}");

    store.ping().await.unwrap();
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn schema_refuses_malformed_ids() {
    let (schema, _store) = open_store().await;
    let mut conn = schema.connection().await;
    let result = sqlx::query(
        "INSERT INTO accounts (id, username, password_hash, created_at) VALUES ('\\x0102'::bytea, 'x', 'h', 0)",
    )
    .execute(&mut conn)
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.as_database_error().and_then(|e| e.code()).as_deref(), Some("23514"), "check_violation");
}

#[tokio::test]
async fn failed_migration_does_not_block_later_ones() {
    let (schema, store) = open_store().await;
    // An applied migration that no longer matches its file: the migrator refuses to go on,
    // after it has taken its database-wide advisory lock.
    let mut conn = schema.connection().await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea").execute(&mut conn).await.unwrap();
    assert!(matches!(store.migrate().await, Err(StoreError::Other(_))));

    // Had the lock stayed with a pooled connection, every later migration on this database
    // would wait for it forever.
    let other = TestSchema::create().await;
    let opened = tokio::time::timeout(Duration::from_secs(10), PgStore::connect(&other.url())).await;
    assert!(matches!(opened, Ok(Ok(_))), "the migration lock was released");
    assert!(store.ping().await.is_ok(), "the failing store itself still works");
}
