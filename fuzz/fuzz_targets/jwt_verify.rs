//! Access-token verification (`tessera_jwt::verify` and `verify_public`, the one path both the
//! server and tessera-verify use), two ways:
//! - the input as a token string: nothing an attacker writes without our key may verify;
//! - the input as a JOSE header and a claims payload (split at 0xff) that we sign with the real
//!   HS256 key, so that every check after the signature is reached: only our header (its `typ`
//!   in any case) and the exact claims shape may pass, and what passes must round-trip through `sign`.
#![no_main]

use std::sync::LazyLock;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tessera_jwt::{Alg, JwtSettings, KeySet, PublicKeySet, SigningKey, sign, verify, verify_public};
use time::{Duration, OffsetDateTime};

#[path = "common.rs"]
mod common;

struct Fixture {
    hs256: KeySet,
    eddsa: KeySet,
    eddsa_public: PublicKeySet,
    now: OffsetDateTime,
}

fn settings(alg: Alg) -> JwtSettings {
    JwtSettings {
        alg,
        issuer: "http://127.0.0.1:8080".into(),
        audience: "tessera".into(),
        access_ttl: Duration::minutes(5),
        leeway: Duration::seconds(30),
    }
}

/// The HS256 key is fixed (secret and `kid`), so the seed corpus can hold a header and claims
/// that pass and the fuzzer mutates from there; the EdDSA key is fresh each run.
const HS256_KID: &str = "AAAAAAAAAAA";
const HS256_SECRET: [u8; 32] = [7; 32];

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    // A fixed `now`: seed claims with iat 1772366400 and exp 300 s later pass.
    let now = OffsetDateTime::from_unix_timestamp(1_772_366_400).unwrap();
    let set =
        |key: SigningKey| KeySet::new(vec![(key, now - Duration::hours(1), None)], now, Duration::minutes(6)).unwrap();
    let hs256 = set(SigningKey::from_private(HS256_KID, Alg::HS256, &HS256_SECRET).unwrap());
    let eddsa = set(SigningKey::generate(Alg::EdDSA).unwrap().0);
    let jwks = serde_json::to_vec(&eddsa.jwks()).unwrap();
    let (eddsa_public, _) = PublicKeySet::from_jwks(&jwks, Alg::EdDSA).unwrap();
    Fixture { hs256, eddsa, eddsa_public, now }
});

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    if let Ok(token) = std::str::from_utf8(data) {
        assert!(verify(&f.hs256, &settings(Alg::HS256), token, f.now).is_err(), "forged HS256 token accepted");
        let server = verify(&f.eddsa, &settings(Alg::EdDSA), token, f.now);
        let service = verify_public(&f.eddsa_public, &settings(Alg::EdDSA), token, f.now);
        assert!(server.is_err() && service.is_err(), "forged EdDSA token accepted");
    }

    let (header, payload) = common::split2(data);
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &HS256_SECRET), message.as_bytes());
    let token = format!("{message}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    if let Ok(claims) = verify(&f.hs256, &settings(Alg::HS256), &token, f.now) {
        let mut header: serde_json::Value = serde_json::from_slice(header).expect("an accepted header is JSON");
        // `typ` is a media type: compared case-insensitively (RFC 7515 §4.1.9), in either of
        // RFC 9068's two spellings. Everything else must be exactly ours.
        let typ = header["typ"].as_str().expect("an accepted header has a string typ").to_ascii_lowercase();
        assert!(typ == "at+jwt" || typ == "application/at+jwt", "typ {typ:?} accepted");
        header["typ"] = "at+jwt".into();
        let ours = serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": HS256_KID});
        assert_eq!(header, ours, "only tessera's own header passes");
        let payload: serde_json::Value = serde_json::from_slice(payload).expect("accepted claims are JSON");
        assert_eq!(serde_json::to_value(&claims).unwrap(), payload, "accepted claims round-trip exactly");
        let again = sign(&f.hs256, &claims).expect("accepted claims can be signed");
        assert_eq!(verify(&f.hs256, &settings(Alg::HS256), &again, f.now).ok(), Some(claims));
    }
});
