//! Login in the token modes (SPEC §2): the bearer answer, the access token's exact header and
//! claims (RFC 9068), its size, every configurable algorithm, and `GET /v1/me` answered from
//! the token — with the session only where the revocation check reads it (allowlist).

use serde_json::Value;

use crate::forge::{claims_of, header_of, split};
use crate::helpers::{PASSWORD, is_b64url, parse_ts, spawn_token_app};
use crate::token_helpers::{ACCESS_TTL, DEFAULT_AUDIENCE, DEFAULT_ISSUER, hybrid_toml, spawn_hybrid, token_toml};

fn keys_of(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap_or_else(|| panic!("an object: {v}")).keys().cloned().collect();
    keys.sort();
    keys
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn hybrid_bearer_login_answers_access_and_refresh_tokens() {
    let app = spawn_hybrid().await;
    let user = app.create_user("alice").await;
    let reply = app.login("alice", PASSWORD, Some("bearer")).await;
    reply.assert_status(200);
    assert_eq!(reply.header("cache-control"), Some("no-store"), "credentials are never cached");
    let body = reply.json();
    assert_eq!(
        keys_of(&body),
        sorted(&["user", "session", "access_token", "token_type", "expires_in", "refresh_token", "transport"]),
        "{body}"
    );
    assert_eq!(body["user"], user);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(keys_of(&body["session"]), sorted(&["id", "expires_at", "idle_expires_at"]), "{body}");
    let session_id = body["session"]["id"].as_str().expect("session.id");
    assert!(is_b64url(session_id, 22), "a 128-bit id in base64url: {session_id}");
    assert!(parse_ts(&body["session"]["expires_at"]) > app.now());
    assert!(parse_ts(&body["session"]["idle_expires_at"]) > app.now());
    let refresh = body["refresh_token"].as_str().expect("refresh_token");
    assert!(!refresh.contains('.'), "the refresh token is opaque, not a JWT: {refresh}");
    assert_ne!(refresh, body["access_token"].as_str().expect("access_token"));
}

#[tokio::test]
async fn jwt_mode_with_refresh_answers_a_session_and_a_refresh_token() {
    let app = spawn_token_app(&token_toml("jwt", "")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    assert!(login.refresh.is_some(), "refresh is on by default in jwt mode: {}", login.body);
    assert_eq!(login.claims()["sid"].as_str(), Some(login.sid()));
    app.refresh_ok(login.refresh()).await;
}

#[tokio::test]
async fn jwt_mode_without_refresh_answers_a_lone_access_token() {
    let app = spawn_token_app(&token_toml("jwt", "[refresh]\nenabled = false\n")).await;
    let user = app.create_user("alice").await;
    let reply = app.login("alice", PASSWORD, Some("bearer")).await;
    reply.assert_status(200);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(
        keys_of(&body),
        sorted(&["user", "session", "access_token", "token_type", "expires_in", "transport"]),
        "{body}"
    );
    assert_eq!(body["session"], Value::Null, "no server session: {body}");
    assert_eq!(body["user"], user);
    let claims = claims_of(body["access_token"].as_str().expect("access_token"));
    assert_eq!(
        keys_of(&claims),
        sorted(&["iss", "sub", "aud", "exp", "iat", "jti"]),
        "no sid without a session: {claims}"
    );
    let me = app.me_bearer(body["access_token"].as_str().expect("access_token")).await;
    me.assert_status(200);
    assert_eq!(me.json()["session"], Value::Null);
    assert_eq!(me.json()["auth"]["mode"], "jwt");
}

#[tokio::test]
async fn access_token_header_is_exactly_alg_typ_kid() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let (header, _, _) = split(&login.access);
    let text = String::from_utf8(crate::forge::unb64u(&header)).expect("UTF-8 header");
    let value: Value = serde_json::from_str(&text).expect("JSON header");
    assert_eq!(keys_of(&value), sorted(&["alg", "typ", "kid"]), "{text}");
    assert_eq!(value["alg"], "EdDSA");
    assert_eq!(value["typ"], "at+jwt");
    let kid = value["kid"].as_str().expect("kid");
    assert!(app.jwks_kids().await.contains(&kid.to_owned()), "the kid {kid} is published in the JWKS");
}

#[tokio::test]
async fn access_token_claims_name_the_user_the_session_and_the_clock() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let claims = login.claims();
    assert_eq!(keys_of(&claims), sorted(&["iss", "sub", "aud", "exp", "iat", "jti", "sid"]), "{claims}");
    assert_eq!(claims["iss"], DEFAULT_ISSUER);
    assert_eq!(claims["aud"], DEFAULT_AUDIENCE);
    assert_eq!(claims["sub"].as_str(), Some(login.user_id.as_str()));
    assert_eq!(claims["sid"].as_str(), Some(login.sid()));
    let now = app.now().unix_timestamp();
    assert_eq!(claims["iat"].as_i64(), Some(now), "iat comes from the server's clock");
    assert_eq!(claims["exp"].as_i64(), Some(now + ACCESS_TTL.whole_seconds()));
    let jti = claims["jti"].as_str().expect("jti");
    assert!(is_b64url(jti, 22), "a 128-bit jti in base64url: {jti}");
    let again = app.login_tokens("alice", PASSWORD).await;
    assert_ne!(again.claims()["jti"], claims["jti"], "every token has its own jti");
    assert_ne!(again.claims()["sid"], claims["sid"], "every login has its own session");
}

