//! A fresh PostgreSQL schema and Redis key prefix for one test, removed when it ends; the
//! shared servers are never flushed or dropped. `TESSERA_TEST_POSTGRES_URL` and
//! `TESSERA_TEST_REDIS_URL` name them (defaults: the local test servers). Unreachable → the
//! test fails saying so; it is never skipped.

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};
use tessera_server::config::Config;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

pub struct Distributed {
    admin_url: String,
    redis_url: String,
    name: String,
}

impl Distributed {
    pub async fn create() -> Distributed {
        let admin_url = std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
        let redis_url = std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.into());
        let hex: String = tessera_jwt::secret::random_bytes::<8>().iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("v_{hex}");
        let mut pg = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} (TESSERA_TEST_POSTGRES_URL) is required: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut pg).await.expect("CREATE SCHEMA");
        let _ = pg.close().await;
        let client = redis::Client::open(redis_url.as_str()).expect("a Redis URL");
        let mut redis = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("Redis at {redis_url} (TESSERA_TEST_REDIS_URL) is required: {e}"));
        let _: String = redis::cmd("PING").query_async(&mut redis).await.expect("Redis PING");
        Distributed { admin_url, redis_url, name }
    }

    pub fn configure(&self, config: &mut Config) {
        let separator = if self.admin_url.contains('?') { '&' } else { '?' };
        config.store.postgres_url = format!("{}{separator}options[search_path]={}", self.admin_url, self.name);
        config.store.redis_url = self.redis_url.clone();
        config.store.redis_prefix = self.name.clone();
    }
}

impl Drop for Distributed {
    fn drop(&mut self) {
        let (admin_url, redis_url, name) = (self.admin_url.clone(), self.redis_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let mut pg = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query("SET lock_timeout = '5s'").execute(&mut pg).await.ok()?;
                sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
                    .execute(&mut pg)
                    .await
                    .ok()?;
                let _ = pg.close().await;
                let client = redis::Client::open(redis_url.as_str()).ok()?;
                let mut redis = client.get_multiplexed_async_connection().await.ok()?;
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{name}:*"))
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut redis)
                        .await
                        .ok()?;
                    if !keys.is_empty() {
                        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await.ok()?;
                    }
                    if next == 0 {
                        return Some(());
                    }
                    cursor = next;
                }
            })
        });
        if !matches!(cleanup.join(), Ok(Some(()))) {
            eprintln!("note: could not remove the test store {}", self.name);
        }
    }
}
