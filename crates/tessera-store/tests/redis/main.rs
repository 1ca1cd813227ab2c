//! The Redis half of the distributed backend against a real Redis (`TESSERA_TEST_REDIS_URL`,
//! default `redis://127.0.0.1:6379`). Each test works under its own random key prefix, so tests
//! run in parallel and twice in a row; a missing Redis fails them, with a message saying so.

mod denylist;
mod helpers;
mod lifecycle;
mod sessions;
mod throttle;
