//! Refresh families: stored with their session, and advanced only by compare-and-set on the
//! generation, so that of any number of concurrent rotations — in this process or another one
//! on the same data directory — exactly one wins, and no cache serves a family left behind.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor as _;
use tessera_core::session::RefreshState;
use tessera_core::store::SessionStore;
use tessera_store::SqliteStore;
use tokio::sync::Barrier;

use crate::helpers::{eventually, open_store, raw_connection, refresh_state, session, session_with_refresh};
use crate::sql::fixtures::{given_account, t};

/// Another store's poll of the change log runs every 100 ms; ample room on a loaded machine.
const PROPAGATION: Duration = Duration::from_secs(2);

#[tokio::test]
async fn refresh_family_round_trips_through_insert_lookup_and_listing() {
    let (dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session_with_refresh(&alice, 0);
    store.insert_session(&s).await.unwrap();

    assert_eq!(store.session(&alice.id, &s.id).await.unwrap(), Some(s.clone()));
    assert_eq!(store.sessions_of(&alice.id).await.unwrap(), vec![s.clone()]);
    let uncached = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(uncached.session(&alice.id, &s.id).await.unwrap(), Some(s));
}

#[tokio::test]
async fn session_without_a_family_reads_back_without_one() {
    let (dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();
    let uncached = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(uncached.session(&alice.id, &s.id).await.unwrap().unwrap().refresh, None);
}

#[tokio::test]
async fn rotation_from_the_current_generation_succeeds_once() {
    let (dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session_with_refresh(&alice, 0);
    store.insert_session(&s).await.unwrap();
    let next = refresh_state(1, 60);

    assert!(store.rotate_refresh(&alice.id, &s.id, 0, &next).await.unwrap());
    assert!(!store.rotate_refresh(&alice.id, &s.id, 0, &refresh_state(1, 61)).await.unwrap(), "a second time");
    let uncached = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(uncached.session(&alice.id, &s.id).await.unwrap().unwrap().refresh, Some(next));
}

#[tokio::test]
async fn rotation_from_a_stale_generation_fails_and_changes_nothing() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session_with_refresh(&alice, 0);
    store.insert_session(&s).await.unwrap();
    let current = refresh_state(1, 60);
    store.rotate_refresh(&alice.id, &s.id, 0, &current).await.unwrap();

    assert!(!store.rotate_refresh(&alice.id, &s.id, 0, &refresh_state(2, 120)).await.unwrap());
    assert!(!store.rotate_refresh(&alice.id, &s.id, 7, &refresh_state(8, 120)).await.unwrap(), "from the future");
    assert_eq!(store.sessions_of(&alice.id).await.unwrap()[0].refresh, Some(current));
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap().unwrap().refresh, Some(current));
}

#[tokio::test]
async fn rotation_moves_last_seen_at_forward_never_back() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session_with_refresh(&alice, 0);
    store.insert_session(&s).await.unwrap();

    store.rotate_refresh(&alice.id, &s.id, 0, &refresh_state(1, 60)).await.unwrap();
    assert_eq!(store.sessions_of(&alice.id).await.unwrap()[0].last_seen_at, t(60));
    store.touch_session(&alice.id, &s.id, t(300)).await.unwrap();
    store.rotate_refresh(&alice.id, &s.id, 1, &refresh_state(2, 120)).await.unwrap();
    assert_eq!(store.sessions_of(&alice.id).await.unwrap()[0].last_seen_at, t(300));
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap().unwrap().last_seen_at, t(300));
}

#[tokio::test]
async fn rotation_of_another_users_session_fails() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let mallory = given_account(&store, "mallory").await;
    let s = session_with_refresh(&alice, 0);
    store.insert_session(&s).await.unwrap();

    assert!(!store.rotate_refresh(&mallory.id, &s.id, 0, &refresh_state(1, 60)).await.unwrap());
    assert_eq!(store.sessions_of(&alice.id).await.unwrap()[0].refresh, s.refresh);
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap(), Some(s));
}

#[tokio::test]
async fn rotation_of_a_session_without_a_family_fails() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();

    assert!(!store.rotate_refresh(&alice.id, &s.id, 0, &refresh_state(1, 60)).await.unwrap());
    assert_eq!(store.sessions_of(&alice.id).await.unwrap()[0].refresh, None);
}

#[tokio::test]
async fn rotation_of_a_deleted_session_fails() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session_with_refresh(&alice, 0);
    store.insert_session(&s).await.unwrap();
    store.delete_session(&alice.id, &s.id).await.unwrap();

    assert!(!store.rotate_refresh(&alice.id, &s.id, 0, &refresh_state(1, 60)).await.unwrap());
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap(), None);
}

#[tokio::test]
async fn lookup_after_a_rotation_returns_the_new_family() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session_with_refresh(&alice, 0);
    store.insert_session(&s).await.unwrap();
    assert_eq!(store.cached_sessions(), 1);

    let next = refresh_state(1, 60);
    store.rotate_refresh(&alice.id, &s.id, 0, &next).await.unwrap();
    let seen = store.session(&alice.id, &s.id).await.unwrap().unwrap();
    assert_eq!((seen.refresh, seen.last_seen_at), (Some(next), t(60)));
}

