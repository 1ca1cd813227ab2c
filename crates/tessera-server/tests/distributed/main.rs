//! Real-process tests of the distributed backend (SPEC §4): `tessera serve` processes on
//! PostgreSQL + Redis, as they run in production — several instances sharing nothing but the
//! two stores, Redis Cluster, and the stores failing underneath them.
//!
//! Needs a PostgreSQL server (`TESSERA_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, for throw-away schemas), `psql`, the PostgreSQL
//! server binaries (`initdb`, `postgres`, for a private server the outage test stops) and
//! `redis-server` + `redis-cli` (every test starts its own Redis). A missing one fails the
//! test with what to install; nothing is skipped.
//!
//! Each test isolates itself: its own PostgreSQL schema, its own redis-server processes on free
//! loopback ports, a random Redis key prefix, and its own `tessera` processes — all stopped when
//! the test ends, also on failure. Run with `--nocapture` to see the measured figures
//! (revocation propagation, recovery times).

mod harness;

mod account_change_outage;
mod cluster;
mod instance_crash;
mod key_rotation;
mod postgres_outage;
mod propagation;
mod redis_data_loss;
mod redis_outage;
mod redis_rollback;
mod revocation_feed;
mod revocation_outage;
mod subscription_loss;
mod tls;
