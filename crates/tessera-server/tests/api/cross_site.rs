//! CSRF defence in depth: a cookie-authenticated unsafe request with `Sec-Fetch-Site:
//! cross-site` or a foreign or `null` `Origin` is refused even with the right CSRF token;
//! login and sign-up refuse another site's `Origin` whatever the transport. A missing `Origin`
//! is allowed, and "our" origin is the request's `Host` unless `server.allowed_origins` (or a
//! trusted proxy's `X-Forwarded-Host`/`-Proto`) says otherwise.

use serde_json::json;

use crate::helpers::{PASSWORD, SESSION_TOML, TestApp, WithCookies, spawn_app, spawn_app_with};
use crate::token_helpers::{REFRESH_COOKIE, spawn_hybrid};

const EVIL: &str = "https://evil.example";

fn own_origin(app: &TestApp) -> String {
    format!("http://{}", app.addr)
}

#[tokio::test]
async fn a_cookie_request_from_another_site_is_refused_despite_the_right_csrf_token() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let logout = || app.post("/v1/logout").cookies(&login.cookies).csrf(&login.cookies.csrf);
    for (header, value) in [("origin", EVIL), ("origin", "null"), ("sec-fetch-site", "cross-site")] {
        let reply = app.send(logout().header(header, value)).await;
        reply.assert_problem(403, "csrf");
        app.me_cookie(&login.cookies).await.assert_status(200);
    }
    // The same request from our own page, or from a client that sends no Origin, works.
    let reply = app.send(logout().header("origin", own_origin(&app)).header("sec-fetch-site", "same-origin")).await;
    reply.assert_status(204);
}

#[tokio::test]
async fn safe_methods_and_bearer_requests_are_not_judged_by_origin() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let reply = app.send(app.get("/v1/me").cookies(&login.cookies).header("origin", EVIL)).await;
    reply.assert_status(200);
    let phone = app.login_bearer("alice", PASSWORD).await;
    let reply = app.send(app.post("/v1/logout").bearer(&phone.token).header("sec-fetch-site", "cross-site")).await;
    reply.assert_status(204);
}

#[tokio::test]
async fn login_and_sign_up_refuse_another_sites_origin() {
    let app = spawn_app().await;
    let body = json!({"username": "alice", "password": PASSWORD});
    for (header, value) in [("origin", EVIL), ("origin", "null"), ("sec-fetch-site", "cross-site")] {
        let reply = app.send(app.post("/v1/accounts").header(header, value).json(&body)).await;
        reply.assert_problem(403, "csrf");
    }
    // Nothing was created: the name is still free.
    let reply = app.send(app.post("/v1/accounts").header("origin", own_origin(&app)).json(&body)).await;
    reply.assert_status(201);
    for transport in ["cookie", "bearer"] {
        let login = app.post("/v1/login").header("tessera-transport", transport).json(&body);
        let reply = app.send(login.header("origin", EVIL)).await;
        reply.assert_problem(403, "csrf");
        assert!(reply.set_cookies().is_empty(), "no cookies for a refused login: {:?}", reply.headers);
    }
    let reply = app.send(app.post("/v1/login").header("origin", own_origin(&app)).json(&body)).await;
    reply.assert_status(200);
}

#[tokio::test]
async fn a_cookie_refresh_from_another_site_is_refused_and_rotates_nothing() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login("alice", PASSWORD, Some("cookie")).await;
    let refresh = login.set_cookies().into_iter().find(|c| c.name == REFRESH_COOKIE).expect("refresh cookie").value;
    let csrf = login.json()["csrf_token"].as_str().expect("csrf_token").to_owned();
    let cookie = format!("{REFRESH_COOKIE}={refresh}");
    let reply = app.send(app.post("/v1/refresh").header("cookie", &cookie).csrf(&csrf).header("origin", EVIL)).await;
    reply.assert_problem(403, "csrf");
    app.refresh_cookie(&refresh, Some(&csrf)).await.assert_status(200);
}

#[tokio::test]
async fn configured_allowed_origins_replace_the_host_header() {
    let app =
        spawn_app_with(&format!("{SESSION_TOML}[server]\nallowed_origins = [\"https://auth.example.test\"]\n")).await;
    let body = json!({"username": "alice", "password": PASSWORD});
    app.send(app.post("/v1/accounts").header("origin", own_origin(&app)).json(&body)).await.assert_problem(403, "csrf");
    app.send(app.post("/v1/accounts").header("origin", "https://auth.example.test").json(&body))
        .await
        .assert_status(201);
}

#[tokio::test]
async fn a_trusted_proxy_tells_the_public_host_and_scheme() {
    let app = spawn_app_with(&format!("{SESSION_TOML}[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n")).await;
    let body = json!({"username": "alice", "password": PASSWORD});
    let public = "https://auth.example.test";
    let proxied = |proto: &str| {
        app.post("/v1/accounts")
            .header("origin", public)
            .header("x-forwarded-host", "auth.example.test")
            .header("x-forwarded-proto", proto)
            .json(&body)
    };
    // Without the proxy's word the Host (127.0.0.1:port) is ours, and the Origin is not.
    let reply = app.send(app.post("/v1/accounts").header("origin", public).json(&body)).await;
    reply.assert_problem(403, "csrf");
    app.send(proxied("http")).await.assert_problem(403, "csrf");
    app.send(proxied("https")).await.assert_status(201);
}

#[tokio::test]
async fn a_malformed_allowed_origin_stops_start_up_naming_the_key() {
    let toml = format!("{SESSION_TOML}[server]\nallowed_origins = [\"https://auth.example.test/login\"]\n");
    let e = tessera_server::config::Config::from_toml(&toml).expect_err("refused").to_string();
    assert!(e.contains("server.allowed_origins"), "{e}");
}
