//! The cookie transport in the token modes: the access cookie (`__Host-`), the refresh cookie
//! (`__Host-`, `Path=/`, `SameSite=Strict`), the script-readable CSRF cookie, credentials never
//! in the body, CSRF on unsafe methods and on refresh, and a logout that ends the session by
//! whichever cookie is left, clearing them all.

use serde_json::Value;

use crate::forge::header_of;
use crate::helpers::{CSRF_COOKIE, PASSWORD, Reply, SetCookie, TestApp, WithCookies, spawn_token_app};
use crate::token_helpers::{ACCESS_COOKIE, REFRESH_COOKIE, spawn_hybrid, token_toml};

/// What a browser holds after a cookie-transport login or refresh in a token mode.
struct Jar {
    access: String,
    refresh: String,
    csrf: String,
    body: Value,
}

impl Jar {
    fn from_reply(reply: &Reply) -> Jar {
        reply.assert_status(200);
        Jar {
            access: reply.set_cookie(ACCESS_COOKIE).value,
            refresh: reply.set_cookie(REFRESH_COOKIE).value,
            csrf: reply.set_cookie(CSRF_COOKIE).value,
            body: reply.json(),
        }
    }

    /// The `Cookie` header a browser sends with a same-site request while the access token
    /// lives.
    fn page_cookies(&self) -> String {
        format!("{ACCESS_COOKIE}={}; {REFRESH_COOKIE}={}; {CSRF_COOKIE}={}", self.access, self.refresh, self.csrf)
    }

    /// What the browser still sends once the access cookie has expired.
    fn without_access(&self) -> String {
        format!("{REFRESH_COOKIE}={}; {CSRF_COOKIE}={}", self.refresh, self.csrf)
    }
}

fn refresh_cookies(reply: &Reply) -> Vec<SetCookie> {
    reply.set_cookies().into_iter().filter(|c| c.name == REFRESH_COOKIE).collect()
}

async fn login_cookie(app: &TestApp) -> (Reply, Jar) {
    let reply = app.login("alice", PASSWORD, Some("cookie")).await;
    let jar = Jar::from_reply(&reply);
    (reply, jar)
}

#[tokio::test]
async fn cookie_login_sets_access_refresh_and_csrf_cookies_and_no_tokens_in_the_body() {
    let app = spawn_hybrid().await;
    let user = app.create_user("alice").await;
    let (reply, jar) = login_cookie(&app).await;
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let mut keys: Vec<&String> = jar.body.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["csrf_token", "expires_in", "session", "token_type", "transport", "user"], "{}", jar.body);
    assert_eq!(jar.body["transport"], "cookie", "the body says where the tokens went");
    assert_eq!(jar.body["user"], user);
    assert_eq!(jar.body["token_type"], "Bearer");
    assert_eq!(jar.body["expires_in"], 300);
    assert!(jar.body["session"]["id"].is_string(), "{}", jar.body);
    assert_eq!(jar.body["csrf_token"].as_str(), Some(jar.csrf.as_str()), "the CSRF cookie holds the body's csrf_token");

    let access = reply.set_cookie(ACCESS_COOKIE);
    access.assert_host_prefix_rules();
    assert_eq!(access.max_age(), 300, "the access cookie lives as long as the token: {access:?}");
    assert!(access.has_flag("httponly"), "{access:?}");
    assert_eq!(access.attr("samesite"), Some(Some("Lax")), "{access:?}");
    assert_eq!(header_of(&access.value)["typ"], "at+jwt", "the access cookie carries the JWT");

    // A __Secure- cookie with a narrow Path could be planted or shadowed from a sibling
    // subdomain; a __Host- one with Path=/ cannot. Strict: no other site's request carries it.
    let refresh = reply.set_cookie(REFRESH_COOKIE);
    refresh.assert_host_prefix_rules();
    assert!(refresh.has_flag("httponly"), "{refresh:?}");
    assert_eq!(refresh.attr("samesite"), Some(Some("Strict")), "{refresh:?}");
    assert!(refresh.max_age() > 0, "{refresh:?}");
    assert!(!refresh.value.contains('.'), "the refresh cookie holds the opaque refresh token");

    let csrf = reply.set_cookie(CSRF_COOKIE);
    csrf.assert_host_prefix_rules();
    assert!(!csrf.has_flag("httponly"), "the page's scripts read the CSRF cookie: {csrf:?}");
}

