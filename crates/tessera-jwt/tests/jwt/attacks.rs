//! Every token here must be refused. Most are signed with the *real* private key, so that only
//! the check under test can stand in the way.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Value, json};
use tessera_jwt::{Alg, JwtError, KeySet, MAX_TOKEN_LEN, SigningKey, verify};
use time::Duration;

use crate::support::*;

fn header_with(f: &Fixture, member: &str, value: Value) -> Value {
    let mut h = f.header();
    h[member] = value;
    h
}

#[test]
fn alg_none_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let payload = f.claims_json().to_string();
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = header_with(&f, "alg", json!(none)).to_string();
        let message = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        // Unsecured JWS form (RFC 7519 §6.1): empty signature.
        refused(f.verify(&format!("{message}.")));
        // Two parts only.
        refused(f.verify(&message));
        // With a *valid* EdDSA signature by our own key: the header still names `none`.
        let signed = f.forge(&header, &payload);
        assert!(matches!(refused(f.verify(&signed)), JwtError::AlgorithmNotAllowed), "{none}");
        // With garbage.
        refused(f.verify(&format!("{message}.{}", b64(b"garbage"))));
    }
}

#[test]
fn other_algorithms_than_the_configured_one_are_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let payload = f.claims_json().to_string();
    for alg in ["HS256", "ES256", "RS256", "PS256", "HS512", "eddsa", "EDDSA", "Ed25519", "", "EdDSA "] {
        let signed = f.forge(&header_with(&f, "alg", json!(alg)).to_string(), &payload);
        assert!(matches!(refused(f.verify(&signed)), JwtError::AlgorithmNotAllowed), "{alg:?}");
    }
    let not_a_string = f.forge(&header_with(&f, "alg", json!(["EdDSA"])).to_string(), &payload);
    refused(f.verify(&not_a_string));
}

/// Algorithm confusion (RFC 8725 §2.1): our public key is public, so an attacker can use any
/// encoding of it as an HMAC secret and claim `alg: HS256` with our `kid`.
#[test]
fn hs256_signed_with_our_public_key_is_rejected() {
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256] {
        let f = Fixture::new(alg);
        let jwk = f.keys.verifier(&f.kid).unwrap().public_jwk().unwrap().clone();
        let (raw, spki) = match alg {
            Alg::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(&f.private).unwrap();
                (pair.public_key().as_ref().to_vec(), pair.public_key().as_der().unwrap().as_ref().to_vec())
            }
            Alg::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &f.private).unwrap();
                (pair.public_key().as_ref().to_vec(), pair.public_key().as_der().unwrap().as_ref().to_vec())
            }
            _ => {
                let pair = RsaKeyPair::from_pkcs8(&f.private).unwrap();
                (pair.public_key().as_ref().to_vec(), pair.public_key().as_der().unwrap().as_ref().to_vec())
            }
        };
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(&spki));
        let mut secrets: Vec<Vec<u8>> = vec![raw, spki, pem.into_bytes(), jwk.to_string().into_bytes()];
        for member in ["x", "y", "n"] {
            if let Some(v) = jwk.get(member).and_then(Value::as_str) {
                secrets.push(v.as_bytes().to_vec());
                secrets.push(unb64(v));
            }
        }
        let header = header_with(&f, "alg", json!("HS256")).to_string();
        let payload = f.claims_json().to_string();
        for secret in &secrets {
            let token = forge_with(&header, &payload, |m| hmac_sha256(secret, m));
            assert!(matches!(refused(f.verify(&token)), JwtError::AlgorithmNotAllowed), "{alg}");
        }
    }
    // Second line of defence, in jsonwebtoken itself: a public key cannot be used as an HMAC
    // key even if a caller asked for HS256 (its key "family" does not match).
    let f = Fixture::new(Alg::EdDSA);
    let x = f.keys.verifier(&f.kid).unwrap().public_jwk().unwrap()["x"].as_str().unwrap().to_owned();
    let ed_key = jsonwebtoken::DecodingKey::from_ed_components(&x).unwrap();
    let header = header_with(&f, "alg", json!("HS256")).to_string();
    let token = forge_with(&header, &f.claims_json().to_string(), |m| hmac_sha256(&unb64(&x), m));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    assert!(jsonwebtoken::decode::<Value>(&token, &ed_key, &validation).is_err());
}

