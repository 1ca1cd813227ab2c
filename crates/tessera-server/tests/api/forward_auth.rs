//! `GET /v1/forward-auth`, called the way a reverse proxy calls it: the original request's
//! headers, and its method and URI in `X-Forwarded-Method`/`X-Forwarded-Uri` (or the
//! `X-Original-*` spelling). The test client connects from 127.0.0.1, which the "trusted"
//! configurations list in `server.trusted_proxies`; the others trust nobody.
//! (Real nginx and Caddy in front of tessera: `tests/proxies`.)

use reqwest::RequestBuilder;
use reqwest::header::HeaderValue;

use crate::helpers::{PASSWORD, Reply, SESSION_TOML, TestApp, WithCookies, spawn_app_with, spawn_token_app};
use crate::token_helpers::{ACCESS_COOKIE, token_toml};

const TRUST_LOOPBACK: &str = "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n";
const CSRF_COOKIE: &str = "__Host-tessera-csrf";

async fn session_app(trusted: bool) -> TestApp {
    let extra = if trusted { TRUST_LOOPBACK } else { "" };
    spawn_app_with(&format!("{SESSION_TOML}{extra}")).await
}

fn forward_auth(app: &TestApp) -> RequestBuilder {
    app.get("/v1/forward-auth")
}

/// As a proxy that passes redirects on to the client (Caddy, Traefik) asks.
fn redirecting(app: &TestApp) -> RequestBuilder {
    app.get("/v1/forward-auth?redirect=true")
}

/// What a proxy adds about the original request.
trait Original {
    fn original(self, method: &str, uri: &str) -> Self;
    fn navigation(self) -> Self;
}

impl Original for RequestBuilder {
    fn original(self, method: &str, uri: &str) -> Self {
        self.header("x-forwarded-method", method).header("x-forwarded-uri", uri)
    }

    fn navigation(self) -> Self {
        self.header("sec-fetch-mode", "navigate").header("accept", "text/html,*/*;q=0.8")
    }
}

impl Reply {
    fn assert_identity(&self, user_id: &str, username: &str, session_id: Option<&str>, mode: &str) {
        self.assert_status(200);
        assert_eq!(self.header("tessera-user-id"), Some(user_id), "{:?}", self.headers);
        assert_eq!(self.header("tessera-username"), Some(username), "{:?}", self.headers);
        assert_eq!(self.header("tessera-session-id"), session_id, "{:?}", self.headers);
        assert_eq!(self.header("tessera-auth-mode"), Some(mode), "{:?}", self.headers);
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.text, "", "identity travels in headers only");
    }

    fn assert_no_identity(&self) {
        for name in ["tessera-user-id", "tessera-username", "tessera-session-id", "tessera-auth-mode"] {
            assert!(self.headers.get(name).is_none(), "{name} on a {}: {:?}", self.status, self.headers);
        }
    }
}

// ---- session mode ----

#[tokio::test]
async fn a_session_cookie_gets_200_with_the_identity_headers() {
    let app = session_app(true).await;
    let user = app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let reply = app.send(forward_auth(&app).original("GET", "/app/").cookies(&login.cookies)).await;
    reply.assert_identity(user["id"].as_str().unwrap(), "alice", Some(&login.session_id), "session");
}

#[tokio::test]
async fn a_bearer_session_token_gets_the_same_identity() {
    let app = session_app(true).await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let request = forward_auth(&app).original("POST", "/app/items").bearer_auth(&login.token);
    let reply = app.send(request.header("tessera-transport", "bearer")).await;
    reply.assert_identity(&login.user_id, "alice", Some(&login.session_id), "session");
}

#[tokio::test]
async fn no_credential_is_a_plain_401() {
    let app = session_app(true).await;
    let reply = app.send(forward_auth(&app).original("GET", "/app/")).await;
    reply.assert_401("unauthenticated");
    assert!(reply.header("location").is_none(), "not a navigation: no login page: {:?}", reply.headers);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply.assert_no_identity();
}

