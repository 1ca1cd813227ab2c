//! Fixtures: a fresh schema per test, and stores opened on it.

use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection as _};
use tessera_core::secret::random_bytes;
use tessera_store::PgStore;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The server the tests run against.
pub fn server_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.into())
}

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

/// `url` naming database `name` instead of its own.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..].find('/').map_or(base.len(), |i| authority + i);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{}/{name}{query}", &base[..path])
}

/// A plain connection to the server's default schema, standing in for `psql`. Panics with
/// what to do when the server cannot be reached: these tests need it.
pub async fn admin_connection() -> PgConnection {
    let url = server_url();
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&url)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("PostgreSQL not reachable at {url}: start it or set TESSERA_TEST_POSTGRES_URL ({e})"),
        Err(_) => panic!(
            "PostgreSQL not reachable at {url}: start it or set TESSERA_TEST_POSTGRES_URL \
             (no answer within {CONNECT_TIMEOUT:?})"
        ),
    }
}

/// A schema of one test's own, dropped with everything in it when this value drops (also
/// when the test fails).
pub struct TestSchema {
    name: String,
}

impl TestSchema {
    pub async fn create() -> Self {
        let name = format!("t_{}", hex(&random_bytes::<8>()));
        let mut admin = admin_connection().await;
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut admin).await.unwrap();
        admin.close().await.unwrap();
        Self { name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connections made with this URL work in the schema, and carry its name as their
    /// `application_name` so a test can find them in `pg_stat_activity`.
    pub fn url(&self) -> String {
        let url = with_param(&server_url(), &format!("options[search_path]={}", self.name));
        with_param(&url, &format!("application_name={}", self.name))
    }

    pub async fn open(&self) -> PgStore {
        PgStore::connect(&self.url()).await.unwrap()
    }

    /// A plain connection working in the schema, to look at the tables behind the store.
    pub async fn connection(&self) -> PgConnection {
        let mut conn = admin_connection().await;
        sqlx::query(AssertSqlSafe(format!("SET search_path TO {}", self.name))).execute(&mut conn).await.unwrap();
        conn
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // `drop` cannot await, and may run while a failed test unwinds: a thread with a runtime
        // of its own can. Best effort: a schema left behind only takes space.
        let sql = format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&server_url()).await.ok()?;
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}

/// A store on a fresh schema; the schema goes when the `TestSchema` drops.
pub async fn open_store() -> (TestSchema, PgStore) {
    let schema = TestSchema::create().await;
    let store = schema.open().await;
    (schema, store)
}

/// Another instance's store on the schema of `schema`.
pub async fn open_again(schema: &TestSchema) -> PgStore {
    schema.open().await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
