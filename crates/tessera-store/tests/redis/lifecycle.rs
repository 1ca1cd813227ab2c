//! Connecting: an unreachable Redis is an outage (503 upstream), reported within seconds.

use std::time::{Duration, Instant};

use tessera_core::store::StoreError;
use tessera_store::redis::RedisTls;
use tessera_store::{RedisSettings, RedisStore};

#[tokio::test]
async fn unreachable_redis_is_unavailable_within_seconds() {
    // Port 1 on loopback: nothing listens there.
    let settings = RedisSettings {
        url: "redis://127.0.0.1:1".into(),
        cluster: false,
        prefix: "t".into(),
        tls: Default::default(),
    };
    let started = Instant::now();
    let result = RedisStore::connect(&settings).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{:?}", result.err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn several_standalone_urls_are_refused_without_the_cluster_flag() {
    let settings = RedisSettings {
        url: "redis://127.0.0.1:6379,redis://127.0.0.1:6380".into(),
        cluster: false,
        prefix: "t".into(),
        tls: Default::default(),
    };
    let result = RedisStore::connect(&settings).await;
    assert!(matches!(result, Err(StoreError::Other(ref m)) if m.contains("redis_cluster")), "{:?}", result.err());
}

#[tokio::test]
async fn a_ca_file_beside_a_plain_url_is_refused_not_ignored() {
    let settings = RedisSettings {
        url: "redis://127.0.0.1:1".into(),
        cluster: false,
        prefix: "t".into(),
        tls: RedisTls { ca_file: Some("/etc/ssl/certs/ca-certificates.crt".into()), ..RedisTls::default() },
    };
    let result = RedisStore::connect(&settings).await;
    assert!(matches!(result, Err(StoreError::Other(ref m)) if m.contains("rediss://")), "{:?}", result.err());
}

#[tokio::test]
async fn mixed_plain_and_tls_seed_urls_are_refused() {
    let settings = RedisSettings {
        url: "rediss://127.0.0.1:1,redis://127.0.0.1:2".into(),
        cluster: true,
        prefix: "t".into(),
        tls: Default::default(),
    };
    let result = RedisStore::connect(&settings).await;
    assert!(matches!(result, Err(StoreError::Other(ref m)) if m.contains("mixes")), "{:?}", result.err());
}

#[tokio::test]
async fn ping_answers_while_redis_is_up() {
    let f = crate::helpers::open_store().await;
    f.store.ping().await.unwrap();
}