/// Rotates the family of session `s` of `user` from generation 0 in `n` tasks at once, each
/// through the store `stores[i % len]`; returns the states that were accepted.
async fn rotate_concurrently(
    stores: &[SqliteStore],
    user: tessera_core::id::UserId,
    s: tessera_core::id::SessionId,
    n: u32,
) -> Vec<RefreshState> {
    let start = Arc::new(Barrier::new(n as usize));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = stores[i as usize % stores.len()].clone();
            let start = Arc::clone(&start);
            // Every contender proposes generation 1 with its own hash, as N clients holding the
            // same refresh token would (each derives a different successor).
            let next =
                RefreshState { hash: tessera_core::secret::TokenHash::of(&i.to_be_bytes()), ..refresh_state(1, 60) };
            tokio::spawn(async move {
                start.wait().await;
                store.rotate_refresh(&user, &s, 0, &next).await.unwrap().then_some(next)
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        won.extend(task.await.unwrap());
    }
    won
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_sixteen_concurrent_rotations_from_one_generation_exactly_one_wins() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session_with_refresh(&alice, 0);
    store.insert_session(&s).await.unwrap();

    let won = rotate_concurrently(std::slice::from_ref(&store), alice.id, s.id, 16).await;
    assert_eq!(won.len(), 1, "{} rotations won", won.len());
    assert_eq!(store.sessions_of(&alice.id).await.unwrap()[0].refresh, Some(won[0]));
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap().unwrap().refresh, Some(won[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_rotations_through_two_processes_exactly_one_wins() {
    let (dir, server) = open_store().await;
    let other = SqliteStore::open(dir.path()).await.unwrap();
    let alice = given_account(&server, "alice").await;
    let s = session_with_refresh(&alice, 0);
    server.insert_session(&s).await.unwrap();
    assert!(other.session(&alice.id, &s.id).await.unwrap().is_some(), "cached there too");

    let won = rotate_concurrently(&[server.clone(), other.clone()], alice.id, s.id, 16).await;
    assert_eq!(won.len(), 1, "{} rotations won", won.len());
    // Whichever process lost: after its failed compare-and-set, it reads the winner's family.
    for store in [&server, &other] {
        assert_eq!(store.session(&alice.id, &s.id).await.unwrap().unwrap().refresh, Some(won[0]));
    }
}

#[tokio::test]
async fn stale_cached_family_is_evicted_when_a_rotation_from_it_fails() {
    let (_dir, server) = open_store().await;
    let alice = given_account(&server, "alice").await;
    let s = session_with_refresh(&alice, 0);
    server.insert_session(&s).await.unwrap();

    // Another process rotated, and its change-log entry has not been applied here yet: done by
    // hand without the log, so the cache stays stale for as long as this test needs.
    let mut conn = raw_connection(server.db_path()).await;
    conn.execute("DROP TRIGGER sessions_log_refresh_rotation").await.unwrap();
    let theirs = refresh_state(1, 60);
    sqlx::query("UPDATE sessions SET refresh_generation = 1, refresh_hash = ?1, refresh_rotated_at = ?2")
        .bind(theirs.hash.as_bytes().as_slice())
        .bind(tessera_core::clock::to_unix_ms(theirs.rotated_at))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(server.session(&alice.id, &s.id).await.unwrap().unwrap().refresh, s.refresh, "stale copy served");

    // The domain judged the token against generation 0 and tries to rotate from it: the SQL
    // compare-and-set refuses, and the domain's re-read must see generation 1.
    assert!(!server.rotate_refresh(&alice.id, &s.id, 0, &refresh_state(1, 61)).await.unwrap());
    assert_eq!(server.session(&alice.id, &s.id).await.unwrap().unwrap().refresh, Some(theirs));
}

#[tokio::test]
async fn rotation_by_another_process_fails_a_stale_rotation_here_and_the_reread_is_fresh() {
    let (dir, server) = open_store().await;
    let alice = given_account(&server, "alice").await;
    let s = session_with_refresh(&alice, 0);
    server.insert_session(&s).await.unwrap();

    let other = SqliteStore::open(dir.path()).await.unwrap();
    let theirs = refresh_state(1, 60);
    assert!(other.rotate_refresh(&alice.id, &s.id, 0, &theirs).await.unwrap());

    // No waiting for the change log: whether or not it was applied yet, this must hold.
    assert!(!server.rotate_refresh(&alice.id, &s.id, 0, &refresh_state(1, 61)).await.unwrap());
    assert_eq!(server.session(&alice.id, &s.id).await.unwrap().unwrap().refresh, Some(theirs));
}

#[tokio::test]
async fn rotation_by_another_process_reaches_this_cache_within_the_poll_interval() {
    let (dir, server) = open_store().await;
    let alice = given_account(&server, "alice").await;
    let s = session_with_refresh(&alice, 0);
    server.insert_session(&s).await.unwrap();

    let other = SqliteStore::open(dir.path()).await.unwrap();
    let theirs = refresh_state(1, 60);
    assert!(other.rotate_refresh(&alice.id, &s.id, 0, &theirs).await.unwrap());

    // Without any failed rotation here: the log entry the rotation wrote evicts the stale copy.
    let seen = eventually(PROPAGATION, || async {
        server.session(&alice.id, &s.id).await.unwrap().unwrap().refresh == Some(theirs)
    })
    .await;
    assert!(seen, "this process still serves the family another process rotated");
}
