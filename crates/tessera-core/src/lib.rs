//! tessera's domain: accounts, sessions, credentials and the policy that decides whether a
//! credential is valid *now*.
//!
//! This crate knows nothing of HTTP or of a particular database. Storage is reached through the
//! narrow traits in [`store`]; the HTTP server and every backend depend on this crate, never the
//! other way round. The one entry point for a decision is [`Auth`].
#![forbid(unsafe_code)]

pub mod account;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod error;
pub mod feed;
pub mod password;
pub mod policy;
pub mod refresh;
pub mod revocation;
pub mod secret;
pub mod session;
pub mod store;
pub mod throttle;
pub mod username;

/// Access tokens and the ids they carry: the shared `tessera-jwt` crate, under the names the
/// core has always used.
pub use tessera_jwt::{self as jwt, id};

pub use account::Account;
pub use auth::{Auth, Authenticated, ClientInfo, IssuedSession};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::AuthError;
pub use id::{SessionId, UserId};
pub use password::{Password, PasswordHash, PasswordHasher};
pub use policy::{Mode, Policy, SessionPolicy};
pub use session::{CsrfToken, Session, SessionToken};
pub use store::{Store, StoreError};
pub use username::Username;
