//! `POST /v1/admin/users/{id}/revoke-sessions`: only with the configured admin key, and not
//! at all when none is configured.

use crate::helpers::{PASSWORD, WithCookies, random_id, spawn_app, spawn_app_with};

const ADMIN_KEY: &str = "an-admin-key-of-decent-length-0123456789";

fn admin_toml() -> String {
    format!("[auth]\nmode = \"session\"\n[admin]\napi_key = \"{ADMIN_KEY}\"\n")
}

fn revoke_path(user_id: &str) -> String {
    format!("/v1/admin/users/{user_id}/revoke-sessions")
}

#[tokio::test]
async fn admin_revoke_sessions_ends_every_session_of_the_user() {
    let app = spawn_app_with(&admin_toml()).await;
    let alice = app.create_user("alice").await;
    app.create_user("bob").await;
    let a1 = app.login_bearer("alice", PASSWORD).await;
    let a2 = app.login_cookie("alice", PASSWORD).await;
    let bob = app.login_bearer("bob", PASSWORD).await;
    assert_eq!(alice["id"].as_str(), Some(a1.user_id.as_str()));
    assert_eq!(a2.user_id, a1.user_id);
    let reply = app.send(app.post(&revoke_path(&a1.user_id)).bearer(ADMIN_KEY)).await;
    reply.assert_status(204);
    app.me_bearer(&a1.token).await.assert_invalid_token();
    app.me_cookie(&a2.cookies).await.assert_invalid_token();
    app.me_bearer(&bob.token).await.assert_status(200);
    // The account itself still works.
    app.login_bearer("alice", PASSWORD).await;
    let kinds = app.audit_kinds().await;
    assert!(kinds.iter().any(|k| k == "all_sessions_revoked"), "audited: {kinds:?}");
}

#[tokio::test]
async fn admin_revoke_sessions_for_user_without_sessions_is_204() {
    let app = spawn_app_with(&admin_toml()).await;
    let alice = app.create_user("alice").await;
    app.send(app.post(&revoke_path(alice["id"].as_str().expect("id"))).bearer(ADMIN_KEY)).await.assert_status(204);
}

#[tokio::test]
async fn admin_endpoint_with_wrong_key_is_401() {
    let app = spawn_app_with(&admin_toml()).await;
    let alice = app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let path = revoke_path(alice["id"].as_str().expect("id"));
    let almost = format!("{ADMIN_KEY}x");
    for wrong in ["wrong", &ADMIN_KEY[..ADMIN_KEY.len() - 1], almost.as_str()] {
        app.send(app.post(&path).bearer(wrong)).await.assert_401("unauthenticated");
    }
    app.me_bearer(&login.token).await.assert_status(200);
}

#[tokio::test]
async fn admin_endpoint_without_key_is_401() {
    let app = spawn_app_with(&admin_toml()).await;
    let alice = app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.send(app.post(&revoke_path(alice["id"].as_str().expect("id")))).await.assert_401("unauthenticated");
    app.me_bearer(&login.token).await.assert_status(200);
}

#[tokio::test]
async fn session_token_is_not_an_admin_key() {
    let app = spawn_app_with(&admin_toml()).await;
    let alice = app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.send(app.post(&revoke_path(alice["id"].as_str().expect("id"))).bearer(&login.token))
        .await
        .assert_401("unauthenticated");
    app.me_bearer(&login.token).await.assert_status(200);
}

#[tokio::test]
async fn admin_key_in_query_string_is_not_accepted() {
    let app = spawn_app_with(&admin_toml()).await;
    let alice = app.create_user("alice").await;
    let path = format!("{}?api_key={ADMIN_KEY}", revoke_path(alice["id"].as_str().expect("id")));
    app.send(app.post(&path)).await.assert_401("unauthenticated");
}

#[tokio::test]
async fn admin_revoke_sessions_of_unknown_user_is_404() {
    let app = spawn_app_with(&admin_toml()).await;
    app.send(app.post(&revoke_path(&random_id())).bearer(ADMIN_KEY)).await.assert_problem(404, "not-found");
    app.send(app.post(&revoke_path("not-a-user-id")).bearer(ADMIN_KEY)).await.assert_problem(404, "not-found");
}

#[tokio::test]
async fn admin_endpoints_are_404_when_no_api_key_is_configured() {
    let app = spawn_app().await;
    let alice = app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let path = revoke_path(alice["id"].as_str().expect("id"));
    let problem = app.send(app.post(&path)).await.assert_problem(404, "not-found");
    assert_eq!(problem["detail"], "the admin endpoints are disabled: set admin.api_key to enable them");
    // An empty key must not match an empty or any other presented key.
    app.send(app.post(&path).header("authorization", "Bearer ")).await.assert_problem(404, "not-found");
    app.send(app.post(&path).bearer(&login.token)).await.assert_problem(404, "not-found");
    app.me_bearer(&login.token).await.assert_status(200);
}
