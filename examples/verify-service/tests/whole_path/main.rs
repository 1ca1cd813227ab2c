//! The whole path with real processes: tessera (started in this test process, on the embedded
//! store or on PostgreSQL + Redis with two instances) and the example service
//! (`verify-service`, its own process, configured by `VERIFY_*` variables as an operator would).
//!
//! Log in at tessera → the service answers 200 with the user; log out at tessera → the service
//! refuses (401); rotate tessera's keys → the service follows without a restart; stop tessera →
//! the service fails closed (503) after its staleness and recovers by itself; forged and altered
//! tokens → refused by the service exactly as by tessera.
//!
//! The distributed tests need PostgreSQL and Redis (`TESSERA_TEST_POSTGRES_URL`,
//! `TESSERA_TEST_REDIS_URL`); they fail, never skip, without them.
//!
//! `measure` prints logout → refusal latencies (p50/p99/max over `SAMPLES`, default 100):
//! `cargo test -p verify-service --test whole_path measure -- --nocapture --test-threads 1`.

#[path = "../../../../crates/tessera-verify/tests/common/forge.rs"]
mod forge;
#[allow(dead_code)]
#[path = "../../../../crates/tessera-server/tests/distributed/harness/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../../../../crates/tessera-verify/tests/common/tessera.rs"]
mod tessera;

mod flows;
mod measure;
mod service;
mod store;
