//! Attacks on the access token over HTTP (SPEC §3, RFC 8725): each forged or mangled token is
//! presented to `GET /v1/me` and must be refused with 401 and
//! `WWW-Authenticate: Bearer error="invalid_token"`.
//!
//! Where the attack is about what a token *says* (claims, header members, `kid`), the token is
//! signed with the server's own private key, read from its data directory — so the refusal is
//! for the flaw under test, never merely for a bad signature. The two positive controls at the
//! top prove that this forger's honest tokens are accepted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::forge::{
    ForeignEd25519, ServerKey, b64_standard, b64u, compact, hs256, split, unb64u, with_payload, with_signature,
};
use crate::helpers::{PASSWORD, TestApp, spawn_token_app};
use crate::token_helpers::{
    LEEWAY, TokenLogin, assert_access_refused, assert_access_works, assert_refresh_refused, spawn_hybrid, token_toml,
};

/// A hybrid server, alice logged in, bob's id to impersonate, and the server's signing key.
struct Target {
    app: TestApp,
    login: TokenLogin,
    bob: String,
    key: ServerKey,
}

impl Target {
    async fn new() -> Target {
        let app = spawn_hybrid().await;
        app.create_user("alice").await;
        let bob = app.create_user("bob").await["id"].as_str().expect("bob's id").to_owned();
        let login = app.login_tokens("alice", PASSWORD).await;
        let key = ServerKey::from_store(&app).await;
        Target { app, login, bob, key }
    }

    /// Alice's claims with a new `jti`: what the server would sign for her now.
    fn honest_claims(&self) -> Value {
        let mut claims = self.login.claims();
        claims["jti"] = json!(tessera_core::id::TokenId::generate().to_string());
        claims
    }

    /// Honest claims with `member` set to `value` (or removed, for `Value::Null`).
    fn claims_with(&self, member: &str, value: Value) -> Value {
        let mut claims = self.honest_claims();
        let map = claims.as_object_mut().expect("claims object");
        if value.is_null() {
            map.remove(member);
        } else {
            map.insert(member.to_owned(), value);
        }
        claims
    }

    fn header_with(&self, alg: &str, kid: &str) -> String {
        format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"{kid}"}}"#)
    }

    async fn refused(&self, token: &str, what: &str) {
        assert_access_refused(&self.app, token, what).await;
    }

    /// The server still serves alice's real token: an attack did not break anything.
    async fn still_serving(&self) {
        assert_access_works(&self.app, &self.login.access, "the genuine token after the attack").await;
    }
}

// Positive controls.

#[tokio::test]
async fn control_token_forged_with_the_servers_key_and_honest_claims_is_accepted() {
    let t = Target::new().await;
    let token = t.key.sign_claims(&t.honest_claims());
    let me = t.app.me_bearer(&token).await;
    me.assert_status(200);
    assert_eq!(me.json()["user"]["username"], "alice");
}

#[tokio::test]
async fn control_re_signing_a_real_token_with_the_stored_key_reproduces_it() {
    let t = Target::new().await;
    let (h, p, _) = split(&t.login.access);
    let header = String::from_utf8(unb64u(&h)).expect("UTF-8");
    let payload = String::from_utf8(unb64u(&p)).expect("UTF-8");
    assert_eq!(
        t.key.sign(&header, &payload),
        t.login.access,
        "Ed25519 is deterministic: the forger holds the real key"
    );
}

// alg: none (RFC 8725 §2.1).

#[tokio::test]
async fn alg_none_with_an_empty_signature_is_rejected_in_every_casing() {
    let t = Target::new().await;
    let claims = t.claims_with("sub", json!(t.bob));
    for none in ["none", "None", "NONE", "nOnE"] {
        let token = compact(&t.header_with(none, &t.key.kid), &claims.to_string(), b"");
        assert!(token.ends_with('.'), "{token}");
        t.refused(&token, &format!("alg {none:?}, empty signature")).await;
    }
    t.still_serving().await;
}

#[tokio::test]
async fn alg_none_with_a_junk_signature_is_rejected_in_every_casing() {
    let t = Target::new().await;
    let claims = t.honest_claims();
    for none in ["none", "None", "NONE"] {
        let token = compact(&t.header_with(none, &t.key.kid), &claims.to_string(), b"junk signature bytes");
        t.refused(&token, &format!("alg {none:?}, junk signature")).await;
    }
}

