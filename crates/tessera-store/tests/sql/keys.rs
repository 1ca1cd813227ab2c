//! Signing keys and server secrets: seen by every store opened on the same database, listed
//! oldest first, retired in one step, and a secret and a first key created once however many
//! instances start at the same moment.

use std::future::Future;
use std::sync::Arc;

use tessera_core::store::{KeyStore, StoreError, StoredKey};
use tokio::sync::Barrier;

use super::fixtures::t;
use crate::helpers::{open_again, open_store};

/// A key named `kid` created at `t(created)`, signing a minute later.
fn key(kid: &str, created: i64) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        alg: "EdDSA".into(),
        private: format!("pkcs8 of {kid}").into_bytes().into(),
        sealed: false,
        created_at: t(created),
        activates_at: t(created + 60),
        retires_at: None,
    }
}

#[tokio::test]
async fn inserted_keys_are_listed_oldest_first_with_every_field() {
    let (db, store) = open_store().await;
    let sealed = StoredKey { sealed: true, alg: "ES256".into(), retires_at: Some(t(500)), ..key("b-sealed", 0) };
    // "B-upper" sorts before "a-tie" byte-wise, though after it in most locales.
    let (newest, tie, upper) = (key("newest", 100), key("a-tie", 0), key("B-upper", 0));
    for k in [&newest, &sealed, &tie, &upper] {
        store.insert_key(k).await.unwrap();
    }

    let expected = vec![upper, tie, sealed, newest];
    assert_eq!(store.keys().await.unwrap(), expected, "ties broken by kid, byte-wise");
    store.close().await;
    let reopened = open_again(&db).await;
    assert_eq!(reopened.keys().await.unwrap(), expected, "seen when opened again");
}

#[tokio::test]
async fn no_keys_is_an_empty_list() {
    let (_db, store) = open_store().await;
    assert!(store.keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn reused_kid_is_a_conflict() {
    let (_db, store) = open_store().await;
    store.insert_key(&key("k1", 0)).await.unwrap();
    assert!(matches!(store.insert_key(&key("k1", 10)).await, Err(StoreError::Conflict)));
    assert_eq!(store.keys().await.unwrap(), vec![key("k1", 0)]);
}

#[tokio::test]
async fn retiring_dates_every_active_key_except_the_one_named() {
    let (_db, store) = open_store().await;
    let long_retired = StoredKey { retires_at: Some(t(50)), ..key("k0", 0) };
    for k in [&long_retired, &key("k1", 10), &key("k2", 20), &key("k3", 30)] {
        store.insert_key(k).await.unwrap();
    }

    store.retire_keys("k3", t(400)).await.unwrap();
    let retired: Vec<_> = store.keys().await.unwrap().into_iter().map(|k| (k.kid, k.retires_at)).collect();
    assert_eq!(
        retired,
        vec![("k0".into(), Some(t(50))), ("k1".into(), Some(t(400))), ("k2".into(), Some(t(400))), ("k3".into(), None)],
        "an already retired key keeps its date"
    );
}

#[tokio::test]
async fn deleted_key_is_no_longer_listed() {
    let (_db, store) = open_store().await;
    store.insert_key(&key("old", 0)).await.unwrap();
    store.insert_key(&key("new", 10)).await.unwrap();

    store.delete_key("old").await.unwrap();
    store.delete_key("never-existed").await.unwrap();
    assert_eq!(store.keys().await.unwrap(), vec![key("new", 10)]);
}

#[tokio::test]
async fn secret_or_insert_keeps_the_first_value() {
    let (db, store) = open_store().await;
    assert_eq!(store.secret_or_insert("chain", b"first").await.unwrap(), b"first");
    assert_eq!(store.secret_or_insert("chain", b"second").await.unwrap(), b"first");
    assert_eq!(store.secret_or_insert("csrf", b"other").await.unwrap(), b"other", "kept apart by name");

    store.close().await;
    let reopened = open_again(&db).await;
    assert_eq!(reopened.secret_or_insert("chain", b"third").await.unwrap(), b"first", "opened again");
}

/// How many callers race in the tests of instances starting at once.
const CALLERS: usize = 8;

/// Releases `CALLERS` calls of `call(store, i)` at one moment, alternating between `stores`,
/// and returns their answers in caller order.
async fn at_once<S, F, Fut>(stores: [&S; 2], call: F) -> Vec<Fut::Output>
where
    S: Clone + Send + 'static,
    F: Fn(S, usize) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send,
{
    let start = Arc::new(Barrier::new(CALLERS));
    let callers: Vec<_> = (0..CALLERS)
        .map(|i| {
            let start = Arc::clone(&start);
            let call = call(stores[i % 2].clone(), i);
            tokio::spawn(async move {
                start.wait().await;
                call.await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for caller in callers {
        answers.push(caller.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_at_once_agree_on_one_secret() {
    let (db, first) = open_store().await;
    let second = open_again(&db).await;
    let seen = at_once([&first, &second], |store, i| async move {
        store.secret_or_insert("chain", format!("from-{i}").as_bytes()).await.unwrap()
    })
    .await;

    let winner = seen[0].clone();
    assert!(seen.iter().all(|value| *value == winner), "every caller got the stored value: {seen:?}");
    assert!((0..CALLERS).any(|i| winner == format!("from-{i}").as_bytes()), "and it is one caller's value");
    assert_eq!(first.secret_or_insert("chain", b"later").await.unwrap(), winner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_instances_creating_a_first_key_at_once_exactly_one_succeeds() {
    let (db, first) = open_store().await;
    let second = open_again(&db).await;
    let answers = at_once([&first, &second], |store, i| async move {
        store.insert_key_if_none_usable(&key(&format!("k{i}"), 0), t(0)).await.unwrap()
    })
    .await;

    assert_eq!(answers.iter().filter(|inserted| **inserted).count(), 1);
    assert_eq!(first.keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_first_key_is_inserted_only_while_no_key_of_its_algorithm_is_usable() {
    let (_db, store) = open_store().await;
    assert!(store.insert_key_if_none_usable(&key("a", 0), t(0)).await.unwrap());
    assert!(!store.insert_key_if_none_usable(&key("b", 0), t(0)).await.unwrap(), "a is usable");
    let other_alg = StoredKey { alg: "ES256".into(), ..key("c", 0) };
    assert!(store.insert_key_if_none_usable(&other_alg, t(0)).await.unwrap(), "another algorithm");
    store.retire_keys("none", t(100)).await.unwrap();
    assert!(!store.insert_key_if_none_usable(&key("d", 0), t(99)).await.unwrap(), "retiring later is usable");
    assert!(store.insert_key_if_none_usable(&key("e", 0), t(100)).await.unwrap(), "retired: a new one goes in");
}
