//! Redis coming back without its last writes — restored from a snapshot taken before a logout,
//! as after a crash with `appendfsync everysec`, a restore from backup, or a replica promoted
//! before it caught up — must not undo an acknowledged logout.
//!
//! Every test logs in, takes a snapshot of Redis (`SAVE` and a copy of its directory), revokes
//! (logout, logout everywhere, a password change, `POST /v1/revoke`, refresh-token reuse
//! detection), checks the revocation took, then kills Redis (`SIGKILL`) and starts it again
//! from the snapshot: the sessions the revocation ended are back in Redis, and the denylist
//! entries gone. From just before the kill
//! until well after, background probes call every instance with every revoked credential; not
//! one may be accepted (503 while Redis is down or being replayed into, then 401), every one
//! must be refused with 401 within the recovery bound, and credentials nobody revoked work
//! again (the snapshot really was restored). tessera recorded each revocation in PostgreSQL
//! and replays them into the restarted Redis before it trusts it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::harness::postgres::{PrivatePostgres, Schema};
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{ADMIN_KEY, Api, Backend, Deployment, Instance, TokenPair};
use crate::harness::{PASSWORD, eventually, unique_name};

const RECOVERY_BOUND: Duration = Duration::from_secs(15);
/// Between two rounds of probes.
const PROBE_PAUSE: Duration = Duration::from_millis(10);

/// One revoked credential, and how to present it.
#[derive(Clone)]
enum Probe {
    /// `GET /v1/me` with a session token or an access token.
    Me(&'static str, String),
    /// `POST /v1/refresh` with a refresh token.
    Refresh(&'static str, String),
}

impl Probe {
    fn label(&self) -> &'static str {
        match self {
            Probe::Me(l, _) | Probe::Refresh(l, _) => l,
        }
    }

    /// The status, or 0 for no answer.
    async fn status(&self, app: &Api) -> u16 {
        let reply = match self {
            Probe::Me(_, token) => app.try_request(reqwest::Method::GET, "/v1/me", Some(token), None).await,
            Probe::Refresh(_, token) => {
                let body = serde_json::json!({ "refresh_token": token });
                app.try_request(reqwest::Method::POST, "/v1/refresh", None, Some(&body)).await
            }
        };
        reply.map_or(0, |r| r.status.as_u16())
    }

    /// Refused for good: 401. A refresh may also meet the per-address throttle of refused
    /// refresh tokens (429) — refused, but it says nothing about the session; the final check
    /// introspects refresh tokens instead.
    fn refused(&self, status: u16) -> bool {
        match self {
            Probe::Me(..) => status == 401,
            Probe::Refresh(..) => status == 401 || status == 429,
        }
    }
}

/// Probes running in the background; every answer is counted per instance and credential.
struct Probes {
    stop: Arc<AtomicBool>,
    task: JoinHandle<BTreeMap<String, BTreeMap<u16, usize>>>,
}

impl Probes {
    fn start(apps: &[&Instance], probes: &[Probe]) -> Probes {
        let apps: Vec<Api> = apps.iter().map(|a| Api::clone(a)).collect();
        let probes = probes.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut seen: BTreeMap<String, BTreeMap<u16, usize>> = BTreeMap::new();
            let mut round = 0_u64;
            while !flag.load(Ordering::Relaxed) {
                round += 1;
                for app in &apps {
                    // Refused refresh tokens count against a per-address allowance (which a
                    // later refresh in the test needs): a refresh probe every tenth round.
                    for probe in probes.iter().filter(|p| matches!(p, Probe::Me(..)) || round % 10 == 1) {
                        let status = probe.status(app).await;
                        *seen
                            .entry(format!("{} {}", app.name, probe.label()))
                            .or_default()
                            .entry(status)
                            .or_default() += 1;
                    }
                }
                tokio::time::sleep(PROBE_PAUSE).await;
            }
            seen
        });
        Probes { stop, task }
    }

    /// Stops the probes; fails the test if any revoked credential was accepted (or met
    /// anything but a refusal or an outage's 503).
    async fn finish(self, what: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let seen = self.task.await.expect("the probes do not panic");
        eprintln!("{what}: answers to revoked credentials while Redis rolled back: {seen:?}");
        for (target, tally) in &seen {
            for status in tally.keys() {
                assert!(
                    matches!(status, 401 | 429 | 503),
                    "{what}: {target} answered {status} ({tally:?}): a revoked credential must never be accepted"
                );
            }
        }
    }
}

