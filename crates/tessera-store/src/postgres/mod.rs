//! The PostgreSQL half of the distributed backend: accounts, the audit trail, signing keys,
//! server secrets and the durable record of revocations, shared by every instance. Sessions,
//! throttle counters and the denylist live in Redis; the server combines the two.
//!
//! - Several instances may start at once against one database. sqlx's migrator serialises them
//!   on an advisory lock, and every write here is one statement that is right whichever instance
//!   runs it, in whatever order.
//! - An outage must turn into 503s quickly, not into requests that hang: a request waits at most
//!   [`ACQUIRE_TIMEOUT`] for a connection, and [`PgStore::connect`] gives up after as long when
//!   PostgreSQL is down.
//!
//! Accounts, the audit trail and all but one key method run the statements shared with SQLite
//! ([`crate::sql`]); `keys.rs` holds the one that takes a lock here.

mod keys;
mod revocations;

use std::time::Duration;

use sqlx::Connection as _;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgPool, PgPoolOptions};
use tessera_core::store::StoreError;

pub use self::revocations::{Revocation, Revoked};
use crate::sql::{impl_account_store, impl_audit_store};

/// Enough for the requests of one instance; every instance has its own pool, so the sum over
/// instances must stay under the server's `max_connections`.
const MAX_CONNECTIONS: u32 = 16;
/// How long a request waits for a connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// Names the instances' sessions in `pg_stat_activity`, unless the URL names them already.
const APPLICATION_NAME: &str = "tessera";

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store. Cheap to clone: clones share one pool (an `Arc` inside).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl_account_store!(PgStore, db_err);
impl_audit_store!(PgStore, db_err);

impl PgStore {
    /// Connects to `url` (e.g. `postgres://tessera@db:5432/tessera?options[search_path]=auth`)
    /// and applies the migrations. Fails with [`StoreError::Unavailable`] after
    /// [`ACQUIRE_TIMEOUT`] when PostgreSQL does not answer, and with [`StoreError::Other`] when
    /// the URL or the credentials are wrong. Must be called inside a tokio runtime.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut options: PgConnectOptions = url.parse().map_err(db_err)?;
        if options.get_application_name().is_none() {
            options = options.application_name(APPLICATION_NAME);
        }
        // A statement on a connection that stopped answering (a partition) must fail as an
        // outage, not hold the request until its 30 s deadline: every statement tessera runs
        // takes milliseconds. The URL can still set its own (`options[statement_timeout]=…`).
        if !url.contains("statement_timeout") {
            options = options.options([("statement_timeout", "5s")]);
        }
        // One connection first, on its own: the pool would report any failure to connect as a
        // bare timeout, and the operator needs the cause (refused, no such database, password).
        match tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => return Err(with_hint(connect_err(e))),
            Err(_) => {
                return Err(StoreError::Unavailable(format!("no answer within {ACQUIRE_TIMEOUT:?}")));
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| match connect_err(e) {
                StoreError::Unavailable(msg) if !msg.starts_with("TLS") => {
                    StoreError::Unavailable(format!("no PostgreSQL connection within {ACQUIRE_TIMEOUT:?}: {msg}"))
                }
                other => other,
            })?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies any migration not yet applied (`tessera migrate`). [`PgStore::connect`] already
    /// does this; running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let result = MIGRATOR.run(&mut *conn).await;
        if result.is_err() {
            // The migrator releases its session-level advisory lock only on success. Back in the
            // pool, this connection would keep holding it and block every later migration, of
            // every instance, forever; closing it ends the session and frees the lock.
            conn.close_on_drop();
        }
        result.map_err(|e| with_hint(migrate_err(e)))
    }

    /// Succeeds when PostgreSQL answers; part of `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool()).await.map_err(db_err)?;
        Ok(())
    }

    /// Closes every connection. Later calls on any clone fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The one mapping from sqlx's errors to the domain's: a broken uniqueness rule is a
