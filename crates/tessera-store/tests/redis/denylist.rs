//! The denylist in Redis: read incrementally by cursor, expired entries filtered and pruned,
//! a write on one instance signalled to the others through pub/sub, and a Redis that lost
//! its data (a new epoch) reread from the start rather than silently skipped.

use std::time::Duration as StdDuration;

use redis::AsyncCommands as _;

use tessera_core::id::{SessionId, TokenId, UserId};
use tessera_core::store::{Denied, DenyEntry, DenylistStore};
use time::Duration;

use crate::helpers::{now, open_store, raw};

fn entry(denied: Denied, ttl: Duration) -> DenyEntry {
    DenyEntry { denied, expires_at: now() + ttl }
}

#[tokio::test]
async fn entries_are_read_once_each_by_cursor_and_expired_ones_are_left_out() {
    let f = open_store().await;
    let (entries, start) = f.store.denied_since(0, now()).await.unwrap();
    assert!(entries.is_empty());

    let session = entry(Denied::Session(SessionId::generate()), Duration::minutes(5));
    let token = entry(Denied::Token(TokenId::generate()), Duration::minutes(5));
    let cutoff = entry(Denied::IssuedBefore(UserId::generate(), now()), Duration::minutes(5));
    f.store.deny(&[session, token]).await.unwrap();
    f.store.deny(&[cutoff]).await.unwrap();

    let (entries, cursor) = f.store.denied_since(start, now()).await.unwrap();
    assert_eq!(entries, vec![session, token, cutoff]);
    let (again, same) = f.store.denied_since(cursor, now()).await.unwrap();
    assert!(again.is_empty());
    assert_eq!(same, cursor, "an empty read does not move the cursor");

    // Judged at a later instant, entries whose tokens have expired are not returned.
    let (later, _) = f.store.denied_since(start, now() + Duration::minutes(6)).await.unwrap();
    assert!(later.is_empty());
    f.flush().await;
}

#[tokio::test]
async fn a_write_on_one_instance_wakes_the_others() {
    let f = open_store().await;
    let other = f.another_instance().await;
    let changes = other.denylist_changes().expect("Redis pushes denylist changes");
    // The subscription signals once when it is (re)established: wait for that first.
    tokio::time::timeout(StdDuration::from_secs(5), changes.notified()).await.expect("subscribed");

    let e = entry(Denied::Session(SessionId::generate()), Duration::minutes(5));
    let woken = changes.notified();
    f.store.deny(&[e]).await.unwrap();
    tokio::time::timeout(StdDuration::from_secs(2), woken).await.expect("the other instance is woken");
    let (entries, _) = other.denied_since(0, now()).await.unwrap();
    assert_eq!(entries, vec![e]);
    f.flush().await;
}

#[tokio::test]
async fn after_redis_loses_its_data_readers_start_over_instead_of_skipping() {
    let f = open_store().await;
    let first: Vec<_> = (0..5).map(|_| entry(Denied::Session(SessionId::generate()), Duration::minutes(5))).collect();
    f.store.deny(&first).await.unwrap();
    let (_, cursor) = f.store.denied_since(0, now()).await.unwrap();

    // Redis restarts empty: the sequence starts again from 1, below the reader's cursor.
    f.flush().await;
    let after = entry(Denied::Token(TokenId::generate()), Duration::minutes(5));
    f.store.deny(&[after]).await.unwrap();
    let (entries, next) = f.store.denied_since(cursor, now()).await.unwrap();
    assert_eq!(entries, vec![after], "the entry written after the loss is not skipped");
    let (none, _) = f.store.denied_since(next, now()).await.unwrap();
    assert!(none.is_empty());
    f.flush().await;
}

#[tokio::test]
async fn after_redis_rolls_back_readers_reread_instead_of_skipping_reused_numbers() {
    let f = open_store().await;
    let first: Vec<_> = (0..5).map(|_| entry(Denied::Session(SessionId::generate()), Duration::minutes(5))).collect();
    f.store.deny(&first).await.unwrap();
    let (_, cursor) = f.store.denied_since(0, now()).await.unwrap();

    // A restore from a snapshot taken two writes ago: same epoch, sequence back at 3, and the
    // two entries after it gone.
    let mut conn = raw().await;
    let seq = format!("{}:{{deny}}:seq", f.prefix);
    let log = format!("{}:{{deny}}:log", f.prefix);
    let _: () = conn.set(&seq, 3).await.unwrap();
    let _: i64 = conn.zrembyscore(&log, 4, 5).await.unwrap();
    let after = entry(Denied::Token(TokenId::generate()), Duration::minutes(5));
    f.store.deny(&[after]).await.unwrap();

    let (entries, next) = f.store.denied_since(cursor, now()).await.unwrap();
    assert!(entries.contains(&after), "the entry numbered 4 again is read: {entries:?}");
    let (none, _) = f.store.denied_since(next, now()).await.unwrap();
    assert!(none.is_empty());
    f.flush().await;
}

