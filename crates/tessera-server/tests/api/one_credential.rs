//! One credential per request: the transport (`Tessera-Transport`, else the first of
//! `auth.transports`) decides which credential is read, the other transport's is ignored and
//! never a fallback; a repeated `Authorization` header is a 400; one of our cookies given twice
//! makes the request ambiguous — 401, and nothing is rotated or revoked.

use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::helpers::{CSRF_COOKIE, PASSWORD, SESSION_COOKIE, WithCookies, spawn_app, spawn_app_with};
use crate::token_helpers::{ACCESS_COOKIE, REFRESH_COOKIE, spawn_hybrid};

#[tokio::test]
async fn a_bearer_token_is_ignored_under_the_default_cookie_transport() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    // No Tessera-Transport: the default (cookie) decides, and there is no cookie.
    app.send(app.get("/v1/me").bearer_auth(&login.token)).await.assert_401("unauthenticated");
    app.send(app.get("/v1/me").bearer(&login.token)).await.assert_status(200);
}

#[tokio::test]
async fn a_cookie_is_ignored_under_the_bearer_transport() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let reply = app.send(app.get("/v1/me").cookies(&login.cookies).header("tessera-transport", "bearer")).await;
    reply.assert_401("unauthenticated");
}

#[tokio::test]
async fn with_two_users_credentials_the_named_transport_decides_whose_request_it_is() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let alice = app.login_cookie("alice", PASSWORD).await;
    let bob = app.login_bearer("bob", PASSWORD).await;
    let both = || app.get("/v1/me").cookies(&alice.cookies).bearer_auth(&bob.token);
    let by_default = app.send(both()).await;
    by_default.assert_status(200);
    assert_eq!(by_default.json()["user"]["username"], "alice", "the default transport is cookie");
    assert_eq!(by_default.json()["auth"]["transport"], "cookie");
    let by_bearer = app.send(both().header("tessera-transport", "bearer")).await;
    by_bearer.assert_status(200);
    assert_eq!(by_bearer.json()["user"]["username"], "bob");
    let by_cookie = app.send(both().header("tessera-transport", "cookie")).await;
    assert_eq!(by_cookie.json()["user"]["username"], "alice");
}

#[tokio::test]
async fn a_bearer_header_does_not_spare_a_cookie_request_the_csrf_check() {
    // Before: a bearer token won whatever the transport, and bearer requests need no CSRF token.
    let app = spawn_app().await;
    app.create_user("alice").await;
    let browser = app.login_cookie("alice", PASSWORD).await;
    let other = app.login_bearer("alice", PASSWORD).await;
    let reply = app.send(app.post("/v1/logout").cookies(&browser.cookies).bearer_auth(&other.token)).await;
    reply.assert_problem(403, "csrf");
    app.me_cookie(&browser.cookies).await.assert_status(200);
    app.me_bearer(&other.token).await.assert_status(200);
}

#[tokio::test]
async fn the_first_configured_transport_is_the_default_for_every_request() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\ntransports = [\"bearer\", \"cookie\"]\n").await;
    app.create_user("alice").await;
    let bearer = app.login_bearer("alice", PASSWORD).await;
    let browser = app.login_cookie("alice", PASSWORD).await;
    app.send(app.get("/v1/me").bearer_auth(&bearer.token)).await.assert_status(200);
    app.send(app.get("/v1/me").cookies(&browser.cookies)).await.assert_401("unauthenticated");
    let reply = app.send(app.get("/v1/me").cookies(&browser.cookies).header("tessera-transport", "cookie")).await;
    reply.assert_status(200);
}

