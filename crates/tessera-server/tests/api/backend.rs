//! The store under the server under test. The suite runs twice from the same source: target
//! `api` against the embedded SQLite store, target `api_distributed` against PostgreSQL +
//! Redis (`env!("CARGO_CRATE_NAME")` tells them apart). Either way each test starts from an
//! empty store of its own: a temporary data directory, or a fresh PostgreSQL schema and a Redis
//! key prefix of the same name, which are dropped when the test is done.
//!
//! An unreachable PostgreSQL or Redis fails the test, naming the URL and the variable that
//! sets it: a distributed run that quietly tested nothing would be worse than no run.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};
use tempfile::TempDir;
use tessera_server::config::Config;
use tessera_server::startup::Backend;
use tessera_store::sqlite::AuditRecord;

pub const POSTGRES_URL_VAR: &str = "TESSERA_TEST_POSTGRES_URL";
pub const REDIS_URL_VAR: &str = "TESSERA_TEST_REDIS_URL";
/// Without TLS: over loopback it only costs time, about 90 ms a connection in a debug build
/// (the whole suite runs three times slower with it).
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Connecting, creating and dropping take milliseconds; longer means something is wrong.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL URL of the test server (its `test` database, no schema).
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// This binary tests the distributed backend (target `api_distributed`).
pub fn distributed() -> bool {
    env!("CARGO_CRATE_NAME") == "api_distributed"
}

/// One test's store: the data directory of the embedded store (also a scratch directory for
/// configuration files), and in the distributed suite the schema and prefix that replace it.
pub struct TestStore {
    dir: TempDir,
    distributed: Option<Namespace>,
}

/// A PostgreSQL schema and the Redis prefix of the same name.
struct Namespace {
    admin_url: String,
    redis_url: String,
    name: String,
}

impl TestStore {
    /// An empty store of the kind this binary tests.
    pub fn new() -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let distributed = distributed().then(Namespace::create);
        TestStore { dir, distributed }
    }

    /// An empty PostgreSQL schema and Redis prefix, whichever backend this binary tests: for
    /// tests of the distributed store's own behaviour that run in both suites.
    pub fn new_distributed() -> TestStore {
        TestStore { dir: tempfile::tempdir().expect("temp dir"), distributed: Some(Namespace::create()) }
    }

    /// A directory that lives as long as the store, for files a test writes next to it.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// The embedded store's data directory (configured in the distributed suite too, and
    /// unused there).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Points `config` at this store.
    pub fn configure(&self, config: &mut Config) {
        config.store.data_dir = self.data_dir();
        if let Some(ns) = &self.distributed {
            config.store.postgres_url = ns.postgres_url();
            config.store.redis_url = ns.redis_url.clone();
            config.store.redis_prefix = ns.name.clone();
        }
    }

    /// Points a `tessera` process at this store through the environment: the data directory,
    /// or (and only) the distributed store's settings.
    pub fn configure_env(&self, cmd: &mut Command) {
        match &self.distributed {
            None => {
                cmd.env("TESSERA_STORE__DATA_DIR", self.data_dir());
            }
            Some(ns) => {
                cmd.env("TESSERA_STORE__POSTGRES_URL", ns.postgres_url())
                    .env("TESSERA_STORE__REDIS_URL", &ns.redis_url)
                    .env("TESSERA_STORE__REDIS_PREFIX", &ns.name);
            }
        }
    }

    /// The `[store]` section of a `tessera.toml` naming this store.
    pub fn toml_section(&self) -> String {
        match &self.distributed {
            None => format!("[store]\ndata_dir = {}\n", toml_string(&self.data_dir().display().to_string())),
            Some(ns) => format!(
                "[store]\npostgres_url = {}\nredis_url = {}\nredis_prefix = {}\n",
                toml_string(&ns.postgres_url()),
                toml_string(&ns.redis_url),
                toml_string(&ns.name)
            ),
        }
    }

    /// The Redis URL and key prefix of the distributed store; `None` for the embedded one.
    #[allow(dead_code, reason = "only the distributed suite has tests of Redis keys")]
    pub fn redis(&self) -> Option<(String, String)> {
        self.distributed.as_ref().map(|ns| (ns.redis_url.clone(), ns.name.clone()))
    }

    /// Opens the store from the outside, as the CLI does (migrations included).
    pub async fn open(&self) -> Backend {
        let mut config = Config::default();
        self.configure(&mut config);
        Backend::open(&config).await.unwrap_or_else(|e| panic!("open the store: {e:?}"))
    }

    /// The `limit` most recent audit records, newest first.
    pub async fn recent_audit(&self, limit: i64) -> Vec<AuditRecord> {
        let backend = self.open().await;
        let records = match &backend {
            Backend::Embedded(s) => s.recent_audit(limit).await,
            Backend::Distributed(s) => s.postgres.recent_audit(limit).await,
        };
        backend.close().await;
        records.unwrap_or_else(|e| panic!("recent_audit: {e:?}"))
    }

    /// Whether a `tessera` process has created (migrated) this store.
    pub fn is_migrated(&self) -> bool {
        match &self.distributed {
            None => self.data_dir().join("tessera.db").is_file(),
            Some(ns) => ns.has_tables(),
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(ns) = &self.distributed {
            ns.drop_all();
        }
    }
}

