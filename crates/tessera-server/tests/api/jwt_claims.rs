//! Attacker-chosen claims, signed with the real key. The test makes its own Ed25519 key,
//! imports it with `tessera keys import --activate-now`, and from then on can sign anything the
//! server would trust — so each refusal below is for what the token *says*, never for its
//! signature. Every token goes to the three places a bearer token is read: `GET /v1/me`,
//! `POST /v1/introspect` (RFC 7662: an invalid token is `{"active": false}`) and
//! `GET /v1/forward-auth`. Controls signed the same way with honest claims are accepted by
//! all three, so the refusals cannot pass vacuously.
//!
//! tessera's rules, enforced by the one verification path the server and `tessera-verify`
//! share: the header is exactly `alg`, `typ`, `kid` (no `crit`); `typ` is `at+jwt` or
//! `application/at+jwt`, in any case; the claims are exactly those tessera writes, each once —
//! `nbf` is never written, so never accepted; `exp` and `iat` are integers; `iat` at most the
//! leeway ahead; `exp - iat` at most a day; `iss` and `aud` single strings equal to ours (an
//! `aud` array is refused even when it contains ours: tessera never issues one).

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::forge::{TestKey, header_of, split, unb64u};
use crate::helpers::{PASSWORD, TestApp, WithCookies, spawn_token_app};
use crate::token_helpers::{LEEWAY, TokenLogin, token_toml};

const KID: &str = "claims-test-key";
const TRUST_LOOPBACK: &str = "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n";

/// A hybrid server signing with a key the test imported, and alice's real login.
struct Target {
    app: TestApp,
    key: TestKey,
    login: TokenLogin,
}

impl Target {
    async fn new() -> Target {
        let mut app = spawn_token_app(&token_toml("hybrid", TRUST_LOOPBACK)).await;
        app.create_user("alice").await;
        let key = TestKey::generate("EdDSA");
        let file = app.store.scratch().join("imported-key.pem");
        std::fs::write(&file, key.pkcs8_pem()).expect("write the key file");
        app.cli_ok(&["keys", "import", file.to_str().expect("UTF-8 path"), "--kid", KID, "--activate-now"]).await;
        // The CLI activated the key at the system's time; bring the server's test clock there.
        let lag = OffsetDateTime::now_utc() - app.now();
        app.advance(lag.max(Duration::ZERO) + Duration::seconds(1));
        app.restart().await;
        let login = app.login_tokens("alice", PASSWORD).await;
        assert_eq!(header_of(&login.access)["kid"], KID, "the server signs with the imported key");
        assert!(key.signed(&login.access));
        Target { app, key, login }
    }

    fn now(&self) -> i64 {
        self.app.now().unix_timestamp()
    }

    /// Alice's claims, as the server would sign them now, with a fresh `jti`.
    fn claims(&self) -> Value {
        let mut claims = self.login.claims();
        claims["jti"] = json!(tessera_core::id::TokenId::generate().to_string());
        claims["iat"] = json!(self.now());
        claims["exp"] = json!(self.now() + 300);
        claims
    }

    /// Honest claims with `member` set to `value`, or removed for `Value::Null`.
    fn claims_with(&self, member: &str, value: Value) -> Value {
        let mut claims = self.claims();
        let map = claims.as_object_mut().expect("claims object");
        if value.is_null() {
            map.remove(member);
        } else {
            map.insert(member.to_owned(), value);
        }
        claims
    }

    fn header(&self) -> String {
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{KID}"}}"#)
    }

    /// Signs header and payload *text* as given (duplicate members survive).
    fn sign(&self, header: &str, payload: &str) -> String {
        self.key.sign(header, payload)
    }

    fn sign_claims(&self, claims: &Value) -> String {
        self.sign(&self.header(), &claims.to_string())
    }

    async fn forward_auth(&self, token: &str) -> crate::helpers::Reply {
        let request = self
            .app
            .get("/v1/forward-auth")
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", "/app/")
            .bearer(token);
        self.app.send(request).await
    }

    /// Refused by all three readers: 401 `invalid_token`, `{"active": false}`, 401.
    async fn refused(&self, token: &str, what: &str) {
        let me = self.app.me_bearer(token).await;
        assert_eq!(me.status.as_u16(), 401, "{what}: /v1/me answers 401, got {} {}", me.status, me.text);
        me.assert_invalid_token();
        let introspection = self.app.introspect(token).await;
        assert_eq!(introspection.status.as_u16(), 200, "{what}: /v1/introspect answers 200: {}", introspection.text);
        assert_eq!(introspection.json(), json!({"active": false}), "{what}: introspection");
        let forward = self.forward_auth(token).await;
        assert_eq!(forward.status.as_u16(), 401, "{what}: /v1/forward-auth answers 401, got {}", forward.status);
        forward.assert_invalid_token();
    }