/// RFC 8725 §3.10: a key carried in the token proves only that someone has *a* key.
#[test]
fn foreign_key_with_jwk_header_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let attacker = SigningKey::generate(Alg::EdDSA).unwrap();
    let attacker_jwk = attacker.0.public_jwk().unwrap().clone();
    let payload = f.claims_json().to_string();
    let attacker_sign = |m: &[u8]| raw_sign(Alg::EdDSA, &attacker.1, m);

    for kid in [attacker.0.kid(), f.kid.as_str()] {
        let mut header = header_with(&f, "jwk", attacker_jwk.clone());
        header["kid"] = json!(kid);
        let token = forge_with(&header.to_string(), &payload, attacker_sign);
        assert!(matches!(refused(f.verify(&token)), JwtError::Header(_)));
    }
    // Without the `jwk` member: the attacker's kid is not ours, and our kid is not their key.
    let mut theirs = f.header();
    theirs["kid"] = json!(attacker.0.kid());
    let token = forge_with(&theirs.to_string(), &payload, attacker_sign);
    assert!(matches!(refused(f.verify(&token)), JwtError::UnknownKey));
    let token = forge_with(&f.header().to_string(), &payload, attacker_sign);
    assert!(matches!(refused(f.verify(&token)), JwtError::BadSignature));
}

fn assert_header_member_refused(member: &str, value: Value) {
    let f = Fixture::new(Alg::EdDSA);
    let token = f.forge_json(&header_with(&f, member, value), &f.claims_json());
    let err = refused(f.verify(&token));
    assert!(matches!(err, JwtError::Header(_)), "{member}: {err}");
}

#[test]
fn jku_header_is_rejected() {
    assert_header_member_refused("jku", json!("https://attacker.example/jwks.json"));
    assert_header_member_refused("jku", json!("http://127.0.0.1:8080/.well-known/jwks.json"));
}

#[test]
fn x5u_header_is_rejected() {
    assert_header_member_refused("x5u", json!("https://attacker.example/cert.pem"));
}

#[test]
fn x5c_header_is_rejected() {
    assert_header_member_refused("x5c", json!([STANDARD.encode(b"not really a certificate")]));
    assert_header_member_refused("x5t#S256", json!(b64(&[0u8; 32])));
}

/// RFC 7515 §4.1.11: a recipient that does not understand a critical extension must refuse.
#[test]
fn crit_header_is_rejected() {
    assert_header_member_refused("crit", json!(["exp"]));
    assert_header_member_refused("crit", json!([]));
    assert_header_member_refused("crit", json!(["b64"]));
}

#[test]
fn zip_header_is_rejected() {
    assert_header_member_refused("zip", json!("DEF"));
}

#[test]
fn cty_and_other_unknown_header_members_are_rejected() {
    assert_header_member_refused("cty", json!("JWT"));
    assert_header_member_refused("enc", json!("A256GCM"));
    assert_header_member_refused("b64", json!(false));
    assert_header_member_refused("x-anything", json!(1));
}

/// `kid` only selects among our keys: it is never a path, a query or a URL.
/// `kid` with the case of its letters swapped — or, for the rare random kid with no letter at
/// all, with its first character changed — so it always differs from `kid`.
fn other_case(kid: &str) -> String {
    let swapped: String = kid
        .chars()
        .map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
        .collect();
    if swapped != kid {
        return swapped;
    }
    let first = if kid.starts_with('0') { "1" } else { "0" };
    format!("{first}{}", &kid[1..])
}

#[test]
fn other_case_always_differs() {
    for kid in ["abcDEF01234", "01234567-_9", "0123456789_", "AAAAAAAAAAA"] {
        assert_ne!(other_case(kid), kid);
        assert_eq!(other_case(kid).len(), kid.len());
    }
}

#[test]
fn kid_pointing_elsewhere_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let unknown = SigningKey::generate(Alg::EdDSA).unwrap().0.kid().to_owned();
    let kids = [
        "../../etc/passwd".to_owned(),
        "/dev/null".to_owned(),
        "' OR 1=1 --".to_owned(),
        "\" OR \"\"=\"".to_owned(),
        "https://attacker.example/key".to_owned(),
        String::new(),
        unknown,
        format!("{} ", f.kid),
        other_case(&f.kid),
        format!("{}\0", f.kid),
    ];
    for kid in kids {
        let token = f.forge_json(&header_with(&f, "kid", json!(kid)), &f.claims_json());
        let err = refused(f.verify(&token));
        assert!(matches!(err, JwtError::UnknownKey), "{kid:?}: {err}");
    }
    for kid in [json!(null), json!(0), json!([f.kid.clone()])] {
        let token = f.forge_json(&header_with(&f, "kid", kid), &f.claims_json());
        refused(f.verify(&token));
    }
    let mut no_kid = f.header();
    no_kid.as_object_mut().unwrap().remove("kid");
    refused(f.verify(&f.forge_json(&no_kid, &f.claims_json())));
}