#[tokio::test]
async fn access_cookie_authenticates_me() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let (_, jar) = login_cookie(&app).await;
    let reply = app.send(app.get("/v1/me").header("cookie", jar.page_cookies())).await;
    reply.assert_status(200);
    assert_eq!(reply.json()["auth"]["transport"], "cookie");
    assert_eq!(reply.json()["auth"]["mode"], "hybrid");
}

#[tokio::test]
async fn unsafe_request_with_access_cookie_needs_the_csrf_header() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let (_, jar) = login_cookie(&app).await;
    let cookies = jar.page_cookies();
    app.send(app.post("/v1/logout-all").header("cookie", &cookies)).await.assert_problem(403, "csrf");
    app.send(app.post("/v1/logout-all").header("cookie", &cookies).header("x-csrf-token", "AAAA"))
        .await
        .assert_problem(403, "csrf");
    let other = app.login("alice", PASSWORD, Some("cookie")).await;
    let other = Jar::from_reply(&other);
    app.send(app.post("/v1/logout-all").header("cookie", &cookies).header("x-csrf-token", &other.csrf))
        .await
        .assert_problem(403, "csrf");
    // Still logged in: the refused requests did nothing.
    app.send(app.get("/v1/me").header("cookie", &cookies)).await.assert_status(200);
    app.send(app.post("/v1/logout").header("cookie", &cookies).header("x-csrf-token", &jar.csrf))
        .await
        .assert_status(204);
}

#[tokio::test]
async fn bearer_access_token_needs_no_csrf_header() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    app.send(app.post("/v1/logout").bearer(&login.access)).await.assert_status(204);
}

#[tokio::test]
async fn cookie_refresh_with_csrf_rotates_every_cookie() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let (_, jar) = login_cookie(&app).await;
    let reply = app.refresh_cookie(&jar.refresh, Some(&jar.csrf)).await;
    let next = Jar::from_reply(&reply);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(next.body.get("access_token").is_none() && next.body.get("refresh_token").is_none(), "{}", next.body);
    assert_eq!(next.body["session"]["id"], jar.body["session"]["id"], "the same session continues");
    assert_ne!(next.refresh, jar.refresh, "the refresh cookie rotates");
    assert_ne!(next.access, jar.access, "a new access token");
    let me = app.send(app.get("/v1/me").header("cookie", next.page_cookies())).await;
    me.assert_status(200);
    // The new refresh cookie works in turn (with the CSRF token the refresh answer gave).
    Jar::from_reply(&app.refresh_cookie(&next.refresh, Some(&next.csrf)).await);
}

#[tokio::test]
async fn cookie_refresh_without_csrf_header_is_403() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let (_, jar) = login_cookie(&app).await;
    app.refresh_cookie(&jar.refresh, None).await.assert_problem(403, "csrf");
    // Nothing rotated: the cookie still refreshes once the header is there.
    Jar::from_reply(&app.refresh_cookie(&jar.refresh, Some(&jar.csrf)).await);
}

#[tokio::test]
async fn cookie_refresh_with_wrong_csrf_header_is_403() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let (_, jar) = login_cookie(&app).await;
    let (_, other) = login_cookie(&app).await;
    app.refresh_cookie(&jar.refresh, Some(&other.csrf)).await.assert_problem(403, "csrf");
    app.refresh_cookie(&jar.refresh, Some("not-a-csrf-token")).await.assert_problem(403, "csrf");
    Jar::from_reply(&app.refresh_cookie(&jar.refresh, Some(&jar.csrf)).await);
}

#[tokio::test]
async fn cookie_logout_clears_access_refresh_and_csrf_cookies() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let (_, jar) = login_cookie(&app).await;
    let reply = app.send(app.post("/v1/logout").header("cookie", jar.page_cookies()).csrf(&jar.csrf)).await;
    reply.assert_status(204);
    assert_cleared(&reply);
    app.refresh_cookie(&jar.refresh, Some(&jar.csrf)).await.assert_invalid_token();
    app.send(app.get("/v1/me").header("cookie", jar.page_cookies())).await.assert_invalid_token();
}