#[tokio::test]
async fn a_repeated_or_unknown_transport_header_is_400() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let twice = app.get("/v1/me").bearer(&login.token).header("tessera-transport", "bearer");
    app.send(twice).await.assert_problem(400, "invalid-request");
    let odd = app.get("/v1/me").bearer_auth(&login.token).header("tessera-transport", "pigeon");
    app.send(odd).await.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn repeated_authorization_headers_are_400_whatever_the_transport() {
    let app = spawn_app_with(&format!("{}[admin]\napi_key = \"{ADMIN}\"\n", crate::helpers::SESSION_TOML)).await;
    let user = app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", login.token)).expect("header");
    let twice = || {
        let mut rb = app.get("/v1/me");
        for _ in 0..2 {
            rb = rb.header(AUTHORIZATION, bearer.clone());
        }
        rb
    };
    app.send(twice().header("tessera-transport", "bearer")).await.assert_problem(400, "invalid-request");
    app.send(twice().header("tessera-transport", "cookie")).await.assert_problem(400, "invalid-request");
    // The admin key, too: one header, not the first of several.
    let path = format!("/v1/admin/users/{}/revoke-sessions", user["id"].as_str().expect("id"));
    let admin = HeaderValue::from_str(&format!("Bearer {ADMIN}")).expect("header");
    let reply = app.send(app.post(&path).header(AUTHORIZATION, admin.clone()).header(AUTHORIZATION, admin)).await;
    reply.assert_problem(400, "invalid-request");
    app.me_bearer(&login.token).await.assert_status(200);
}

const ADMIN: &str = "one-credential-admin-key-0123456789abcdef";

#[tokio::test]
async fn a_repeated_session_cookie_is_401_and_logs_nobody_out() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let token = &login.cookies.session;
    for cookie in [
        format!("{SESSION_COOKIE}={token}; {SESSION_COOKIE}={token}"),
        format!("{SESSION_COOKIE}={token}; {CSRF_COOKIE}={}; {SESSION_COOKIE}=planted", login.cookies.csrf),
    ] {
        let reply = app.send(app.post("/v1/logout").header("cookie", &cookie).csrf(&login.cookies.csrf)).await;
        reply.assert_invalid_token();
        assert!(reply.set_cookies().is_empty(), "an ambiguous request clears nothing: {:?}", reply.headers);
        app.send(app.get("/v1/me").header("cookie", &cookie)).await.assert_invalid_token();
    }
    app.me_cookie(&login.cookies).await.assert_status(200);
}

#[tokio::test]
async fn a_repeated_csrf_cookie_makes_the_request_ambiguous_too() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let cookie = format!("{}; {CSRF_COOKIE}=planted", login.cookies.header());
    app.send(app.get("/v1/me").header("cookie", cookie)).await.assert_invalid_token();
}

#[tokio::test]
async fn a_repeated_refresh_cookie_is_401_and_rotates_nothing() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login("alice", PASSWORD, Some("cookie")).await;
    login.assert_status(200);
    let refresh = login.set_cookies().into_iter().find(|c| c.name == REFRESH_COOKIE).expect("refresh cookie").value;
    let access = login.set_cookie(ACCESS_COOKIE).value;
    let csrf = login.set_cookie(CSRF_COOKIE).value;
    let doubled = format!("{REFRESH_COOKIE}={refresh}; {REFRESH_COOKIE}={refresh}");
    let reply = app.send(app.post("/v1/refresh").header("cookie", &doubled).csrf(&csrf)).await;
    reply.assert_invalid_token();
    // A logout with a doubled access cookie ends nothing either.
    let doubled = format!("{ACCESS_COOKIE}={access}; {ACCESS_COOKIE}={access}; {CSRF_COOKIE}={csrf}");
    app.send(app.post("/v1/logout").header("cookie", &doubled).csrf(&csrf)).await.assert_invalid_token();
    app.send(app.get("/v1/me").header("cookie", format!("{ACCESS_COOKIE}={access}"))).await.assert_status(200);
    // The refresh token was not rotated: it still works, once.
    app.refresh_cookie(&refresh, Some(&csrf)).await.assert_status(200);
}

#[tokio::test]
async fn refresh_reads_the_body_only_under_the_bearer_transport() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let body = serde_json::json!({ "refresh_token": login.refresh() });
    // The default transport is cookie: the body's token is not read, and there is no cookie.
    app.send(app.post("/v1/refresh").json(&body)).await.assert_401("unauthenticated");
    app.refresh_ok(login.refresh()).await;
}