#[test]
fn a_key_of_another_algorithm_in_the_set_is_not_trusted() {
    let (ed, _) = SigningKey::generate(Alg::EdDSA).unwrap();
    let (ec, ec_private) = SigningKey::generate(Alg::ES256).unwrap();
    let ec_kid = ec.kid().to_owned();
    let keys = KeySet::new(vec![(ed, NOW, None), (ec, NOW, None)], NOW, ttl() + leeway()).unwrap();
    let f = Fixture::new(Alg::EdDSA);
    let payload = f.claims_json().to_string();
    // Header says ES256 with the ES256 key: not the configured algorithm.
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": ec_kid }).to_string();
    let token = forge_with(&header, &payload, |m| raw_sign(Alg::ES256, &ec_private, m));
    assert!(matches!(refused(verify(&keys, &settings(Alg::EdDSA), &token, NOW)), JwtError::AlgorithmNotAllowed));
    // Header says EdDSA but names the ES256 key.
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": ec_kid }).to_string();
    let token = forge_with(&header, &payload, |m| raw_sign(Alg::ES256, &ec_private, m));
    assert!(matches!(refused(verify(&keys, &settings(Alg::EdDSA), &token, NOW)), JwtError::UnknownKey));
}

#[test]
fn stripped_signature_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let (h, p, s) = parts(&f.token());
    let stripped = [
        format!("{h}.{p}."),
        format!("{h}.{p}"),
        format!("{h}.{p}.."),
        format!("{h}.{p}.{s}."),
        format!("{h}..{s}"),
        format!(".{p}.{s}"),
        format!("{h}.{p}.{s}.{s}"),
    ];
    for token in stripped {
        assert!(matches!(refused(f.verify(&token)), JwtError::Malformed(_)), "{token}");
    }
}

#[test]
fn truncated_signature_is_rejected() {
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256] {
        let f = Fixture::new(alg);
        let token = f.token();
        let (h, p, s) = parts(&token);
        for cut in [1, 2, 4, 8, s.len() / 2, s.len() - 1] {
            refused(f.verify(&format!("{h}.{p}.{}", &s[..s.len() - cut])));
        }
        // Cut to a multiple of four characters, the rest is still canonical base64url: only the
        // signature check can notice.
        for whole_groups in [1, 2, 5] {
            let cut = s.len() % 4 + 4 * whole_groups;
            let err = refused(f.verify(&format!("{h}.{p}.{}", &s[..s.len() - cut])));
            assert!(matches!(err, JwtError::BadSignature), "{alg}: {err}");
        }
    }
}

#[test]
fn altered_payload_is_rejected() {
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256] {
        let f = Fixture::new(alg);
        let token = f.token();
        let (h, p, s) = parts(&token);
        let mut claims: Value = serde_json::from_slice(&unb64(&p)).unwrap();
        for (member, value) in [
            ("sub", json!(tessera_jwt::id::UserId::generate().to_string())),
            ("exp", json!(unix(NOW + Duration::days(365)))),
            ("aud", json!("tessera ")),
        ] {
            let saved = claims[member].clone();
            claims[member] = value;
            let altered = format!("{h}.{}.{s}", b64(claims.to_string().as_bytes()));
            assert!(matches!(refused(f.verify(&altered)), JwtError::BadSignature), "{alg} {member}");
            claims[member] = saved;
        }
        // Header swapped for another valid one, too.
        let other =
            b64(json!({ "alg": alg.as_str(), "typ": "application/at+jwt", "kid": f.kid }).to_string().as_bytes());
        assert!(matches!(refused(f.verify(&format!("{other}.{p}.{s}"))), JwtError::BadSignature), "{alg}");
    }
}

