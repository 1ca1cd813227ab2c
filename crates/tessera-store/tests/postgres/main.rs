//! The PostgreSQL store against a real server: the one named by `TESSERA_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`). Every test works in a schema of its own,
//! created for it and dropped after it, so tests run in parallel on one database. A server that
//! cannot be reached fails the tests; it never skips them.
//!
//! Accounts, audit and keys are the tests shared with SQLite (`tests/sql`).

mod helpers;
mod lifecycle;
mod revocations;
#[path = "../sql/mod.rs"]
mod sql;
