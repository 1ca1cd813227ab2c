//! The embedded store against real SQLite files in temporary directories: one module per
//! storage trait, plus refresh rotation, the session cache and durability across restarts.
//! Accounts, audit and keys are the tests shared with PostgreSQL (`tests/sql`).

mod cache;
mod denylist;
mod durability;
mod helpers;
mod refresh;
mod sessions;
#[path = "../sql/mod.rs"]
mod sql;
mod throttle;