/// Signed over the padded form, so only the encoding check can refuse.
#[test]
fn padded_base64_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let pad = |s: &str| format!("{s}{}", "=".repeat((4 - s.len() % 4) % 4));
    // JSON with trailing spaces until its base64 needs padding.
    let needs_padding = |mut json: String| {
        while json.len().is_multiple_of(3) {
            json.push(' ');
        }
        b64(json.as_bytes())
    };
    let h = needs_padding(f.header().to_string());
    let p = needs_padding(f.claims_json().to_string());
    assert!(f.verify(&f.forge_encoded(&format!("{h}.{p}"))).is_ok(), "the unpadded control is valid");
    for message in [format!("{}.{p}", pad(&h)), format!("{h}.{}", pad(&p)), format!("{}.{}", pad(&h), pad(&p))] {
        assert!(matches!(refused(f.verify(&f.forge_encoded(&message))), JwtError::Malformed(_)), "{message}");
    }
    // An EdDSA signature is 64 bytes: 86 characters, two short of a multiple of four.
    let token = f.token();
    let (h, p, s) = parts(&token);
    assert_eq!(s.len(), 86);
    for padded in [format!("{h}.{p}.{s}=="), format!("{h}.{p}.{s}="), format!("{h}.{p}.{s}===")] {
        assert!(matches!(refused(f.verify(&padded)), JwtError::Malformed(_)));
    }
}

/// One token, one spelling (RFC 4648 §3.5): no other alphabet, no set padding bits, no
/// whitespace. Otherwise one signature has many token strings, and anything keyed on the
/// string (the verified cache, a denylist of raw tokens) can be sidestepped.
#[test]
fn non_canonical_base64_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let token = f.token();
    let (h, p, s) = parts(&token);

    // Trailing bits: 64 bytes leave 4 unused bits in the last character.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = s.chars().last().unwrap();
    let index = alphabet.find(last).unwrap();
    assert_eq!(index & 0b1111, 0, "a canonical final character has its low bits clear");
    let twin = alphabet.as_bytes()[index | 1] as char;
    let twin_sig = format!("{}{twin}", &s[..s.len() - 1]);
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    assert_eq!(lenient.decode(&twin_sig).unwrap(), unb64(&s), "a lenient decoder reads the same signature");
    assert!(matches!(refused(f.verify(&format!("{h}.{p}.{twin_sig}"))), JwtError::Malformed(_)));

    // The standard alphabet, in the signature: the same signature bytes spelled with `+`/`/`.
    let (h2, p2, s2) = std::iter::repeat_with(|| parts(&f.token())).find(|(_, _, s)| s.contains(['-', '_'])).unwrap();
    assert!(f.verify(&format!("{h2}.{p2}.{s2}")).is_ok());
    let standard = s2.replace('-', "+").replace('_', "/");
    assert_eq!(STANDARD_NO_PAD.decode(&standard).unwrap(), unb64(&s2));
    assert!(matches!(refused(f.verify(&format!("{h2}.{p2}.{standard}"))), JwtError::Malformed(_)));

    // ... and in the payload, signed as spelled with our key. ASCII JSON only yields `-`/`_`
    // (sextets 62, 63) from `>`, `?`, `~` or DEL, so this deployment's issuer has a `~~~`.
    let mut tilde = Fixture::new(Alg::EdDSA);
    tilde.settings.issuer = "https://example.com/~~~tessera".into();
    let mut claims = tilde.claims();
    claims.iss = tilde.settings.issuer.clone();
    let (h3, p3, _) = parts(&tilde.token_with(&claims));
    assert!(p3.contains(['-', '_']), "{p3}");
    assert!(tilde.verify(&tilde.forge_encoded(&format!("{h3}.{p3}"))).is_ok(), "the canonical control is valid");
    let standard = p3.replace('-', "+").replace('_', "/");
    assert!(matches!(refused(tilde.verify(&tilde.forge_encoded(&format!("{h3}.{standard}")))), JwtError::Malformed(_)));

    // Whitespace and line breaks inside a part.
    let mid = p.len() / 2;
    for bad in [
        format!("{h}.{}\n{}.{s}", &p[..mid], &p[mid..]),
        format!("{h}.{p}.{s}\n"),
        format!(" {h}.{p}.{s}"),
        format!("{h}.{p}.{}\r\n{}", &s[..40], &s[40..]),
    ] {
        assert!(matches!(refused(f.verify(&bad)), JwtError::Malformed(_)), "{bad:?}");
    }
}

#[test]
fn expired_token_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let mut claims = f.claims();
    claims.iat = unix(NOW - Duration::minutes(10));
    claims.exp = unix(NOW - Duration::minutes(5));
    assert!(matches!(refused(f.verify(&f.token_with(&claims))), JwtError::Expired));

    // A fresh token, with the clock moved past exp + leeway.
    let token = f.token();
    assert!(f.verify(&token).is_ok());
    assert!(matches!(refused(f.verify_at(&token, NOW + ttl() + leeway())), JwtError::Expired));
    assert!(matches!(refused(f.verify_at(&token, NOW + Duration::days(400))), JwtError::Expired));
}

