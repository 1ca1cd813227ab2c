//! The embedded store against real SQLite files in temporary directories: one module per
//! storage trait, plus refresh rotation, the session cache and durability across restarts.

mod accounts;
mod audit;
mod cache;
mod denylist;
mod durability;
mod helpers;
mod keys;
mod refresh;
mod sessions;
mod throttle;