/// Kills Redis and starts it from `snapshot`, with `probes` running throughout; then waits
/// until every instance refuses every probe (and, for refresh tokens, introspects them as
/// inactive). Returns how long after the restart that took.
async fn roll_back(
    what: &str,
    redis: &mut RedisServer,
    snapshot: &tempfile::TempDir,
    apps: &[&Instance],
    probes: &[Probe],
) -> Duration {
    let running = Probes::start(apps, probes);
    tokio::time::sleep(Duration::from_millis(100)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(100)).await;
    redis.restart_from(snapshot).await;
    let restarted = Instant::now();
    for app in apps {
        for probe in probes {
            eventually(
                &format!("{what}: {} refuses {} after Redis came back from the snapshot", app.name, probe.label()),
                RECOVERY_BOUND,
                Duration::from_millis(20),
                || async { probe.refused(probe.status(app).await).then_some(()) },
            )
            .await;
            if let Probe::Refresh(label, token) = probe {
                let reply = app.introspect(token).await;
                reply.assert_status(200, &format!("{what}: introspecting {label}"));
                assert_eq!(reply.json()["active"], false, "{what}: {label} on {}: {}", app.name, reply.text);
            }
        }
    }
    let took = restarted.elapsed();
    // Refused for good, not just once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.finish(what).await;
    eprintln!("{what}: every revoked credential refused on every instance {took:?} after the restart");
    took
}

async fn ready(app: &Instance) {
    eventually(&format!("{} is ready", app.name), RECOVERY_BOUND, Duration::from_millis(20), || async {
        (app.readyz().await.status == 200).then_some(())
    })
    .await;
}

