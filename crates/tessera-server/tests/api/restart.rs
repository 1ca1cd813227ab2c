//! What the store keeps across a restart: accounts, sessions of both transports, revocations
//! and throttle counters (so a restart hands an attacker no fresh allowance).

use time::Duration;

use crate::helpers::{PASSWORD, WRONG_PASSWORD, WithCookies, spawn_app, spawn_app_with};

#[tokio::test]
async fn sessions_of_both_transports_survive_a_restart() {
    let mut app = spawn_app().await;
    let user = app.create_user("alice").await;
    let bearer = app.login_bearer("alice", PASSWORD).await;
    let cookie = app.login_cookie("alice", PASSWORD).await;
    app.restart().await;
    let me = app.me_bearer(&bearer.token).await;
    me.assert_status(200);
    assert_eq!(me.json()["user"], user);
    assert_eq!(me.json()["session"]["id"].as_str(), Some(bearer.session_id.as_str()));
    let me = app.me_cookie(&cookie.cookies).await;
    me.assert_status(200);
    assert_eq!(me.json()["session"]["id"].as_str(), Some(cookie.session_id.as_str()));
}

#[tokio::test]
async fn csrf_token_survives_a_restart() {
    let mut app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    app.restart().await;
    app.send(app.post("/v1/logout").cookies(&login.cookies)).await.assert_problem(403, "csrf");
    app.send(app.post("/v1/logout").cookies(&login.cookies).csrf(&login.cookies.csrf)).await.assert_status(204);
}

#[tokio::test]
async fn accounts_survive_a_restart() {
    let mut app = spawn_app().await;
    app.create_user("alice").await;
    app.restart().await;
    app.login_bearer("alice", PASSWORD).await;
    app.signup("alice", PASSWORD).await.assert_problem(409, "username-taken");
}

#[tokio::test]
async fn logged_out_token_stays_rejected_after_restart() {
    let mut app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.send(app.post("/v1/logout").bearer(&login.token)).await.assert_status(204);
    app.restart().await;
    app.me_bearer(&login.token).await.assert_invalid_token();
}

#[tokio::test]
async fn throttle_counters_survive_a_restart() {
    let mut app = spawn_app().await;
    app.create_user("alice").await;
    for _ in 0..6 {
        app.login("alice", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    }
    app.restart().await;
    let reply = app.login("alice", PASSWORD, Some("bearer")).await;
    reply.assert_problem(429, "throttled");
    assert_eq!(reply.retry_after(), 1);
    app.advance(Duration::seconds(1));
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test]
async fn idle_timeout_still_applies_after_a_restart() {
    let mut app =
        spawn_app_with("[auth]\nmode = \"session\"\n[session]\nidle_timeout = \"10m\"\nabsolute_timeout = \"1h\"\n")
            .await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.advance(Duration::minutes(5));
    app.me_bearer(&login.token).await.assert_status(200);
    app.restart().await;
    // The touch at 5 minutes was stored: 9 more minutes is within the idle timeout.
    app.advance(Duration::minutes(9));
    app.me_bearer(&login.token).await.assert_status(200);
    app.restart().await;
    app.advance(Duration::minutes(10) + Duration::seconds(1));
    app.me_bearer(&login.token).await.assert_invalid_token();
}
