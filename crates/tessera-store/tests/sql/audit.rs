//! The audit trail: every field stored, read back newest first; repeats of a folding kind
//! counted in one record per window; old records pruned.

use tessera_core::audit::{AuditEvent, AuditKind};
use tessera_core::id::SessionId;
use tessera_core::store::AuditStore;
use tessera_store::sqlite::AuditRecord;

use super::fixtures::{given_account, t};
use crate::helpers::{open_again, open_store};

#[tokio::test]
async fn appended_events_are_stored_with_every_field() {
    let (_db, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    let sid = SessionId::generate();
    let event = AuditEvent::new(t(0), AuditKind::LoginSucceeded)
        .user(alice.id)
        .session(sid)
        .username("alice")
        .ip(Some("192.0.2.7".into()))
        .detail("password");
    store.append_audit(&event).await.unwrap();

    let records = store.recent_audit(10).await.unwrap();
    assert_eq!(records.len(), 1);
    let AuditRecord { at, kind, user_id, session_id, username, ip, detail, .. } = records[0].clone();
    assert_eq!(at, t(0));
    assert_eq!(kind, "login_succeeded");
    assert_eq!(user_id, Some(alice.id));
    assert_eq!(session_id, Some(sid));
    assert_eq!(username.as_deref(), Some("alice"));
    assert_eq!(ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(detail.as_deref(), Some("password"));
}

#[tokio::test]
async fn event_without_an_account_is_stored() {
    let (_db, store) = open_store().await;
    store
        .append_audit(&AuditEvent::new(t(0), AuditKind::LoginFailed).username("nobody").detail("unknown user"))
        .await
        .unwrap();
    let record = &store.recent_audit(1).await.unwrap()[0];
    assert_eq!(record.kind, "login_failed");
    assert_eq!(record.user_id, None);
    assert_eq!(record.session_id, None);
    assert_eq!(record.ip, None);
}

#[tokio::test]
async fn recent_audit_lists_the_newest_first_up_to_the_limit() {
    let (_db, store) = open_store().await;
    for kind in [AuditKind::AccountCreated, AuditKind::LoginSucceeded, AuditKind::Logout] {
        store.append_audit(&AuditEvent::new(t(0), kind)).await.unwrap();
    }
    let records = store.recent_audit(2).await.unwrap();
    let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["logout", "login_succeeded"]);
    assert!(records[0].seq > records[1].seq, "seq increases with every stored event");
}

#[tokio::test]
async fn empty_trail_reads_as_no_records() {
    let (_db, store) = open_store().await;
    assert!(store.recent_audit(10).await.unwrap().is_empty());
}

fn throttled(at: i64, ip: &str) -> AuditEvent {
    AuditEvent::new(t(at), AuditKind::LoginThrottled).username("alice").ip(Some(ip.into()))
}

#[tokio::test]
async fn identical_repeats_within_a_window_are_one_record_with_their_count() {
    let (_db, store) = open_store().await;
    // t(0) to t(39) share one window (windows start on the minute: t(40) begins the next).
    for i in 0..200 {
        store.append_audit(&throttled(i % 40, "192.0.2.7")).await.unwrap();
    }
    let records = store.recent_audit(10).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].count, 200);
    assert_eq!((records[0].at, records[0].last_at), (t(0), t(39)), "the first and the last event");
    assert_eq!(records[0].username.as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_new_window_or_any_other_field_starts_a_new_record() {
    let (_db, store) = open_store().await;
    store.append_audit(&throttled(0, "192.0.2.7")).await.unwrap();
    store.append_audit(&throttled(40, "192.0.2.7")).await.unwrap();
    store.append_audit(&throttled(0, "192.0.2.8")).await.unwrap();
    store.append_audit(&throttled(0, "192.0.2.7").detail("other")).await.unwrap();
    store
        .append_audit(&AuditEvent::new(t(0), AuditKind::LoginFailed).username("alice").ip(Some("192.0.2.7".into())))
        .await
        .unwrap();
    store.append_audit(&throttled(1, "192.0.2.7")).await.unwrap();
    let records = store.recent_audit(10).await.unwrap();
    let counts: Vec<i64> = records.iter().map(|r| r.count).collect();
    assert_eq!(counts, [1, 1, 1, 1, 2], "{records:?}");
}

#[tokio::test]
async fn kinds_that_do_not_fold_are_one_record_per_event() {
    let (_db, store) = open_store().await;
    let alice = given_account(&store, "alice").await;
    for _ in 0..3 {
        store
            .append_audit(&AuditEvent::new(t(0), AuditKind::LoginSucceeded).user(alice.id).ip(Some("192.0.2.7".into())))
            .await
            .unwrap();
    }
    let records = store.recent_audit(10).await.unwrap();
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(records.iter().all(|r| r.count == 1 && r.last_at == r.at), "{records:?}");
}

#[tokio::test]
async fn two_instances_counting_the_same_repeats_lose_none() {
    let (db, one) = open_store().await;
    let two = open_again(&db).await;
    let run = |store| async move {
        for i in 0..100 {
            AuditStore::append_audit(store, &throttled(i % 40, "192.0.2.7")).await.unwrap();
        }
    };
    tokio::join!(run(&one), run(&two), run(&one), run(&two));
    let records = one.recent_audit(10).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].count, 400);
}

#[tokio::test]
async fn pruning_deletes_records_whose_last_event_is_older_in_batches() {
    let (_db, store) = open_store().await;
    // More than one batch of old records.
    for _ in 0..1500 {
        store.append_audit(&AuditEvent::new(t(0), AuditKind::AccountCreated)).await.unwrap();
    }
    // A folded record whose first event is old and whose last is not stays.
    store.append_audit(&throttled(0, "192.0.2.7")).await.unwrap();
    store.append_audit(&throttled(30, "192.0.2.7")).await.unwrap();
    store.append_audit(&AuditEvent::new(t(100), AuditKind::Logout)).await.unwrap();

    assert_eq!(store.prune_audit(t(20)).await.unwrap(), 1500);
    let kinds: Vec<String> = store.recent_audit(10).await.unwrap().into_iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["logout", "login_throttled"]);
    assert_eq!(store.prune_audit(t(20)).await.unwrap(), 0, "nothing left to prune");
    assert_eq!(store.prune_audit(t(101)).await.unwrap(), 2);
    assert!(store.recent_audit(10).await.unwrap().is_empty());
}
