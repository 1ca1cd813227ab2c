//! The specification both SQL stores meet (accounts, the audit trail, signing keys and server
//! secrets): one source, compiled into the `sqlite` and the `postgres` test targets through
//! `#[path]`. Each target's `helpers` provides the fixture these tests call:
//!
//! - `open_store()`: a fresh, empty store, and what keeps its database alive (a temporary
//!   directory, a schema);
//! - `open_again(&db)`: a second store on the same database, standing in for another process
//!   or instance, or for the same one after a restart.
//!
//! What only one backend has (SQLite's durability and session cache, PostgreSQL's lifecycle)
//! is tested in that backend's own target.

mod accounts;
mod audit;
pub mod fixtures;
mod keys;
