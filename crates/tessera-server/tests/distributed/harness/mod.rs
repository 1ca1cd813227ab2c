//! What the distributed tests stand on: PostgreSQL (a schema of the test's own on the shared
//! server, or a private server the test can stop), redis-server processes of the test's own
//! (standalone or a three-master cluster, plain or TLS, with certificates from a test CA made
//! for the test), and `tessera serve` processes configured through
//! the environment, as an operator would run them. Everything a test starts is stopped when
//! the test ends, pass or fail.

pub mod postgres;
pub mod process;
pub mod redis;
pub mod tessera;
pub mod tls;
pub mod traffic;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every account the tests create has this password.
pub const PASSWORD: &str = "correct horse battery staple";

/// `t_` and 16 random hex digits: one test's PostgreSQL schema and Redis key prefix.
pub fn unique_name() -> String {
    let bytes = tessera_core::secret::random_bytes::<8>();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("t_{hex}")
}

/// A loopback port nothing listens on right now (bound and released: another process could
/// take it in between, which the starters notice as a process that exits). Never the same
/// port twice in one test run, so two servers of this binary cannot be handed one port.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        if HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// A free port `p` whose cluster-bus port `p + 10000` is free too (Redis Cluster uses both).
pub fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port <= u16::MAX - 10_000 && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Calls `probe` every `every` until it returns `Some`, and returns that with the time it
/// took; panics naming `what` if that takes longer than `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, every: Duration, mut probe: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return (value, start.elapsed());
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(every).await;
    }
}

/// Runs a command that finishes by itself, off the async workers, and returns its output.
pub async fn run(mut cmd: std::process::Command) -> std::process::Output {
    let program = format!("{:?}", cmd.get_program());
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("the command runner does not panic")
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// The `q` quantile (0 < q ≤ 1) of sorted samples, by the nearest-rank method.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    assert!(!sorted.is_empty(), "no samples");
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
