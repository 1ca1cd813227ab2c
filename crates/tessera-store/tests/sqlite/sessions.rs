use tessera_core::id::SessionId;
use tessera_core::store::{SessionStore, StoreError};

use crate::helpers::{open_store, session};
use crate::sql::fixtures::{account, given_account, t};

#[tokio::test]
async fn inserted_session_is_returned_with_every_field() {
    let (dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let mut s = session(&alice, 0);
    s.user_agent = None;
    store.insert_session(&s).await.unwrap();

    assert_eq!(store.session(&alice.id, &s.id).await.unwrap(), Some(s.clone()));
    // And from the file, not only from the cache.
    let other = tessera_store::SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(other.session(&alice.id, &s.id).await.unwrap(), Some(s));
}

#[tokio::test]
async fn session_of_another_user_is_not_returned() {
    let (dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let mallory = given_account(&store, "mallory").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();

    assert_eq!(store.session(&mallory.id, &s.id).await.unwrap(), None, "cached");
    let uncached = tessera_store::SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(uncached.session(&mallory.id, &s.id).await.unwrap(), None, "from the file");
}

#[tokio::test]
async fn unknown_session_is_none() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    assert_eq!(store.session(&alice.id, &SessionId::generate()).await.unwrap(), None);
}

#[tokio::test]
async fn session_of_an_unknown_account_is_refused() {
    let (_dir, store) = open_store().await;
    let ghost = account("ghost");
    assert!(matches!(store.insert_session(&session(&ghost, 0)).await, Err(StoreError::Other(_))));
}

#[tokio::test]
async fn reused_session_id_is_a_conflict() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();
    assert!(matches!(store.insert_session(&s).await, Err(StoreError::Conflict)));
}

#[tokio::test]
async fn touch_moves_last_seen_at_in_the_file_and_the_cache() {
    let (dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();

    store.touch_session(&alice.id, &s.id, t(60)).await.unwrap();
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap().unwrap().last_seen_at, t(60));
    let other = tessera_store::SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(other.session(&alice.id, &s.id).await.unwrap().unwrap().last_seen_at, t(60));
}

#[tokio::test]
async fn touch_never_moves_last_seen_at_back() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();
    store.touch_session(&alice.id, &s.id, t(60)).await.unwrap();
    store.touch_session(&alice.id, &s.id, t(30)).await.unwrap();
    assert_eq!(store.sessions_of(&alice.id).await.unwrap()[0].last_seen_at, t(60));
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap().unwrap().last_seen_at, t(60));
}

#[tokio::test]
async fn touch_by_another_user_changes_nothing() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let mallory = given_account(&store, "mallory").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();
    store.touch_session(&mallory.id, &s.id, t(60)).await.unwrap();
    assert_eq!(store.sessions_of(&alice.id).await.unwrap()[0].last_seen_at, t(0));
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap().unwrap().last_seen_at, t(0));
}

#[tokio::test]
async fn sessions_of_lists_only_that_users_sessions_oldest_first() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let bob = given_account(&store, "bob").await;
    let newest = session(&alice, 20);
    let oldest = session(&alice, -20);
    let (tie_a, tie_b) = (session(&alice, 0), session(&alice, 0));
    for s in [&newest, &oldest, &tie_a, &tie_b, &session(&bob, 0)] {
        store.insert_session(s).await.unwrap();
    }
    // Creation times that tie (to the millisecond) are ordered by insertion: the oldest first,
    // exactly, so `session.max_per_user` evicts the right one.
    let listed: Vec<SessionId> = store.sessions_of(&alice.id).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(listed, vec![oldest.id, tie_a.id, tie_b.id, newest.id]);
}

#[tokio::test]
async fn deleted_session_is_gone_at_once() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();
    assert!(store.session(&alice.id, &s.id).await.unwrap().is_some());

    assert!(store.delete_session(&alice.id, &s.id).await.unwrap());
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap(), None);
    assert!(store.sessions_of(&alice.id).await.unwrap().is_empty());
    assert_eq!(store.cached_sessions(), 0);
}

#[tokio::test]
async fn deleting_an_unknown_or_foreign_session_reports_false() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let mallory = given_account(&store, "mallory").await;
    let s = session(&alice, 0);
    store.insert_session(&s).await.unwrap();

    assert!(!store.delete_session(&alice.id, &SessionId::generate()).await.unwrap());
    assert!(!store.delete_session(&mallory.id, &s.id).await.unwrap());
    assert_eq!(store.session(&alice.id, &s.id).await.unwrap(), Some(s));
}

#[tokio::test]
async fn delete_sessions_of_keeps_the_named_session_and_returns_the_others() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let bob = given_account(&store, "bob").await;
    let (a1, a2, current) = (session(&alice, 0), session(&alice, 1), session(&alice, 2));
    let bobs = session(&bob, 0);
    for s in [&a1, &a2, &current, &bobs] {
        store.insert_session(s).await.unwrap();
    }

    let mut deleted = store.delete_sessions_of(&alice.id, Some(&current.id)).await.unwrap();
    deleted.sort();
    let mut expected = vec![a1.id, a2.id];
    expected.sort();
    assert_eq!(deleted, expected);
    assert_eq!(store.session(&alice.id, &a1.id).await.unwrap(), None);
    assert_eq!(store.session(&alice.id, &a2.id).await.unwrap(), None);
    assert_eq!(store.session(&alice.id, &current.id).await.unwrap(), Some(current));
    assert_eq!(store.session(&bob.id, &bobs.id).await.unwrap(), Some(bobs));
}

#[tokio::test]
async fn delete_sessions_of_without_keep_deletes_every_session_of_the_user() {
    let (_dir, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let (a1, a2) = (session(&alice, 0), session(&alice, 1));
    store.insert_session(&a1).await.unwrap();
    store.insert_session(&a2).await.unwrap();

    assert_eq!(store.delete_sessions_of(&alice.id, None).await.unwrap().len(), 2);
    assert!(store.sessions_of(&alice.id).await.unwrap().is_empty());
    assert_eq!(store.session(&alice.id, &a1.id).await.unwrap(), None);
    assert!(store.delete_sessions_of(&alice.id, None).await.unwrap().is_empty());
}
