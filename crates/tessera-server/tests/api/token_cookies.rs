//! The cookie transport in the token modes: the access cookie (`__Host-`), the refresh cookie
//! (`__Secure-`, one per narrow path), the script-readable CSRF cookie, credentials never in
//! the body, CSRF on unsafe methods and on refresh, and cookies cleared at logout.

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
        let refresh = refresh_cookies(reply);
        assert_eq!(refresh.len(), 2, "the refresh cookie is set once per path: {:?}", reply.headers);
        Jar {
            access: reply.set_cookie(ACCESS_COOKIE).value,
            refresh: refresh[0].value.clone(),
            csrf: reply.set_cookie(CSRF_COOKIE).value,
            body: reply.json(),
        }
    }

    /// The `Cookie` header a browser sends to every path (the refresh cookie only goes to
    /// its two paths, so it is left out here).
    fn page_cookies(&self) -> String {
        format!("{ACCESS_COOKIE}={}; {CSRF_COOKIE}={}", self.access, self.csrf)
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
    assert_eq!(keys, ["csrf_token", "expires_in", "session", "token_type", "user"], "{}", jar.body);
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

    let refresh = refresh_cookies(&reply);
    let mut paths: Vec<&str> = refresh.iter().map(|c| c.attr("path").flatten().expect("a Path")).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/v1/logout", "/v1/refresh"], "{refresh:?}");
    for c in &refresh {
        assert_eq!(c.value, refresh[0].value, "both refresh cookies carry the same token");
        assert!(c.has_flag("httponly") && c.has_flag("secure"), "{c:?}");
        assert_eq!(c.attr("samesite"), Some(Some("Lax")), "{c:?}");
        assert_eq!(c.attr("domain"), None, "{c:?}");
        assert!(c.max_age() > 0, "{c:?}");
    }
    assert!(!refresh[0].value.contains('.'), "the refresh cookie holds the opaque refresh token");

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
    let cookies = format!("{}; {REFRESH_COOKIE}={}", jar.page_cookies(), jar.refresh);
    let reply = app.send(app.post("/v1/logout").header("cookie", cookies).header("x-csrf-token", &jar.csrf)).await;
    reply.assert_status(204);
    let cleared = reply.set_cookies();
    for name in [ACCESS_COOKIE, CSRF_COOKIE] {
        let c = reply.set_cookie(name);
        assert_eq!(c.max_age(), 0, "{name} is expired: {c:?}");
        assert_eq!(c.value, "", "{name} is emptied: {c:?}");
    }
    let refresh: Vec<&SetCookie> = cleared.iter().filter(|c| c.name == REFRESH_COOKIE).collect();
    assert_eq!(refresh.len(), 2, "both refresh cookies are cleared, each on its own path: {cleared:?}");
    for c in refresh {
        assert_eq!(c.max_age(), 0, "{c:?}");
    }
    app.refresh_cookie(&jar.refresh, Some(&jar.csrf)).await.assert_invalid_token();
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