fn assert_cleared(reply: &Reply) {
    for name in [ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE] {
        let c = reply.set_cookie(name);
        assert_eq!(c.max_age(), 0, "{name} is expired: {c:?}");
        assert_eq!(c.value, "", "{name} is emptied: {c:?}");
        // A browser ignores a __Host- Set-Cookie that lacks these, so the old cookie would stay.
        c.assert_host_prefix_rules();
    }
}

#[tokio::test]
async fn logout_with_only_the_refresh_cookie_ends_the_session_and_clears_the_cookies() {
    // The access cookie expires after minutes, the refresh cookie after weeks: a logout must
    // work with what the browser still holds, or the refresh token outlives it.
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let (_, jar) = login_cookie(&app).await;
    app.advance(time::Duration::minutes(6));
    let reply = app.send(app.post("/v1/logout").header("cookie", jar.without_access()).csrf(&jar.csrf)).await;
    reply.assert_status(204);
    assert_cleared(&reply);
    app.refresh_cookie(&jar.refresh, Some(&jar.csrf)).await.assert_invalid_token();
    assert!(app.audit_kinds().await.iter().any(|k| k == "logout"), "the logout is audited");
}

#[tokio::test]
async fn logout_by_refresh_cookie_needs_the_sessions_csrf_token_from_our_own_site() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let (_, jar) = login_cookie(&app).await;
    let (_, other) = login_cookie(&app).await;
    let logout = || app.post("/v1/logout").header("cookie", jar.without_access());
    app.send(logout()).await.assert_problem(403, "csrf");
    app.send(logout().csrf(&other.csrf)).await.assert_problem(403, "csrf");
    app.send(logout().csrf("not-a-csrf-token")).await.assert_problem(403, "csrf");
    app.send(logout().csrf(&jar.csrf).header("origin", "https://evil.example")).await.assert_problem(403, "csrf");
    // A well-formed refresh token for alice's session that is not genuine ends nothing.
    let parsed = tessera_core::refresh::RefreshToken::parse(&jar.refresh).expect("a refresh token");
    let forged = tessera_core::refresh::RefreshToken::first(parsed.user_id, parsed.session_id).encode();
    let forged = format!("{REFRESH_COOKIE}={forged}; {CSRF_COOKIE}={}", jar.csrf);
    app.send(app.post("/v1/logout").header("cookie", forged).csrf(&jar.csrf)).await.assert_invalid_token();
    // Nothing happened: both sessions still refresh.
    app.refresh_cookie(&jar.refresh, Some(&jar.csrf)).await.assert_status(200);
    app.refresh_cookie(&other.refresh, Some(&other.csrf)).await.assert_status(200);
}

#[tokio::test]
async fn a_stale_refresh_cookie_still_logs_its_session_out() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let (_, jar) = login_cookie(&app).await;
    let next = Jar::from_reply(&app.refresh_cookie(&jar.refresh, Some(&jar.csrf)).await);
    let stale = format!("{REFRESH_COOKIE}={}; {CSRF_COOKIE}={}", jar.refresh, jar.csrf);
    app.send(app.post("/v1/logout").header("cookie", stale).csrf(&jar.csrf)).await.assert_status(204);
    app.refresh_cookie(&next.refresh, Some(&next.csrf)).await.assert_invalid_token();
}

#[tokio::test]
async fn jwt_mode_cookie_login_without_refresh_sets_no_refresh_cookie() {
    let app = spawn_token_app(&token_toml("jwt", "[refresh]\nenabled = false\n")).await;
    app.create_user("alice").await;
    let reply = app.login("alice", PASSWORD, Some("cookie")).await;
    reply.assert_status(200);
    assert!(refresh_cookies(&reply).is_empty(), "{:?}", reply.headers);
    let access = reply.set_cookie(ACCESS_COOKIE);
    let csrf = reply.set_cookie(CSRF_COOKIE);
    let body = reply.json();
    assert_eq!(body["session"], Value::Null);
    assert_eq!(body["csrf_token"].as_str(), Some(csrf.value.as_str()));
    let cookies = format!("{ACCESS_COOKIE}={}; {CSRF_COOKIE}={}", access.value, csrf.value);
    app.send(app.get("/v1/me").header("cookie", &cookies)).await.assert_status(200);
    app.send(app.post("/v1/logout").header("cookie", &cookies)).await.assert_problem(403, "csrf");
    app.send(app.post("/v1/logout").header("cookie", &cookies).header("x-csrf-token", &csrf.value))
        .await
        .assert_status(204);
}