    /// Accepted by all three, as alice in her real session.
    async fn accepted(&self, token: &str, what: &str) {
        let me = self.app.me_bearer(token).await;
        assert_eq!(me.status.as_u16(), 200, "{what}: /v1/me answers 200, got {} {}", me.status, me.text);
        assert_eq!(me.json()["user"]["username"], "alice", "{what}");
        let introspection = self.app.introspection(token).await;
        assert_eq!(introspection["active"], true, "{what}: {introspection}");
        assert_eq!(introspection["sub"], self.login.user_id.as_str(), "{what}");
        let forward = self.forward_auth(token).await;
        assert_eq!(forward.status.as_u16(), 200, "{what}: /v1/forward-auth answers 200, got {}", forward.status);
        assert_eq!(forward.header("tessera-user-id"), Some(self.login.user_id.as_str()), "{what}");
        assert_eq!(forward.header("tessera-session-id"), Some(self.login.sid()), "{what}");
    }
}

// ---- controls: the forger's honest tokens are accepted ----

#[tokio::test]
async fn control_a_token_signed_with_the_imported_key_and_honest_claims_is_accepted() {
    let t = Target::new().await;
    t.accepted(&t.sign_claims(&t.claims()), "honest claims").await;
    // Ed25519 is deterministic: re-signing the server's own token reproduces it exactly.
    let (h, p, _) = split(&t.login.access);
    let header = String::from_utf8(unb64u(&h)).expect("UTF-8");
    let payload = String::from_utf8(unb64u(&p)).expect("UTF-8");
    assert_eq!(t.sign(&header, &payload), t.login.access);
    t.accepted(&t.login.access, "the server's own token").await;
}

// ---- header ----

#[tokio::test]
async fn a_crit_header_is_refused_whatever_its_value() {
    let t = Target::new().await;
    let claims = t.claims().to_string();
    for crit in [json!(["exp"]), json!([]), json!(["b64"]), json!("exp"), json!(null), json!({}), json!(1)] {
        let header = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{KID}","crit":{crit}}}"#);
        t.refused(&t.sign(&header, &claims), &format!("crit {crit}")).await;
    }
}