#[tokio::test]
async fn alg_none_signed_with_the_servers_key_is_rejected() {
    // Even a valid Ed25519 signature does not make a token that names `none` acceptable: the
    // algorithm comes from configuration and must match exactly.
    let t = Target::new().await;
    let token = t.key.sign(&t.header_with("none", &t.key.kid), &t.honest_claims().to_string());
    t.refused(&token, "alg none with a real signature").await;
}

// Algorithm confusion (RFC 8725 §2.1, §3.1): HS256 keyed with our public key.

#[tokio::test]
async fn hs256_signed_with_the_servers_public_key_bytes_is_rejected() {
    let t = Target::new().await;
    let jwks = t.app.jwks().await;
    let x = jwks["keys"][0]["x"].as_str().expect("x").to_owned();
    let header = t.header_with("HS256", &t.key.kid);
    let payload = t.claims_with("sub", json!(t.bob)).to_string();
    for (what, key) in [("raw public key bytes", unb64u(&x)), ("the x member as text", x.clone().into_bytes())] {
        t.refused(&hs256(&key, &header, &payload), &format!("HS256 keyed with {what}")).await;
    }
    t.still_serving().await;
}

#[tokio::test]
async fn hs256_signed_with_the_jwks_json_is_rejected() {
    let t = Target::new().await;
    let raw = t.app.send(t.app.get("/.well-known/jwks.json")).await.text;
    let jwk = t.app.jwks().await["keys"][0].to_string();
    let header = t.header_with("HS256", &t.key.kid);
    let payload = t.honest_claims().to_string();
    for (what, key) in [("the JWKS document", raw), ("the JWK", jwk)] {
        t.refused(&hs256(key.as_bytes(), &header, &payload), &format!("HS256 keyed with {what}")).await;
    }
}

// A token must never choose its own key (RFC 8725 §3.10).

fn foreign_header(alg_kid: (&str, &str), member: &str, value: &Value) -> String {
    let mut header = json!({"alg": alg_kid.0, "typ": "at+jwt", "kid": alg_kid.1});
    header[member] = value.clone();
    header.to_string()
}

#[tokio::test]
async fn token_signed_by_a_foreign_key_embedded_as_jwk_is_rejected() {
    let t = Target::new().await;
    let attacker = ForeignEd25519::generate();
    let payload = t.claims_with("sub", json!(t.bob)).to_string();
    for kid in [attacker.kid.as_str(), t.key.kid.as_str()] {
        let token = attacker.sign(&foreign_header(("EdDSA", kid), "jwk", &attacker.public_jwk()), &payload);
        assert!(attacker.verifies(&token), "the forged token is genuinely signed by the embedded key");
        t.refused(&token, &format!("embedded jwk, kid {kid}")).await;
    }
    t.still_serving().await;
}

/// A server the attacker controls, serving their JWKS; counts the connections it gets.
async fn attacker_server(jwks: Value) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = jwks.to_string();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close";
                let answer = format!("{head}\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (base, hits)
}

async fn key_url_member_is_never_followed(member: &str) {
    let t = Target::new().await;
    let attacker = ForeignEd25519::generate();
    let (base, hits) = attacker_server(json!({"keys": [attacker.public_jwk()]})).await;
    let url = json!(format!("{base}/jwks.json"));
    let payload = t.claims_with("sub", json!(t.bob)).to_string();
    for kid in [attacker.kid.as_str(), t.key.kid.as_str()] {
        let token = attacker.sign(&foreign_header(("EdDSA", kid), member, &url), &payload);
        t.refused(&token, &format!("{member} pointing at the attacker, kid {kid}")).await;
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the server never fetched the {member} URL");
    t.still_serving().await;
}

#[tokio::test]
async fn token_naming_a_jku_url_is_rejected_and_the_url_never_fetched() {
    key_url_member_is_never_followed("jku").await;
}

#[tokio::test]
async fn token_naming_an_x5u_url_is_rejected_and_the_url_never_fetched() {
    key_url_member_is_never_followed("x5u").await;
}

#[tokio::test]
async fn token_carrying_an_x5c_chain_is_rejected() {
    let t = Target::new().await;
    let attacker = ForeignEd25519::generate();
    // Not a real certificate: an `x5c` member of any content must be refused, never parsed.
    let chain = json!([b64_standard(&[0x30u8; 300])]);
    let payload = t.honest_claims().to_string();
    let token = attacker.sign(&foreign_header(("EdDSA", &attacker.kid), "x5c", &chain), &payload);
    t.refused(&token, "x5c, foreign key").await;
    // With our own key and kid, the member alone is reason enough.
    let token = t.key.sign(&foreign_header(("EdDSA", &t.key.kid), "x5c", &chain), &payload);
    t.refused(&token, "x5c, our own key").await;
}

// `kid` selects among our own keys only.

#[tokio::test]
async fn kid_path_traversal_is_rejected() {
    let t = Target::new().await;
    for kid in ["../../etc/passwd", "/dev/null", "../../../../../../dev/null"] {
        let token = t.key.sign(&t.header_with("EdDSA", kid), &t.honest_claims().to_string());
        t.refused(&token, &format!("kid {kid:?}")).await;
    }
    t.still_serving().await;
}

#[tokio::test]
async fn kid_sql_injection_is_rejected() {
    let t = Target::new().await;
    for kid in ["' OR 1=1 --", "x' UNION SELECT private FROM keys --"] {
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}).to_string();
        let token = t.key.sign(&header, &t.honest_claims().to_string());
        t.refused(&token, &format!("kid {kid:?}")).await;
    }
    t.still_serving().await;
}