#[tokio::test]
async fn garbage_credentials_are_401_never_500() {
    let app = session_app(true).await;
    let long = "A".repeat(9000);
    let attempts: Vec<(&str, HeaderValue)> = vec![
        ("authorization", HeaderValue::from_static("Bearer x")),
        ("authorization", HeaderValue::from_static("Bearer")),
        ("authorization", HeaderValue::from_str(&format!("Bearer {long}")).unwrap()),
        ("authorization", HeaderValue::from_static("Bearer a.b.c")),
        ("cookie", HeaderValue::from_static("__Host-tessera-session=garbage")),
        ("cookie", HeaderValue::from_static("__Host-tessera-session=")),
        ("cookie", HeaderValue::from_str(&format!("__Host-tessera-session={long}")).unwrap()),
        ("cookie", HeaderValue::from_bytes(b"__Host-tessera-session=\xff\xfe").unwrap()),
    ];
    for (name, value) in attempts {
        let reply = app.send(forward_auth(&app).original("GET", "/app/").header(name, value.clone())).await;
        assert_eq!(reply.status, 401, "{name}: {value:?} → {} {}", reply.status, reply.text);
        reply.assert_no_identity();
    }
}

#[tokio::test]
async fn unusable_credentials_are_401_where_the_api_says_400() {
    // nginx turns anything but 2xx, 401 and 403 from the check into a 500 for the client.
    let app = session_app(true).await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let twice = forward_auth(&app)
        .original("GET", "/app/")
        .header("tessera-transport", "bearer")
        .header("authorization", format!("Bearer {}", login.token))
        .header("authorization", format!("Bearer {}", login.token));
    app.send(twice).await.assert_invalid_token();
    let transport = forward_auth(&app).original("GET", "/app/").header("tessera-transport", "carrier-pigeon");
    app.send(transport.bearer_auth(&login.token)).await.assert_invalid_token();
}

#[tokio::test]
async fn the_transport_decides_which_credential_is_read() {
    let app = session_app(true).await;
    app.create_user("alice").await;
    let cookie = app.login_cookie("alice", PASSWORD).await;
    // Cookie is the default transport: a bearer token without Tessera-Transport is not read.
    let bearer = app.login_bearer("alice", PASSWORD).await;
    app.send(forward_auth(&app).original("GET", "/").bearer_auth(&bearer.token)).await.assert_status(401);
    let asked_bearer = forward_auth(&app).original("GET", "/").header("tessera-transport", "bearer");
    app.send(asked_bearer.cookies(&cookie.cookies)).await.assert_status(401);
}

#[tokio::test]
async fn logout_is_refused_at_once() {
    let app = session_app(true).await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    app.send(forward_auth(&app).original("GET", "/app/").cookies(&login.cookies)).await.assert_status(200);
    app.send(app.post("/v1/logout").cookies(&login.cookies).csrf(&login.cookies.csrf)).await.assert_status(204);
    let reply = app.send(forward_auth(&app).original("GET", "/app/").cookies(&login.cookies)).await;
    reply.assert_invalid_token();
    reply.assert_no_identity();
}

#[tokio::test]
async fn the_csrf_rule_applies_to_the_original_method_from_a_trusted_proxy() {
    let app = session_app(true).await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let ask = |method: &str| forward_auth(&app).original(method, "/app/items").cookies(&login.cookies);
    for safe in ["GET", "HEAD", "OPTIONS"] {
        app.send(ask(safe)).await.assert_status(200);
    }
    // PROPFIND is a method tessera knows nothing about: unsafe.
    for unsafe_method in ["POST", "PUT", "PATCH", "DELETE", "PROPFIND"] {
        let reply = app.send(ask(unsafe_method)).await;
        reply.assert_problem(403, "csrf");
        reply.assert_no_identity();
        app.send(ask(unsafe_method).csrf(&login.cookies.csrf)).await.assert_status(200);
        app.send(ask(unsafe_method).csrf("wrong")).await.assert_problem(403, "csrf");
    }
}

#[tokio::test]
async fn a_bearer_credential_needs_no_csrf_token_on_an_unsafe_method() {
    let app = session_app(true).await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let request = forward_auth(&app).original("DELETE", "/app/items/1").bearer_auth(&login.token);
    app.send(request.header("tessera-transport", "bearer")).await.assert_status(200);
}

#[tokio::test]
async fn the_x_original_spelling_is_understood_too() {
    let app = session_app(true).await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let request = |method: &str| {
        forward_auth(&app).header("x-original-method", method).header("x-original-uri", "/app/").cookies(&login.cookies)
    };
    app.send(request("GET")).await.assert_status(200);
    app.send(request("POST")).await.assert_problem(403, "csrf");
}

