//! Redis outage under traffic (SPEC §3 "Outages": answer 503 when the store needed for a
//! decision is unreachable — fail closed, never 200 — and recover without a restart).
//!
//! Two deployments share one PostgreSQL and a redis-server of the test's own with append-only
//! persistence (fsync on every write): `S` in session mode and `L` in hybrid mode with the
//! allowlist check, the two configurations that read Redis on every request. While clients
//! keep calling `/v1/me`, Redis is stopped (SIGTERM, so it flushes and exits): requests that
//! need it, logins and `/readyz` get 503 problem documents — not 500, not 200, not 401 — and
//! Redis is started again on the same port and directory: both instances recover without a
//! restart and every session from before the outage is still valid, refresh tokens included.
//! Sign-up needs only PostgreSQL (accounts live there; it reads no Redis key), so it keeps
//! answering 201, and the new account logs in once Redis is back — the README's outage table
//! says so.

use std::time::{Duration, Instant};

use crate::harness::postgres::Schema;
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{Backend, Deployment, TokenPair};
use crate::harness::traffic::Traffic;
use crate::harness::{eventually, unique_name};

const USERS: usize = 4;
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_redis_gives_503s_and_every_session_survives_its_restart() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let mut redis = RedisServer::start_persistent().await;
    let backend = |prefix: &str| Backend::standalone(schema.url(), redis.url(), format!("{name}-{prefix}"));
    let session_mode = Deployment::new(&backend("s"), "session");
    let allowlist = Deployment::new(&backend("l"), "hybrid").with("REVOCATION__CHECK", "allowlist");
    let s = session_mode.start("S").await;
    let l = allowlist.start("L").await;

    let users: Vec<String> = (0..USERS).map(|i| format!("user{i}")).collect();
    let (mut sessions, mut pairs) = (Vec::new(), Vec::<TokenPair>::new());
    for user in &users {
        s.signup_ok(user).await;
        sessions.extend([s.login_session(user).await, s.login_session(user).await]);
        pairs.push(l.login_tokens(user).await);
    }
    let accesses: Vec<String> = pairs.iter().map(|p| p.access.clone()).collect();
    let mut traffic = Traffic::new();
    traffic.me(&s, sessions.clone());
    traffic.me(&l, accesses.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    redis.shutdown().await;
    // No grace period: the very first request after Redis is gone must not be a 200.
    for (app, token) in [(&*s, &sessions[0]), (&*l, &accesses[0])] {
        let asked = Instant::now();
        app.me(token).await.assert_unavailable("the first request that needs Redis after it stopped");
        eprintln!("redis outage: {} answered 503 in {:?}", app.name, asked.elapsed());
    }
    for (app, token) in [(&*s, &sessions[1]), (&*l, &accesses[1])] {
        app.me(token).await.assert_unavailable("a request that needs Redis, while it is stopped");
        app.login(&users[0]).await.assert_unavailable("login while Redis is stopped");
        app.readyz().await.assert_unavailable("/readyz while Redis is stopped");
    }
    s.signup("newcomer").await.assert_status(201, "sign-up while Redis is stopped (it needs PostgreSQL only)");

    redis.restart().await;
    for app in [&*s, &*l] {
        let (_, took) = eventually(
            &format!("{} is ready again after Redis restarted", app.name),
            RECOVERY_BOUND,
            Duration::from_millis(50),
            || async { (app.readyz().await.status == 200).then_some(()) },
        )
        .await;
        eprintln!("redis outage: {} ready {took:?} after Redis restarted", app.name);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = traffic.finish().await;
    eprintln!("redis outage: /v1/me answers during the test: {seen:?}");
    for (target, tally) in &seen {
        let unexpected: Vec<_> = tally.keys().filter(|k| !matches!(k.as_str(), "200" | "503")).collect();
        assert!(unexpected.is_empty(), "{target} answered only 200 or 503 during the outage: {tally:?}");
        assert!(tally.contains_key("503"), "the traffic on {target} spanned the outage: {tally:?}");
    }

    for (i, token) in sessions.iter().enumerate() {
        s.me(token).await.assert_status(200, &format!("session {i} from before the outage"));
    }
    for (i, pair) in pairs.iter().enumerate() {
        l.me(&pair.access).await.assert_status(200, &format!("access token {i} from before the outage"));
        let next = l.refresh_ok(&pair.refresh).await;
        l.me(&next.access).await.assert_status(200, &format!("refreshed access token {i}"));
    }
    for app in [&*s, &*l] {
        app.login(&users[0]).await.assert_status(200, "login after Redis came back");
    }
    s.login("newcomer").await.assert_status(200, "the account created during the outage, after it");
}
