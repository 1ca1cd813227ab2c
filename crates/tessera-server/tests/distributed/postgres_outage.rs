//! PostgreSQL outage under traffic (SPEC §3 "Outages"; SPEC §4: PostgreSQL holds accounts,
//! keys and audit, Redis the sessions).
//!
//! A hybrid-mode instance runs on a private PostgreSQL server the test can stop (a schema on
//! the shared server cannot be taken away) and a redis-server of its own. While a client keeps
//! calling `/v1/me` with a JWT, PostgreSQL is shut down (fast shutdown: every connection cut):
//! sign-up, login and `/readyz` get 503 problem documents, while JWT verification keeps
//! working — every `/v1/me` is a 200, also across a failed signing-key reload (every 5 s),
//! since verification needs only the keys in memory and the denylist in Redis. PostgreSQL is
//! started again on the same port and data: the instance recovers without a restart, the
//! accounts from before are still there and new ones can be made.

use std::time::{Duration, Instant};

use crate::harness::postgres::PrivatePostgres;
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{Backend, Deployment};
use crate::harness::traffic::Traffic;
use crate::harness::{eventually, unique_name};

/// The instances' signing-key reload interval: the outage lasts longer than one.
const KEY_RELOAD: Duration = Duration::from_secs(5);
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_postgres_gives_503s_for_accounts_while_jwts_keep_working() {
    let mut postgres = PrivatePostgres::start().await;
    let redis = RedisServer::start().await;
    let backend = Backend::standalone(postgres.url(), redis.url(), unique_name());
    let deployment = Deployment::new(&backend, "hybrid").with("REVOCATION__CHECK", "denylist");
    let app = deployment.start("H").await;
    app.signup_ok("alice").await;
    let alice = app.login_tokens("alice").await;
    let mut traffic = Traffic::new();
    traffic.me(&app, vec![alice.access.clone()]);
    tokio::time::sleep(Duration::from_millis(300)).await;

    postgres.stop().await;
    let stopped = Instant::now();
    app.signup("bob").await.assert_unavailable("sign-up while PostgreSQL is down");
    app.login("alice").await.assert_unavailable("login while PostgreSQL is down");
    app.readyz().await.assert_unavailable("/readyz while PostgreSQL is down");
    while stopped.elapsed() < KEY_RELOAD + Duration::from_secs(1) {
        app.me(&alice.access).await.assert_status(200, "a JWT while PostgreSQL is down");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.login("alice").await.assert_unavailable("login while PostgreSQL is down, after a key reload");

    postgres.restart().await;
    let (_, took) = eventually(
        "the instance is ready again after PostgreSQL restarted",
        RECOVERY_BOUND,
        Duration::from_millis(50),
        || async { (app.readyz().await.status == 200).then_some(()) },
    )
    .await;
    eprintln!("postgres outage: ready {took:?} after PostgreSQL restarted");
    app.signup_ok("bob").await;
    app.login_tokens("alice").await;
    app.login_tokens("bob").await;

    let seen = traffic.finish().await;
    eprintln!("postgres outage: /v1/me answers during the test: {seen:?}");
    for (target, tally) in &seen {
        assert_eq!(tally.keys().collect::<Vec<_>>(), ["200"], "{target}: every JWT request got 200: {tally:?}");
    }
}