#[tokio::test]
async fn typ_must_name_an_access_token_in_either_spelling_and_any_case() {
    let t = Target::new().await;
    let claims = t.claims().to_string();
    let with_typ = |typ: &str| format!(r#"{{"alg":"EdDSA","typ":{typ},"kid":"{KID}"}}"#);
    for typ in [r#""at+jwt""#, r#""AT+JWT""#, r#""application/at+jwt""#, r#""Application/AT+jwt""#] {
        t.accepted(&t.sign(&with_typ(typ), &claims), &format!("typ {typ}")).await;
    }
    for typ in [
        r#""JWT""#,
        r#""jwt""#,
        r#""""#,
        r#""at+jwt ""#,
        r#""application/jwt""#,
        r#""refresh+jwt""#,
        r#"["at+jwt"]"#,
        "null",
    ] {
        t.refused(&t.sign(&with_typ(typ), &claims), &format!("typ {typ}")).await;
    }
    let no_typ = format!(r#"{{"alg":"EdDSA","kid":"{KID}"}}"#);
    t.refused(&t.sign(&no_typ, &claims), "no typ").await;
}

// ---- time claims ----

#[tokio::test]
async fn nbf_is_refused_in_the_future_and_in_the_past() {
    let t = Target::new().await;
    let leeway = LEEWAY.whole_seconds();
    for nbf in [t.now() + leeway + 1, t.now() + 3600, t.now() - 3600, t.now()] {
        t.refused(&t.sign_claims(&t.claims_with("nbf", json!(nbf))), &format!("nbf {nbf}")).await;
    }
}

#[tokio::test]
async fn iat_in_the_future_beyond_the_leeway_is_refused() {
    let t = Target::new().await;
    let leeway = LEEWAY.whole_seconds();
    for ahead in [leeway + 1, 3600, 86_400 * 365] {
        let mut claims = t.claims();
        claims["iat"] = json!(t.now() + ahead);
        claims["exp"] = json!(t.now() + ahead + 300);
        t.refused(&t.sign_claims(&claims), &format!("iat {ahead} s ahead")).await;
    }
    // Within the leeway (another instance's clock a little ahead) is fine.
    let mut claims = t.claims();
    claims["iat"] = json!(t.now() + leeway);
    t.accepted(&t.sign_claims(&claims), "iat exactly the leeway ahead").await;
}

#[tokio::test]
async fn exp_must_be_an_integer_in_the_future_within_a_day_of_iat() {
    let t = Target::new().await;
    let now = t.now();
    for (exp, what) in [
        (json!(format!("{}", now + 300)), "a string"),
        (json!((now + 300) as f64 + 0.5), "a float"),
        (json!((now + 300) as f64), "an integral float"),
        (json!(i64::MAX), "i64::MAX"),
        (json!(u64::MAX), "u64::MAX"),
        (json!(now + 2 * 86_400), "two days ahead"),
        (json!(-1), "negative"),
        (json!(i64::MIN), "i64::MIN"),
        (json!(0), "zero"),
        (json!(now - 3600), "an hour ago"),
        (json!(true), "a boolean"),
        (json!([now + 300]), "an array"),
        (Value::Null, "missing"),
    ] {
        t.refused(&t.sign_claims(&t.claims_with("exp", exp)), &format!("exp {what}")).await;
    }
    let mut claims = t.claims();
    claims["exp"] = json!(now + 86_400);
    t.accepted(&t.sign_claims(&claims), "exp exactly a day after iat").await;
    let mut payload = t.claims().to_string();
    payload = payload.replace(&format!("\"exp\":{}", now + 300), "\"exp\":null");
    t.refused(&t.sign(&t.header(), &payload), "exp null").await;
}

// ---- duplicate and unknown members ----

#[tokio::test]
async fn duplicate_claim_names_are_refused() {
    let t = Target::new().await;
    let claims = t.claims().to_string();
    let inner = &claims[1..claims.len() - 1];
    let sub = t.login.user_id.clone();
    let other = tessera_core::id::UserId::generate().to_string();
    let later = t.now() + 600;
    for payload in [
        format!(r#"{{"sub":"{other}",{inner}}}"#),
        format!(r#"{{{inner},"sub":"{other}"}}"#),
        format!(r#"{{{inner},"sub":"{sub}"}}"#),
        format!(r#"{{{inner},"exp":{later}}}"#),
        format!(r#"{{{inner},"sid":"{}"}}"#, t.login.sid()),
        format!(r#"{{{inner},"\u0073ub":"{other}"}}"#),
        format!(r#"{{{inner},"aud":"tessera"}}"#),
    ] {
        t.refused(&t.sign(&t.header(), &payload), &format!("duplicate member: {payload}")).await;
    }
    // The short form of the issue's example, `{"sub":"a","sub":"b"}`, with every other claim.
    let payload = format!(r#"{{"sub":"a","sub":"b",{}}}"#, inner.replacen(&format!(r#""sub":"{sub}","#), "", 1));
    t.refused(&t.sign(&t.header(), &payload), "sub a, sub b").await;
    // A member tessera never writes.
    t.refused(&t.sign_claims(&t.claims_with("role", json!("admin"))), "an unknown claim").await;
}

// ---- audience and issuer ----

#[tokio::test]
async fn aud_must_be_our_audience_as_a_single_string() {
    let t = Target::new().await;
    for aud in [
        json!(["tessera"]),
        json!(["tessera", "other"]),
        json!(["other", "tessera"]),
        json!(["other"]),
        json!([]),
        json!("other"),
        json!("Tessera"),
        json!("tessera "),
        json!(""),
        json!({"aud": "tessera"}),
        Value::Null,
    ] {
        t.refused(&t.sign_claims(&t.claims_with("aud", aud.clone())), &format!("aud {aud}")).await;
    }
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let t = Target::new().await;
    let ours = t.claims()["iss"].as_str().expect("iss").to_owned();
    for iss in [
        json!("https://evil.example"),
        json!(format!("{ours}/")),
        json!(ours.to_uppercase()),
        json!(format!(" {ours}")),
        json!([ours.clone()]),
        json!(""),
        Value::Null,
    ] {
        t.refused(&t.sign_claims(&t.claims_with("iss", iss.clone())), &format!("iss {iss}")).await;
    }
}

// ---- the session behind the token ----

#[tokio::test]
async fn a_forged_token_for_a_session_that_was_logged_out_is_refused() {
    let t = Target::new().await;
    let token = t.sign_claims(&t.claims());
    t.accepted(&token, "before the logout").await;
    let logout = t.app.post("/v1/logout").bearer(&t.login.access);
    t.app.send(logout).await.assert_status(204);
    t.refused(&token, "after the logout").await;
    t.refused(&t.sign_claims(&t.claims()), "signed after the logout").await;
}
