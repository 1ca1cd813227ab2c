//! What must work: every algorithm round-trips, tokens stay small, rotation publishes before
//! it signs, the JWKS holds public keys only, sealed keys load back.

use serde_json::Value;
use tessera_jwt::{Alg, JwtError, KeySet, Keys, Sealer, SigningKey, sign, verify};
use time::Duration;

use crate::support::*;

fn round_trip(alg: Alg) -> usize {
    let f = Fixture::new(alg);
    let claims = f.claims();
    let token = f.token_with(&claims);
    assert_eq!(f.verify(&token).unwrap(), claims);
    let (h, _, _) = parts(&token);
    let header = String::from_utf8(unb64(&h)).unwrap();
    assert_eq!(header, format!(r#"{{"alg":"{}","typ":"at+jwt","kid":"{}"}}"#, alg.as_str(), f.kid));
    // A second instance that loaded the same key from the store verifies it too.
    let key = SigningKey::from_private(&f.kid, alg, &f.private).unwrap();
    let other = KeySet::new(vec![(key, NOW, None)], NOW, ttl() + leeway()).unwrap();
    assert_eq!(verify(&other, &f.settings, &token, NOW).unwrap(), claims);
    // And any other configured algorithm refuses it.
    for other_alg in [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256].into_iter().filter(|a| *a != alg) {
        let err = verify(&f.keys, &settings(other_alg), &token, NOW).unwrap_err();
        assert!(matches!(err, JwtError::AlgorithmNotAllowed), "{alg} as {other_alg}: {err}");
    }
    println!("{alg}: {} bytes", token.len());
    token.len()
}

#[test]
fn round_trip_eddsa() {
    round_trip(Alg::EdDSA);
}

#[test]
fn round_trip_es256() {
    round_trip(Alg::ES256);
}

#[test]
fn round_trip_rs256() {
    round_trip(Alg::RS256);
}

#[test]
fn round_trip_hs256() {
    round_trip(Alg::HS256);
}

#[test]
fn token_without_sid_round_trips() {
    let f = Fixture::new(Alg::EdDSA);
    let mut claims = f.claims();
    claims.sid = None;
    let token = f.token_with(&claims);
    assert!(!String::from_utf8(unb64(&parts(&token).1)).unwrap().contains("sid"));
    assert_eq!(f.verify(&token).unwrap(), claims);
}

/// SPEC §2: "an EdDSA token with the default issuer stays under 400 bytes".
#[test]
fn eddsa_token_with_default_issuer_is_under_400_bytes() {
    let f = Fixture::new(Alg::EdDSA);
    let claims = f.claims();
    assert!(claims.sid.is_some());
    assert_eq!((claims.iss.as_str(), claims.aud.as_str()), ("http://127.0.0.1:8080", "tessera"));
    let token = f.token_with(&claims);
    println!("EdDSA access token with sid and the default issuer: {} bytes", token.len());
    assert!(token.len() < 400, "{} bytes", token.len());
}

#[test]
fn token_sizes_per_algorithm() {
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256] {
        let f = Fixture::new(alg);
        let with_sid = f.token().len();
        let mut claims = f.claims();
        claims.sid = None;
        let without = f.token_with(&claims).len();
        println!("{alg}: {with_sid} bytes with sid, {without} without");
        assert!(with_sid < 700);
    }
}

fn published_kids(keys: &KeySet) -> Vec<String> {
    keys.jwks()["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

/// `tessera keys rotate` at `R`: the new key is published at once, signs from `R + 60 s`, and
/// the old key verifies until `R + 60 s + access_ttl + leeway`.
#[test]
fn rotation_publishes_before_signing_and_retires_after_the_last_token_expires() {
    let (old, old_private) = SigningKey::generate(Alg::EdDSA).unwrap();
    let (new, new_private) = SigningKey::generate(Alg::EdDSA).unwrap();
    let (old_kid, new_kid) = (old.kid().to_owned(), new.kid().to_owned());
    let rotated = NOW;
    let switch = rotated + Duration::seconds(60);
    let keys_at = |now| {
        let entries = vec![
            (
                SigningKey::from_private(&old_kid, Alg::EdDSA, &old_private).unwrap(),
                NOW - Duration::days(1),
                Some(switch),
            ),
            (SigningKey::from_private(&new_kid, Alg::EdDSA, &new_private).unwrap(), switch, None),
        ];
        Keys::new(KeySet::new(entries, now, ttl() + leeway()).unwrap())
    };
    let f = Fixture::new(Alg::EdDSA);
    let s = settings(Alg::EdDSA);
    let claims_at = |now: time::OffsetDateTime| {
        let mut c = f.claims();
        c.iat = unix(now);
        c.exp = unix(now + ttl());
        c
    };

    // Just after the rotation: old signs, both are published and verify.
    let keys = keys_at(rotated);
    assert_eq!(keys.current().signer().unwrap().kid(), old_kid);
    assert_eq!(published_kids(&keys.current()), [old_kid.clone(), new_kid.clone()]);
    let by_old = sign(&keys.current(), &claims_at(switch - Duration::seconds(1))).unwrap();

    // A token signed by the new key early (another instance's clock runs ahead) is accepted.
    let at_switch = keys_at(switch);
    assert_eq!(at_switch.current().signer().unwrap().kid(), new_kid);
    let by_new = sign(&at_switch.current(), &claims_at(switch)).unwrap();
    assert!(verify(&keys.current(), &s, &by_new, switch).is_ok(), "new key verifies before it signs here");

    // The old key's last token (signed a second before the switch) verifies until it expires,
    // and the key is trusted a second longer than that.
    let last = switch - Duration::seconds(1) + ttl() - Duration::seconds(1);
    assert!(verify(&keys_at(last).current(), &s, &by_old, last).is_ok());
    let closed = switch + ttl() + leeway();
    let after = keys_at(closed);
    assert_eq!(after.current().verifier_kids(), [new_kid.as_str()]);
    assert_eq!(published_kids(&after.current()), [new_kid.as_str()]);
    assert!(matches!(verify(&after.current(), &s, &by_old, closed), Err(JwtError::UnknownKey)));
    let fresh = sign(&after.current(), &claims_at(closed)).unwrap();
    assert!(verify(&after.current(), &s, &fresh, closed).is_ok());

    // Every instance follows by swapping its set in place; a set already loaded stays usable.
    let live = keys_at(rotated);
    let held = live.current();
    live.replace(KeySet::new(Vec::new(), closed, ttl()).unwrap_or_else(|_| KeySet::empty()));
    assert_eq!(held.signer().unwrap().kid(), old_kid);
    assert!(live.current().signer().is_none());
}

#[test]
fn jwks_has_no_private_parts_and_no_hs256_key() {
    let mut entries = Vec::new();
    let mut privates = Vec::new();
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256] {
        let (key, private) = SigningKey::generate(alg).unwrap();
        privates.push((alg, key.kid().to_owned(), private));
        entries.push((key, NOW, None));
    }
    let keys = KeySet::new(entries, NOW, ttl()).unwrap();
    assert_eq!(keys.verifier_kids().len(), 4);
    let jwks = keys.jwks();
    let listed = jwks["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "the HS256 key is not published");
    let text = jwks.to_string();
    for (alg, kid, private) in &privates {
        assert!(!text.contains(&b64(private)), "{alg}");
        if *alg == Alg::HS256 {
            assert!(!text.contains(kid.as_str()));
        }
    }
    for jwk in listed {
        let members = jwk.as_object().unwrap();
        for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
            assert!(!members.contains_key(private), "{jwk}");
        }
        assert_eq!(jwk["use"], "sig");
        assert!(["EdDSA", "ES256", "RS256"].contains(&jwk["alg"].as_str().unwrap()));
        // Each published key is usable by a stock verifier: jsonwebtoken's own JWK parser.
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        assert!(jsonwebtoken::DecodingKey::from_jwk(&parsed).is_ok());
    }
    assert_eq!(jwks.as_object().unwrap().keys().collect::<Vec<_>>(), ["keys"]);
}

/// A service that knows only the JWKS verifies our tokens with stock jsonwebtoken.
#[test]
fn published_keys_verify_tokens_in_a_stock_verifier() {
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256] {
        let f = Fixture::new(alg);
        let token = f.token();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(f.keys.jwks()["keys"][0].clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.algorithms = vec![match alg {
            Alg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Alg::ES256 => jsonwebtoken::Algorithm::ES256,
            _ => jsonwebtoken::Algorithm::RS256,
        }];
        validation.set_audience(&[AUDIENCE]);
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(data.header.kid.as_deref(), Some(f.kid.as_str()));
    }
}

#[test]
fn sealed_private_keys_load_back_and_refuse_tampering() {
    let sealer = Sealer::from_base64(&b64(&[42u8; 32])).unwrap();
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256] {
        let (key, private) = SigningKey::generate(alg).unwrap();
        let sealed = sealer.seal(key.kid(), &private).unwrap();
        assert!(!sealed.windows(16).any(|w| private.windows(16).any(|p| p == w)), "{alg}: plaintext leaks");
        let opened = sealer.open(key.kid(), &sealed).unwrap();
        let loaded = SigningKey::from_private(key.kid(), alg, &opened).unwrap();
        assert_eq!(loaded.public_jwk(), key.public_jwk());

        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x80;
        assert!(matches!(sealer.open(key.kid(), &tampered), Err(JwtError::Unseal)));
        let elsewhere = SigningKey::generate(alg).unwrap().0;
        assert!(matches!(sealer.open(elsewhere.kid(), &sealed), Err(JwtError::Unseal)), "{alg}: kid is bound");
        let other = Sealer::new(&[7u8; 32]);
        assert!(matches!(other.open(key.kid(), &sealed), Err(JwtError::Unseal)));
    }
}

#[test]
fn signing_without_a_signer_fails() {
    let f = Fixture::new(Alg::EdDSA);
    assert!(matches!(sign(&KeySet::empty(), &f.claims()), Err(JwtError::NoSigningKey)));
    let token = f.token();
    assert!(matches!(verify(&KeySet::empty(), &f.settings, &token, NOW), Err(JwtError::UnknownKey)));
}
