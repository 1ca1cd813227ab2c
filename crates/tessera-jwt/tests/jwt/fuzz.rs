//! Property tests over the one verification path, with every input an attacker controls:
//! arbitrary strings, genuine tokens with one character changed, and tokens whose header and
//! claims are arbitrary JSON yet carry a valid signature by our own key (so the checks after
//! the signature are reached). Whatever arrives, `verify` answers without panicking, and only
//! what `sign` wrote passes.

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{Map, Value};
use tessera_jwt::id::{SessionId, TokenId, UserId};
use tessera_jwt::{AccessClaims, Alg, JwtError};

use crate::support::{Fixture, b64, unix};

/// JSON values of any shape, small enough to stay fast, with the member names a token has.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,30}".prop_map(Value::String),
        prop_oneof![Just("EdDSA"), Just("at+jwt"), Just("none"), Just("HS256"), Just("tessera")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((member_name(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("alg"),
            Just("typ"),
            Just("kid"),
            Just("crit"),
            Just("jku"),
            Just("iss"),
            Just("sub"),
            Just("aud"),
            Just("exp"),
            Just("iat"),
            Just("nbf"),
            Just("jti"),
            Just("sid"),
        ]
        .prop_map(String::from),
        "[a-z]{1,5}",
    ]
}

/// A valid header or claims object with some members replaced, removed or added.
fn mutate(base: Value, edits: Vec<(String, Option<Value>)>) -> Value {
    let mut object = match base {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    for (name, value) in edits {
        match value {
            Some(v) => object.insert(name, v),
            None => object.remove(&name),
        };
    }
    Value::Object(object)
}

fn edits() -> impl Strategy<Value = Vec<(String, Option<Value>)>> {
    proptest::collection::vec((member_name(), proptest::option::of(json_value())), 0..4)
}

const ALGS: [Alg; 4] = [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256];

/// One fixture per algorithm for every case: an RSA key takes long to generate.
static FIXTURES: LazyLock<Vec<Fixture>> = LazyLock::new(|| ALGS.iter().map(|alg| Fixture::new(*alg)).collect());

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings_are_refused_without_panicking(token in prop_oneof![
        ".{0,200}",
        "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,90}",
        "[A-Za-z0-9_=+/.-]{0,300}",
    ]) {
        let f = &FIXTURES[3];
        let result = f.verify(&token);
        prop_assert!(result.is_err(), "{token:?} accepted");
        prop_assert!(result.unwrap_err().is_invalid_token());
    }

    #[test]
    fn any_single_character_change_to_a_genuine_token_is_refused(
        alg in 0..ALGS.len(),
        index in any::<prop::sample::Index>(),
        replacement in prop_oneof!["[A-Za-z0-9_-]", "[.=+/ ]", ".", Just(String::new())],
    ) {
        let f = &FIXTURES[alg];
        let token = f.token();
        let at = index.index(token.len());
        let mut tampered = token.clone();
        tampered.replace_range(at..at + 1, &replacement);
        prop_assume!(tampered != token);
        prop_assert!(f.verify(&tampered).is_err(), "{tampered} accepted");
    }

    /// With the real key signing attacker-chosen JSON, everything but the signature is tested:
    /// only a header exactly `{alg, typ, kid}` of ours and claims of the exact shape pass.
    #[test]
    fn signed_arbitrary_json_passes_only_in_the_one_shape(
        header_edits in edits(),
        claim_edits in edits(),
        header_raw in proptest::option::of(json_value()),
    ) {
        let f = &FIXTURES[3];
        let header = match header_raw {
            Some(raw) => raw,
            None => mutate(f.header(), header_edits),
        };
        let claims = mutate(f.claims_json(), claim_edits);
        let token = f.forge_json(&header, &claims);
        match f.verify(&token) {
            Ok(accepted) => {
                prop_assert_eq!(&header, &f.header(), "only our header passes");
                prop_assert_eq!(serde_json::to_value(&accepted).unwrap(), claims, "the claims round-trip exactly");
                prop_assert!(accepted.exp > unix(f.now) - 30);
            }
            Err(e) => prop_assert!(e.is_invalid_token(), "{e}"),
        }
    }

    /// Bytes that are not JSON at all, and JSON texts with duplicate or oddly spelled members,
    /// signed by the real key.
    #[test]
    fn signed_arbitrary_bytes_never_panic(header in ".{0,80}", payload in ".{0,160}") {
        let f = &FIXTURES[3];
        let _ = f.verify(&f.forge(&header, &payload));
        let duplicated = format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{}"{header}}}"#, f.kid);
        let _ = f.verify(&f.forge(&duplicated, &payload));
    }

    /// What `sign` writes, `verify` gives back unchanged, for any issuer-side values.
    #[test]
    fn sign_then_verify_round_trips(
        alg in 0..ALGS.len(),
        sub in any::<[u8; 16]>(),
        jti in any::<[u8; 16]>(),
        sid in proptest::option::of(any::<[u8; 16]>()),
        age in 0i64..300,
    ) {
        let f = &FIXTURES[alg];
        let claims = AccessClaims {
            sub: UserId::from_bytes(sub),
            jti: TokenId::from_bytes(jti),
            sid: sid.map(SessionId::from_bytes),
            iat: unix(f.now) - age,
            exp: unix(f.now) - age + 300,
            ..f.claims()
        };
        let token = f.token_with(&claims);
        prop_assert_eq!(f.verify(&token).map_err(|e| e.to_string()), Ok(claims));
    }
}

#[test]
fn the_forger_and_the_fixture_agree_on_a_valid_token() {
    // The properties above are only meaningful if an unmodified forged token passes.
    let f = &FIXTURES[3];
    let token = f.forge_json(&f.header(), &f.claims_json());
    assert!(f.verify(&token).is_ok());
    assert!(matches!(f.verify(&format!("{}.{}.", b64(b"{}"), b64(b"{}"))), Err(JwtError::Malformed(_))));
}
