//! TLS to the stores: `rediss://` to Redis (standalone and Cluster) and `sslmode` to
//! PostgreSQL, against a redis-server started TLS-only and a PostgreSQL with `ssl = on`, both
//! presenting a certificate from a test CA made for the test (for 127.0.0.1 and localhost).
//!
//! What is verified is what an attacker between tessera and its stores would have to defeat:
//! the server's certificate must chain to the configured CA (not the system's store, not any
//! other CA) and name the host tessera dialled. Every failure stops start-up at once with a
//! message naming the store and TLS — a refusal, never a hang — and a plain `redis://` URL
//! aimed at a TLS port says that TLS may be what is missing. Servers that demand a client
//! certificate get tessera's (the Redis settings, PostgreSQL's `sslcert`/`sslkey`), and turn
//! tessera away without one.

use std::path::Path;
use std::time::Duration;

use crate::harness::postgres::{PrivatePostgres, Schema};
use crate::harness::redis::{RedisCluster, RedisServer};
use crate::harness::tessera::{Backend, Deployment};
use crate::harness::tls::TestPki;
use crate::harness::unique_name;

/// A refusal comes from a failed handshake, not a timeout: well under the start limit.
const REFUSAL_BOUND: Duration = Duration::from_secs(10);
/// `revocation.max_staleness`: the most a revocation may take to reach another instance.
const PROPAGATION: Duration = Duration::from_secs(1);

/// PostgreSQL at `host` with `sslmode` and `sslrootcert`, as an operator writes it.
fn postgres_url(pg: &PrivatePostgres, host: &str, sslmode: &str, ca: &Path) -> String {
    format!("postgres://postgres@{host}:{}/postgres?sslmode={sslmode}&sslrootcert={}", pg.port(), ca.display())
}

/// The deployment trusts `ca` for Redis and presents the test client certificate.
fn with_redis_tls(deployment: Deployment, ca: &Path, pki: &TestPki) -> Deployment {
    deployment
        .with("STORE__REDIS_CA_FILE", &ca.display().to_string())
        .with("STORE__REDIS_CLIENT_CERT_FILE", &pki.client_cert().display().to_string())
        .with("STORE__REDIS_CLIENT_KEY_FILE", &pki.client_key().display().to_string())
}

