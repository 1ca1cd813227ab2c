//! `POST /v1/password`: every old session ends (the caller's too) and the caller gets a new
//! session with a new id, in the transport the request came in with.

use serde_json::json;

use crate::helpers::{
    CSRF_COOKIE, Cookies, PASSWORD, SESSION_COOKIE, WRONG_PASSWORD, WithCookies, is_b64url, spawn_app,
};

const NEW_PASSWORD: &str = "a brand new passphrase";

fn change(current: &str, new: &str) -> serde_json::Value {
    json!({"current_password": current, "new_password": new})
}

#[tokio::test]
async fn bearer_password_change_returns_200_with_a_new_session() {
    let app = spawn_app().await;
    let user = app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let reply = app.send(app.post("/v1/password").bearer(&login.token).json(&change(PASSWORD, NEW_PASSWORD))).await;
    reply.assert_status(200);
    let body = reply.json();
    assert_eq!(body["user"], user);
    let token = body["session_token"].as_str().expect("a new session_token");
    assert!(is_b64url(token, 87));
    assert_ne!(token, login.token);
    let new_id = body["session"]["id"].as_str().expect("session.id");
    assert_ne!(new_id, login.session_id, "a new session id: no fixation");
    assert!(body["session"]["expires_at"].is_string() && body["session"]["idle_expires_at"].is_string());

    app.me_bearer(&login.token).await.assert_invalid_token();
    let me = app.me_bearer(token).await;
    me.assert_status(200);
    assert_eq!(me.json()["session"]["id"].as_str(), Some(new_id));
}

#[tokio::test]
async fn password_change_ends_every_other_session_of_the_user_only() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let caller = app.login_bearer("alice", PASSWORD).await;
    let other_device = app.login_cookie("alice", PASSWORD).await;
    let bob = app.login_bearer("bob", PASSWORD).await;
    let reply = app.send(app.post("/v1/password").bearer(&caller.token).json(&change(PASSWORD, NEW_PASSWORD))).await;
    reply.assert_status(200);
    let new_token = reply.json()["session_token"].as_str().expect("token").to_owned();
    app.me_cookie(&other_device.cookies).await.assert_invalid_token();
    app.me_bearer(&caller.token).await.assert_invalid_token();
    app.me_bearer(&bob.token).await.assert_status(200);
    let sessions = app.sessions_bearer(&new_token).await;
    assert_eq!(sessions.len(), 1, "only the re-issued session is left: {sessions:?}");
}

#[tokio::test]
async fn after_password_change_only_the_new_password_logs_in() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.send(app.post("/v1/password").bearer(&login.token).json(&change(PASSWORD, NEW_PASSWORD)))
        .await
        .assert_status(200);
    app.login("alice", PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    app.login_bearer("alice", NEW_PASSWORD).await;
}

#[tokio::test]
async fn cookie_password_change_returns_204_with_new_cookies() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let reply = app
        .send(
            app.post("/v1/password")
                .cookies(&login.cookies)
                .csrf(&login.cookies.csrf)
                .json(&change(PASSWORD, NEW_PASSWORD)),
        )
        .await;
    reply.assert_status(204);
    assert!(reply.text.is_empty(), "204 has no body");
    let session = reply.set_cookie(SESSION_COOKIE);
    let csrf = reply.set_cookie(CSRF_COOKIE);
    session.assert_host_prefix_rules();
    csrf.assert_host_prefix_rules();
    assert!(session.has_flag("httponly"));
    assert!(session.max_age() > 0 && csrf.max_age() > 0);
    assert!(is_b64url(&session.value, 87));
    assert_ne!(session.value, login.cookies.session);
    assert_ne!(csrf.value, login.cookies.csrf, "a new session has a new CSRF token");
    let fresh = Cookies { session: session.value, csrf: csrf.value };

    app.me_cookie(&login.cookies).await.assert_invalid_token();
    let me = app.me_cookie(&fresh).await;
    me.assert_status(200);
    assert_ne!(me.json()["session"]["id"].as_str(), Some(login.session_id.as_str()));
    // The new CSRF token is the one that now works for unsafe requests, and the old one not.
    app.send(app.post("/v1/logout").cookies(&fresh).csrf(&login.cookies.csrf)).await.assert_problem(403, "csrf");
    app.send(app.post("/v1/logout").cookies(&fresh).csrf(&fresh.csrf)).await.assert_status(204);
}

#[tokio::test]
async fn password_change_with_wrong_current_password_is_401_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let reply =
        app.send(app.post("/v1/password").bearer(&login.token).json(&change(WRONG_PASSWORD, NEW_PASSWORD))).await;
    reply.assert_401("invalid-credentials");
    app.me_bearer(&login.token).await.assert_status(200);
    app.login_bearer("alice", PASSWORD).await;
    app.login("alice", NEW_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
}

#[tokio::test]
async fn password_change_to_a_7_byte_password_is_400_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let reply = app.send(app.post("/v1/password").bearer(&login.token).json(&change(PASSWORD, "1234567"))).await;
    reply.assert_problem(400, "invalid-request");
    let reply =
        app.send(app.post("/v1/password").bearer(&login.token).json(&change(PASSWORD, &"p".repeat(1025)))).await;
    reply.assert_problem(400, "invalid-request");
    app.me_bearer(&login.token).await.assert_status(200);
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test]
async fn password_change_with_missing_field_is_400() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let reply =
        app.send(app.post("/v1/password").bearer(&login.token).json(&json!({"new_password": NEW_PASSWORD}))).await;
    reply.assert_problem(400, "invalid-request");
    app.me_bearer(&login.token).await.assert_status(200);
}

