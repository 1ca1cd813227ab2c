//! Storage backends for tessera, each behind the narrow traits of [`tessera_core::store`].
//!
//! One module per backend. [`sqlite`] is the embedded default: one SQLite file under
//! `store.data_dir`, so `tessera serve` works with no configuration and no other service.
#![forbid(unsafe_code)]

pub mod sqlite;

pub use sqlite::SqliteStore;
