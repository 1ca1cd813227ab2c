//! `POST /v1/introspect` (RFC 7662) and `POST /v1/revoke` (RFC 7009): form-encoded as the
//! RFCs say; introspection only with the admin key and revealing nothing about inactive
//! tokens; revocation answering 200 for any token, known or not.

use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{PASSWORD, WithCookies, parse_ts, spawn_app, spawn_app_with, spawn_token_app};
use crate::token_helpers::{
    ACCESS_TTL, ADMIN_KEY, DEFAULT_AUDIENCE, DEFAULT_ISSUER, LEEWAY, REUSE_GRACE, assert_access_refused,
    assert_access_works, assert_refresh_refused, form, spawn_hybrid, token_toml,
};

fn inactive() -> Value {
    json!({"active": false})
}

#[tokio::test]
async fn introspecting_a_live_access_token_describes_it() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let claims = login.claims();
    let reply = app.introspect(&login.access).await;
    reply.assert_status(200);
    assert!(reply.header("content-type").unwrap_or_default().starts_with("application/json"));
    let body = reply.json();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "access_token", "{body}");
    assert_eq!(body["sub"].as_str(), Some(login.user_id.as_str()), "{body}");
    assert_eq!(body["username"], "alice", "{body}");
    assert_eq!(body["sid"].as_str(), Some(login.sid()), "{body}");
    assert_eq!(body["jti"], claims["jti"], "{body}");
    assert_eq!(body["exp"], claims["exp"], "{body}");
    assert_eq!(body["iat"], claims["iat"], "RFC 7662 §2.2 iat, missing before (#11): {body}");
    assert_eq!(body["iss"], DEFAULT_ISSUER, "{body}");
    assert_eq!(body["aud"], DEFAULT_AUDIENCE, "{body}");
}

#[tokio::test]
async fn introspecting_the_current_refresh_token_describes_it() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let body = app.introspection(login.refresh()).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token", "{body}");
    assert_eq!(body["sub"].as_str(), Some(login.user_id.as_str()), "{body}");
    assert_eq!(body["username"], "alice", "{body}");
    assert_eq!(body["sid"].as_str(), Some(login.sid()), "{body}");
    let session_expiry = parse_ts(&login.body["session"]["expires_at"]).unix_timestamp();
    assert_eq!(body["exp"].as_i64(), Some(session_expiry), "a refresh token lives as long as its family: {body}");
}

#[tokio::test]
async fn introspecting_a_rotated_out_refresh_token_is_inactive() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let next = app.refresh_ok(login.refresh()).await;
    assert_eq!(app.introspection(login.refresh()).await, inactive());
    assert_eq!(app.introspection(next.refresh()).await["active"], true);
    // Introspection is read-only: it neither revoked the family nor consumed the grace.
    app.advance(REUSE_GRACE - Duration::seconds(1));
    assert_eq!(app.refresh_ok(login.refresh()).await.refresh(), next.refresh());
}

#[tokio::test]
async fn introspecting_a_logged_out_access_token_is_inactive() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    app.send(app.post("/v1/logout").bearer(&login.access)).await.assert_status(204);
    assert_eq!(app.introspection(&login.access).await, inactive());
    assert_eq!(app.introspection(login.refresh()).await, inactive());
}

#[tokio::test]
async fn introspecting_an_expired_access_token_is_inactive() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    app.advance(ACCESS_TTL + LEEWAY);
    assert_eq!(app.introspection(&login.access).await, inactive());
}

#[tokio::test]
async fn introspecting_garbage_is_inactive() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let tampered = format!("{}x", login.access);
    for garbage in ["", "garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", tampered.as_str()] {
        assert_eq!(app.introspection(garbage).await, inactive(), "introspecting {garbage:?}");
    }
}

#[tokio::test]
async fn introspection_without_or_with_a_wrong_admin_key_is_401() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let fields = [("token", login.access.as_str())];
    let reply = app.send(form(app.post("/v1/introspect"), &fields)).await;
    reply.assert_401("unauthenticated");
    assert!(!reply.text.contains("active"), "{}", reply.text);
    let almost = format!("{ADMIN_KEY}x");
    for wrong in ["wrong", almost.as_str(), login.access.as_str()] {
        app.send(form(app.post("/v1/introspect").bearer(wrong), &fields)).await.assert_401("unauthenticated");
    }
}

#[tokio::test]
async fn introspection_without_a_configured_admin_key_is_404() {
    let app = spawn_token_app("[auth]\nmode = \"hybrid\"\n").await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let reply =
        app.send(form(app.post("/v1/introspect").bearer("anything"), &[("token", login.access.as_str())])).await;
    let problem = reply.assert_problem(404, "not-found");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("disabled") && d.contains("admin.api_key")));
}

#[tokio::test]
async fn revoke_answers_200_for_unknown_and_garbage_tokens() {
    let app = spawn_hybrid().await;
    for garbage in ["", "garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", &"A".repeat(87)] {
        let reply = app.revoke(garbage, None).await;
        assert_eq!(reply.status.as_u16(), 200, "revoking {garbage:?}: {}", reply.text);
        let reply = app.revoke(garbage, Some("refresh_token")).await;
        assert_eq!(reply.status.as_u16(), 200, "revoking {garbage:?} with a hint: {}", reply.text);
    }
}

