//! Brute-force counters in Redis: counted atomically across instances, forgotten after the
//! idle period by the same rule as the embedded store, and expiring in Redis too.

use tessera_core::store::ThrottleStore;
use tessera_core::throttle::ThrottleKey;
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
