//! Black-box tests of tessera: each test starts the real server on a random port with a fresh
//! store and a clock it can move, and talks HTTP to it. One module per area of the contract
//! (SPEC §1–§3): first the session mode, then the token modes (jwt, hybrid).
//!
//! The same suite is built twice: as target `api` against the embedded SQLite store, and as
//! target `api_distributed` (`tests/api_distributed/main.rs`) against PostgreSQL + Redis; see
//! [`backend`]. The harness modules are `pub(crate)` so that target can re-export them at its
//! root, where `crate::helpers` and the like find them.

pub(crate) mod backend;
pub(crate) mod forge;
pub(crate) mod helpers;
pub(crate) mod token_helpers;

mod accounts;
mod admin;
mod audit;
mod bad_input;
mod cli;
mod cookies_and_csrf;
mod cross_site;
mod forward_auth;
mod header_fuzz;
mod login;
mod logout;
mod logs;
mod me_and_sessions;
mod metrics;
mod one_credential;
mod openapi;
mod pages;
mod password;
mod readme;
mod response_headers;
mod restart;
mod route_fuzz;
mod store_errors;
mod throttle;
mod throttle_beyond_login;
mod timeouts;
mod usernames;

mod introspect_revoke;
mod jwks_and_keys;
mod jwt_attacks;
mod jwt_claims;
mod keys_import;
mod refresh;
mod revocation_feed;
mod revocation_matrix;
mod token_cookies;
mod token_login;
mod token_restart;