/// Rows of `revocations` of `kind`.
async fn recorded(schema: &Schema, kind: &str) -> u64 {
    schema
        .query_value(&format!("SELECT count(*) FROM revocations WHERE kind = '{kind}'"))
        .await
        .parse()
        .expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_a_logout_survives_redis_restarting_from_an_older_append_only_file() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let mut redis = RedisServer::start_persistent().await;
    let backend = Backend::standalone(schema.url(), redis.url(), name);
    let deployment = Deployment::new(&backend, "session").with("ADMIN__API_KEY", ADMIN_KEY);
    let fleet = deployment.start_many(&["A", "B"]).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    a.signup_ok("alice").await;
    let gone = a.login_session("alice").await;
    let revoked = a.login_session("alice").await;
    let kept = a.login_session("alice").await;
    let snapshot = redis.snapshot().await;

    a.logout(&gone).await.assert_status(204, "logout");
    b.revoke(&revoked).await.assert_status(200, "revoking a session token");
    for app in [a, b] {
        app.me(&gone).await.assert_status(401, "a logged-out session");
        app.me(&revoked).await.assert_status(401, "a revoked session");
    }
    assert_eq!(recorded(&schema, "session").await, 2, "each ended session is recorded in PostgreSQL");

    let probes = [Probe::Me("logged-out session", gone), Probe::Me("revoked session", revoked)];
    roll_back("session mode", &mut redis, &snapshot, &[a, b], &probes).await;
    for app in [a, b] {
        ready(app).await;
        app.me(&kept).await.assert_status(200, "a session nobody ended, back from the snapshot");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_mode_a_logout_survives_redis_restarting_from_an_older_snapshot() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let mut redis = RedisServer::start().await;
    let backend = Backend::standalone(schema.url(), redis.url(), name);
    let deployment = Deployment::new(&backend, "hybrid")
        .with("REVOCATION__CHECK", "denylist")
        .with("REVOCATION__MAX_STALENESS", "1s")
        .with("REFRESH__REUSE_GRACE", "0s")
        .with("ADMIN__API_KEY", ADMIN_KEY);
    let fleet = deployment.start_many(&["A", "B"]).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    a.signup_ok("alice").await;
    let gone = a.login_tokens("alice").await;
    let revoked = a.login_tokens("alice").await;
    let reused = a.login_tokens("alice").await;
    let kept = a.login_tokens("alice").await;
    let snapshot = redis.snapshot().await;

    b.logout(&gone.access).await.assert_status(204, "logout");
    a.revoke(&revoked.refresh).await.assert_status(200, "revoking a refresh token");
    // A refresh token presented again after its rotation ends the whole family.
    let rotated = a.refresh_ok(&reused.refresh).await;
    b.refresh(&reused.refresh).await.assert_status(401, "a reused refresh token");
    for app in [a, b] {
        app.refused_within(&gone.access, Duration::from_secs(1), "a logged-out access token").await;
        app.refresh(&gone.refresh).await.assert_status(401, "the refresh token of a logged-out session");
        app.refresh(&revoked.refresh).await.assert_status(401, "a revoked refresh token");
        app.refused_within(&rotated.access, Duration::from_secs(1), "an access token of a family ended by reuse").await;
        app.refresh(&rotated.refresh).await.assert_status(401, "the latest refresh token of a family ended by reuse");
    }
    assert!(recorded(&schema, "session").await >= 2, "the ended sessions are recorded in PostgreSQL");
    assert!(recorded(&schema, "deny_session").await >= 1, "the logout's denylist entry is recorded");

    let probes = [
        Probe::Me("logged-out access token", gone.access.clone()),
        Probe::Refresh("logged-out refresh token", gone.refresh.clone()),
        Probe::Refresh("revoked refresh token", revoked.refresh.clone()),
        // The snapshot holds this family at its first generation: this token was live then.
        Probe::Refresh("refresh token of a family ended by reuse", reused.refresh.clone()),
        Probe::Me("access token of a family ended by reuse", rotated.access.clone()),
    ];
    let c = deployment.start("C").await;
    roll_back("hybrid mode", &mut redis, &snapshot, &[a, b, &c], &probes).await;

    // An instance started after the rollback reads the denylist from Redis alone.
    let d = deployment.start("D").await;
    d.me(&gone.access).await.assert_status(401, "a logged-out access token on an instance started after the rollback");
    d.refresh(&gone.refresh).await.assert_status(401, "a logged-out refresh token on a new instance");
    for app in [a, b, &c, &d] {
        ready(app).await;
        app.me(&kept.access).await.assert_status(200, "an access token nobody revoked");
    }
    d.refresh_ok(&kept.refresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_everywhere_and_a_password_change_survive_redis_restarting_from_an_older_snapshot() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let mut redis = RedisServer::start().await;
    let backend = Backend::standalone(schema.url(), redis.url(), name);
    let deployment = Deployment::new(&backend, "hybrid")
        .with("REVOCATION__CHECK", "denylist")
        .with("REVOCATION__MAX_STALENESS", "1s")
        .with("ADMIN__API_KEY", ADMIN_KEY);
    let fleet = deployment.start_many(&["A", "B"]).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    for user in ["alice", "carol", "bob"] {
        a.signup_ok(user).await;
    }
    let alice: Vec<TokenPair> = vec![a.login_tokens("alice").await, b.login_tokens("alice").await];
    let carol: Vec<TokenPair> = vec![a.login_tokens("carol").await, b.login_tokens("carol").await];
    let bob = a.login_tokens("bob").await;
    let snapshot = redis.snapshot().await;

    a.logout_all(&alice[0].access).await.assert_status(204, "logout everywhere");
    let change = serde_json::json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    b.post("/v1/password", Some(&carol[1].access), Some(&change)).await.assert_status(200, "password change");
    for app in [a, b] {
        for pair in alice.iter().chain(&carol) {
            app.refused_within(&pair.access, Duration::from_secs(1), "an access token of an ended session").await;
            app.refresh(&pair.refresh).await.assert_status(401, "a refresh token of an ended session");
        }
    }
    assert!(recorded(&schema, "session").await >= 4, "every ended session is recorded in PostgreSQL");

    let mut probes = Vec::new();
    for (who, pairs) in [("alice", &alice), ("carol", &carol)] {
        for (i, pair) in pairs.iter().enumerate() {
            let label = |kind: &str| -> &'static str { format!("{who}'s {kind} #{i}").leak() };
            probes.push(Probe::Me(label("access token"), pair.access.clone()));
            probes.push(Probe::Refresh(label("refresh token"), pair.refresh.clone()));
        }
    }
    roll_back("logout everywhere and password change", &mut redis, &snapshot, &[a, b], &probes).await;
    for app in [a, b] {
        ready(app).await;
        app.me(&bob.access).await.assert_status(200, "another user's access token");
    }
    a.refresh_ok(&bob.refresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_while_postgres_is_down_is_recorded_once_it_is_back_and_then_survives_a_rollback() {
    let mut postgres = PrivatePostgres::start().await;
    let mut redis = RedisServer::start().await;
    let backend = Backend::standalone(postgres.url(), redis.url(), unique_name());
    let deployment = Deployment::new(&backend, "session");
    let fleet = deployment.start_many(&["A", "B"]).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    a.signup_ok("alice").await;
    let gone = a.login_session("alice").await;
    let kept = a.login_session("alice").await;
    let snapshot = redis.snapshot().await;
    let rows = "SELECT count(*) FROM revocations WHERE kind = 'session'";

    postgres.stop().await;
    let started = Instant::now();
    a.logout(&gone).await.assert_status(204, "logout while PostgreSQL is down");
    eprintln!("logout with PostgreSQL down answered in {:?}", started.elapsed());
    for app in [a, b] {
        app.me(&gone).await.assert_status(401, "a session logged out while PostgreSQL is down");
    }

    postgres.restart().await;
    let (_, took) = eventually(
        "the logout made while PostgreSQL was down is recorded once it is back",
        RECOVERY_BOUND,
        Duration::from_millis(50),
        || async { (postgres.query_value(rows).await == "1").then_some(()) },
    )
    .await;
    eprintln!("the logout was recorded {took:?} after PostgreSQL came back");

    let probes = [Probe::Me("session logged out while PostgreSQL was down", gone)];
    roll_back("logout during a PostgreSQL outage", &mut redis, &snapshot, &[a, b], &probes).await;
    for app in [a, b] {
        ready(app).await;
        app.me(&kept).await.assert_status(200, "a session nobody ended");
    }
}
