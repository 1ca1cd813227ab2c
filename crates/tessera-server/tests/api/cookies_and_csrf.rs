//! Cookie attributes (`__Host-` prefix, HttpOnly, Secure, SameSite) and the CSRF rule: an
//! unsafe request authenticated by a cookie must carry `X-CSRF-Token`; a bearer one need not.

use reqwest::Method;

use crate::helpers::{CSRF_COOKIE, PASSWORD, SESSION_COOKIE, WithCookies, random_id, spawn_app, spawn_app_with};

const THIRTY_DAYS: i64 = 30 * 86_400;

#[tokio::test]
async fn login_sets_host_prefixed_httponly_session_cookie() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let cookie = login.reply.set_cookie(SESSION_COOKIE);
    cookie.assert_host_prefix_rules();
    assert!(cookie.has_flag("httponly"), "the session cookie is HttpOnly: {cookie:?}");
    assert_eq!(cookie.attr("samesite"), Some(Some("Lax")), "{cookie:?}");
    let max_age = cookie.max_age();
    assert!((1..=THIRTY_DAYS).contains(&max_age), "Max-Age within the absolute timeout: {max_age}");
}

#[tokio::test]
async fn login_sets_script_readable_csrf_cookie_equal_to_body_token() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let cookie = login.reply.set_cookie(CSRF_COOKIE);
    cookie.assert_host_prefix_rules();
    assert!(!cookie.has_flag("httponly"), "the page's script must read the CSRF cookie: {cookie:?}");
    assert_eq!(cookie.attr("samesite"), Some(Some("Lax")), "{cookie:?}");
    assert!((1..=THIRTY_DAYS).contains(&cookie.max_age()));
    assert_eq!(login.body["csrf_token"].as_str(), Some(cookie.value.as_str()));
    assert_ne!(cookie.value, login.cookies.session);
}

#[tokio::test]
async fn same_site_strict_setting_is_applied_to_both_cookies() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\n[cookie]\nsame_site = \"Strict\"\n").await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        let cookie = login.reply.set_cookie(name);
        assert_eq!(cookie.attr("samesite"), Some(Some("Strict")), "{cookie:?}");
    }
}

#[tokio::test]
async fn unsafe_cookie_request_without_csrf_header_is_403() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    app.send(app.post("/v1/logout").cookies(&login.cookies)).await.assert_problem(403, "csrf");
    // Nothing happened: the session is still there.
    app.me_cookie(&login.cookies).await.assert_status(200);
}

#[tokio::test]
async fn unsafe_cookie_request_with_wrong_csrf_header_is_403() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let wrong = tessera_core::secret::b64(&[7u8; 32]);
    for bad in [wrong.as_str(), "", "x", login.cookies.session.as_str()] {
        app.send(app.post("/v1/logout").cookies(&login.cookies).csrf(bad)).await.assert_problem(403, "csrf");
    }
    app.me_cookie(&login.cookies).await.assert_status(200);
}

#[tokio::test]
async fn csrf_token_of_another_session_is_rejected() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let one = app.login_cookie("alice", PASSWORD).await;
    let two = app.login_cookie("alice", PASSWORD).await;
    app.send(app.post("/v1/logout").cookies(&one.cookies).csrf(&two.cookies.csrf)).await.assert_problem(403, "csrf");
    app.me_cookie(&one.cookies).await.assert_status(200);
}

#[tokio::test]
async fn csrf_cookie_alone_does_not_satisfy_the_header_requirement() {
    // Double-submit done right: the browser sends the CSRF cookie on its own; only a script
    // on our origin can copy it into the header.
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    app.send(app.post("/v1/logout-all").cookies(&login.cookies)).await.assert_problem(403, "csrf");
}

#[tokio::test]
async fn unsafe_cookie_request_with_matching_csrf_header_succeeds() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    app.send(app.post("/v1/logout").cookies(&login.cookies).csrf(&login.cookies.csrf)).await.assert_status(204);
}

#[tokio::test]
async fn cookie_delete_session_needs_csrf() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let browser = app.login_cookie("alice", PASSWORD).await;
    let phone = app.login_bearer("alice", PASSWORD).await;
    let path = format!("/v1/sessions/{}", phone.session_id);
    app.send(app.delete(&path).cookies(&browser.cookies)).await.assert_problem(403, "csrf");
    app.me_bearer(&phone.token).await.assert_status(200);
    app.send(app.delete(&path).cookies(&browser.cookies).csrf(&browser.cookies.csrf)).await.assert_status(204);
    app.me_bearer(&phone.token).await.assert_invalid_token();
}

#[tokio::test]
async fn csrf_is_checked_for_put_and_patch_too() {
    // Whatever the route answers to these methods, a cookie request without the CSRF header
    // must never reach it: 403 (or 405 when the method is not routed at all), never a 2xx.
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    for method in [Method::PUT, Method::PATCH] {
        let reply = app.send(app.req(method.clone(), "/v1/logout").cookies(&login.cookies)).await;
        assert!(
            matches!(reply.status.as_u16(), 403 | 405),
            "{method} with a cookie and no CSRF header: {} {}",
            reply.status,
            reply.text
        );
    }
    app.me_cookie(&login.cookies).await.assert_status(200);
}

#[tokio::test]
async fn safe_cookie_requests_need_no_csrf_header() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    app.me_cookie(&login.cookies).await.assert_status(200);
    app.send(app.get("/v1/sessions").cookies(&login.cookies)).await.assert_status(200);
}

#[tokio::test]
async fn bearer_requests_need_no_csrf_header() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let one = app.login_bearer("alice", PASSWORD).await;
    let two = app.login_bearer("alice", PASSWORD).await;
    app.send(app.delete(&format!("/v1/sessions/{}", two.session_id)).bearer(&one.token)).await.assert_status(204);
    app.send(app.post("/v1/logout").bearer(&one.token)).await.assert_status(204);
}

#[tokio::test]
async fn csrf_rejection_does_not_reveal_whether_a_session_id_exists() {
    // The CSRF check comes before the handler: an unknown id and a real one get the same 403.
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let real = app.send(app.delete(&format!("/v1/sessions/{}", login.session_id)).cookies(&login.cookies)).await;
    let unknown = app.send(app.delete(&format!("/v1/sessions/{}", random_id())).cookies(&login.cookies)).await;
    real.assert_problem(403, "csrf");
    unknown.assert_problem(403, "csrf");
}