#[tokio::test]
async fn unknown_kid_is_rejected() {
    let t = Target::new().await;
    let unknown = b64u(&[9u8; 8]);
    assert_ne!(unknown, t.key.kid);
    for kid in [unknown.as_str(), ""] {
        let token = t.key.sign(&t.header_with("EdDSA", kid), &t.honest_claims().to_string());
        t.refused(&token, &format!("kid {kid:?}")).await;
    }
}

// Signature and encoding tampering.

#[tokio::test]
async fn stripped_signature_is_rejected() {
    let t = Target::new().await;
    let token = with_signature(&t.login.access, "");
    assert!(token.ends_with('.'));
    t.refused(&token, "header.payload.").await;
    let (h, p, _) = split(&t.login.access);
    t.refused(&format!("{h}.{p}"), "header.payload").await;
}

#[tokio::test]
async fn truncated_signature_is_rejected() {
    let t = Target::new().await;
    let (_, _, s) = split(&t.login.access);
    for cut in [1, 4, s.len() / 2] {
        t.refused(&with_signature(&t.login.access, &s[..s.len() - cut]), &format!("signature cut by {cut}")).await;
    }
    t.refused(&t.login.access[..t.login.access.len() - 1], "token cut by one character").await;
}

#[tokio::test]
async fn flipped_signature_bit_is_rejected() {
    let t = Target::new().await;
    let (_, _, s) = split(&t.login.access);
    let signature = unb64u(&s);
    for (byte, bit) in [(0usize, 0u8), (31, 7), (signature.len() - 1, 0)] {
        let mut flipped = signature.clone();
        flipped[byte] ^= 1 << bit;
        t.refused(&with_signature(&t.login.access, &b64u(&flipped)), &format!("bit {bit} of byte {byte} flipped"))
            .await;
    }
}

#[tokio::test]
async fn altered_payload_under_the_original_signature_is_rejected() {
    let t = Target::new().await;
    let mut claims = t.login.claims();
    claims["sub"] = json!(t.bob);
    t.refused(&with_payload(&t.login.access, &claims), "sub changed to bob").await;
    let mut claims = t.login.claims();
    claims["exp"] = json!(claims["exp"].as_i64().expect("exp") + 86_400);
    t.refused(&with_payload(&t.login.access, &claims), "exp extended by a day").await;
    t.still_serving().await;
}

#[tokio::test]
async fn base64_with_padding_is_rejected() {
    let t = Target::new().await;
    let (h, p, s) = split(&t.login.access);
    let pad = |part: &str| format!("{part}{}", "=".repeat((4 - part.len() % 4) % 4));
    assert_ne!(pad(&s), s, "a 64-byte signature needs padding in padded base64");
    t.refused(&format!("{h}.{p}.{}", pad(&s)), "padded signature").await;
    if pad(&p) != p {
        t.refused(&format!("{h}.{}.{s}", pad(&p)), "padded payload").await;
    }
    if pad(&h) != h {
        t.refused(&format!("{}.{p}.{s}", pad(&h)), "padded header").await;
    }
    t.refused(&format!("{h}.{p}.{s}=="), "extra padding").await;
}

