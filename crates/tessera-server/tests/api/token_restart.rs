//! What the token modes keep across a restart: the signing keys (tokens issued before still
//! verify; the JWKS is unchanged), the refresh families (rotation state and reuse detection),
//! and the denylist (a token revoked before the restart stays refused after it).

use time::Duration;

use crate::helpers::{PASSWORD, WithCookies};
use crate::token_helpers::{
    REUSE_GRACE, assert_access_refused, assert_access_works, assert_refresh_refused, spawn_hybrid,
};

#[tokio::test]
async fn signing_keys_survive_a_restart() {
    let mut app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let kids = app.jwks_kids().await;
    app.restart().await;
    assert_eq!(app.jwks_kids().await, kids, "the same key is published, no new one made");
    assert_access_works(&app, &login.access, "a token issued before the restart").await;
    let after = app.login_tokens("alice", PASSWORD).await;
    assert_eq!(
        crate::forge::header_of(&after.access)["kid"],
        crate::forge::header_of(&login.access)["kid"],
        "the same key signs after the restart"
    );
}

#[tokio::test]
async fn refresh_families_survive_a_restart() {
    let mut app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let first = app.refresh_ok(login.refresh()).await;
    app.restart().await;
    // Inside the grace, a retry of the previous token still gets the same successor.
    assert_eq!(app.refresh_ok(login.refresh()).await.refresh(), first.refresh());
    let second = app.refresh_ok(first.refresh()).await;
    assert_eq!(second.sid(), login.sid());
    app.restart().await;
    app.advance(REUSE_GRACE + Duration::seconds(1));
    // Reuse of an old generation is still recognised after a restart.
    assert_refresh_refused(&app, first.refresh(), "the previous token after the grace").await;
    assert_refresh_refused(&app, second.refresh(), "the current token of the revoked family").await;
    assert!(app.audit_kinds().await.iter().any(|k| k == "refresh_reuse_detected"));
}

#[tokio::test]
async fn logged_out_access_token_stays_refused_after_a_restart() {
    let mut app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let other = app.login_tokens("alice", PASSWORD).await;
    app.send(app.post("/v1/logout").bearer(&login.access)).await.assert_status(204);
    app.restart().await;
    assert_access_refused(&app, &login.access, "a logged-out session's token after a restart").await;
    assert_refresh_refused(&app, login.refresh(), "its refresh token").await;
    assert_access_works(&app, &other.access, "another session").await;
}

#[tokio::test]
async fn revoked_access_token_stays_refused_after_a_restart() {
    let mut app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    app.revoke(&login.access, None).await.assert_status(200);
    app.restart().await;
    assert_access_refused(&app, &login.access, "a revoked jti after a restart").await;
    let refreshed = app.refresh_ok(login.refresh()).await;
    assert_access_works(&app, &refreshed.access, "the session itself carries on").await;
}
