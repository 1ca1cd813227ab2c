//! Storage backends for tessera, each behind the narrow traits of [`tessera_core::store`].
//!
//! One module per backend. [`sqlite`] is the embedded default: one SQLite file under
//! `store.data_dir`, so `tessera serve` works with no configuration and no other service.
//! [`distributed`] pairs [`postgres`] (accounts, keys, audit) with [`redis`] (sessions,
//! refresh families, denylist, throttle counters) for any number of instances.
#![forbid(unsafe_code)]

pub mod distributed;
pub mod memo;
pub mod postgres;
pub mod redis;
mod sql;
pub mod sqlite;

pub use distributed::DistributedStore;
pub use postgres::{PgStore, Revocation, Revoked};
pub use redis::{RedisSettings, RedisStore};
pub use sql::{AuditQuery, AuditRecord};
pub use sqlite::SqliteStore;
