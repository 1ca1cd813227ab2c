//! `POST /v1/logout` and `POST /v1/logout-all`: revocation takes effect at once.

use crate::helpers::{CSRF_COOKIE, PASSWORD, SESSION_COOKIE, WithCookies, spawn_app};

#[tokio::test]
async fn bearer_logout_is_204_and_the_token_is_401_afterwards() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let reply = app.send(app.post("/v1/logout").bearer(&login.token)).await;
    reply.assert_status(204);
    assert!(reply.text.is_empty(), "204 has no body");
    app.me_bearer(&login.token).await.assert_invalid_token();
}

#[tokio::test]
async fn logout_ends_only_the_current_session() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let one = app.login_bearer("alice", PASSWORD).await;
    let two = app.login_bearer("alice", PASSWORD).await;
    app.send(app.post("/v1/logout").bearer(&one.token)).await.assert_status(204);
    app.me_bearer(&one.token).await.assert_invalid_token();
    app.me_bearer(&two.token).await.assert_status(200);
}

#[tokio::test]
async fn logout_twice_with_the_same_token_is_401_the_second_time() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.send(app.post("/v1/logout").bearer(&login.token)).await.assert_status(204);
    app.send(app.post("/v1/logout").bearer(&login.token)).await.assert_invalid_token();
}

#[tokio::test]
async fn logout_without_credentials_is_401() {
    let app = spawn_app().await;
    app.send(app.post("/v1/logout")).await.assert_401("unauthenticated");
}

#[tokio::test]
async fn cookie_logout_clears_both_cookies_with_max_age_zero() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let reply = app.send(app.post("/v1/logout").cookies(&login.cookies).csrf(&login.cookies.csrf)).await;
    reply.assert_status(204);
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        let cleared = reply.set_cookie(name);
        assert_eq!(cleared.max_age(), 0, "{name} is cleared: {cleared:?}");
        assert!(!cleared.value.contains(&login.cookies.session), "the clearing cookie does not repeat the token");
        // A browser ignores a __Host- Set-Cookie that lacks these, so the old cookie would stay.
        cleared.assert_host_prefix_rules();
    }
    app.me_cookie(&login.cookies).await.assert_invalid_token();
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user_and_no_other() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let a1 = app.login_bearer("alice", PASSWORD).await;
    let a2 = app.login_cookie("alice", PASSWORD).await;
    let a3 = app.login_bearer("alice", PASSWORD).await;
    let bob = app.login_bearer("bob", PASSWORD).await;
    let reply = app.send(app.post("/v1/logout-all").bearer(&a1.token)).await;
    reply.assert_status(204);
    app.me_bearer(&a1.token).await.assert_invalid_token();
    app.me_cookie(&a2.cookies).await.assert_invalid_token();
    app.me_bearer(&a3.token).await.assert_invalid_token();
    app.me_bearer(&bob.token).await.assert_status(200);
    // Logging in again still works: logout-all ends sessions, not the account.
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test]
async fn cookie_logout_all_clears_cookies_and_needs_csrf() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let other = app.login_bearer("alice", PASSWORD).await;
    app.send(app.post("/v1/logout-all").cookies(&login.cookies)).await.assert_problem(403, "csrf");
    app.me_bearer(&other.token).await.assert_status(200);
    let reply = app.send(app.post("/v1/logout-all").cookies(&login.cookies).csrf(&login.cookies.csrf)).await;
    reply.assert_status(204);
    assert_eq!(reply.set_cookie(SESSION_COOKIE).max_age(), 0);
    app.me_bearer(&other.token).await.assert_invalid_token();
}

#[tokio::test]
async fn logout_all_without_credentials_is_401() {
    let app = spawn_app().await;
    app.send(app.post("/v1/logout-all")).await.assert_401("unauthenticated");
}