/// The leeway tolerates a signer's clock running ahead (`iat`), never lengthens `exp`: the
/// lifetime is what tessera decided, and a token is refused from its `exp` on.
#[test]
fn the_leeway_never_extends_exp() {
    let f = Fixture::new(Alg::EdDSA);
    let mut claims = f.claims();
    claims.iat = unix(NOW - ttl());
    claims.exp = unix(NOW);
    let token = f.token_with(&claims);
    assert!(f.verify_at(&token, NOW - Duration::seconds(1)).is_ok());
    assert!(f.verify_at(&token, NOW - Duration::milliseconds(1)).is_ok());
    assert!(matches!(refused(f.verify_at(&token, NOW)), JwtError::Expired));
    assert!(matches!(refused(f.verify_at(&token, NOW + leeway() - Duration::seconds(1))), JwtError::Expired));
}

/// jsonwebtoken checks `exp` against `SystemTime::now()`; tessera must decide with its clock.
#[test]
fn verification_uses_the_given_clock_not_the_system_clock() {
    // Long expired by the wall clock, valid by the clock passed in.
    let past = Fixture::at(Alg::EdDSA, time::macros::datetime!(2001-09-09 01:46:40 UTC));
    let token = past.token();
    assert!(past.verify(&token).is_ok());
    // Far in the future by the wall clock, valid at its own time.
    let future = Fixture::at(Alg::EdDSA, time::macros::datetime!(2100-01-01 00:00 UTC));
    assert!(future.verify(&future.token()).is_ok());
}

#[test]
fn not_yet_valid_token_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let mut claims = f.claims();
    claims.iat = unix(NOW + leeway() + Duration::seconds(1));
    claims.exp = claims.iat + 300;
    assert!(matches!(refused(f.verify(&f.token_with(&claims))), JwtError::NotYetValid));
    claims.iat = unix(NOW + leeway());
    assert!(f.verify(&f.token_with(&claims)).is_ok(), "within the leeway");

    // `nbf`: tessera never issues it, so a token carrying one, future or past, is not ours.
    for nbf in [NOW + Duration::hours(1), NOW - Duration::hours(1)] {
        let mut payload = f.claims_json();
        payload["nbf"] = json!(unix(nbf));
        let token = f.forge_json(&f.header(), &payload);
        assert!(matches!(refused(f.verify(&token)), JwtError::Claims(_)));
    }
}

#[test]
fn missing_exp_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let mut payload = f.claims_json();
    payload.as_object_mut().unwrap().remove("exp");
    let err = refused(f.verify(&f.forge_json(&f.header(), &payload)));
    assert!(matches!(&err, JwtError::MissingClaim(c) if c == "exp"), "{err}");
    for bad in [json!(null), json!("1772366700"), json!(1.77e9), json!(-1.0), json!(true), json!(u64::MAX)] {
        let mut payload = f.claims_json();
        payload["exp"] = bad.clone();
        refused(f.verify(&f.forge_json(&f.header(), &payload)));
    }
}

#[test]
fn other_missing_claims_are_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    for member in ["iss", "sub", "aud", "iat", "jti"] {
        let mut payload = f.claims_json();
        payload.as_object_mut().unwrap().remove(member);
        refused(f.verify(&f.forge_json(&f.header(), &payload)));
    }
    refused(f.verify(&f.forge(&f.header().to_string(), "{}")));
    refused(f.verify(&f.forge(&f.header().to_string(), "[]")));
    refused(f.verify(&f.forge(&f.header().to_string(), "null")));
    refused(f.verify(&f.forge(&f.header().to_string(), "")));
}

#[test]
fn wrong_issuer_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    for iss in ["https://attacker.example", "http://127.0.0.1:8080/", "HTTP://127.0.0.1:8080", ""] {
        let mut claims = f.claims();
        claims.iss = iss.into();
        assert!(matches!(refused(f.verify(&f.token_with(&claims))), JwtError::WrongIssuer), "{iss:?}");
    }
    let mut payload = f.claims_json();
    payload["iss"] = json!([ISSUER]);
    refused(f.verify(&f.forge_json(&f.header(), &payload)));
}

#[test]
fn wrong_audience_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    for aud in ["other-service", "Tessera", "tessera ", ""] {
        let mut claims = f.claims();
        claims.aud = aud.into();
        assert!(matches!(refused(f.verify(&f.token_with(&claims))), JwtError::WrongAudience), "{aud:?}");
    }
    // Arrays: jsonwebtoken would accept one containing our audience; tessera never writes one.
    for aud in [json!([AUDIENCE]), json!([AUDIENCE, "other"]), json!(["other"]), json!([])] {
        let mut payload = f.claims_json();
        payload["aud"] = aud.clone();
        refused(f.verify(&f.forge_json(&f.header(), &payload)));
    }
}

