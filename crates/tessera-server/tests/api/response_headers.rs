//! Headers every answer carries (#5): `Cache-Control: no-store` on anything with credentials
//! or personal data — by default on every answer; only the JWKS says it may be cached — and
//! `X-Content-Type-Options: nosniff` everywhere, errors included.

use serde_json::json;

use crate::helpers::{PASSWORD, Reply, WithCookies, spawn_app};
use crate::token_helpers::{ADMIN_KEY, form, spawn_hybrid};

fn assert_private(reply: &Reply, what: &str) {
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}: {:?}", reply.headers);
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{what}: {:?}", reply.headers);
}

#[tokio::test]
async fn answers_with_personal_data_or_credentials_are_not_stored_in_session_mode() {
    let app = spawn_app().await;
    assert_private(&app.signup("alice", PASSWORD).await, "sign-up");
    let login = app.login_bearer("alice", PASSWORD).await;
    let browser = app.login_cookie("alice", PASSWORD).await;
    assert_private(&browser.reply, "cookie login");
    assert_private(&app.me_bearer(&login.token).await, "GET /v1/me");
    assert_private(&app.me_cookie(&browser.cookies).await, "GET /v1/me by cookie");
    assert_private(&app.send(app.get("/v1/sessions").bearer(&login.token)).await, "GET /v1/sessions");
    let change = json!({"current_password": PASSWORD, "new_password": "another long passphrase"});
    assert_private(&app.send(app.post("/v1/password").bearer(&login.token).json(&change)).await, "password change");
    assert_private(&app.send(app.post("/v1/logout").cookies(&browser.cookies)).await, "a 403");
    assert_private(&app.send(app.get("/v1/me")).await, "a 401");
    assert_private(&app.send(app.get("/nowhere")).await, "a 404");
    assert_private(&app.send(app.get("/healthz")).await, "/healthz");
}

#[tokio::test]
async fn token_answers_are_not_stored_and_only_the_jwks_may_be_cached() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    assert_private(&app.refresh_bearer(login.refresh()).await, "refresh");
    let introspect = form(app.post("/v1/introspect").bearer_auth(ADMIN_KEY), &[("token", &login.access)]);
    assert_private(&app.send(introspect).await, "introspection");
    let jwks = app.send(app.get("/.well-known/jwks.json")).await;
    assert!(jwks.header("cache-control").is_some_and(|c| c.starts_with("public, max-age=")), "{:?}", jwks.headers);
    assert_eq!(jwks.header("x-content-type-options"), Some("nosniff"));
}

/// Request ids are on demand: a client or proxy that sends one gets it back, on answers and
/// refusals alike; nobody else pays for one.
#[tokio::test]
async fn a_request_id_sent_comes_back_and_none_is_made_up() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let with_id = app.send(app.get("/v1/me").bearer(&login.token).header("x-request-id", "req-7f3a")).await;
    with_id.assert_status(200);
    assert_eq!(with_id.header("x-request-id"), Some("req-7f3a"));
    let refused = app.send(app.get("/v1/me").header("x-request-id", "req-401")).await;
    refused.assert_status(401);
    assert_eq!(refused.header("x-request-id"), Some("req-401"));
    assert_eq!(app.me_bearer(&login.token).await.header("x-request-id"), None);
    let odd = app.send(app.get("/v1/me").bearer(&login.token).header("x-request-id", "two words")).await;
    assert_eq!(odd.header("x-request-id"), None, "not a token: not echoed");
}