/// conflict, anything that may pass by itself is unavailability (callers fail closed), and
/// the rest is a bug, a misconfiguration or corruption to log.
fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if db.code().is_some_and(|code| is_transient_sqlstate(&code)) => {
            StoreError::Unavailable(describe(db.as_ref()))
        }
        sqlx::Error::Database(db) => StoreError::Other(describe(db.as_ref())),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

/// A failure to connect, as [`db_err`] maps it; a failed TLS handshake (which fails at once)
/// says what to check.
fn connect_err(e: sqlx::Error) -> StoreError {
    let tls = is_tls_failure(&e);
    match db_err(e) {
        StoreError::Unavailable(msg) if tls => StoreError::Unavailable(format!(
            "TLS connection failed — check sslmode, sslrootcert and the server's certificate: {msg}"
        )),
        other => other,
    }
}

/// A TLS failure: sqlx's own (a server without TLS under `sslmode=require`), or rustls's
/// verdict on the handshake (an unknown CA, a wrong name), which sqlx passes on as I/O.
fn is_tls_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
}

/// What PostgreSQL said, in its words: the message, its detail and hint, and the SQLSTATE —
/// not the position in the server's source that sqlx appends (`at line 948`).
fn describe(db: &(dyn sqlx::error::DatabaseError + 'static)) -> String {
    let mut text = db.message().to_owned();
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        for extra in [pg.detail(), pg.hint()].into_iter().flatten() {
            text.push_str(". ");
            text.push_str(extra);
        }
    }
    if let Some(code) = db.code() {
        text.push_str(&format!(" (SQLSTATE {code})"));
    }
    text
}

/// A start-up failure with what to do about the common ones: tessera creates its tables, but
/// not the database, the schema or the role.
fn with_hint(e: StoreError) -> StoreError {
    let hint = |m: &str| {
        if m.contains("SQLSTATE 3D000") {
            Some("create the database first (createdb -O <user> <database>)")
        } else if m.contains("SQLSTATE 3F000") {
            Some("the schema named by options[search_path] in the URL must exist first (CREATE SCHEMA <name>)")
        } else if m.contains("SQLSTATE 28P01") || m.contains("SQLSTATE 28000") {
            Some("check the user and password in store.postgres_url")
        } else {
            None
        }
    };
    match e {
        StoreError::Other(m) => match hint(&m) {
            Some(h) => StoreError::Other(format!("{m}: {h}")),
            None => StoreError::Other(m),
        },
        other => other,
    }
}

/// SQLSTATEs that describe the server's condition rather than the request
/// (<https://www.postgresql.org/docs/current/errcodes-appendix.html>): classes 08 (connection
/// exception), 53 (insufficient resources: disk full, too many connections) and 57 (operator
/// intervention: shutdown, `cannot_connect_now` during start-up or recovery, a cancelled
/// query), plus serialization failure and deadlock, which a retry resolves.
fn is_transient_sqlstate(code: &str) -> bool {
    // 25006: read-only transaction — writes sent to a replica just after a fail-over.
    matches!(code.get(..2), Some("08" | "53" | "57")) || matches!(code, "40001" | "40P01" | "25006")
}

fn migrate_err(e: MigrateError) -> StoreError {
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => db_err(e),
        other => StoreError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_conditions_are_transient() {
        for code in ["08006", "08001", "53300", "53100", "57P01", "57P03", "57014", "40001", "40P01", "25006"] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn request_errors_are_not_transient() {
        // unique violation, syntax error, undefined table, invalid password, unknown database,
        // check violation, and a code too short to have a class.
        for code in ["23505", "42601", "42P01", "28P01", "3D000", "23514", "4", ""] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn pool_and_connection_failures_are_unavailable() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Protocol("unexpected message".into()),
            sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
        ] {
            assert!(matches!(db_err(e), StoreError::Unavailable(_)));
        }
        assert!(matches!(db_err(sqlx::Error::RowNotFound), StoreError::Other(_)));
    }
}