#[test]
fn wrong_typ_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    for typ in ["JWT", "jwt", "", "refresh+jwt", "at+jwt ", "application/jwt", "at+jwt\u{0}", "secevent+jwt"] {
        let token = f.forge_json(&header_with(&f, "typ", json!(typ)), &f.claims_json());
        assert!(matches!(refused(f.verify(&token)), JwtError::WrongType), "{typ:?}");
    }
    for typ in [json!(null), json!(1), json!(["at+jwt"])] {
        let token = f.forge_json(&header_with(&f, "typ", typ), &f.claims_json());
        assert!(matches!(refused(f.verify(&token)), JwtError::Header(_)));
    }
    let mut missing = f.header();
    missing.as_object_mut().unwrap().remove("typ");
    assert!(matches!(refused(f.verify(&f.forge_json(&missing, &f.claims_json()))), JwtError::Header(_)));
    // RFC 9068 §4 names the long form too; media types compare case-insensitively.
    for typ in ["application/at+jwt", "AT+JWT"] {
        let token = f.forge_json(&header_with(&f, "typ", json!(typ)), &f.claims_json());
        assert!(f.verify(&token).is_ok(), "{typ}");
    }
}

/// CVE-2022-21449 ("psychic signatures"): an ECDSA verifier that skips the range check on
/// `r` and `s` accepts `(0, 0)` for any message and key.
#[test]
fn ecdsa_signature_with_r_and_s_zero_is_rejected() {
    let f = Fixture::new(Alg::ES256);
    let (h, p, s) = parts(&f.token());
    assert!(f.verify(&format!("{h}.{p}.{s}")).is_ok());
    // The order n of P-256.
    let n: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6,
        0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    ];
    let real = unb64(&s);
    let mut forged: Vec<Vec<u8>> = vec![vec![0; 64], [n, n].concat(), [&[0u8; 32][..], &real[32..]].concat()];
    forged.push([&real[..32], &[0u8; 32][..]].concat());
    forged.push([&real[..32], &n[..]].concat());
    forged.push(vec![0; 65]);
    forged.push(vec![0; 63]);
    for signature in forged {
        let err = refused(f.verify(&format!("{h}.{p}.{}", b64(&signature))));
        assert!(matches!(err, JwtError::BadSignature), "{err}");
    }
    // EdDSA's all-zero signature too.
    let ed = Fixture::new(Alg::EdDSA);
    let (h, p, _) = parts(&ed.token());
    assert!(matches!(refused(ed.verify(&format!("{h}.{p}.{}", b64(&[0; 64])))), JwtError::BadSignature));
}

#[test]
fn oversized_token_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    // Refused by size, not by shape: the size check comes before any parsing.
    let junk = "a".repeat(MAX_TOKEN_LEN + 1);
    assert!(matches!(refused(f.verify(&junk)), JwtError::TooLarge { .. }));
    assert!(matches!(refused(f.verify(&"a".repeat(MAX_TOKEN_LEN))), JwtError::Malformed(_)));
    assert!(matches!(refused(f.verify(&".".repeat(10 * MAX_TOKEN_LEN))), JwtError::TooLarge { .. }));
    // A genuinely signed token with an enormous issuer, verified by a deployment with that issuer.
    let big_issuer = format!("https://{}.example", "i".repeat(MAX_TOKEN_LEN));
    let mut payload = f.claims_json();
    payload["iss"] = json!(big_issuer);
    let token = f.forge_json(&f.header(), &payload);
    let mut big = f.settings.clone();
    big.issuer = big_issuer;
    assert!(matches!(refused(verify(&f.keys, &big, &token, NOW)), JwtError::TooLarge { .. }));
    assert!(tessera_jwt::sign(&f.keys, &serde_json::from_value(payload).unwrap()).is_err());
}