#[tokio::test]
async fn the_log_never_expires_before_entries_another_clock_still_needs() {
    let f = open_store().await;
    // Stamped by a clock an hour behind this one: already expired by the wall clock.
    let behind = DenyEntry { denied: Denied::Session(SessionId::generate()), expires_at: now() - Duration::minutes(1) };
    f.store.deny(&[behind]).await.unwrap();
    let (entries, _) = f.store.denied_since(0, now() - Duration::hours(1)).await.unwrap();
    assert_eq!(entries, vec![behind], "the entry is still there for a reader on that clock");
    f.flush().await;
}

#[tokio::test]
async fn expired_entries_are_pruned_by_later_writes_and_the_log_expires() {
    let f = open_store().await;
    // Expired longer ago than the pruning margin (5 min).
    let short = DenyEntry { denied: Denied::Session(SessionId::generate()), expires_at: now() - Duration::minutes(6) };
    f.store.deny(&[short]).await.unwrap();
    let long = entry(Denied::Session(SessionId::generate()), Duration::minutes(10));
    f.store.deny(&[long]).await.unwrap();
    let (entries, _) = f.store.denied_since(0, now() - Duration::hours(1)).await.unwrap();
    assert_eq!(entries, vec![long], "the long-expired entry is gone from the log itself");

    let mut conn = raw().await;
    for part in ["log", "exp"] {
        let key = format!("{}:{{deny}}:{part}", f.prefix);
        let at: i64 = redis::cmd("EXPIRETIME").arg(&key).query_async(&mut conn).await.unwrap();
        assert_eq!(at, long.expires_at.unix_timestamp(), "{key} expires with its last entry");
    }
    f.flush().await;
}

/// #13: a revocation repeated (the same `sid`, `jti` or cut-off) adds no member, moves no
/// cursor and wakes no reader: the log grows with distinct revocations only.
#[tokio::test]
async fn denying_the_same_target_again_adds_nothing() {
    let f = open_store().await;
    let token = entry(Denied::Token(TokenId::generate()), Duration::minutes(5));
    let session = entry(Denied::Session(SessionId::generate()), Duration::minutes(5));
    f.store.deny(&[token, session]).await.unwrap();
    let (_, cursor) = f.store.denied_since(0, now()).await.unwrap();
    for i in 1..=10 {
        let later = |e: DenyEntry| DenyEntry { expires_at: e.expires_at + Duration::seconds(i), ..e };
        f.store.deny(&[later(token), later(session)]).await.unwrap();
    }
    let (again, next) = f.store.denied_since(cursor, now()).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(next, cursor);
    let mut conn = raw().await;
    let members: i64 = conn.zcard(format!("{}:{{deny}}:log", f.prefix)).await.unwrap();
    assert_eq!(members, 2);
    f.flush().await;
}

/// A rollback followed by enough writes to pass the reader's old position: the sequence alone
/// cannot tell, the reader's anchor (the member it last read) can, and the reader rereads.
#[tokio::test]
async fn a_rollback_written_past_the_old_position_is_still_noticed() {
    let f = open_store().await;
    let first: Vec<_> = (0..5).map(|_| entry(Denied::Session(SessionId::generate()), Duration::minutes(5))).collect();
    f.store.deny(&first).await.unwrap();
    let read = f.store.read_denylist(0, now()).await.unwrap();
    assert!(!read.restarted);
    let mut conn = raw().await;
    let _: () = conn.set(format!("{}:{{deny}}:seq", f.prefix), 3).await.unwrap();
    let _: i64 = conn.zrembyscore(format!("{}:{{deny}}:log", f.prefix), 4, 5).await.unwrap();
    let after: Vec<_> = (0..3).map(|_| entry(Denied::Token(TokenId::generate()), Duration::minutes(5))).collect();
    f.store.deny(&after).await.unwrap();
    let reread = f.store.read_denylist(read.next, now()).await.unwrap();
    assert!(reread.restarted, "the anchor is gone: the log was rolled back");
    let entries: Vec<_> = reread.entries.iter().map(|(_, e)| *e).collect();
    assert!(after.iter().all(|e| entries.contains(e)), "every entry written since is read: {entries:?}");
    // And from there on, only what is new again.
    let quiet = f.store.read_denylist(reread.next, now()).await.unwrap();
    assert!(!quiet.restarted && quiet.entries.is_empty(), "{quiet:?}");
    f.flush().await;
}