/// The refusal's output mentions every one of `needles`.
fn assert_mentions(log: &str, needles: &[&str], what: &str) {
    for needle in needles {
        assert!(log.contains(needle), "{what}: the refusal does not mention {needle:?}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_over_verified_tls_serve_signup_login_me_refresh_logout() {
    let pki = TestPki::create().await;
    let postgres = PrivatePostgres::start_tls(&pki).await;
    // Redis's default: a client certificate is demanded too.
    let redis = RedisServer::start_tls(&pki, true).await;
    let backend =
        Backend::standalone(postgres_url(&postgres, "127.0.0.1", "verify-full", &pki.ca()), redis.url(), unique_name());
    assert!(backend.redis_url.starts_with("rediss://"), "{}", backend.redis_url);
    let deployment =
        with_redis_tls(Deployment::new(&backend, "hybrid"), &pki.ca(), &pki).with("REVOCATION__CHECK", "denylist");
    let instances = deployment.start_many(&["A", "B"]).await;
    let (a, b) = (&instances[0], &instances[1]);

    a.signup_ok("alice").await;
    let tokens = a.login_tokens("alice").await;
    a.me(&tokens.access).await.assert_status(200, "/v1/me over TLS");
    b.me(&tokens.access).await.assert_status(200, "/v1/me on the other instance");
    let tokens = b.refresh_ok(&tokens.refresh).await;
    a.logout(&tokens.access).await.assert_status(204, "logout");
    // The revocation travels through Redis (pub/sub over TLS, or the poll behind it).
    b.refused_within(&tokens.access, PROPAGATION, "the logged-out access token on B").await;
    b.refresh(&tokens.refresh).await.assert_status(401, "the logged-out session's refresh token");
    a.readyz().await.assert_status(200, "/readyz with both stores over TLS");

    for instance in &instances {
        let log = instance.log();
        assert!(
            !log.contains("cannot subscribe to denylist changes"),
            "{}: the denylist subscription over TLS failed:\n{log}",
            instance.name
        );
    }
    // Decided by the server: a plain client is turned away, so the traffic above was TLS.
    let plain = Backend::standalone(postgres.url(), redis.url().replacen("rediss://", "redis://", 1), unique_name());
    let (log, _) = Deployment::new(&plain, "hybrid").serve_refused().await;
    assert_mentions(&log, &["Redis at redis://127.0.0.1"], "a plain client of the TLS-only Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_a_certificate_from_another_ca_refuses_to_start() {
    let pki = TestPki::create().await;
    let schema = Schema::create(&unique_name()).await;
    let redis = RedisServer::start_tls(&pki, false).await;
    let backend = Backend::standalone(schema.url(), redis.url(), unique_name());

    let wrong_ca =
        Deployment::new(&backend, "session").with("STORE__REDIS_CA_FILE", &pki.other_ca().display().to_string());
    let (log, took) = wrong_ca.serve_refused().await;
    assert_mentions(&log, &["Redis at rediss://127.0.0.1", "store.redis_url", "TLS", "certificate"], "another CA");
    assert!(took < REFUSAL_BOUND, "the refusal took {took:?}");

    // Without a CA file the system's trust store decides, and the test CA is not in it.
    let (log, _) = Deployment::new(&backend, "session").serve_refused().await;
    assert_mentions(&log, &["Redis at rediss://127.0.0.1", "TLS", "certificate"], "the system trust store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_reached_under_a_name_its_certificate_lacks_refuses_to_start() {
    let pki = TestPki::create().await;
    let schema = Schema::create(&unique_name()).await;
    let redis = RedisServer::start_tls(&pki, false).await;
    // The same server, dialled as 127.0.0.2: the certificate names 127.0.0.1 and localhost.
    let url = format!("rediss://127.0.0.2:{}", redis.port());
    let backend = Backend::standalone(schema.url(), url, unique_name());
    let deployment = Deployment::new(&backend, "session").with("STORE__REDIS_CA_FILE", &pki.ca().display().to_string());
    let (log, took) = deployment.serve_refused().await;
    assert_mentions(&log, &["Redis at rediss://127.0.0.2", "TLS", "certificate"], "a name the certificate lacks");
    assert!(took < REFUSAL_BOUND, "the refusal took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_demanding_a_client_certificate_refuses_tessera_without_one() {
    let pki = TestPki::create().await;
    let schema = Schema::create(&unique_name()).await;
    let redis = RedisServer::start_tls(&pki, true).await;
    let backend = Backend::standalone(schema.url(), redis.url(), unique_name());
    let deployment = Deployment::new(&backend, "session").with("STORE__REDIS_CA_FILE", &pki.ca().display().to_string());
    let (log, took) = deployment.serve_refused().await;
    assert_mentions(&log, &["Redis at rediss://127.0.0.1", "TLS"], "no client certificate");
    assert!(took < REFUSAL_BOUND, "the refusal took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_redis_url_to_a_tls_port_fails_at_once_suggesting_rediss() {
    let pki = TestPki::create().await;
    let schema = Schema::create(&unique_name()).await;
    let redis = RedisServer::start_tls(&pki, false).await;
    let url = format!("redis://127.0.0.1:{}", redis.port());
    let backend = Backend::standalone(schema.url(), url, unique_name());
    let (log, took) = Deployment::new(&backend, "session").serve_refused().await;
    assert_mentions(&log, &["Redis at redis://127.0.0.1", "store.redis_url", "rediss://"], "a plain URL");
    assert!(took < REFUSAL_BOUND, "the refusal took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_tls_settings_beside_a_plain_url_are_refused() {
    let pki = TestPki::create().await;
    let schema = Schema::create(&unique_name()).await;
    let redis = RedisServer::start().await;
    let backend = Backend::standalone(schema.url(), redis.url(), unique_name());
    let deployment = Deployment::new(&backend, "session").with("STORE__REDIS_CA_FILE", &pki.ca().display().to_string());
    let (log, _) = deployment.serve_refused().await;
    assert_mentions(&log, &["store.redis_ca_file", "rediss://"], "a CA file with redis://");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_with_a_certificate_from_another_ca_or_name_refuses_to_start() {
    let pki = TestPki::create().await;
    let postgres = PrivatePostgres::start_tls(&pki).await;
    let redis = RedisServer::start().await;

    let other_ca = postgres_url(&postgres, "127.0.0.1", "verify-full", &pki.other_ca());
    let backend = Backend::standalone(other_ca, redis.url(), unique_name());
    let (log, took) = Deployment::new(&backend, "session").serve_refused().await;
    assert_mentions(&log, &["PostgreSQL at postgres://", "store.postgres_url", "TLS", "UnknownIssuer"], "another CA");
    assert!(took < REFUSAL_BOUND, "the refusal took {took:?}");

    let other_name = postgres_url(&postgres, "127.0.0.2", "verify-full", &pki.ca());
    let backend = Backend::standalone(other_name, redis.url(), unique_name());
    let (log, took) = Deployment::new(&backend, "session").serve_refused().await;
    assert_mentions(&log, &["PostgreSQL at postgres://postgres@127.0.0.2", "TLS", "certificate"], "another name");
    assert!(took < REFUSAL_BOUND, "the refusal took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_demanding_a_client_certificate_takes_sslcert_and_sslkey_from_the_url() {
    let pki = TestPki::create().await;
    let postgres = PrivatePostgres::start_tls_demanding_client_certs(&pki).await;
    let redis = RedisServer::start().await;
    let verified = postgres_url(&postgres, "127.0.0.1", "verify-full", &pki.ca());

    let backend = Backend::standalone(verified.clone(), redis.url(), unique_name());
    let (log, took) = Deployment::new(&backend, "session").serve_refused().await;
    assert_mentions(&log, &["PostgreSQL at postgres://", "store.postgres_url", "valid client certificate"], "none");
    assert!(took < REFUSAL_BOUND, "the refusal took {took:?}");

    let with_client_cert =
        format!("{verified}&sslcert={}&sslkey={}", pki.client_cert().display(), pki.client_key().display());
    let backend = Backend::standalone(with_client_cert, redis.url(), unique_name());
    let app = Deployment::new(&backend, "session").start("P").await;
    app.signup_ok("alice").await;
    let session = app.login_session("alice").await;
    app.me(&session).await.assert_status(200, "/v1/me with a client certificate for PostgreSQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sslmode_require_against_a_server_without_tls_refuses_to_start() {
    let pki = TestPki::create().await;
    let postgres = PrivatePostgres::start().await;
    let redis = RedisServer::start().await;
    let url = postgres_url(&postgres, "127.0.0.1", "require", &pki.ca());
    let backend = Backend::standalone(url, redis.url(), unique_name());
    let (log, took) = Deployment::new(&backend, "session").serve_refused().await;
    assert_mentions(&log, &["PostgreSQL at postgres://", "server does not support TLS"], "sslmode=require");
    assert!(took < REFUSAL_BOUND, "the refusal took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_over_tls_serves_sessions() {
    let pki = TestPki::create().await;
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let cluster = RedisCluster::start_tls(&pki).await;
    let backend = Backend {
        postgres_url: schema.url(),
        redis_url: cluster.url(),
        redis_cluster: true,
        redis_prefix: name.clone(),
    };
    assert!(backend.redis_url.starts_with("rediss://"), "{}", backend.redis_url);
    let app = with_redis_tls(Deployment::new(&backend, "session"), &pki.ca(), &pki).start("C").await;
    // Several users, so their keys land on several of the three masters (all on one: 3⁻⁷).
    let mut remaining = Vec::new();
    for i in 0..8 {
        let user = format!("user{i}");
        app.signup_ok(&user).await;
        let first = app.login_session(&user).await;
        let second = app.login_session(&user).await;
        app.me(&first).await.assert_status(200, &format!("{user}'s session"));
        app.logout(&first).await.assert_status(204, "logout");
        app.me(&first).await.assert_status(401, "a logged-out session");
        app.me(&second).await.assert_status(200, "the user's other session");
        remaining.push(second);
    }
    let nodes = cluster.keys_per_node(&format!("{name}:{{u:*")).await;
    assert!(nodes.iter().filter(|keys| !keys.is_empty()).count() >= 2, "keys on one master only: {nodes:?}");
    for session in &remaining {
        app.logout_all(session).await.assert_status(204, "logout-all");
        app.me(session).await.assert_status(401, "a session ended by logout-all");
    }
}
