//! Brute-force counters in Redis: counted atomically across instances, forgotten after the
//! idle period by the same rule as the embedded store, and expiring in Redis too.

use tessera_core::store::ThrottleStore;
use tessera_core::throttle::{LockRule, Reservation, ThrottleKey, ThrottlePolicy};
use time::Duration;

use crate::helpers::{now, open_store, raw};

#[tokio::test]
async fn concurrent_failures_from_two_instances_are_each_counted() {
    let f = open_store().await;
    let other = f.another_instance().await;
    let key = ThrottleKey::Ip("192.0.2.1".into());
    let t = now();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = if i % 2 == 0 { f.store.clone() } else { other.clone() };
            let key = key.clone();
            tokio::spawn(async move { store.record_failure(&key, t, Duration::minutes(15)).await.unwrap().count })
        })
        .collect();
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=40).collect::<Vec<u32>>(), "each failure saw a distinct count");
    let stored = f.store.failures(&key).await.unwrap().unwrap();
    assert_eq!((stored.count, stored.last_at), (40, t));
    f.flush().await;
}

#[tokio::test]
async fn an_idle_counter_starts_again_and_a_cleared_one_is_gone() {
    let f = open_store().await;
    let key = ThrottleKey::Account("alice".into());
    let t = now();
    let forget = Duration::minutes(15);
    f.store.record_failure(&key, t, forget).await.unwrap();
    assert_eq!(f.store.record_failure(&key, t + Duration::minutes(14), forget).await.unwrap().count, 2);
    assert_eq!(f.store.record_failure(&key, t + Duration::minutes(29), forget).await.unwrap().count, 1);

    let mut conn = raw().await;
    let ttl: i64 = redis::cmd("PTTL").arg(&f.keys().await[0]).query_async(&mut conn).await.unwrap();
    assert!(ttl > 0 && ttl <= 15 * 60 * 1000, "the counter expires in Redis too: {ttl} ms");

    f.store.clear_failures(&key).await.unwrap();
    assert_eq!(f.store.failures(&key).await.unwrap(), None);
    assert!(f.keys().await.is_empty());
}

fn rule() -> LockRule {
    ThrottlePolicy::default().rule(&ThrottleKey::Account(String::new()))
}

#[tokio::test]
async fn concurrent_reservations_from_two_instances_admit_exactly_the_allowance() {
    // Five free failures and the sixth, which starts the delay: of 40 attempts at one
    // instant on two instances, exactly six are let through.
    let f = open_store().await;
    let other = f.another_instance().await;
    let key = ThrottleKey::Account("alice".into());
    let t = now();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = if i % 2 == 0 { f.store.clone() } else { other.clone() };
            let key = key.clone();
            tokio::spawn(async move { store.reserve_attempt(&key, &rule(), t).await.unwrap() })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        if let Reservation::Reserved(_) = task.await.unwrap() {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 6);
    assert_eq!(f.store.failures(&key).await.unwrap().map(|f| f.count), Some(6));
    // Once the one-second delay has passed, one more.
    let later = t + Duration::seconds(1);
    assert!(matches!(f.store.reserve_attempt(&key, &rule(), later).await.unwrap(), Reservation::Reserved(_)));
    assert!(matches!(f.store.reserve_attempt(&key, &rule(), later).await.unwrap(), Reservation::Locked(Some(_))));
    f.flush().await;
}

#[tokio::test]
async fn a_released_reservation_leaves_the_counter_as_it_was() {
    let f = open_store().await;
    let key = ThrottleKey::Ip("192.0.2.9".into());
    let t = now();
    f.store.record_failure(&key, t, Duration::hours(1)).await.unwrap();
    let Reservation::Reserved(r) = f.store.reserve_attempt(&key, &rule(), t + Duration::minutes(5)).await.unwrap()
    else {
        panic!("not locked after one failure")
    };
    assert_eq!(r.failures.count, 2);
    f.store.release_attempt(&key, &r).await.unwrap();
    let back = f.store.failures(&key).await.unwrap().unwrap();
    assert_eq!((back.count, back.last_at), (1, t), "a release does not keep the counter alive");
    // A reservation on a fresh key, released, leaves nothing.
    let fresh = ThrottleKey::Ip("192.0.2.10".into());
    let Reservation::Reserved(r) = f.store.reserve_attempt(&fresh, &rule(), t).await.unwrap() else { panic!() };
    f.store.release_attempt(&fresh, &r).await.unwrap();
    assert_eq!(f.store.failures(&fresh).await.unwrap(), None);
    f.flush().await;
}