impl Namespace {
    fn create() -> Namespace {
        let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let redis_url = std::env::var(REDIS_URL_VAR).unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        let hex: String = tessera_core::secret::random_bytes::<8>().iter().map(|b| format!("{b:02x}")).collect();
        let ns = Namespace { admin_url, redis_url, name: format!("t_{hex}") };
        let (admin_url, redis_url, name) = (ns.admin_url.clone(), ns.redis_url.clone(), ns.name.clone());
        on_own_runtime(async move {
            // Redis first: a schema is only created when the test can go on to use it.
            let mut redis = redis_connection(&redis_url).await;
            let pong: String = redis::cmd("PING")
                .query_async(&mut redis)
                .await
                .unwrap_or_else(|e| panic!("Redis at {redis_url} ({REDIS_URL_VAR}) does not answer PING: {e}"));
            assert_eq!(pong, "PONG");
            let mut pg = admin_connection(&admin_url).await;
            // The name is ours: `t_` and hex digits.
            sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
                .execute(&mut pg)
                .await
                .unwrap_or_else(|e| panic!("CREATE SCHEMA {name} on {admin_url}: {e}"));
            let _ = pg.close().await;
        });
        ns
    }

    /// The admin URL with the schema as the search path: the migrations create their tables
    /// there and every query finds them there.
    fn postgres_url(&self) -> String {
        let separator = if self.admin_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}options[search_path]={}", self.admin_url, self.name)
    }

    fn has_tables(&self) -> bool {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        on_own_runtime(async move {
            let mut pg = admin_connection(&admin_url).await;
            let tables: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'accounts'",
            )
            .bind(&name)
            .fetch_one(&mut pg)
            .await
            .unwrap_or_else(|e| panic!("list the tables of {name}: {e}"));
            let _ = pg.close().await;
            tables == 1
        })
    }

    /// Best effort: a failure leaves a schema or some keys behind, never fails a test. A
    /// server of the test may still hold connections; a lock timeout keeps it from hanging.
    fn drop_all(&self) {
        let (admin_url, redis_url, name) = (self.admin_url.clone(), self.redis_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let schema = async {
                    let mut pg = PgConnection::connect(&admin_url).await.ok()?;
                    sqlx::query("SET lock_timeout = '5s'").execute(&mut pg).await.ok()?;
                    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
                        .execute(&mut pg)
                        .await
                        .ok()?;
                    pg.close().await.ok()
                };
                let keys = async {
                    let client = redis::Client::open(redis_url.as_str()).ok()?;
                    let mut redis = client.get_multiplexed_async_connection().await.ok()?;
                    delete_prefixed(&mut redis, &name).await.ok()
                };
                tokio::time::timeout(ADMIN_TIMEOUT, async { tokio::join!(schema, keys) }).await.ok()
            })
        });
        if !matches!(cleanup.join(), Ok(Some((Some(()), Some(()))))) {
            eprintln!("note: could not remove the test store {} (schema and Redis keys)", self.name);
        }
    }
}

async fn admin_connection(url: &str) -> PgConnection {
    match tokio::time::timeout(ADMIN_TIMEOUT, PgConnection::connect(url)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("PostgreSQL at {url} ({POSTGRES_URL_VAR}) is required by the distributed suite: {e}"),
        Err(_) => panic!("PostgreSQL at {url} ({POSTGRES_URL_VAR}) did not answer within {ADMIN_TIMEOUT:?}"),
    }
}

async fn redis_connection(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap_or_else(|e| panic!("{REDIS_URL_VAR}={url} is not a Redis URL: {e}"));
    match tokio::time::timeout(ADMIN_TIMEOUT, client.get_multiplexed_async_connection()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("Redis at {url} ({REDIS_URL_VAR}) is required by the distributed suite: {e}"),
        Err(_) => panic!("Redis at {url} ({REDIS_URL_VAR}) did not answer within {ADMIN_TIMEOUT:?}"),
    }
}

/// Deletes every key under `prefix:` (standalone Redis).
async fn delete_prefixed(redis: &mut redis::aio::MultiplexedConnection, prefix: &str) -> redis::RedisResult<()> {
    let pattern = format!("{prefix}:*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query_async(redis).await?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(&keys).query_async(redis).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Runs `work` to completion on a runtime of its own, on a thread of its own: usable from
/// synchronous tests, and from async ones without nesting runtimes.
fn on_own_runtime<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime").block_on(work)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A TOML basic string (the values here are paths and URLs: no control characters).
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
