//! Revocation propagation between instances (SPEC §4): "with `revocation.check = "denylist"`
//! each instance checks a local copy of the denylist, kept in sync through Redis pub/sub; a
//! revocation on one instance is enforced on every other within 100 ms (p99)".
//!
//! Three `tessera serve` processes share one PostgreSQL and one Redis. Over many trials a user
//! logs in on A, refreshes on B and logs out on C; A and B are then polled (about every 2 ms)
//! until they refuse the access token. Every trial must end within `revocation.max_staleness`
//! (1 s): that bound is the correctness promise, since an instance that cannot catch up within
//! it fails closed. The 100 ms p99 target is measured, not asserted — a timing figure on a
//! shared two-core machine is a report, not a pass/fail condition: run with `--nocapture` to
//! see p50/p99/max.

use std::time::Duration;

use crate::harness::postgres::Schema;
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{Backend, Deployment};
use crate::harness::{quantile, unique_name};

const TRIALS: usize = 50;
/// `revocation.max_staleness`.
const MAX_STALENESS: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_is_enforced_on_the_others_within_the_staleness_bound() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let redis = RedisServer::start().await;
    let backend = Backend::standalone(schema.url(), redis.url(), name);
    let deployment = Deployment::new(&backend, "hybrid")
        .with("REVOCATION__CHECK", "denylist")
        .with("REVOCATION__MAX_STALENESS", "1s");
    let fleet = deployment.start_many(&["A", "B", "C"]).await;
    let (a, b, c) = (&fleet[0], &fleet[1], &fleet[2]);
    a.signup_ok("alice").await;

    let mut delays = Vec::with_capacity(2 * TRIALS);
    for trial in 0..TRIALS {
        let login = a.login_tokens("alice").await;
        let pair = b.refresh_ok(&login.refresh).await;
        // Accepted everywhere first, so the 401 below can only be the revocation.
        for app in [a, b] {
            app.me(&pair.access).await.assert_status(200, &format!("trial {trial}: the access token before logout"));
        }
        c.logout(&pair.access).await.assert_status(204, &format!("trial {trial}: logout on C"));
        let what = format!("trial {trial}: the access token logged out on C");
        let (on_a, on_b) = tokio::join!(
            a.refused_within(&pair.access, MAX_STALENESS, &what),
            b.refused_within(&pair.access, MAX_STALENESS, &what)
        );
        delays.extend([on_a, on_b]);

        // The whole session ended: the token it was logged in with, and its refresh token.
        for app in [a, b] {
            app.me(&login.access).await.assert_status(401, &format!("trial {trial}: the login's access token"));
        }
        a.refresh(&pair.refresh).await.assert_status(401, &format!("trial {trial}: the session's refresh token"));
    }

    delays.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "revocation propagation C -> A, B over {} samples ({TRIALS} trials): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
         (SPEC target: p99 <= 100 ms; asserted bound: {MAX_STALENESS:?})",
        delays.len(),
        ms(quantile(&delays, 0.50)),
        ms(quantile(&delays, 0.99)),
        ms(quantile(&delays, 1.0)),
    );
}