#[tokio::test]
async fn base64_with_the_standard_alphabet_is_rejected() {
    let t = Target::new().await;
    // A valid token whose base64url has `-` or `_` somewhere (jti is random; try until so).
    let token = (0..200)
        .map(|_| t.key.sign_claims(&t.honest_claims()))
        .find(|tok| tok.contains('-') || tok.contains('_'))
        .expect("a token with - or _ within 200 tries");
    assert_access_works(&t.app, &token, "the forged token in canonical base64url").await;
    let standard = token.replace('-', "+").replace('_', "/");
    assert_ne!(standard, token);
    t.refused(&standard, "+ and / instead of - and _").await;
}

// Claims.

#[tokio::test]
async fn access_token_is_accepted_until_exp_and_the_leeway_does_not_lengthen_it() {
    let t = Target::new().await;
    let exp = t.login.exp();
    t.app.advance(Duration::seconds(exp - 1 - t.app.now().unix_timestamp()));
    assert_access_works(&t.app, &t.login.access, "one second before exp").await;
    t.app.advance(Duration::seconds(1));
    t.refused(&t.login.access, "at exp: the leeway is for iat, not for a lifetime the server decided").await;
    t.app.advance(LEEWAY);
    t.refused(&t.login.access, "at exp + leeway").await;
    t.app.advance(Duration::days(1));
    t.refused(&t.login.access, "a day later").await;
}

#[tokio::test]
async fn expired_token_re_signed_with_a_past_exp_is_rejected() {
    let t = Target::new().await;
    let now = t.app.now().unix_timestamp();
    let mut claims = t.honest_claims();
    claims["iat"] = json!(now - 3600);
    claims["exp"] = json!(now - 3600 + 300);
    t.refused(&t.key.sign_claims(&claims), "exp an hour ago").await;
}

#[tokio::test]
async fn iat_in_the_future_beyond_the_leeway_is_rejected() {
    let t = Target::new().await;
    let now = t.app.now().unix_timestamp();
    let at = |iat: i64| {
        let mut claims = t.honest_claims();
        claims["iat"] = json!(iat);
        claims["exp"] = json!(iat + 300);
        t.key.sign_claims(&claims)
    };
    assert_access_works(&t.app, &at(now + 10), "iat 10 s ahead, within the leeway").await;
    t.refused(&at(now + LEEWAY.whole_seconds() + 30), "iat a minute ahead").await;
    t.refused(&at(now + 86_400), "iat a day ahead").await;
}

#[tokio::test]
async fn missing_exp_is_rejected() {
    let t = Target::new().await;
    t.refused(&t.key.sign_claims(&t.claims_with("exp", Value::Null)), "no exp").await;
}

#[tokio::test]
async fn wrong_issuer_is_rejected() {
    let t = Target::new().await;
    for iss in ["https://evil.example", "http://127.0.0.1:8080/", "HTTP://127.0.0.1:8080", ""] {
        t.refused(&t.key.sign_claims(&t.claims_with("iss", json!(iss))), &format!("iss {iss:?}")).await;
    }
    t.refused(&t.key.sign_claims(&t.claims_with("iss", Value::Null)), "no iss").await;
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let t = Target::new().await;
    for aud in [json!("other-service"), json!("Tessera"), json!(""), json!(["other-service"])] {
        t.refused(&t.key.sign_claims(&t.claims_with("aud", aud.clone())), &format!("aud {aud}")).await;
    }
    t.refused(&t.key.sign_claims(&t.claims_with("aud", Value::Null)), "no aud").await;
}

#[tokio::test]
async fn typ_other_than_at_jwt_is_rejected() {
    let t = Target::new().await;
    let payload = t.honest_claims().to_string();
    for typ in ["JWT", "jwt", "refresh+jwt", ""] {
        let header = json!({"alg": "EdDSA", "typ": typ, "kid": t.key.kid}).to_string();
        t.refused(&t.key.sign(&header, &payload), &format!("typ {typ:?}")).await;
    }
    let header = json!({"alg": "EdDSA", "kid": t.key.kid}).to_string();
    t.refused(&t.key.sign(&header, &payload), "no typ").await;
}

