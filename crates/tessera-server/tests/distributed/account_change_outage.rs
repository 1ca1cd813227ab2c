//! A password change that meets a Redis outage half-way (issue 11 #15).
//!
//! Sessions never reread the account, so a password change must not write the new password
//! and then fail to end the sessions: a thief's refresh token would live on for up to the
//! family's lifetime. Here the caller's hybrid access token still passes (its denylist copy
//! may be old: `revocation.max_staleness` is an hour), PostgreSQL answers, and Redis — where
//! the sessions live — stops taking writes (`CLIENT PAUSE … WRITE`, what Redis does during a
//! failover) after the login: the change's throttle check still reads, its first write times
//! out. Before the fix the new password was stored first, the change answered 503, and once
//! Redis took writes again the thief's refresh token still worked beside the new password.
//! Now the sessions are ended first, so the 503 means nothing changed; a retry once Redis is
//! back ends the thief's family.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::postgres::Schema;
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{Api, Backend, Deployment};
use crate::harness::{PASSWORD, eventually, unique_name};

const NEW_PASSWORD: &str = "a passphrase the thief does not know";

async fn login_with(app: &Api, password: &str) -> u16 {
    app.post("/v1/login", None, Some(&json!({"username": "alice", "password": password}))).await.status.as_u16()
}

fn change(new: &str) -> Value {
    json!({"current_password": PASSWORD, "new_password": new})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_failing_half_way_never_leaves_the_new_password_beside_live_sessions() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let redis = RedisServer::start().await;
    let backend = Backend::standalone(schema.url(), redis.url(), name.clone());
    let deployment = Deployment::new(&backend, "hybrid")
        .with("REVOCATION__CHECK", "denylist")
        .with("REVOCATION__MAX_STALENESS", "1h");
    let app = deployment.start("H").await;
    app.signup_ok("alice").await;
    let thief = app.login_tokens("alice").await;
    let owner = app.login_tokens("alice").await;

    redis.pause_writes(Duration::from_secs(30)).await;
    let reply = app.post("/v1/password", Some(&owner.access), Some(&change(NEW_PASSWORD))).await;
    redis.unpause().await;
    reply.assert_unavailable("a password change while Redis (the sessions) takes no writes");
    eventually("the instance is ready again", Duration::from_secs(15), Duration::from_millis(50), || async {
        (app.readyz().await.status == 200).then_some(())
    })
    .await;

    // The invariant, whatever the 503 left behind: if the new password is in place, the
    // thief's family has ended.
    let new_works = login_with(&app, NEW_PASSWORD).await == 200;
    let thief_refreshes = app.refresh(&thief.refresh).await.status.as_u16();
    assert!(
        !(new_works && thief_refreshes == 200),
        "the new password is stored and the thief's refresh token still works after the failed change"
    );
    // And what this order gives: the 503 changed nothing, so the old password still logs in.
    assert!(!new_works, "a change that answered 503 stored the new password");
    assert_eq!(login_with(&app, PASSWORD).await, 200, "the old password, after a change that answered 503");

    // The retry, with Redis back, ends every old session and family.
    let caller = app.login_tokens("alice").await;
    let retried = app.post("/v1/password", Some(&caller.access), Some(&change(NEW_PASSWORD))).await;
    retried.assert_status(200, "the retried password change");
    app.refresh(&thief.refresh).await.assert_status(401, "the thief's refresh token after the change");
    app.refresh(&owner.refresh).await.assert_status(401, "an old refresh token after the change");
    assert_eq!(login_with(&app, NEW_PASSWORD).await, 200, "the new password after the change");
}
