//! The access-token denylist: every kind of entry reads back as written, expired entries are
//! not handed out, and a reader's cursor only ever moves forward past what it has seen.

use sqlx::Executor as _;
use tessera_core::id::{SessionId, TokenId, UserId};
use tessera_core::store::{Denied, DenyEntry, DenylistStore, StoreError};
use tessera_store::SqliteStore;

use crate::helpers::{open_store, raw_connection};
use crate::sql::fixtures::t;

/// An entry for a fresh `jti`, expiring at `t(expires)`.
fn token_entry(expires: i64) -> DenyEntry {
    DenyEntry { denied: Denied::Token(TokenId::generate()), expires_at: t(expires) }
}

#[tokio::test]
async fn every_kind_of_entry_round_trips() {
    let (_dir, store) = open_store().await;
    let entries = vec![
        DenyEntry { denied: Denied::Session(SessionId::generate()), expires_at: t(300) },
        DenyEntry { denied: Denied::Token(TokenId::generate()), expires_at: t(301) },
        DenyEntry { denied: Denied::IssuedBefore(UserId::generate(), t(-5)), expires_at: t(302) },
    ];
    store.deny(&entries).await.unwrap();

    let (read, cursor) = store.denied_since(0, t(0)).await.unwrap();
    assert_eq!(read, entries, "in the order denied");
    assert_eq!(cursor, 3);
}

#[tokio::test]
async fn expired_entries_are_not_returned() {
    let (_dir, store) = open_store().await;
    let (expired, at_the_second, live) = (token_entry(-1), token_entry(0), token_entry(1));
    store.deny(&[expired, at_the_second, live]).await.unwrap();

    let (read, _) = store.denied_since(0, t(0)).await.unwrap();
    assert_eq!(read, vec![live], "an entry expiring now covers no token still valid");
}

#[tokio::test]
async fn incremental_reads_return_only_new_entries() {
    let (_dir, store) = open_store().await;
    let (first, second, third) = (token_entry(300), token_entry(300), token_entry(300));
    store.deny(&[first, second]).await.unwrap();
    let (read, cursor) = store.denied_since(0, t(0)).await.unwrap();
    assert_eq!(read, vec![first, second]);

    let (read, same) = store.denied_since(cursor, t(0)).await.unwrap();
    assert!(read.is_empty());
    assert_eq!(same, cursor, "nothing new: the cursor stays");

    store.deny(&[third]).await.unwrap();
    let (read, later) = store.denied_since(cursor, t(0)).await.unwrap();
    assert_eq!(read, vec![third]);
    assert!(later > cursor);
}

#[tokio::test]
async fn cursor_moves_past_entries_that_expired_unread() {
    let (_dir, store) = open_store().await;
    let (_, cursor) = store.denied_since(0, t(0)).await.unwrap();
    store.deny(&[token_entry(10), token_entry(20)]).await.unwrap();

    let (read, next) = store.denied_since(cursor, t(30)).await.unwrap();
    assert!(read.is_empty());
    assert_eq!(next, 2, "otherwise every later read would scan the dead rows again");
}

#[tokio::test]
async fn cursor_moves_past_entries_pruned_before_they_were_read() {
    let (_dir, store) = open_store().await;
    store.deny(&[token_entry(10), token_entry(20)]).await.unwrap();
    let mut conn = raw_connection(store.db_path()).await;
    conn.execute("DELETE FROM denylist").await.unwrap();

    let (read, next) = store.denied_since(0, t(0)).await.unwrap();
    assert!(read.is_empty());
    assert_eq!(next, 2);
    let live = token_entry(300);
    store.deny(&[live]).await.unwrap();
    assert_eq!(store.denied_since(next, t(0)).await.unwrap(), (vec![live], 3));
}

#[tokio::test]
async fn cursor_never_goes_backwards() {
    let (_dir, store) = open_store().await;
    store.deny(&[token_entry(300)]).await.unwrap();

    // A cursor from further on than this database has got (say, before it was restored from
    // a backup) is handed back as it is, never lowered.
    assert_eq!(store.denied_since(50, t(0)).await.unwrap(), (vec![], 50));
    assert_eq!(store.denied_since(u64::MAX, t(0)).await.unwrap(), (vec![], u64::MAX));
}

