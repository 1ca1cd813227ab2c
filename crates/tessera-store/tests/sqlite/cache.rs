//! The session cache: lookups are served from memory, and a session deleted anywhere —
//! this store, another process on the same data directory, or by hand — stops being served.

use std::time::Duration;

use sqlx::Executor as _;
use tessera_core::store::SessionStore;
use tessera_store::SqliteStore;

use crate::helpers::{eventually, open_store, raw_connection, session};
use crate::sql::fixtures::given_account;

/// The other store's poll runs every 100 ms; this leaves ample room on a loaded machine.
const PROPAGATION: Duration = Duration::from_secs(2);

#[tokio::test]
async fn session_lookups_are_served_from_the_cache() {
    let (dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();
    assert_eq!(store.cached_sessions(), 1, "write-through");

    // Remove the row behind the store's back without leaving a revocation: only the cache
    // can still answer.
    let mut conn = raw_connection(store.db_path()).await;
    conn.execute("DROP TRIGGER sessions_log_revocation").await.unwrap();
    conn.execute("DELETE FROM sessions").await.unwrap();
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap(), Some(s.clone()));

    let other = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(other.session(&alice.id, &s.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_miss_reads_through_and_is_cached_once_found() {
    let (dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();

    let other = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(other.cached_sessions(), 0);
    assert_eq!(other.session(&alice.id, &s.id).await.unwrap(), Some(s));
    assert_eq!(other.cached_sessions(), 1);
}

#[tokio::test]
async fn a_lookup_that_finds_nothing_is_not_cached() {
    let (dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session(&alice, 0);
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap(), None);
    assert_eq!(store.cached_sessions(), 0);

    // Created by another process a moment later: found at once, not hidden by a cached miss.
    let other = SqliteStore::open(dir.path()).await.unwrap();
    other.insert_session(&s).await.unwrap();
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap(), Some(s));
}

#[tokio::test]
async fn deleted_session_is_evicted_from_cache_of_other_process() {
    let (dir, server) = open_store().await;
    let alice = given_account(&server, "alice").await;
    let s = session(&alice, 0);
    server.insert_session(&s).await.unwrap();
    assert!(server.session(&alice.id, &s.id).await.unwrap().is_some());

    // The `tessera sessions revoke` process.
    let cli = SqliteStore::open(dir.path()).await.unwrap();
    assert!(cli.delete_session(&alice.id, &s.id).await.unwrap());
    cli.close().await;

    let revoked = eventually(PROPAGATION, || async { server.session(&alice.id, &s.id).await.unwrap().is_none() }).await;
    assert!(revoked, "the server still serves a session another process deleted");
    assert_eq!(server.cached_sessions(), 0);
}

#[tokio::test]
async fn sessions_revoked_for_a_user_by_other_process_are_evicted() {
    let (dir, server) = open_store().await;
    let alice = given_account(&server, "alice").await;
    let bob = given_account(&server, "bob").await;
    let (a1, a2, b) = (session(&alice, 0), session(&alice, 1), session(&bob, 0));
    for s in [&a1, &a2, &b] {
        server.insert_session(s).await.unwrap();
    }

    // The `tessera user disable` process.
    let cli = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(cli.delete_sessions_of(&alice.id, None).await.unwrap().len(), 2);
    cli.close().await;

    let revoked = eventually(PROPAGATION, || async { server.cached_sessions() == 1 }).await;
    assert!(revoked, "the server still caches sessions another process deleted");
    assert_eq!(server.session(&alice.id, &a1.id).await.unwrap(), None);
    assert_eq!(server.session(&alice.id, &a2.id).await.unwrap(), None);
    assert_eq!(server.session(&bob.id, &b.id).await.unwrap(), Some(b));
}

#[tokio::test]
async fn session_deleted_by_hand_in_the_database_is_evicted_too() {
    let (_dir, server) = open_store().await;
    let alice = given_account(&server, "alice").await;
    let s = session(&alice, 0);
    server.insert_session(&s).await.unwrap();

    let mut conn = raw_connection(server.db_path()).await;
    conn.execute("DELETE FROM sessions").await.unwrap();

    let revoked = eventually(PROPAGATION, || async { server.session(&alice.id, &s.id).await.unwrap().is_none() }).await;
    assert!(revoked, "the revocation log trigger did not record a hand-made delete");
}

#[tokio::test]
async fn deleting_the_account_revokes_its_cached_sessions() {
    let (_dir, server) = open_store().await;
    let alice = given_account(&server, "alice").await;
    let s = session(&alice, 0);
    server.insert_session(&s).await.unwrap();

    // No trait method deletes accounts; an operator might, and the cascade must still be seen.
    let mut conn = raw_connection(server.db_path()).await;
    conn.execute("PRAGMA foreign_keys = ON").await.unwrap();
    conn.execute("DELETE FROM accounts").await.unwrap();

    let revoked = eventually(PROPAGATION, || async { server.session(&alice.id, &s.id).await.unwrap().is_none() }).await;
    assert!(revoked, "sessions removed by ON DELETE CASCADE stayed cached");
}

#[tokio::test]
async fn revocations_pruned_before_they_were_read_empty_the_cache() {
    let (_dir, server) = open_store().await;
    let alice = given_account(&server, "alice").await;
    let s = session(&alice, 0);
    server.insert_session(&s).await.unwrap();

    // As if the server had stalled while another process deleted the session and, ten
    // minutes later, pruned the log row: the server only ever sees a later sequence number.
    let mut conn = raw_connection(server.db_path()).await;
    conn.execute("DROP TRIGGER sessions_log_revocation").await.unwrap();
    conn.execute("DELETE FROM sessions").await.unwrap();
    conn.execute(
        "INSERT INTO session_revocations (seq, user_id, session_id, at) \
         VALUES ((SELECT COALESCE(MAX(seq), 0) + 5 FROM session_revocations), zeroblob(16), zeroblob(16), unixepoch())",
    )
    .await
    .unwrap();

    let emptied = eventually(PROPAGATION, || async { server.cached_sessions() == 0 }).await;
    assert!(emptied, "a gap in the revocation log went unnoticed");
    assert_eq!(server.session(&alice.id, &s.id).await.unwrap(), None);
}

#[tokio::test]
async fn opening_after_the_log_was_pruned_keeps_the_cache() {
    let (dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let old = session(&alice, 0);
    store.insert_session(&old).await.unwrap();
    store.delete_session(&alice.id, &old.id).await.unwrap();
    let mut conn = raw_connection(store.db_path()).await;
    conn.execute("DELETE FROM session_revocations").await.unwrap();

    let server = SqliteStore::open(dir.path()).await.unwrap();
    let (kept, revoked) = (session(&alice, 1), session(&alice, 2));
    server.insert_session(&kept).await.unwrap();
    server.insert_session(&revoked).await.unwrap();
    store.delete_session(&alice.id, &revoked.id).await.unwrap();

    // The first entry after the pruned ones is not a gap: only what it names is evicted
    // (a gap would empty the cache, and the count would go to 0 instead).
    let evicted = eventually(PROPAGATION, || async { server.cached_sessions() == 1 }).await;
    assert!(evicted, "the revocation was not applied, or the whole cache was dropped");
    assert_eq!(server.session(&alice.id, &kept.id).await.unwrap(), Some(kept));
}
