//! Fixtures: a store under a fresh key prefix, a raw connection standing in for `redis-cli`,
//! and accounts and sessions to store.

use redis::AsyncCommands as _;
use tessera_core::id::{SessionId, UserId};
use tessera_core::secret::{TokenHash, b64, random_bytes};
use tessera_core::session::{RefreshState, Session};
use tessera_core::username::Username;
use tessera_store::{RedisSettings, RedisStore};
use time::OffsetDateTime;

const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

pub fn server_url() -> String {
    std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.into())
}

/// A store under its own prefix; the prefix is returned for raw inspection.
pub struct Fixture {
    pub store: RedisStore,
    pub prefix: String,
    pub settings: RedisSettings,
}

pub async fn open_store() -> Fixture {
    let prefix = format!("t{}", b64(&random_bytes::<9>()).replace(['-', '_'], "x"));
    let settings = RedisSettings { url: server_url(), cluster: false, prefix: prefix.clone(), tls: Default::default() };
    let store = RedisStore::connect(&settings).await.unwrap_or_else(|e| {
        panic!("Redis not reachable at {}: start it or set TESSERA_TEST_REDIS_URL ({e})", server_url())
    });
    Fixture { store, prefix, settings }
}

impl Fixture {
    /// A second instance on the same Redis and prefix (another tessera process).
    pub async fn another_instance(&self) -> RedisStore {
        RedisStore::connect(&self.settings).await.unwrap()
    }

    /// Every key under the prefix, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = raw().await;
        let mut keys: Vec<String> = conn.keys(format!("{}:*", self.prefix)).await.unwrap();
        keys.sort();
        keys
    }

    /// Deletes every key under the prefix.
    pub async fn flush(&self) {
        let keys = self.keys().await;
        if !keys.is_empty() {
            let _: i64 = raw().await.del(keys).await.unwrap();
        }
    }
}

pub async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(server_url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Now, to the second (Redis TTLs run on real time).
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap()
}

pub fn session(user: UserId, created: OffsetDateTime) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: user,
        username: Username::parse("alice").unwrap(),
        secret_hash: TokenHash::of(&random_bytes::<32>()),
        csrf_hash: TokenHash::of(&random_bytes::<32>()),
        created_at: created,
        last_seen_at: created,
        expires_at: created + time::Duration::days(30),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        ip: Some("192.0.2.7".into()),
        refresh: None,
    }
}

pub fn refresh_state(generation: u32, rotated: OffsetDateTime) -> RefreshState {
    RefreshState { generation, hash: TokenHash::of(&generation.to_be_bytes()), rotated_at: rotated }
}