#[tokio::test]
async fn a_trusted_proxy_naming_no_method_or_two_gets_the_unsafe_rule() {
    let app = session_app(true).await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    // A proxy that sets X-Forwarded-Method but passes a client's X-Original-Method through.
    let conflicting = || {
        forward_auth(&app)
            .header("x-forwarded-method", "POST")
            .header("x-original-method", "GET")
            .cookies(&login.cookies)
    };
    app.send(conflicting()).await.assert_problem(403, "csrf");
    app.send(conflicting().csrf(&login.cookies.csrf)).await.assert_status(200);
    let silent = || forward_auth(&app).cookies(&login.cookies);
    app.send(silent()).await.assert_problem(403, "csrf");
    app.send(silent().csrf(&login.cookies.csrf)).await.assert_status(200);
}

#[tokio::test]
async fn original_method_and_uri_from_an_untrusted_peer_are_ignored() {
    let app = session_app(false).await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    // The request's own method (GET) applies: a claimed POST does not demand a CSRF token,
    // and a claimed GET could not have lifted one.
    let spoofed = forward_auth(&app).original("POST", "/app/").cookies(&login.cookies);
    app.send(spoofed).await.assert_status(200);
    // The claimed URI is not carried to the login page either.
    let navigation = redirecting(&app).original("GET", "/app/secret").navigation();
    let reply = app.send(navigation).await;
    reply.assert_status(302);
    assert_eq!(reply.header("location"), Some("/login"));
}

// ---- browser navigations ----

