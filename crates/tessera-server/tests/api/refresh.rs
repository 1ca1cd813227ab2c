//! Refresh rotation and reuse detection (SPEC §3): every use rotates; a retry of the previous
//! token inside `refresh.reuse_grace` gets the very same successor; anything older, or later,
//! revokes the whole family and is audited; of N concurrent refreshes exactly one family
//! continues; the family dies with the session's lifetime.

use std::sync::Arc;

use serde_json::json;
use time::Duration;
use tokio::sync::Barrier;

use crate::helpers::{PASSWORD, spawn_app, spawn_token_app};
use crate::token_helpers::{
    REUSE_GRACE, assert_access_refused, assert_access_works, assert_refresh_refused, spawn_hybrid, token_toml,
};

#[tokio::test]
async fn refresh_rotates_both_tokens_and_keeps_the_session() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    app.advance(Duration::seconds(1));
    let reply = app.refresh_bearer(login.refresh()).await;
    reply.assert_status(200);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let first = crate::token_helpers::TokenLogin::from_reply(&reply);
    let mut keys: Vec<&String> = first.body.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "refresh_token", "session", "token_type", "transport", "user"],
        "{}",
        first.body
    );
    assert_eq!(first.sid(), login.sid(), "the same session");
    assert_eq!(first.user_id, login.user_id);
    assert_ne!(first.refresh(), login.refresh(), "a new refresh token");
    assert_ne!(first.access, login.access, "a new access token");
    assert_eq!(first.claims()["sid"].as_str(), Some(login.sid()));
    assert_eq!(first.claims()["iat"].as_i64(), Some(app.now().unix_timestamp()));
    assert_access_works(&app, &first.access, "the refreshed access token").await;
    let second = app.refresh_ok(first.refresh()).await;
    assert_ne!(second.refresh(), first.refresh(), "rotation on every use");
    assert_eq!(second.sid(), login.sid());
}

#[tokio::test]
async fn previous_refresh_token_within_grace_gets_the_same_successor() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let first = app.refresh_ok(login.refresh()).await;
    app.advance(REUSE_GRACE - Duration::seconds(1));
    let retry = app.refresh_ok(login.refresh()).await;
    assert_eq!(retry.refresh(), first.refresh(), "a retry gets the successor already issued");
    assert_eq!(retry.access, first.access, "EdDSA is deterministic: the same access token, byte for byte");
    assert_eq!(retry.sid(), first.sid());
    // The family is intact: the successor rotates normally.
    let next = app.refresh_ok(first.refresh()).await;
    assert_ne!(next.refresh(), first.refresh());
    assert_access_works(&app, &next.access, "after a retry").await;
    assert!(!app.audit_kinds().await.iter().any(|k| k == "refresh_reuse_detected"), "a retry is not reuse");
}

/// Issue 11 #9: with `reuse_grace = "0s"` a replay in the same instant as the rotation (one
/// second, as timestamps were kept) passed as a retry and got the successor. A zero grace now
/// admits no replay at all: the replay is reuse and ends the family.
#[tokio::test]
async fn with_a_zero_grace_a_replay_in_the_same_instant_is_reuse() {
    let app = spawn_token_app(&token_toml("hybrid", "[refresh]\nreuse_grace = \"0s\"\n")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let current = app.refresh_ok(login.refresh()).await;
    assert_refresh_refused(&app, login.refresh(), "a replay of the previous token, zero grace, same instant").await;
    assert_refresh_refused(&app, current.refresh(), "the current token of a family caught reusing").await;
    assert!(app.audit_kinds().await.iter().any(|k| k == "refresh_reuse_detected"), "the reuse is audited");
}

#[tokio::test]
async fn previous_refresh_token_after_grace_revokes_the_family() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let current = app.refresh_ok(login.refresh()).await;
    let bystander = app.login_tokens("alice", PASSWORD).await;
    app.advance(REUSE_GRACE + Duration::seconds(1));
    assert_refresh_refused(&app, login.refresh(), "the previous token after the grace").await;
    assert_refresh_refused(&app, current.refresh(), "the current token of a family caught reusing").await;
    assert_access_refused(&app, &current.access, "the family's access token (denylist)").await;
    assert_access_refused(&app, &login.access, "the family's first access token (denylist)").await;
    // Only that family: the user's other session is untouched.
    assert_access_works(&app, &bystander.access, "another session of the user").await;
    app.refresh_ok(bystander.refresh()).await;
    let kinds = app.audit_kinds().await;
    assert!(kinds.iter().any(|k| k == "refresh_reuse_detected"), "audited: {kinds:?}");
}

