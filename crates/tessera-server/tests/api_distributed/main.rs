//! The black-box suite of `tests/api`, run against the distributed backend: every test's server
//! stores accounts, keys and audit records in a fresh PostgreSQL schema and sessions, refresh
//! families, the denylist and throttle counters under a fresh Redis prefix.
//!
//! PostgreSQL and Redis must be running: `TESSERA_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`) and `TESSERA_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`). The suite fails, never skips, when either is unreachable.
//!
//! Same source, not a copy: `tests/api/backend.rs` picks the backend from the crate name.

#[path = "../api/main.rs"]
mod api;

// The suite's modules name their harness `crate::helpers`, `crate::forge`, …
use api::{backend, forge, helpers, token_helpers};

// Tests of what only the distributed backend has.
mod session_keys;