#[tokio::test]
async fn denying_nothing_changes_nothing() {
    let (_dir, store) = open_store().await;
    store.deny(&[]).await.unwrap();
    assert_eq!(store.denied_since(0, t(0)).await.unwrap(), (vec![], 0));
}

#[tokio::test]
async fn entries_survive_a_restart_and_the_cursor_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let before = token_entry(300);
    store.deny(&[before]).await.unwrap();
    let (_, cursor) = store.denied_since(0, t(0)).await.unwrap();
    store.close().await;

    let reopened = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(reopened.denied_since(0, t(0)).await.unwrap(), (vec![before], cursor));
    let after = token_entry(300);
    reopened.deny(&[after]).await.unwrap();
    assert_eq!(reopened.denied_since(cursor, t(0)).await.unwrap().0, vec![after]);
}

#[tokio::test]
async fn entry_denied_by_another_process_is_read_here() {
    let (dir, server) = open_store().await;
    let (_, cursor) = server.denied_since(0, t(0)).await.unwrap();

    // `tessera sessions revoke`.
    let cli = SqliteStore::open(dir.path()).await.unwrap();
    let entry = DenyEntry { denied: Denied::Session(SessionId::generate()), expires_at: t(300) };
    cli.deny(&[entry]).await.unwrap();
    cli.close().await;

    assert_eq!(server.denied_since(cursor, t(0)).await.unwrap().0, vec![entry]);
}

#[tokio::test]
async fn unreadable_entry_is_an_error_not_a_skipped_row() {
    let (_dir, store) = open_store().await;
    let mut conn = raw_connection(store.db_path()).await;
    // Only a damaged file or a hand edit gets past the schema's checks.
    conn.execute("PRAGMA ignore_check_constraints = ON").await.unwrap();
    conn.execute("INSERT INTO denylist (kind, id, expires_at) VALUES ('token', zeroblob(3), 1700000300)")
        .await
        .unwrap();
    assert!(matches!(store.denied_since(0, t(0)).await, Err(StoreError::Other(_))));

    conn.execute("DELETE FROM denylist").await.unwrap();
    conn.execute("INSERT INTO denylist (kind, id, expires_at) VALUES ('session_v2', zeroblob(16), 1700000300)")
        .await
        .unwrap();
    assert!(matches!(store.denied_since(0, t(0)).await, Err(StoreError::Other(_))));

    conn.execute("DELETE FROM denylist").await.unwrap();
    conn.execute("INSERT INTO denylist (kind, id, expires_at) VALUES ('issued_before', zeroblob(16), 1700000300)")
        .await
        .unwrap();
    assert!(matches!(store.denied_since(0, t(0)).await, Err(StoreError::Other(_))), "no instant");
}

/// #13: denying the same target again (a repeated `/v1/revoke`, a second logout of one
/// session) adds no row: the reader's cursor does not move and the table keeps one row each.
#[tokio::test]
async fn denying_the_same_target_again_adds_no_row() {
    let (_dir, store) = open_store().await;
    let user = UserId::generate();
    let entries = [
        DenyEntry { denied: Denied::Session(SessionId::generate()), expires_at: t(300) },
        token_entry(300),
        DenyEntry { denied: Denied::IssuedBefore(user, t(-5)), expires_at: t(300) },
    ];
    store.deny(&entries).await.unwrap();
    let (_, cursor) = store.denied_since(0, t(0)).await.unwrap();
    for e in entries {
        store.deny(&[DenyEntry { expires_at: t(400), ..e }]).await.unwrap();
    }
    assert_eq!(store.denied_since(cursor, t(0)).await.unwrap(), (vec![], cursor));
    let mut conn = raw_connection(store.db_path()).await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM denylist").fetch_one(&mut conn).await.unwrap();
    assert_eq!(rows, 3);
    // A later cut-off for the same user is a different revocation.
    let later = DenyEntry { denied: Denied::IssuedBefore(user, t(10)), expires_at: t(300) };
    store.deny(&[later]).await.unwrap();
    assert_eq!(store.denied_since(cursor, t(0)).await.unwrap().0, vec![later]);
}