#[test]
fn deeply_nested_claims_are_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    // As deep as fits in 8 KiB once encoded, in every position the parsers look at, signed with
    // our key so parsing is reached: an error each time, never a stack overflow.
    let depth = 2_900;
    let claims = f.claims_json().to_string();
    let inner = &claims[1..claims.len() - 1];
    for payload in [
        nested(depth),
        format!(r#"{{"aud":{}}}"#, nested(depth)),
        format!(r#"{{{inner},"x":{}}}"#, nested(depth)),
        format!(r#"{{"aud":{},{inner}}}"#, nested(depth)),
        format!(r#"{{"iss":{}}}"#, "{\"a\":".repeat(900) + "1" + &"}".repeat(900)),
    ] {
        let token = f.forge(&f.header().to_string(), &payload);
        assert!(token.len() <= MAX_TOKEN_LEN, "{}", token.len());
        refused(f.verify(&token));
    }
    let header = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":{}}}"#, nested(depth));
    assert!(matches!(refused(f.verify(&f.forge(&header, &claims))), JwtError::Header(_)));
    // 10 000 levels does not fit: refused by size before anything is parsed.
    let token = f.forge(&f.header().to_string(), &nested(10_000));
    assert!(matches!(refused(f.verify(&token)), JwtError::TooLarge { .. }));
}

/// Two parsers reading one token must not see two different headers (RFC 7515 §4, RFC 8725).
#[test]
fn duplicate_header_keys_are_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let claims = f.claims_json().to_string();
    let kid = &f.kid;
    let other = SigningKey::generate(Alg::EdDSA).unwrap().0.kid().to_owned();
    for header in [
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","alg":"none"}}"#),
        format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}","alg":"EdDSA"}}"#),
        format!(r#"{{"alg":"EdDSA","alg":"EdDSA","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","kid":"{other}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","typ":"at+jwt"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","\u0061lg":"HS256"}}"#),
    ] {
        let err = refused(f.verify(&f.forge(&header, &claims)));
        assert!(matches!(&err, JwtError::Header(m) if m.contains("duplicate field")), "{header}: {err}");
    }
}

#[test]
fn duplicate_claim_keys_are_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let claims = f.claims_json().to_string();
    let inner = &claims[1..claims.len() - 1];
    let victim = tessera_jwt::id::UserId::generate();
    let later = unix(NOW + Duration::days(3650));
    for payload in [
        format!(r#"{{{inner},"sub":"{victim}"}}"#),
        format!(r#"{{"sub":"{victim}",{inner}}}"#),
        format!(r#"{{{inner},"exp":{later}}}"#),
        format!(r#"{{{inner},"\u0073ub":"{victim}"}}"#),
        format!(r#"{{{inner},"aud":"tessera"}}"#),
    ] {
        refused(f.verify(&f.forge(&f.header().to_string(), &payload)));
    }
}

/// A retired key that stole — or leaked — cannot mint tokens once the window for the tokens it
/// legitimately signed has closed, whatever `exp` the forger writes.
#[test]
fn token_signed_by_retired_and_expired_key_is_rejected() {
    let (old, old_private) = SigningKey::generate(Alg::EdDSA).unwrap();
    let (new, new_private) = SigningKey::generate(Alg::EdDSA).unwrap();
    let (old_kid, new_kid) = (old.kid().to_owned(), new.kid().to_owned());
    let retired = NOW;
    let set_at = |now| {
        let keys = vec![
            (
                SigningKey::from_private(&old_kid, Alg::EdDSA, &old_private).unwrap(),
                NOW - Duration::days(30),
                Some(retired),
            ),
            (SigningKey::from_private(&new_kid, Alg::EdDSA, &new_private).unwrap(), retired, None),
        ];
        KeySet::new(keys, now, ttl() + leeway()).unwrap()
    };
    let f = Fixture::new(Alg::EdDSA);
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": old_kid }).to_string();
    let forge_at = |now: time::OffsetDateTime| {
        let mut payload = f.claims_json();
        payload["iat"] = json!(unix(now));
        // The longest lifetime a token may claim (a longer one is refused for that alone).
        payload["exp"] = json!(unix(now + tessera_jwt::MAX_ACCESS_TTL));
        forge_with(&header, &payload.to_string(), |m| raw_sign(Alg::EdDSA, &old_private, m))
    };
    let s = settings(Alg::EdDSA);
    let last = retired + ttl() + leeway() - Duration::seconds(1);
    assert!(verify(&set_at(last), &s, &forge_at(last), last).is_ok(), "still trusted one second before");
    let closed = retired + ttl() + leeway();
    assert!(matches!(refused(verify(&set_at(closed), &s, &forge_at(closed), closed)), JwtError::UnknownKey));
    // And its genuine tokens are refused on expiry anyway.
    let genuine = forge_at(retired - Duration::seconds(1));
    let mut claims: Value = serde_json::from_slice(&unb64(&parts(&genuine).1)).unwrap();
    claims["exp"] = json!(unix(retired - Duration::seconds(1) + ttl()));
    let genuine = forge_with(&header, &claims.to_string(), |m| raw_sign(Alg::EdDSA, &old_private, m));
    assert!(verify(&set_at(retired), &s, &genuine, retired).is_ok());
    refused(verify(&set_at(closed), &s, &genuine, closed));
}

/// ECDSA malleability: `(r, s)` and `(r, n - s)` both verify under plain ECDSA. tessera issues
/// only the low-S form and refuses the high one, so a token has exactly one valid spelling
/// (and a denylist or cache keyed on the token string cannot be sidestepped).
#[test]
fn es256_issues_low_s_only_and_refuses_the_high_s_twin_of_a_valid_token() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    let f = Fixture::new(Alg::ES256);
    let public =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &f.private).unwrap().public_key().as_ref().to_vec();
    for _ in 0..32 {
        let token = f.token();
        let (h, p, s) = parts(&token);
        let signature = unb64(&s);
        assert!(is_low_s(&signature), "tessera signed a high-S signature");
        assert!(f.verify(&token).is_ok());
        let twin = high_s_twin(&signature);
        let message = format!("{h}.{p}");
        // The twin is a genuine ECDSA signature of the same message: only the low-S rule
        // can refuse it.
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(message.as_bytes(), &twin)
            .expect("the high-S twin is a valid ECDSA signature");
        let malleated = format!("{message}.{}", b64(&twin));
        assert!(matches!(refused(f.verify(&malleated)), JwtError::BadSignature));
    }
}

/// Whoever holds the signing key (a stolen one, an imported one that leaked) can write any
/// `exp`; tessera still refuses a token claiming to live longer than any it issues
/// (`MAX_ACCESS_TTL`, the largest `jwt.access_ttl`), and the `exp` of a minted token is an
/// integer in `i64`.
#[test]
fn exp_far_beyond_any_access_ttl_is_rejected() {
    let f = Fixture::new(Alg::EdDSA);
    let iat = unix(NOW);
    let max = tessera_jwt::MAX_ACCESS_TTL.whole_seconds();
    for exp in [iat + max + 1, unix(NOW + Duration::days(3650)), i64::MAX, 253_402_300_799] {
        let mut payload = f.claims_json();
        payload["exp"] = json!(exp);
        let err = refused(f.verify(&f.forge_json(&f.header(), &payload)));
        assert!(matches!(&err, JwtError::Claims(m) if m.contains("more than a day")), "exp {exp}: {err}");
    }
    // Exactly the longest lifetime tessera can issue is fine.
    let mut payload = f.claims_json();
    payload["exp"] = json!(iat + max);
    assert!(f.verify(&f.forge_json(&f.header(), &payload)).is_ok());
    // Out of i64 range, negative, or not an integer: not a tessera `exp`.
    for exp in [json!(u64::MAX), json!(1e300), json!(-1), json!(i64::MIN), json!("9999999999"), json!(1.7e9)] {
        let mut payload = f.claims_json();
        payload["exp"] = exp.clone();
        refused(f.verify(&f.forge_json(&f.header(), &payload)));
    }
}

/// An imported key (`tessera keys import`) under an operator-chosen or thumbprint `kid`
/// verifies like a generated one, and the attack cases hold for it too.
#[test]
fn an_imported_key_with_a_long_kid_signs_and_is_held_to_the_same_rules() {
    use tessera_jwt::import_private_key;
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256] {
        let (_, private) = SigningKey::generate(alg).unwrap();
        let input = if alg == Alg::HS256 {
            format!(r#"{{"kty":"oct","k":"{}"}}"#, b64(&private))
        } else {
            format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(&private))
        };
        let imported = import_private_key(input.as_bytes()).unwrap();
        let kid = imported.kid(None).unwrap();
        let key = SigningKey::from_private(&kid, alg, imported.private()).unwrap();
        let keys = KeySet::new(vec![(key, NOW - Duration::hours(1), None)], NOW, ttl() + leeway()).unwrap();
        let f = Fixture { alg, kid, private: imported.private().to_vec(), keys, settings: settings(alg), now: NOW };
        assert!(f.verify(&f.token()).is_ok(), "{alg}");
        let mut crit = f.header();
        crit["crit"] = json!(["exp"]);
        refused(f.verify(&f.forge_json(&crit, &f.claims_json())));
        let mut payload = f.claims_json();
        payload["exp"] = json!(i64::MAX);
        refused(f.verify(&f.forge_json(&f.header(), &payload)));
    }
}