#[tokio::test]
async fn password_change_without_credentials_is_401() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let reply = app.send(app.post("/v1/password").json(&change(PASSWORD, NEW_PASSWORD))).await;
    reply.assert_401("unauthenticated");
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test]
async fn cookie_password_change_without_csrf_header_is_403_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let reply = app.send(app.post("/v1/password").cookies(&login.cookies).json(&change(PASSWORD, NEW_PASSWORD))).await;
    reply.assert_problem(403, "csrf");
    app.me_cookie(&login.cookies).await.assert_status(200);
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test]
async fn password_change_answers_in_the_transport_its_credential_came_by() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    // Bearer: the new token comes back in a body, no cookies.
    let login = app.login_bearer("alice", PASSWORD).await;
    let reply = app.send(app.post("/v1/password").bearer(&login.token).json(&change(PASSWORD, NEW_PASSWORD))).await;
    reply.assert_status(200);
    assert!(reply.json()["session_token"].is_string(), "{}", reply.text);
    assert!(reply.set_cookies().iter().all(|c| c.name != SESSION_COOKIE), "no session cookie");

    // Cookie: new cookies, no token in a body.
    let login = app.login_cookie("alice", NEW_PASSWORD).await;
    let with_cookies = || app.post("/v1/password").cookies(&login.cookies).csrf(&login.cookies.csrf);
    // Naming the other transport reads the other credential, which is not there.
    let reply =
        app.send(with_cookies().header("tessera-transport", "bearer").json(&change(NEW_PASSWORD, PASSWORD))).await;
    reply.assert_401("unauthenticated");
    let reply = app.send(with_cookies().json(&change(NEW_PASSWORD, PASSWORD))).await;
    reply.assert_status(204);
    assert!(reply.text.is_empty());
    let fresh = Cookies::from_reply(&reply);
    app.me_cookie(&fresh).await.assert_status(200);
}

// Passwords are NFKC-normalised at sign-up, login and change (NIST SP 800-63B §5.1.1.2), and
// nothing else: the same passphrase typed as a composed or decomposed accent, or in fullwidth
// letters, is one password; spaces and case still count.

/// "café crème" with each accent as a combining character.
const DECOMPOSED: &str = "cafe\u{301} cre\u{300}me";
const COMPOSED: &str = "caf\u{e9} cr\u{e8}me";

#[tokio::test]
async fn signup_with_a_decomposed_password_logs_in_with_the_composed_form() {
    let app = spawn_app().await;
    app.signup("alice", DECOMPOSED).await.assert_status(201);
    app.login_bearer("alice", COMPOSED).await;
    app.login_bearer("alice", DECOMPOSED).await;
}

#[tokio::test]
async fn signup_with_a_compatibility_form_logs_in_with_plain_letters() {
    let app = spawn_app().await;
    // Fullwidth letters and digits, and the "ﬁ" ligature.
    app.signup("alice", "ｐａｓｓｗｏｒｄ１２３ ﬁsh").await.assert_status(201);
    app.login_bearer("alice", "password123 fish").await;
}

#[tokio::test]
async fn passwords_are_never_trimmed_case_folded_or_truncated() {
    let app = spawn_app().await;
    app.signup("alice", "  Correct Horse  ").await.assert_status(201);
    for near_miss in ["Correct Horse", "  correct horse  ", "  CORRECT HORSE  ", "  Correct Horse "] {
        app.login("alice", near_miss, Some("bearer")).await.assert_401("invalid-credentials");
    }
    app.login_bearer("alice", "  Correct Horse  ").await;

    let long = "p".repeat(1024);
    app.signup("bob", &long).await.assert_status(201);
    app.login("bob", &long[..1023], Some("bearer")).await.assert_401("invalid-credentials");
    app.login_bearer("bob", &long).await;
}

#[tokio::test]
async fn password_change_normalises_the_new_and_the_current_password() {
    let app = spawn_app().await;
    app.signup("alice", COMPOSED).await.assert_status(201);
    let login = app.login_bearer("alice", COMPOSED).await;
    // The current password in its decomposed form is accepted; the new one is stored normalised.
    let reply =
        app.send(app.post("/v1/password").bearer(&login.token).json(&change(DECOMPOSED, "ｎｅｗ ｐａｓｓ 42"))).await;
    reply.assert_status(200);
    app.login_bearer("alice", "new pass 42").await;
}

/// Issue 11 #10: two password changes sent at once from the same session, each verified
/// against the same current password. Before the fix both answered 200 and the later write
/// silently replaced the earlier one; now the write is a compare-and-set on the hash that was
/// verified, so exactly one takes effect and the other says so with a 409 problem.
#[tokio::test]
async fn of_two_concurrent_password_changes_exactly_one_wins_and_the_other_is_a_409() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let candidates = ["first brand new passphrase", "second brand new passphrase"];
    let [a, b] =
        candidates.map(|new| app.send(app.post("/v1/password").bearer(&login.token).json(&change(PASSWORD, new))));
    let (a, b) = tokio::join!(a, b);
    let replies = [a, b];
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(
        statuses == [200, 409] || statuses == [409, 200],
        "exactly one change answers 200 and the other 409, got {statuses:?}"
    );
    let (winner, loser) = if statuses[0] == 200 { (0, 1) } else { (1, 0) };
    let problem = replies[loser].assert_problem(409, "conflict");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("changed")), "{problem}");

    app.login("alice", candidates[winner], Some("bearer")).await.assert_status(200);
    app.login("alice", candidates[loser], Some("bearer")).await.assert_401("invalid-credentials");
    app.login("alice", PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
}