#[tokio::test]
async fn a_navigation_is_redirected_to_login_with_its_path_when_the_proxy_asks() {
    let app = session_app(true).await;
    let request = || redirecting(&app).original("GET", "/app/page?x=1&y=2");
    let reply = app.send(request().navigation()).await;
    reply.assert_status(302);
    assert_eq!(reply.header("location"), Some("/login?return_to=/app/page%3Fx%3D1%26y%3D2"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply.assert_no_identity();
    // No Sec-Fetch-Mode (an older browser): an Accept naming HTML decides.
    let reply = app.send(request().header("accept", "text/html")).await;
    assert_eq!(reply.status, 302, "{:?}", reply.headers);
    // A script's fetch or an API client gets the 401 it can act on.
    for (name, value) in [("sec-fetch-mode", "cors"), ("accept", "application/json")] {
        let reply = app.send(request().header(name, value)).await;
        reply.assert_401("unauthenticated");
        assert!(reply.header("location").is_none(), "{name}: {value}: {:?}", reply.headers);
    }
    // A form POST is not redirected: the redirect would drop its body.
    let post = redirecting(&app).original("POST", "/app/form").navigation();
    app.send(post).await.assert_401("unauthenticated");
}

#[tokio::test]
async fn without_redirect_a_navigation_gets_a_401_naming_the_login_page() {
    let app = session_app(true).await;
    let reply = app.send(forward_auth(&app).original("GET", "/app/page").navigation()).await;
    reply.assert_401("unauthenticated");
    assert_eq!(reply.header("location"), Some("/login?return_to=/app/page"));
}

#[tokio::test]
async fn a_revoked_cookie_on_a_navigation_is_sent_to_login_too() {
    let app = session_app(true).await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    app.send(app.post("/v1/logout").cookies(&login.cookies).csrf(&login.cookies.csrf)).await.assert_status(204);
    let request = redirecting(&app).original("GET", "/app/").navigation();
    let reply = app.send(request.cookies(&login.cookies)).await;
    reply.assert_status(302);
    assert_eq!(reply.header("location"), Some("/login?return_to=/app/"));
}

#[tokio::test]
async fn return_to_is_only_ever_a_same_origin_path() {
    let app = session_app(true).await;
    for uri in ["//evil.example/", "/\\evil.example/", "https://evil.example/", "evil", "/a b"] {
        let request = redirecting(&app).original("GET", uri).navigation();
        let reply = app.send(request).await;
        reply.assert_status(302);
        assert_eq!(reply.header("location"), Some("/login"), "original URI {uri:?}");
    }
}

#[tokio::test]
async fn a_malformed_query_is_400() {
    let app = session_app(true).await;
    let reply = app.send(app.get("/v1/forward-auth?redirect=maybe").original("GET", "/")).await;
    reply.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn forward_auth_takes_get_only() {
    let app = session_app(true).await;
    app.send(app.post("/v1/forward-auth")).await.assert_problem(405, "method-not-allowed");
}

#[tokio::test]
async fn a_non_ascii_username_is_percent_encoded_utf8() {
    let app = session_app(true).await;
    app.create_user("José%").await;
    let login = app.login_cookie("josé%", PASSWORD).await;
    let reply = app.send(forward_auth(&app).original("GET", "/").cookies(&login.cookies)).await;
    reply.assert_identity(&login.user_id, "jos%C3%A9%25", Some(&login.session_id), "session");
}

// ---- token modes ----

/// The access cookie (and the CSRF cookie) a browser holds after a cookie login.
async fn token_cookie_login(app: &TestApp) -> (Reply, String, String) {
    let reply = app.login("alice", PASSWORD, Some("cookie")).await;
    reply.assert_status(200);
    let (access, csrf) = (reply.set_cookie(ACCESS_COOKIE).value, reply.set_cookie(CSRF_COOKIE).value);
    (reply, format!("{ACCESS_COOKIE}={access}; {CSRF_COOKIE}={csrf}"), csrf)
}

#[tokio::test]
async fn hybrid_cookie_and_bearer_logins_get_identity_and_session_id() {
    let app = spawn_token_app(&token_toml("hybrid", TRUST_LOOPBACK)).await;
    let user = app.create_user("alice").await;
    let id = user["id"].as_str().unwrap();
    let (reply, cookies, csrf) = token_cookie_login(&app).await;
    let sid = reply.json()["session"]["id"].as_str().unwrap().to_owned();
    let ask = |method: &str| forward_auth(&app).original(method, "/app/").header("cookie", &cookies);
    app.send(ask("GET")).await.assert_identity(id, "alice", Some(&sid), "hybrid");
    app.send(ask("POST")).await.assert_problem(403, "csrf");
    app.send(ask("POST").csrf(&csrf)).await.assert_identity(id, "alice", Some(&sid), "hybrid");

    let bearer = app.login_tokens("alice", PASSWORD).await;
    let request = forward_auth(&app).original("POST", "/app/").bearer_auth(&bearer.access);
    let reply = app.send(request.header("tessera-transport", "bearer")).await;
    reply.assert_identity(id, "alice", Some(bearer.sid()), "hybrid");
}

#[tokio::test]
async fn hybrid_logout_is_refused_at_once_through_the_denylist() {
    let app = spawn_token_app(&token_toml("hybrid", TRUST_LOOPBACK)).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let ask =
        || forward_auth(&app).original("GET", "/app/").bearer_auth(&login.access).header("tessera-transport", "bearer");
    app.send(ask()).await.assert_status(200);
    let logout = app.post("/v1/logout").bearer_auth(&login.access).header("tessera-transport", "bearer");
    app.send(logout).await.assert_status(204);
    app.send(ask()).await.assert_invalid_token();
}

#[tokio::test]
async fn allowlist_refuses_a_revoked_session_at_once() {
    let toml = token_toml("hybrid", &format!("{TRUST_LOOPBACK}[revocation]\ncheck = \"allowlist\"\n"));
    let app = spawn_token_app(&toml).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let ask =
        || forward_auth(&app).original("GET", "/app/").bearer_auth(&login.access).header("tessera-transport", "bearer");
    app.send(ask()).await.assert_identity(&login.user_id, "alice", Some(login.sid()), "hybrid");
    let revoke = app.delete(&format!("/v1/sessions/{}", login.sid())).bearer_auth(&login.access);
    app.send(revoke.header("tessera-transport", "bearer")).await.assert_status(204);
    app.send(ask()).await.assert_invalid_token();
}

#[tokio::test]
async fn jwt_without_sessions_sends_an_empty_session_id() {
    let toml = token_toml("jwt", &format!("{TRUST_LOOPBACK}[refresh]\nenabled = false\n"));
    let app = spawn_token_app(&toml).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let request = forward_auth(&app).original("GET", "/app/").bearer_auth(&login.access);
    let reply = app.send(request.header("tessera-transport", "bearer")).await;
    // Empty rather than absent, so no proxy can invent a value for it.
    reply.assert_identity(&login.user_id, "alice", Some(""), "jwt");
}

#[tokio::test]
async fn a_forged_access_token_is_401() {
    let app = spawn_token_app(&token_toml("hybrid", TRUST_LOOPBACK)).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    // One byte of the signature changed.
    let mut forged = login.access.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let request = forward_auth(&app).original("GET", "/app/").bearer_auth(&forged);
    app.send(request.header("tessera-transport", "bearer")).await.assert_invalid_token();
}
