//! The per-address throttles beside login's: sign-up (every sign-up that gets as far as
//! hashing counts), wrong admin keys, refused refresh tokens — and the bound on what one
//! refused refresh token costs (its chain is walked at most 100 generations).

use std::sync::Arc;

use serde_json::json;
use time::Duration;
use tokio::sync::Barrier;

use crate::helpers::{PASSWORD, Reply, TestApp, WithCookies, spawn_app_with, spawn_token_app};
use crate::token_helpers::{ADMIN_KEY, token_toml};

const TRUSTING_LOCALHOST: &str = "[auth]\nmode = \"session\"\n[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n";

fn admin_toml() -> String {
    format!("{TRUSTING_LOCALHOST}[admin]\napi_key = \"{ADMIN_KEY}\"\n")
}

async fn signup_from(app: &TestApp, ip: &str, username: &str) -> Reply {
    app.send(
        app.post("/v1/accounts")
            .header("x-forwarded-for", ip)
            .json(&json!({"username": username, "password": PASSWORD})),
    )
    .await
}

fn assert_throttled(reply: &Reply) {
    reply.assert_problem(429, "throttled");
    assert!(reply.retry_after() >= 1, "Retry-After ≥ 1");
}

#[tokio::test]
async fn sign_ups_from_one_address_are_throttled() {
    // Found by attack: 40 sign-ups from one client in 1.4 s, all created.
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    // Twenty free, and the one that starts the delay.
    for i in 0..21 {
        signup_from(&app, "203.0.113.7", &format!("user{i}")).await.assert_status(201);
    }
    assert_throttled(&signup_from(&app, "203.0.113.7", "user21").await);
    // Another address is not affected; the first one may sign up again after the delay.
    signup_from(&app, "203.0.113.8", "user22").await.assert_status(201);
    app.advance(Duration::seconds(1));
    signup_from(&app, "203.0.113.7", "user21").await.assert_status(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_sign_ups_from_one_address_cost_what_sequential_ones_do() {
    const N: usize = 40;
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (client, barrier, url) = (app.client.clone(), barrier.clone(), app.url("/v1/accounts"));
        tasks.push(tokio::spawn(async move {
            let rb = client
                .post(url)
                .header("x-forwarded-for", "203.0.113.7")
                .json(&json!({"username": format!("user{i}"), "password": PASSWORD}));
            barrier.wait().await;
            Reply::from(rb.send().await.expect("an answer")).await
        }));
    }
    let (mut created, mut throttled) = (0, 0);
    for t in tasks {
        let reply = t.await.expect("task");
        match reply.status.as_u16() {
            201 => created += 1,
            429 => {
                assert_throttled(&reply);
                throttled += 1;
            }
            other => panic!("a sign-up answers 201 or 429, not {other}: {}", reply.text),
        }
    }
    assert_eq!((created, throttled), (21, N - 21));
}

#[tokio::test]
async fn refused_sign_ups_that_cost_no_hash_do_not_count() {
    // An invalid username or a taken one is refused before any hashing: a client that mistypes
    // is not throttled for it.
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    signup_from(&app, "203.0.113.7", "alice").await.assert_status(201);
    for _ in 0..30 {
        signup_from(&app, "203.0.113.7", "alice").await.assert_problem(409, "username-taken");
        signup_from(&app, "203.0.113.7", "a").await.assert_status(400);
    }
    signup_from(&app, "203.0.113.7", "bob").await.assert_status(201);
}

#[tokio::test]
async fn wrong_admin_keys_from_one_address_are_throttled() {
    let app = spawn_app_with(&admin_toml()).await;
    let alice = app.create_user("alice").await;
    let path = format!("/v1/admin/users/{}/revoke-sessions", alice["id"].as_str().expect("id"));
    let admin = |ip: &'static str, key: &'static str| app.post(&path).header("x-forwarded-for", ip).bearer(key);
    // Ten free wrong keys, and the one that starts the delay.
    for i in 0..11 {
        let reply = app.send(admin("203.0.113.7", "not-the-admin-key-but-long-enough-0000")).await;
        assert_eq!(reply.status.as_u16(), 401, "wrong key {}: {}", i + 1, reply.text);
    }
    // Now even the right key waits, from that address only.
    assert_throttled(&app.send(admin("203.0.113.7", ADMIN_KEY)).await);
    app.send(admin("203.0.113.8", ADMIN_KEY)).await.assert_status(204);
    app.advance(Duration::seconds(1));
    app.send(admin("203.0.113.7", ADMIN_KEY)).await.assert_status(204);
    let kinds = app.audit_kinds().await;
    assert!(kinds.iter().any(|k| k == "admin_key_refused"), "audited: {kinds:?}");
}

#[tokio::test]
async fn the_right_admin_key_is_never_counted() {
    let app = spawn_app_with(&admin_toml()).await;
    let alice = app.create_user("alice").await;
    let path = format!("/v1/admin/users/{}/revoke-sessions", alice["id"].as_str().expect("id"));
    for _ in 0..30 {
        app.send(app.post(&path).header("x-forwarded-for", "203.0.113.7").bearer(ADMIN_KEY)).await.assert_status(204);
    }
}

fn hybrid_trusting_localhost() -> String {
    token_toml("hybrid", "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n")
}

async fn refresh_from(app: &TestApp, ip: &str, refresh_token: &str) -> Reply {
    app.send(
        app.post("/v1/refresh")
            .header("tessera-transport", "bearer")
            .header("x-forwarded-for", ip)
            .json(&json!({ "refresh_token": refresh_token })),
    )
    .await
}

#[tokio::test]
async fn refused_refresh_tokens_from_one_address_are_throttled() {
    let app = spawn_token_app(&hybrid_trusting_localhost()).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    // A hundred free refusals, and the one that starts the delay.
    for i in 0..101 {
        let reply = refresh_from(&app, "203.0.113.7", &format!("not-a-refresh-token-{i}")).await;
        assert_eq!(reply.status.as_u16(), 401, "refusal {}: {}", i + 1, reply.text);
    }
    assert_throttled(&refresh_from(&app, "203.0.113.7", login.refresh()).await);
    // A throttled refresh changed nothing: the token still works elsewhere, and here later.
    let next = crate::token_helpers::TokenLogin::from_reply(&refresh_from(&app, "203.0.113.8", login.refresh()).await);
    app.advance(Duration::seconds(1));
    refresh_from(&app, "203.0.113.7", next.refresh()).await.assert_status(200);
}

#[tokio::test]
async fn successful_refreshes_are_never_counted() {
    let app = spawn_token_app(&hybrid_trusting_localhost()).await;
    app.create_user("alice").await;
    let mut token = app.login_tokens("alice", PASSWORD).await.refresh().to_owned();
    for _ in 0..110 {
        let next = crate::token_helpers::TokenLogin::from_reply(&refresh_from(&app, "203.0.113.7", &token).await);
        token = next.refresh().to_owned();
    }
}

#[tokio::test]
async fn a_refresh_token_is_traced_back_at_most_100_generations() {
    // A forged token for a known session used to cost up to 10,000 HMACs (the chain walked
    // from its generation to the family's). Now the walk stops after 100: a genuine token 101
    // rotations old is refused like a forged one and ends nothing; one 100 rotations old is
    // still recognised, and its reuse ends the family.
    let app = spawn_token_app(&token_toml("hybrid", "")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let mut tokens = vec![login.refresh().to_owned()];
    for _ in 0..101 {
        let next = app.refresh_ok(tokens.last().expect("a token")).await;
        tokens.push(next.refresh().to_owned());
    }
    let current = tokens[101].clone();
    app.refresh_bearer(&tokens[0]).await.assert_status(401);
    let kinds = app.audit_kinds().await;
    assert!(!kinds.iter().any(|k| k == "refresh_reuse_detected"), "beyond the walk, not recognised: {kinds:?}");
    // The family lives on …
    let next = app.refresh_ok(&current).await;
    // … and a token exactly 100 generations behind it is recognised as reuse.
    app.refresh_bearer(&tokens[2]).await.assert_status(401);
    let kinds = app.audit_kinds().await;
    assert!(kinds.iter().any(|k| k == "refresh_reuse_detected"), "within the walk, reuse: {kinds:?}");
    app.refresh_bearer(next.refresh()).await.assert_status(401);
}