#[tokio::test]
async fn typ_at_jwt_is_accepted_in_both_spellings_whatever_the_case() {
    // RFC 9068 §4 names both; RFC 7515 §4.1.9 compares media types case-insensitively.
    let t = Target::new().await;
    for typ in ["at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "Application/AT+JWT"] {
        let header = json!({"alg": "EdDSA", "typ": typ, "kid": t.key.kid}).to_string();
        let token = t.key.sign(&header, &t.honest_claims().to_string());
        assert_access_works(&t.app, &token, &format!("typ {typ:?}")).await;
    }
    for typ in ["application/jwt", "at+jwt ", "application/at+jwt; x=1", "x-at+jwt"] {
        let header = json!({"alg": "EdDSA", "typ": typ, "kid": t.key.kid}).to_string();
        t.refused(&t.key.sign(&header, &t.honest_claims().to_string()), &format!("typ {typ:?}")).await;
    }
}

#[tokio::test]
async fn crit_header_member_is_rejected() {
    let t = Target::new().await;
    let header = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}","crit":["exp"]}}"#, t.key.kid);
    t.refused(&t.key.sign(&header, &t.honest_claims().to_string()), "crit").await;
}

#[tokio::test]
async fn zip_header_member_is_rejected() {
    let t = Target::new().await;
    let header = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}","zip":"DEF"}}"#, t.key.kid);
    t.refused(&t.key.sign(&header, &t.honest_claims().to_string()), "zip").await;
}

// Other credentials in the access token's place.

#[tokio::test]
async fn refresh_token_used_as_access_token_is_rejected() {
    let t = Target::new().await;
    t.refused(t.login.refresh(), "a refresh token as access token").await;
    let reply = t
        .app
        .send(
            t.app
                .get("/v1/me")
                .header("cookie", format!("{}={}", crate::token_helpers::ACCESS_COOKIE, t.login.refresh())),
        )
        .await;
    reply.assert_invalid_token();
    // The refresh token itself is unharmed by the attempt.
    t.app.refresh_ok(t.login.refresh()).await;
}

#[tokio::test]
async fn session_token_used_as_access_token_is_rejected() {
    use tessera_core::session::{OpaqueToken, TokenKind};
    let t = Target::new().await;
    let user = tessera_core::UserId::parse(&t.login.user_id).expect("user id");
    let sid = tessera_core::SessionId::parse(t.login.sid()).expect("session id");
    // A well-formed session-mode credential naming alice's real session.
    t.refused(&OpaqueToken::generate(TokenKind::Session, user, sid).encode(), "a session token as access token").await;
}

#[tokio::test]
async fn access_token_used_as_refresh_token_is_rejected() {
    let t = Target::new().await;
    assert_refresh_refused(&t.app, &t.login.access, "an access token as refresh token").await;
    t.app.refresh_ok(t.login.refresh()).await;
}

// ES256: the zero signature (CVE-2022-21449, "psychic signatures").

