use std::net::IpAddr;

use tessera_core::store::ThrottleStore;
use tessera_core::throttle::{Failures, LockRule, Reservation, ThrottleKey, ThrottlePolicy};
use time::Duration;

use crate::helpers::open_store;
use crate::sql::fixtures::t;

const FORGET_AFTER: Duration = Duration::hours(1);

fn alice() -> ThrottleKey {
    ThrottleKey::Account("alice".into())
}

#[tokio::test]
async fn key_without_failures_has_none() {
    let (_dir, store) = open_store().await;
    assert_eq!(store.failures(&alice()).await.unwrap(), None);
}

#[tokio::test]
async fn failures_are_counted_per_key() {
    let (_dir, store) = open_store().await;
    let ip = ThrottleKey::ip("192.0.2.7".parse::<IpAddr>().unwrap());
    assert_eq!(store.record_failure(&alice(), t(0), FORGET_AFTER).await.unwrap(), Failures { count: 1, last_at: t(0) });
    assert_eq!(store.record_failure(&alice(), t(5), FORGET_AFTER).await.unwrap(), Failures { count: 2, last_at: t(5) });
    store.record_failure(&ip, t(6), FORGET_AFTER).await.unwrap();

    assert_eq!(store.failures(&alice()).await.unwrap(), Some(Failures { count: 2, last_at: t(5) }));
    assert_eq!(store.failures(&ip).await.unwrap(), Some(Failures { count: 1, last_at: t(6) }));
    // An account key and an IP key never share a counter, whatever their text.
    assert_eq!(store.failures(&ThrottleKey::Ip("alice".into())).await.unwrap(), None);
}

#[tokio::test]
async fn counter_idle_for_forget_after_starts_again_from_one() {
    let (_dir, store) = open_store().await;
    for i in 0..5 {
        store.record_failure(&alice(), t(i), FORGET_AFTER).await.unwrap();
    }
    let later = t(4) + FORGET_AFTER;
    assert_eq!(
        store.record_failure(&alice(), later, FORGET_AFTER).await.unwrap(),
        Failures { count: 1, last_at: later }
    );
}

#[tokio::test]
async fn counter_used_within_forget_after_keeps_counting() {
    let (_dir, store) = open_store().await;
    store.record_failure(&alice(), t(0), FORGET_AFTER).await.unwrap();
    let almost = t(0) + FORGET_AFTER - Duration::seconds(1);
    assert_eq!(store.record_failure(&alice(), almost, FORGET_AFTER).await.unwrap().count, 2);
}

#[tokio::test]
async fn cleared_counter_is_gone() {
    let (_dir, store) = open_store().await;
    store.record_failure(&alice(), t(0), FORGET_AFTER).await.unwrap();
    store.clear_failures(&alice()).await.unwrap();
    assert_eq!(store.failures(&alice()).await.unwrap(), None);
    assert_eq!(store.record_failure(&alice(), t(1), FORGET_AFTER).await.unwrap().count, 1);
    store.clear_failures(&ThrottleKey::Account("nobody".into())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures_are_each_counted() {
    let (_dir, store) = open_store().await;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.record_failure(&alice(), t(0), FORGET_AFTER).await.unwrap() })
        })
        .collect();
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap().count);
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=40).collect::<Vec<u32>>(), "each failure saw its own count");
}

fn rule() -> LockRule {
    ThrottlePolicy::default().rule(&alice())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_admit_exactly_the_allowance() {
    // Five free failures and the sixth, which starts the delay: of 40 attempts at one
    // instant, exactly six are let through, and the locked ones count nothing.
    let (_dir, store) = open_store().await;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.reserve_attempt(&alice(), &rule(), t(0)).await.unwrap() })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        if let Reservation::Reserved(_) = task.await.unwrap() {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 6);
    assert_eq!(store.failures(&alice()).await.unwrap(), Some(Failures { count: 6, last_at: t(0) }));
    assert!(matches!(store.reserve_attempt(&alice(), &rule(), t(1)).await.unwrap(), Reservation::Reserved(_)));
    assert!(matches!(store.reserve_attempt(&alice(), &rule(), t(1)).await.unwrap(), Reservation::Locked(Some(_))));
}

#[tokio::test]
async fn a_released_reservation_leaves_the_counter_as_it_was() {
    let (_dir, store) = open_store().await;
    store.record_failure(&alice(), t(0), FORGET_AFTER).await.unwrap();
    let Reservation::Reserved(r) = store.reserve_attempt(&alice(), &rule(), t(300)).await.unwrap() else {
        panic!("not locked after one failure")
    };
    assert_eq!(r.failures, Failures { count: 2, last_at: t(300) });
    store.release_attempt(&alice(), &r).await.unwrap();
    assert_eq!(store.failures(&alice()).await.unwrap(), Some(Failures { count: 1, last_at: t(0) }));
    // A forgotten counter starts again from one, and released leaves nothing.
    let Reservation::Reserved(r) = store.reserve_attempt(&alice(), &rule(), t(7200)).await.unwrap() else {
        panic!("a forgotten counter is not locked")
    };
    assert_eq!((r.failures.count, r.previous_last_at), (1, None));
    store.release_attempt(&alice(), &r).await.unwrap();
    assert_eq!(store.failures(&alice()).await.unwrap(), None);
}
