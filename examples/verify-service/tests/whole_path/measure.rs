//! How long after a logout at tessera the service refuses the token: `SAMPLES` logouts
//! (default 100), each followed by requests to the service as fast as they go until one is
//! refused; prints p50, p99 and max. Embedded store, and across instances on PostgreSQL + Redis
//! (logout at instance C, service following instance A). Reports, asserts no timing: run on a
//! quiet machine for figures.

use std::time::{Duration, Instant};

use crate::flows::two_instances;
use crate::service::Service;
use crate::tessera::{Tessera, eventually, feed_toml};

fn samples() -> usize {
    std::env::var("SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(100)
}

async fn measure(name: &str, login_at: &Tessera, service: &Service) {
    let mut latencies = Vec::new();
    for i in 0..samples() {
        let login = if i == 0 { login_at.sign_up_and_login("ada").await } else { login_at.login("ada").await };
        eventually("the service accepts the login", Duration::from_secs(20), || async {
            (service.status("/whoami", &login.access_token).await == 200).then_some(())
        })
        .await;
        login_at.logout(&login).await;
        let start = Instant::now();
        loop {
            if service.status("/whoami", &login.access_token).await == 401 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "the logout never reached the service");
        }
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let at =
        |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1).min(latencies.len() - 1)];
    println!(
        "logout -> refused by the service ({name}, {} samples): p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        at(0.50),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}

#[tokio::test]
async fn measure_logout_to_refusal_embedded() {
    let tessera = Tessera::start(&feed_toml()).await;
    let service = Service::start(&tessera, "5s").await;
    measure("embedded", &tessera, &service).await;
}

#[tokio::test]
async fn measure_logout_to_refusal_across_instances() {
    let (_store, a, c) = two_instances().await;
    let service = Service::start(&a, "5s").await;
    measure("PG+Redis, logout at C, service on A", &c, &service).await;
}
