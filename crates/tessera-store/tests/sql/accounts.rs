//! Accounts: found by name and by id, listed oldest first, updated in place, and a username
//! taken once however many callers race for it.

use tessera_core::id::UserId;
use tessera_core::password::PasswordHash;
use tessera_core::store::{AccountStore, StoreError};
use tessera_core::username::Username;

use super::fixtures::{account, given_account, t};
use crate::helpers::open_store;

#[tokio::test]
async fn inserted_account_is_found_by_username_and_by_id() {
    let (_db, store) = open_store().await;
    let alice = given_account(&store, "alice").await;

    let by_name = store.account_by_username(&alice.username).await.unwrap().unwrap();
    let by_id = store.account_by_id(&alice.id).await.unwrap().unwrap();
    for found in [by_name, by_id] {
        assert_eq!(found.id, alice.id);
        assert_eq!(found.username, alice.username);
        assert_eq!(found.password_hash, alice.password_hash);
        assert_eq!(found.created_at, alice.created_at);
        assert!(!found.disabled);
    }
}

#[tokio::test]
async fn unknown_account_is_none() {
    let (_db, store) = open_store().await;
    given_account(&store, "alice").await;
    assert!(store.account_by_username(&Username::parse("bob").unwrap()).await.unwrap().is_none());
    assert!(store.account_by_id(&UserId::generate()).await.unwrap().is_none());
}

#[tokio::test]
async fn taken_username_is_a_conflict() {
    let (_db, store) = open_store().await;
    given_account(&store, "alice").await;
    // `Username::parse` folds case, so "ALICE" is the same name.
    let again = account("ALICE");
    assert!(matches!(store.insert_account(&again).await, Err(StoreError::Conflict)));
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_registrations_of_one_name_exactly_one_succeeds() {
    let (_db, store) = open_store().await;
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.insert_account(&account("alice")).await })
        })
        .collect();

    let mut created = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(()) => created += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn accounts_are_listed_oldest_first() {
    let (_db, store) = open_store().await;
    let mut newer = account("carol");
    newer.created_at = t(100);
    let mut older = account("bob");
    older.created_at = t(-100);
    store.insert_account(&newer).await.unwrap();
    store.insert_account(&older).await.unwrap();
    // Same second as each other: ordered by id, which for UUIDv7 is creation order.
    let first_tie = given_account(&store, "dave").await;
    let second_tie = given_account(&store, "erin").await;

    let listed: Vec<UserId> = store.list_accounts().await.unwrap().iter().map(|a| a.id).collect();
    assert_eq!(listed, vec![older.id, first_tie.id, second_tie.id, newer.id]);
}

#[tokio::test]
async fn new_password_hash_is_stored() {
    let (_db, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let bob = given_account(&store, "bob").await;
    let new_hash = PasswordHash::from_stored("$argon2id$new".into());
    assert!(store.set_password_hash(&alice.id, &alice.password_hash, &new_hash).await.unwrap());
    assert_eq!(store.account_by_id(&alice.id).await.unwrap().unwrap().password_hash, new_hash);
    // Compare-and-set: a change decided against the old hash loses once another one won.
    let late = PasswordHash::from_stored("$argon2id$late".into());
    assert!(!store.set_password_hash(&alice.id, &alice.password_hash, &late).await.unwrap());
    assert_eq!(store.account_by_id(&alice.id).await.unwrap().unwrap().password_hash, new_hash);
    assert_eq!(store.account_by_id(&bob.id).await.unwrap().unwrap().password_hash, bob.password_hash, "others kept");
}

#[tokio::test]
async fn disabling_and_enabling_an_account_is_stored() {
    let (_db, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    assert!(store.set_disabled(&alice.id, true).await.unwrap());
    assert!(store.account_by_username(&alice.username).await.unwrap().unwrap().disabled);
    assert!(store.set_disabled(&alice.id, false).await.unwrap());
    assert!(!store.account_by_id(&alice.id).await.unwrap().unwrap().disabled);
}

#[tokio::test]
async fn disabling_an_unknown_account_reports_false() {
    let (_db, store) = open_store().await;
    assert!(!store.set_disabled(&UserId::generate(), true).await.unwrap());
}