#[tokio::test]
async fn eddsa_access_token_with_the_default_issuer_is_under_400_bytes() {
    let app = spawn_hybrid().await;
    // A long username must not inflate the token: it is not in it.
    app.create_user("a-rather-long-username-for-a-test").await;
    let login = app.login_tokens("a-rather-long-username-for-a-test", PASSWORD).await;
    assert!(login.access.len() < 400, "{} bytes: {}", login.access.len(), login.access);
}

#[tokio::test]
async fn custom_issuer_audience_and_ttl_are_used() {
    let extra = "[jwt]\nissuer = \"https://auth.example.test\"\naudience = \"shop\"\naccess_ttl = \"2m\"\n";
    let app = spawn_token_app(&token_toml("hybrid", extra)).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    assert_eq!(login.body["expires_in"], 120);
    let claims = login.claims();
    assert_eq!(claims["iss"], "https://auth.example.test");
    assert_eq!(claims["aud"], "shop");
    assert_eq!(claims["exp"].as_i64(), Some(app.now().unix_timestamp() + 120));
    app.me_bearer(&login.access).await.assert_status(200);
}

#[tokio::test]
async fn every_configurable_algorithm_signs_tokens_the_server_accepts() {
    for alg in ["EdDSA", "ES256", "RS256", "HS256"] {
        let app = spawn_token_app(&token_toml("hybrid", &format!("[jwt]\nalg = \"{alg}\"\n"))).await;
        app.create_user("alice").await;
        let login = app.login_tokens("alice", PASSWORD).await;
        let header = header_of(&login.access);
        assert_eq!(header["alg"], alg, "{alg}: {header}");
        assert_eq!(header["typ"], "at+jwt", "{alg}: {header}");
        let me = app.me_bearer(&login.access).await;
        assert_eq!(me.status.as_u16(), 200, "{alg}: {}", me.text);
        let refreshed = app.refresh_ok(login.refresh()).await;
        assert_eq!(header_of(&refreshed.access)["alg"], alg);
        app.me_bearer(&refreshed.access).await.assert_status(200);
    }
}

#[tokio::test]
async fn me_with_an_access_token_answers_from_the_token_without_a_session() {
    let app = spawn_hybrid().await;
    let user = app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let reply = app.me_bearer(&login.access).await;
    reply.assert_status(200);
    let body = reply.json();
    assert_eq!(keys_of(&body), sorted(&["user", "session", "auth"]), "{body}");
    assert_eq!(body["user"], user);
    assert_eq!(body["session"], Value::Null, "the denylist check never reads the session: {body}");
    assert_eq!(body["auth"]["mode"], "hybrid");
    assert_eq!(body["auth"]["transport"], "bearer");
    assert_eq!(parse_ts(&body["auth"]["expires_at"]).unix_timestamp(), login.exp(), "expires_at is the token's exp");
}

#[tokio::test]
async fn me_in_jwt_mode_says_jwt() {
    let app = spawn_token_app(&token_toml("jwt", "")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let body = app.me_bearer(&login.access).await.json();
    assert_eq!(body["auth"]["mode"], "jwt", "{body}");
    assert_eq!(body["session"], Value::Null, "{body}");
}

#[tokio::test]
async fn me_with_allowlist_check_shows_the_live_session() {
    let app = spawn_token_app(&token_toml("hybrid", "[revocation]\ncheck = \"allowlist\"\n")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let reply = app.me_bearer(&login.access).await;
    reply.assert_status(200);
    let body = reply.json();
    let session = &body["session"];
    assert_eq!(session["id"].as_str(), Some(login.sid()), "{body}");
    assert_eq!(session["current"], true, "{body}");
    assert_eq!(session["user_agent"], crate::helpers::LOGIN_UA, "{body}");
    for field in ["created_at", "last_seen_at", "expires_at"] {
        parse_ts(&session[field]);
    }
    assert_eq!(parse_ts(&body["auth"]["expires_at"]).unix_timestamp(), login.exp());
}

#[tokio::test]
async fn wrong_password_in_token_mode_is_the_one_401() {
    let app = spawn_token_app(&hybrid_toml()).await;
    app.create_user("alice").await;
    let reply = app.login("alice", crate::helpers::WRONG_PASSWORD, Some("bearer")).await;
    reply.assert_401("invalid-credentials");
    assert!(!reply.text.contains("access_token"), "{}", reply.text);
}
