//! The audit trail: every field stored, read back newest first.

use tessera_core::audit::{AuditEvent, AuditKind};
use tessera_core::id::SessionId;
use tessera_core::store::AuditStore;
use tessera_store::sqlite::AuditRecord;

use super::fixtures::{given_account, t};
use crate::helpers::open_store;

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
