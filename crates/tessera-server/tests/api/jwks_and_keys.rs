//! Signing keys from the outside: the JWKS (RFC 7517: public members only, cacheable for
//! `jwt.jwks_max_age`), rotation with `tessera keys rotate` followed by a running server
//! without a restart (publish first, sign after `jwks_max_age`, keep the old key while its
//! tokens live), `tessera keys list`, and private keys sealed at rest with `jwt.seal_key`.

use aws_lc_rs::signature::Ed25519KeyPair;
use serde_json::Value;
use tessera_core::store::StoredKey;
use time::Duration;

use crate::forge::{b64u, header_of, unb64u};
use crate::helpers::{PASSWORD, TestApp, spawn_token_app};
use crate::token_helpers::{ACCESS_TTL, KEY_RELOAD, LEEWAY, TokenLogin, assert_access_works, spawn_hybrid, token_toml};

const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

fn assert_public_only(jwk: &Value) {
    for member in PRIVATE_MEMBERS {
        assert!(jwk.get(member).is_none(), "no private member {member:?} in a published key: {jwk}");
    }
    for member in ["kid", "alg", "use", "kty"] {
        assert!(jwk[member].is_string(), "{member} in {jwk}");
    }
    assert_eq!(jwk["use"], "sig", "{jwk}");
}

async fn stored_keys(app: &TestApp) -> Vec<StoredKey> {
    let backend = app.open_store().await;
    let keys = backend.store().keys().await.unwrap_or_else(|e| panic!("keys: {e:?}"));
    backend.close().await;
    keys
}

#[tokio::test]
async fn jwks_publishes_the_public_key_with_cache_control() {
    let app = spawn_hybrid().await;
    let reply = app.send(app.get("/.well-known/jwks.json")).await;
    reply.assert_status(200);
    assert_eq!(reply.header("cache-control"), Some("public, max-age=60"));
    assert!(reply.header("content-type").unwrap_or_default().starts_with("application/json"), "{:?}", reply.headers);
    let body = reply.json();
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "only `keys`: {body}");
    let keys = body["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{body}");
    let jwk = &keys[0];
    assert_public_only(jwk);
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(unb64u(jwk["x"].as_str().expect("x")).len(), 32, "an Ed25519 public key is 32 bytes: {jwk}");
}

#[tokio::test]
async fn jwks_for_es256_and_rs256_carry_their_public_parameters_only() {
    for (alg, kty) in [("ES256", "EC"), ("RS256", "RSA")] {
        let app = spawn_token_app(&token_toml("hybrid", &format!("[jwt]\nalg = \"{alg}\"\n"))).await;
        let jwks = app.jwks().await;
        let keys = jwks["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 1, "{alg}: {jwks}");
        let jwk = &keys[0];
        assert_public_only(jwk);
        assert_eq!(jwk["alg"], alg, "{jwk}");
        assert_eq!(jwk["kty"], kty, "{jwk}");
        match alg {
            "ES256" => {
                assert_eq!(jwk["crv"], "P-256", "{jwk}");
                assert_eq!(unb64u(jwk["x"].as_str().expect("x")).len(), 32);
                assert_eq!(unb64u(jwk["y"].as_str().expect("y")).len(), 32);
            }
            _ => {
                assert!(unb64u(jwk["n"].as_str().expect("n")).len() >= 256, "RSA keys of 2048 bits or more: {jwk}");
                assert_eq!(unb64u(jwk["e"].as_str().expect("e")), [1, 0, 1], "{jwk}");
            }
        }
        app.create_user("alice").await;
        let login = app.login_tokens("alice", PASSWORD).await;
        assert_eq!(header_of(&login.access)["kid"], jwk["kid"], "{alg}: the token's kid is the published one");
    }
}

#[tokio::test]
async fn hs256_jwks_publishes_no_keys() {
    let app = spawn_token_app(&token_toml("hybrid", "[jwt]\nalg = \"HS256\"\n")).await;
    let reply = app.send(app.get("/.well-known/jwks.json")).await;
    reply.assert_status(200);
    assert_eq!(reply.json(), serde_json::json!({"keys": []}), "a shared secret is never published");
}

#[tokio::test]
async fn jwks_max_age_follows_the_configuration() {
    let app = spawn_token_app(&token_toml("hybrid", "[jwt]\njwks_max_age = \"2m\"\n")).await;
    let reply = app.send(app.get("/.well-known/jwks.json")).await;
    reply.assert_status(200);
    assert_eq!(reply.header("cache-control"), Some("public, max-age=120"));
}

#[tokio::test]
async fn every_access_token_kid_is_in_the_jwks() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let kids = app.jwks_kids().await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let refreshed = app.refresh_ok(login.refresh()).await;
    for token in [&login.access, &refreshed.access] {
        let kid = header_of(token)["kid"].as_str().expect("kid").to_owned();
        assert!(kids.contains(&kid), "{kid} in {kids:?}");
    }
}

