//! Security-relevant events end up as stored audit records (read back through the store, as
//! an operator's tool would).

use serde_json::json;

use crate::helpers::{PASSWORD, WRONG_PASSWORD, WithCookies, spawn_app};

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

#[tokio::test]
async fn login_success_and_failure_are_audited() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.login_bearer("alice", PASSWORD).await;
    app.login("alice", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    app.login("nobody", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    let kinds = app.audit_kinds().await;
    assert_eq!(count(&kinds, "account_created"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "login_succeeded"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "login_failed"), 2, "{kinds:?}");
}

#[tokio::test]
async fn throttled_login_is_audited() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    for _ in 0..6 {
        app.login("alice", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    }
    app.login("alice", PASSWORD, Some("bearer")).await.assert_problem(429, "throttled");
    let kinds = app.audit_kinds().await;
    assert_eq!(count(&kinds, "login_failed"), 6, "{kinds:?}");
    assert_eq!(count(&kinds, "login_throttled"), 1, "{kinds:?}");
}

#[tokio::test]
async fn logout_revocation_and_logout_all_are_audited() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let one = app.login_bearer("alice", PASSWORD).await;
    let two = app.login_bearer("alice", PASSWORD).await;
    let three = app.login_bearer("alice", PASSWORD).await;
    app.send(app.delete(&format!("/v1/sessions/{}", two.session_id)).bearer(&one.token)).await.assert_status(204);
    app.send(app.post("/v1/logout").bearer(&one.token)).await.assert_status(204);
    app.send(app.post("/v1/logout-all").bearer(&three.token)).await.assert_status(204);
    let kinds = app.audit_kinds().await;
    assert_eq!(count(&kinds, "session_revoked"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "logout"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "all_sessions_revoked"), 1, "{kinds:?}");
}

#[tokio::test]
async fn password_change_is_audited() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.send(
        app.post("/v1/password")
            .bearer(&login.token)
            .json(&json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"})),
    )
    .await
    .assert_status(200);
    let kinds = app.audit_kinds().await;
    assert_eq!(count(&kinds, "password_changed"), 1, "{kinds:?}");
}