#[tokio::test]
async fn reuse_with_allowlist_check_refuses_the_familys_access_tokens() {
    let app = spawn_token_app(&token_toml("hybrid", "[revocation]\ncheck = \"allowlist\"\n")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let current = app.refresh_ok(login.refresh()).await;
    app.advance(REUSE_GRACE + Duration::seconds(1));
    assert_refresh_refused(&app, login.refresh(), "reuse after the grace").await;
    assert_refresh_refused(&app, current.refresh(), "the current token").await;
    assert_access_refused(&app, &current.access, "the family's access token (allowlist)").await;
}

#[tokio::test]
async fn reuse_with_no_revocation_check_leaves_access_tokens_to_expire() {
    let app = spawn_token_app(&token_toml("hybrid", "[revocation]\ncheck = \"none\"\n")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let current = app.refresh_ok(login.refresh()).await;
    app.advance(REUSE_GRACE + Duration::seconds(1));
    assert_refresh_refused(&app, login.refresh(), "reuse after the grace").await;
    assert_refresh_refused(&app, current.refresh(), "the current token").await;
    assert_access_works(&app, &current.access, "no revocation check: the access token lives on").await;
    assert!(app.audit_kinds().await.iter().any(|k| k == "refresh_reuse_detected"));
}

#[tokio::test]
async fn refresh_token_two_generations_old_revokes_the_family_even_within_grace() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let first = app.refresh_ok(login.refresh()).await;
    let second = app.refresh_ok(first.refresh()).await;
    assert_refresh_refused(&app, login.refresh(), "a token two generations old").await;
    assert_refresh_refused(&app, second.refresh(), "the current token").await;
    assert_access_refused(&app, &second.access, "the family's newest access token").await;
    let kinds = app.audit_kinds().await;
    assert!(kinds.iter().any(|k| k == "refresh_reuse_detected"), "audited: {kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_token_continue_exactly_one_family() {
    const N: usize = 16;
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let barrier = Arc::new(Barrier::new(N));
    let url = app.url("/v1/refresh");
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (client, url, barrier) = (app.client.clone(), url.clone(), barrier.clone());
        let body = json!({ "refresh_token": login.refresh() });
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let resp =
                client.post(url).header("tessera-transport", "bearer").json(&body).send().await.expect("an answer");
            crate::helpers::Reply::from(resp).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    for a in &answers {
        // A loser of the race is a retry inside the grace: it gets the same successor.
        assert_eq!(a.status.as_u16(), 200, "every concurrent refresh succeeds: {} {}", a.status, a.text);
    }
    let successors: Vec<crate::token_helpers::TokenLogin> =
        answers.iter().map(crate::token_helpers::TokenLogin::from_reply).collect();
    let winner = &successors[0];
    for s in &successors {
        assert_eq!(s.refresh(), winner.refresh(), "exactly one family continues");
        assert_eq!(s.access, winner.access, "and every answer carries its access token");
    }
    let next = app.refresh_ok(winner.refresh()).await;
    assert_access_works(&app, &next.access, "the surviving family").await;
    assert!(!app.audit_kinds().await.iter().any(|k| k == "refresh_reuse_detected"), "a race is not reuse");
}

#[tokio::test]
async fn refresh_after_refresh_ttl_is_refused() {
    let app = spawn_token_app(&token_toml("hybrid", "[refresh]\nttl = \"1h\"\n")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    app.advance(Duration::minutes(59));
    let alive = app.refresh_ok(login.refresh()).await;
    app.advance(Duration::minutes(1) + Duration::seconds(1));
    assert_refresh_refused(&app, alive.refresh(), "a refresh after refresh.ttl").await;
}

#[tokio::test]
async fn refresh_after_session_absolute_timeout_is_refused() {
    let app = spawn_token_app(&token_toml("hybrid", "[session]\nabsolute_timeout = \"2h\"\n")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    app.advance(Duration::minutes(119));
    let alive = app.refresh_ok(login.refresh()).await;
    assert!(
        crate::helpers::parse_ts(&alive.body["session"]["expires_at"]) <= app.now() + Duration::minutes(1),
        "rotation does not extend the absolute lifetime: {}",
        alive.body
    );
    app.advance(Duration::minutes(1) + Duration::seconds(1));
    assert_refresh_refused(&app, alive.refresh(), "a refresh after the absolute timeout").await;
}

/// Issue 11 #20: with `absolute_timeout = 6s` a hybrid access token (5 min `exp`) was still
/// accepted at 7 s — its `exp` plus `jwt.leeway` reached past the session's end. Now `exp` is
/// capped at the session's absolute end, at login and at every refresh, and the leeway does
/// not lengthen it.
#[tokio::test]
async fn an_access_token_never_outlives_its_sessions_absolute_timeout() {
    let app = spawn_token_app(&token_toml("hybrid", "[session]\nabsolute_timeout = \"6s\"\n")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let session_end = crate::helpers::parse_ts(&login.body["session"]["expires_at"]).unix_timestamp();
    assert!(login.exp() <= session_end, "exp {} is capped at the session's end {session_end}", login.exp());
    app.advance(Duration::seconds(3));
    let refreshed = app.refresh_ok(login.refresh()).await;
    assert!(refreshed.exp() <= session_end, "a refreshed exp {} stays within {session_end}", refreshed.exp());
    app.advance(Duration::seconds(2));
    assert_access_works(&app, &refreshed.access, "a second before the session's end").await;
    app.advance(Duration::seconds(1));
    assert_access_refused(&app, &login.access, "the first token at the session's absolute end").await;
    assert_access_refused(&app, &refreshed.access, "the refreshed token at the session's absolute end").await;
    app.advance(Duration::seconds(1));
    assert_access_refused(&app, &refreshed.access, "at 7 s, where the leeway used to reach").await;
}

#[tokio::test]
async fn unknown_and_garbage_refresh_tokens_are_refused() {
    use tessera_core::session::{OpaqueToken, TokenKind};
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let user = tessera_core::UserId::parse(&login.user_id).expect("user id");
    let sid = tessera_core::SessionId::parse(login.sid()).expect("sid");
    // The right shape and kind, naming alice's real session, with a secret nobody issued.
    let forged = OpaqueToken::generate(TokenKind::Refresh, user, sid).encode();
    let mut flipped = login.refresh().to_owned().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ASCII");
    for garbage in ["", "x", "not-a-refresh-token", "....", forged.as_str(), flipped.as_str(), &login.access] {
        assert_refresh_refused(&app, garbage, &format!("refresh token {garbage:?}")).await;
    }
    app.refresh_ok(login.refresh()).await;
}

#[tokio::test]
async fn refresh_in_session_mode_is_404() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let reply = app.refresh_bearer(&login.token).await;
    reply.assert_problem(404, "not-found");
}