/// Refreshes until the access token is signed by `kid` (the server follows the store every
/// 5 s); returns the login that carries it.
async fn refresh_until_signed_by(app: &TestApp, mut current: TokenLogin, kid: &str) -> TokenLogin {
    let deadline = std::time::Instant::now() + KEY_RELOAD;
    loop {
        current = app.refresh_ok(current.refresh()).await;
        if header_of(&current.access)["kid"] == kid {
            return current;
        }
        assert!(std::time::Instant::now() < deadline, "tokens are signed by {kid} within {KEY_RELOAD:?}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn jwks_becomes(app: &TestApp, mut expected: Vec<String>) -> bool {
    expected.sort();
    app.eventually(KEY_RELOAD, || async {
        let mut kids = app.jwks_kids().await;
        kids.sort();
        kids == expected
    })
    .await
}

#[tokio::test]
async fn key_rotation_publishes_first_signs_after_jwks_max_age_and_keeps_the_old_key_while_its_tokens_live() {
    let app = spawn_hybrid().await;
    app.create_user("alice").await;
    let before = app.login_tokens("alice", PASSWORD).await;
    let old_kid = header_of(&before.access)["kid"].as_str().expect("kid").to_owned();
    assert_eq!(app.jwks_kids().await, std::slice::from_ref(&old_kid));

    app.cli_ok(&["keys", "rotate"]).await;
    let keys = stored_keys(&app).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let new = keys.iter().find(|k| k.kid != old_kid).expect("the new key").clone();
    let old = keys.iter().find(|k| k.kid == old_kid).expect("the old key").clone();
    assert_eq!(old.retires_at, Some(new.activates_at), "the old key retires when the new one starts signing");

    // Published at once (within a reload) ...
    assert!(jwks_becomes(&app, vec![old_kid.clone(), new.kid.clone()]).await, "the JWKS lists both keys");
    // ... but not signing before verifiers had `jwks_max_age` to fetch it.
    assert!(app.now() < new.activates_at);
    let still_old = app.refresh_ok(before.refresh()).await;
    assert_eq!(
        header_of(&still_old.access)["kid"],
        old_kid.as_str(),
        "the old key signs until jwks_max_age has passed"
    );

    app.advance(new.activates_at - app.now() + Duration::seconds(1));
    let rotated = refresh_until_signed_by(&app, still_old.clone(), &new.kid).await;
    assert_access_works(&app, &rotated.access, "a token signed by the new key").await;
    assert_access_works(&app, &still_old.access, "a token signed by the retired key, still within its lifetime").await;
    assert_eq!(app.jwks().await["keys"].as_array().map(Vec::len), Some(2), "the retired key stays published");

    // Once every token the old key signed has expired, it is no longer published.
    let retired = old.retires_at.expect("retired");
    let gone_at = retired + ACCESS_TTL + LEEWAY + Duration::seconds(1);
    app.advance(gone_at - app.now());
    assert!(jwks_becomes(&app, vec![new.kid.clone()]).await, "the retired key is dropped after its tokens expired");
    let fresh = app.refresh_ok(rotated.refresh()).await;
    assert_eq!(header_of(&fresh.access)["kid"], new.kid.as_str());
    assert_access_works(&app, &fresh.access, "after the old key is gone").await;
}

#[tokio::test]
async fn keys_list_prints_one_line_per_key() {
    let app = spawn_hybrid().await;
    let lines = |out: &std::process::Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let listed = lines(&app.cli_ok(&["keys", "list"]).await);
    let kids = app.jwks_kids().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].contains(&kids[0]), "{listed:?} names {kids:?}");
    app.cli_ok(&["keys", "rotate"]).await;
    let listed = lines(&app.cli_ok(&["keys", "list"]).await);
    assert_eq!(listed.len(), 2, "{listed:?}");
    for key in stored_keys(&app).await {
        assert_eq!(listed.iter().filter(|l| l.contains(&key.kid)).count(), 1, "{} on one line: {listed:?}", key.kid);
    }
}

fn sealed_toml(seal: u8) -> String {
    token_toml("hybrid", &format!("[jwt]\nseal_key = \"{}\"\n", b64u(&[seal; 32])))
}

#[tokio::test]
async fn sealed_private_keys_are_not_stored_in_the_clear() {
    let app = spawn_token_app(&sealed_toml(7)).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    assert_access_works(&app, &login.access, "a token signed by a sealed key").await;
    let keys = stored_keys(&app).await;
    assert_eq!(keys.len(), 1);
    assert!(keys[0].sealed, "{:?}", keys[0].kid);
    assert!(Ed25519KeyPair::from_pkcs8(&keys[0].private).is_err(), "the stored bytes are not a usable private key");
}

#[tokio::test]
async fn restart_with_the_same_seal_key_keeps_tokens_valid() {
    let mut app = spawn_token_app(&sealed_toml(7)).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let kids = app.jwks_kids().await;
    app.try_restart_with(&sealed_toml(7)).await.unwrap_or_else(|e| panic!("restart with the same seal key: {e:?}"));
    assert_eq!(app.jwks_kids().await, kids);
    assert_access_works(&app, &login.access, "a token issued before the restart").await;
    app.refresh_ok(login.refresh()).await;
}

#[tokio::test]
async fn restart_with_a_different_seal_key_fails_to_start() {
    let mut app = spawn_token_app(&sealed_toml(7)).await;
    app.create_user("alice").await;
    app.login_tokens("alice", PASSWORD).await;
    let result = app.try_restart_with(&sealed_toml(8)).await;
    assert!(result.is_err(), "a server that cannot open its keys must not start (nor mint new ones)");
    let keys = stored_keys(&app).await;
    assert_eq!(
        keys.len(),
        1,
        "no key was created in the failed start: {:?}",
        keys.iter().map(|k| &k.kid).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn restart_without_the_seal_key_fails_to_start() {
    let mut app = spawn_token_app(&sealed_toml(7)).await;
    let result = app.try_restart_with(&token_toml("hybrid", "")).await;
    assert!(result.is_err(), "sealed keys and no seal key: the server must not start");
}
