//! Losing the denylist stream (SPEC §4): "If an instance loses the stream it resynchronises,
//! and while it cannot it fails closed after a bounded staleness."
//!
//! Two instances in hybrid mode with the denylist check (`revocation.max_staleness = 1s`) on a
//! redis-server of the test's own. Redis is killed (SIGKILL: no goodbye on any connection).
//! From then on, every request that needs the denylist — `GET /v1/me` with a JWT — must be a
//! 200 only while the instance's copy is within its staleness bound, then 503; a revoked token
//! must never get a 200. Redis comes back on the same port, empty (no persistence): the
//! instances recover without a restart, live tokens get 200 again, a token revoked before the
//! outage stays refused on instances that ran throughout (their copy of the denylist outlives
//! Redis's), and a new revocation reaches the other instance again (the subscription and the
//! sync cursor survived Redis starting over).

use std::time::{Duration, Instant};

use crate::harness::postgres::Schema;
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{Api, Backend, Deployment};
use crate::harness::{eventually, unique_name};

/// `revocation.max_staleness`.
const MAX_STALENESS: Duration = Duration::from_secs(1);
/// Fail closed within the staleness bound plus one Redis response timeout (1 s: a sync in
/// flight when Redis died may take that long to fail) plus slack for a loaded machine.
const FAIL_CLOSED_BOUND: Duration = Duration::from_secs(4);
/// Reconnection, resubscription and a sync, with room for a loaded machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_fails_closed_within_the_staleness_bound_and_recovers_without_a_restart() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let mut redis = RedisServer::start().await;
    let backend = Backend::standalone(schema.url(), redis.url(), name);
    let deployment = Deployment::new(&backend, "hybrid")
        .with("REVOCATION__CHECK", "denylist")
        .with("REVOCATION__MAX_STALENESS", "1s");
    let fleet = deployment.start_many(&["A", "B"]).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    a.signup_ok("alice").await;

    let revoked = a.login_tokens("alice").await;
    b.logout(&revoked.access).await.assert_status(204, "logout on B");
    for app in [a, b] {
        app.refused_within(&revoked.access, MAX_STALENESS, "a token logged out before the outage").await;
    }
    let live = a.login_tokens("alice").await;
    for app in [a, b] {
        app.me(&live.access).await.assert_status(200, "a live token before the outage");
    }

    redis.kill();
    let killed = Instant::now();
    let (took_a, took_b) =
        tokio::join!(fails_closed(a, &live.access, &revoked.access), fails_closed(b, &live.access, &revoked.access));
    eprintln!("subscription loss: 503 for a live token {took_a:?} (A), {took_b:?} (B) after Redis was killed");
    // It stays closed while Redis is away, and a logout cannot pretend to have happened.
    for app in [a, b] {
        for _ in 0..5 {
            app.me(&live.access).await.assert_unavailable("a live token while the denylist is stale");
            assert_ne!(app.me(&revoked.access).await.status, 200, "a revoked token while Redis is down");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.logout(&live.access).await.assert_unavailable("logout while Redis is down");
    }
    eprintln!("subscription loss: Redis down for {:?}", killed.elapsed());

    redis.restart().await;
    let (took_a, took_b) = tokio::join!(recovers(a, &live.access), recovers(b, &live.access));
    eprintln!("subscription loss: 200 for a live token {took_a:?} (A), {took_b:?} (B) after Redis restarted");
    for app in [a, b] {
        app.me(&revoked.access)
            .await
            .assert_status(401, "a token revoked before the outage, after Redis came back empty");
    }

    // The stream is back: a revocation on B reaches A again.
    let fresh = a.login_tokens("alice").await;
    a.me(&fresh.access).await.assert_status(200, "a token issued after recovery");
    b.logout(&fresh.access).await.assert_status(204, "logout on B after recovery");
    a.refused_within(&fresh.access, MAX_STALENESS, "a token logged out on B after recovery").await;
}

/// Polls `/v1/me` on `app` until the live token gets 200 again, and returns how long that took.
async fn recovers(app: &Api, live: &str) -> Duration {
    let (_, took) = eventually(
        &format!("{} accepts a live token again after Redis restarted", app.name),
        RECOVERY_BOUND,
        Duration::from_millis(20),
        || async {
            let reply = app.me(live).await;
            match reply.status.as_u16() {
                200 => Some(()),
                503 => None,
                _ => panic!("a live token during recovery on {}: {} {}", app.name, reply.status, reply.text),
            }
        },
    )
    .await;
    took
}

/// Polls `/v1/me` on `app` until the live token gets 503 and returns how long that took. On
/// the way the live token may only get 200 or 503, the revoked one never 200.
async fn fails_closed(app: &Api, live: &str, revoked: &str) -> Duration {
    let (_, took) = eventually(
        &format!("{} answers 503 for a live token once its denylist is stale", app.name),
        FAIL_CLOSED_BOUND,
        Duration::from_millis(10),
        || async {
            let gone = app.me(revoked).await;
            assert!(
                matches!(gone.status.as_u16(), 401 | 503),
                "a revoked token while Redis is down, on {}: {} {}",
                app.name,
                gone.status,
                gone.text
            );
            let reply = app.me(live).await;
            match reply.status.as_u16() {
                503 => {
                    reply.assert_unavailable("a live token once the denylist is stale");
                    Some(())
                }
                200 => None,
                _ => panic!("a live token while Redis is down, on {}: {} {}", app.name, reply.status, reply.text),
            }
        },
    )
    .await;
    took
}
