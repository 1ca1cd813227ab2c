//! The SQL that the SQLite and the PostgreSQL stores share: row types, their conversions to
//! domain types, and the trait methods whose statements are the same text on both.
//!
//! Every statement numbers its parameters `$1`, `$2`, …: PostgreSQL's own syntax, and one that
//! sqlx's SQLite driver binds by number too, so one text serves both. The trait methods come as
//! macros ([`impl_account_store!`], [`impl_audit_store!`], [`impl_key_store!`]) that a backend
//! invokes for its store type, naming its own error mapping; each store provides a `pool()`.
//! Rust code generic over `sqlx::Database` would need an `Encode + Type` bound per bound type
//! on every method; the macros keep each method readable as the plain sqlx call it is.
//!
//! What differs between the backends stays in their modules: connecting, error mapping, and
//! where the concurrency argument differs (the first signing key, see `postgres/keys.rs`).

mod accounts;
pub(crate) mod audit;
mod keys;

use tessera_core::id::{SessionId, UserId};
use tessera_core::store::StoreError;

pub(crate) use accounts::{AccountRow, impl_account_store};
pub use audit::{AuditQuery, AuditRecord};
pub(crate) use audit::{AuditRow, impl_audit_store};
pub(crate) use keys::{INSERT_KEY_IF_NONE_USABLE, KeyRow, bind_key, impl_key_store};

pub(crate) fn user_id(bytes: &[u8]) -> Result<UserId, StoreError> {
    bytes.try_into().map(UserId::from_bytes).map_err(|_| corrupt("user id"))
}

pub(crate) fn session_id(bytes: &[u8]) -> Result<SessionId, StoreError> {
    bytes.try_into().map(SessionId::from_bytes).map_err(|_| corrupt("session id"))
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Other(format!("corrupt {what} in the database"))
}
