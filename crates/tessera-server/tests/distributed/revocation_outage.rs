//! `POST /v1/revoke` (RFC 7009) and `POST /v1/introspect` (RFC 7662) while a store is down.
//!
//! Both RFCs answer an unknown token the way they answer a dead one (200; `active: false`),
//! and that answer means "this token no longer works". A store that cannot be asked must not
//! produce it: revocation answers 503 (RFC 7009 §2.2.1) and the client knows to try again,
//! rather than a 200 for a token that still works. Conversely, what does not need the missing
//! store keeps working: revoking an access token needs its signature and the denylist in
//! Redis, not the account in PostgreSQL.

use std::time::Duration;

use crate::harness::postgres::{PrivatePostgres, Schema};
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{ADMIN_KEY, Backend, Deployment, Instance};
use crate::harness::{eventually, unique_name};

const RECOVERY_BOUND: Duration = Duration::from_secs(15);

async fn ready_again(app: &Instance) {
    eventually(&format!("{} is ready again", app.name), RECOVERY_BOUND, Duration::from_millis(50), || async {
        (app.readyz().await.status == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_during_a_redis_outage_is_503_not_a_silent_200() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let mut redis = RedisServer::start_persistent().await;
    let backend = |prefix: &str| Backend::standalone(schema.url(), redis.url(), format!("{name}-{prefix}"));
    let s = Deployment::new(&backend("s"), "session").with("ADMIN__API_KEY", ADMIN_KEY).start("S").await;
    let h = Deployment::new(&backend("h"), "hybrid")
        .with("REVOCATION__CHECK", "denylist")
        .with("ADMIN__API_KEY", ADMIN_KEY)
        .start("H")
        .await;
    s.signup_ok("alice").await;
    let session = s.login_session("alice").await;
    let pair = h.login_tokens("alice").await;

    redis.shutdown().await;
    s.revoke(&session).await.assert_unavailable("revoking a session token while Redis is down");
    s.introspect(&session).await.assert_unavailable("introspecting a session token while Redis is down");
    h.revoke(&pair.refresh).await.assert_unavailable("revoking a refresh token while Redis is down");
    h.introspect(&pair.refresh).await.assert_unavailable("introspecting a refresh token while Redis is down");
    h.revoke(&pair.access).await.assert_unavailable("revoking an access token while Redis is down");

    redis.restart().await;
    ready_again(&s).await;
    ready_again(&h).await;
    // The 503s told the truth: nothing was revoked.
    s.me(&session).await.assert_status(200, "the session after the outage");
    h.me(&pair.access).await.assert_status(200, "the access token after the outage");
    let next = h.refresh_ok(&pair.refresh).await;
    // And with Redis back, revocation does what it says.
    s.revoke(&session).await.assert_status(200, "revoking the session token");
    s.me(&session).await.assert_status(401, "the revoked session token");
    h.revoke(&next.refresh).await.assert_status(200, "revoking the refresh token");
    h.refresh(&next.refresh).await.assert_status(401, "the revoked refresh token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_access_token_during_a_postgres_outage_still_denies_it() {
    let mut postgres = PrivatePostgres::start().await;
    let redis = RedisServer::start().await;
    let backend = Backend::standalone(postgres.url(), redis.url(), unique_name());
    let h = Deployment::new(&backend, "hybrid")
        .with("REVOCATION__CHECK", "denylist")
        .with("ADMIN__API_KEY", ADMIN_KEY)
        .start("H")
        .await;
    h.signup_ok("alice").await;
    let revoked = h.login_tokens("alice").await;
    let kept = h.login_tokens("alice").await;

    postgres.stop().await;
    // A live token whose username (PostgreSQL) cannot be read: not `{"active": false}`.
    h.introspect(&kept.access).await.assert_unavailable("introspecting a live token while PostgreSQL is down");
    h.revoke(&revoked.access).await.assert_status(200, "revoking an access token while PostgreSQL is down");
    h.me(&revoked.access).await.assert_status(401, "the revoked access token, PostgreSQL still down");
    let answer = h.introspect(&revoked.access).await;
    answer.assert_status(200, "introspecting the revoked token while PostgreSQL is down");
    assert_eq!(answer.json(), serde_json::json!({"active": false}), "the revoked token is inactive");

    postgres.restart().await;
    ready_again(&h).await;
    h.me(&revoked.access).await.assert_status(401, "the revoked access token after the outage");
    h.me(&kept.access).await.assert_status(200, "the other access token after the outage");
}