#[tokio::test]
async fn revoke_without_a_token_is_400() {
    let app = spawn_hybrid().await;
    let reply = app.send(form(app.post("/v1/revoke"), &[("token_type_hint", "access_token")])).await;
    reply.assert_problem(400, "invalid-request");
    let reply = app.send(app.post("/v1/revoke").header("content-type", "application/x-www-form-urlencoded")).await;
    reply.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn revoke_with_a_json_body_is_415() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let reply = app.send(app.post("/v1/revoke").json(&json!({"token": login.refresh()}))).await;
    reply.assert_problem(415, "unsupported-media-type");
    app.refresh_ok(login.refresh()).await;
}

#[tokio::test]
async fn revoking_the_refresh_token_ends_the_family() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    app.revoke(login.refresh(), Some("refresh_token")).await.assert_status(200);
    assert_refresh_refused(&app, login.refresh(), "a revoked refresh token").await;
    assert_access_refused(&app, &login.access, "the family's access token (denylist)").await;
    assert_eq!(app.introspection(login.refresh()).await, inactive());
    let kinds = app.audit_kinds().await;
    assert!(kinds.iter().any(|k| k == "token_revoked"), "audited: {kinds:?}");
}

#[tokio::test]
async fn revoking_an_access_token_denies_only_that_token() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let sibling = app.refresh_ok(login.refresh()).await;
    app.revoke(&login.access, Some("access_token")).await.assert_status(200);
    assert_access_refused(&app, &login.access, "the revoked token").await;
    assert_eq!(app.introspection(&login.access).await, inactive());
    assert_access_works(&app, &sibling.access, "another access token of the same session").await;
    let next = app.refresh_ok(sibling.refresh()).await;
    assert_access_works(&app, &next.access, "the session carries on").await;
}

#[tokio::test]
async fn revoking_an_access_token_again_is_200_and_it_stays_refused() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    app.revoke(&login.access, None).await.assert_status(200);
    app.revoke(&login.access, None).await.assert_status(200);
    assert_access_refused(&app, &login.access, "a token revoked twice").await;
}

#[tokio::test]
async fn revoking_a_session_token_ends_that_session_only() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let first = app.login_bearer("alice", PASSWORD).await;
    let second = app.login_bearer("alice", PASSWORD).await;
    app.revoke(&first.token, None).await.assert_status(200);
    app.me_bearer(&first.token).await.assert_status(401);
    app.me_bearer(&second.token).await.assert_status(200);
    // Revoked already: unknown now, and unknown tokens get the same 200 (RFC 7009 §2.2).
    app.revoke(&first.token, None).await.assert_status(200);
    app.me_bearer(&second.token).await.assert_status(200);
}

#[tokio::test]
async fn revoke_ignores_a_wrong_token_type_hint() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let first = app.login_tokens("alice", PASSWORD).await;
    let second = app.login_tokens("alice", PASSWORD).await;
    // RFC 7009 §2.1: the hint only speeds up the lookup; a wrong one must not save a token.
    app.revoke(&first.access, Some("refresh_token")).await.assert_status(200);
    assert_access_refused(&app, &first.access, "an access token revoked with a refresh-token hint").await;
    app.revoke(second.refresh(), Some("access_token")).await.assert_status(200);
    assert_refresh_refused(&app, second.refresh(), "a refresh token revoked with an access-token hint").await;
}

#[tokio::test]
async fn revoking_a_token_of_the_jwt_mode_without_refresh_denies_it() {
    let app =
        spawn_token_app(&token_toml("jwt", "[refresh]\nenabled = false\n[revocation]\ncheck = \"denylist\"\n")).await;
    app.create_user("alice").await;
    let first = app.login_tokens("alice", PASSWORD).await;
    let second = app.login_tokens("alice", PASSWORD).await;
    app.revoke(&first.access, None).await.assert_status(200);
    assert_access_refused(&app, &first.access, "the revoked token").await;
    assert_access_works(&app, &second.access, "another token of the user").await;
    let body = app.introspection(&second.access).await;
    assert_eq!(body["active"], true, "{body}");
    assert!(body.get("sid").is_none(), "no session, no sid: {body}");
}

#[tokio::test]
async fn introspecting_a_session_token_does_not_extend_its_idle_life() {
    let toml =
        format!("[auth]\nmode = \"session\"\n[session]\nidle_timeout = \"10m\"\n[admin]\napi_key = \"{ADMIN_KEY}\"\n");
    let app = spawn_app_with(&toml).await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.advance(Duration::minutes(6));
    assert_eq!(app.introspection(&login.token).await["active"], true);
    // Looking at it was not using it: 12 minutes after its last use the session is gone.
    app.advance(Duration::minutes(6));
    assert_eq!(app.introspection(&login.token).await, inactive());
    app.me_bearer(&login.token).await.assert_invalid_token();
}