#[tokio::test]
async fn es256_signature_of_zeros_is_rejected() {
    let app = spawn_token_app(&token_toml("hybrid", "[jwt]\nalg = \"ES256\"\n")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    assert_access_works(&app, &login.access, "the genuine ES256 token").await;
    let (_, _, s) = split(&login.access);
    assert_eq!(unb64u(&s).len(), 64, "JOSE ES256 signatures are r || s, 32 bytes each");
    assert_access_refused(&app, &with_signature(&login.access, &b64u(&[0u8; 64])), "r = s = 0").await;
    let mut claims = login.claims();
    claims["sub"] = json!(tessera_core::UserId::generate().to_string());
    let forged = with_signature(&with_payload(&login.access, &claims), &b64u(&[0u8; 64]));
    assert_access_refused(&app, &forged, "r = s = 0 over other claims").await;
    // r = s = n (the group order) is zero in disguise.
    let n = unb64u("_____wAAAAD__________7zm-q2nF56E87nKwvxjJVE");
    let order = [n.clone(), n].concat();
    assert_access_refused(&app, &with_signature(&login.access, &b64u(&order)), "r = s = n").await;
}

// Size and shape limits.

#[tokio::test]
async fn token_over_8_kib_is_rejected() {
    let t = Target::new().await;
    // Grow the pad by what is still missing (base64url: 4 bytes per 3), not by one: a
    // thousand signatures in a row block this test's runtime, the server's denylist sync with
    // it, and on a loaded machine its copy then goes stale and the control below gets a 503.
    let mut pad = 4000;
    let token = loop {
        let token = t.key.sign_claims(&t.claims_with("pad", json!("a".repeat(pad))));
        if token.len() > 8 * 1024 {
            break token;
        }
        pad += ((8 * 1024 + 1 - token.len()) * 3 / 4).max(1);
    };
    assert!(token.len() <= 8 * 1024 + 4, "just over the limit: {} bytes", token.len());
    t.refused(&token, "a token just over 8 KiB").await;
    // Well over the token limit, still under the 16 KiB header limit (which answers 431).
    let huge = t.key.sign_claims(&t.claims_with("pad", json!("a".repeat(9_000))));
    assert!(huge.len() > 12 * 1024 && huge.len() < 15 * 1024, "{}", huge.len());
    t.refused(&huge, "a 12 KiB token").await;
    t.still_serving().await;
}

#[tokio::test]
async fn deeply_nested_json_claims_are_rejected() {
    let t = Target::new().await;
    let depth = 2000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let honest = t.honest_claims().to_string();
    let extra = format!("{},\"x\":{nested}}}", &honest[..honest.len() - 1]);
    let token = t.key.sign(&t.key.header_text(), &extra);
    assert!(token.len() < 8 * 1024, "under the size limit, so the parser sees it: {}", token.len());
    t.refused(&token, "2000 levels of nesting in an extra member").await;
    let in_sub = honest.replacen(&format!("\"sub\":\"{}\"", t.login.user_id), &format!("\"sub\":{nested}"), 1);
    assert_ne!(in_sub, honest);
    t.refused(&t.key.sign(&t.key.header_text(), &in_sub), "2000 levels of nesting in sub").await;
    let header = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}","x":{nested}}}"#, t.key.kid);
    t.refused(&t.key.sign(&header, &honest), "2000 levels of nesting in the header").await;
    t.still_serving().await;
}

#[tokio::test]
async fn duplicate_header_members_are_rejected() {
    let t = Target::new().await;
    let payload = t.honest_claims().to_string();
    let kid = &t.key.kid;
    for header in [
        format!(r#"{{"alg":"EdDSA","alg":"none","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"none","alg":"EdDSA","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"nope","kid":"{kid}"}}"#),
    ] {
        t.refused(&t.key.sign(&header, &payload), &format!("header {header}")).await;
    }
}

#[tokio::test]
async fn duplicate_claims_are_rejected() {
    let t = Target::new().await;
    let honest = t.honest_claims().to_string();
    let alice_sub = format!("\"sub\":\"{}\"", t.login.user_id);
    let bob_sub = format!("\"sub\":\"{}\"", t.bob);
    for twice in [format!("{alice_sub},{bob_sub}"), format!("{bob_sub},{alice_sub}")] {
        let payload = honest.replacen(&alice_sub, &twice, 1);
        assert_ne!(payload, honest);
        t.refused(&t.key.sign(&t.key.header_text(), &payload), &format!("sub twice: {twice}")).await;
    }
    let exp = t.login.exp();
    let payload = honest.replacen(&format!("\"exp\":{exp}"), &format!("\"exp\":{exp},\"exp\":{}", exp + 86_400), 1);
    assert_ne!(payload, honest);
    t.refused(&t.key.sign(&t.key.header_text(), &payload), "exp twice").await;
}

/// SPEC: ECDSA tokens have one valid form. The high-S twin `(r, n - s)` of a genuine ES256
/// token is a valid ECDSA signature of the same bytes; the server refuses it, and every token
/// it issues is low-S.
#[tokio::test]
async fn es256_high_s_twin_of_a_valid_token_is_refused() {
    let app = spawn_token_app(&token_toml("hybrid", "[jwt]\nalg = \"ES256\"\n")).await;
    app.create_user("alice").await;
    for i in 0..8 {
        let login = app.login_tokens("alice", PASSWORD).await;
        let (header, payload, signature) = split(&login.access);
        let signature = unb64u(&signature);
        assert!(crate::forge::is_low_s(&signature), "login {i}: the server issued a high-S signature");
        assert_access_works(&app, &login.access, "the genuine ES256 token").await;
        let twin = format!("{header}.{payload}.{}", b64u(&crate::forge::high_s_twin(&signature)));
        assert_access_refused(&app, &twin, "the high-S twin of a genuine ES256 token").await;
    }
}
