//! The embedded store against real SQLite files in temporary directories: one module per
//! storage trait, plus the session cache and durability across restarts.

mod accounts;
mod audit;
mod cache;
mod durability;
mod helpers;
mod sessions;
mod throttle;
