//! A key set with one key of each test's algorithm, valid claims, and a hand forger: attack
//! tokens are assembled from base64, JSON text and aws-lc-rs signatures — never through
//! `jwt::sign`, which would refuse to write most of them.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tessera_jwt::id::{SessionId, TokenId, UserId};
use tessera_jwt::{
    AccessClaims, Alg, JwtError, JwtSettings, KeySet, PublicKeySet, SigningKey, sign, verify, verify_public,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const AUDIENCE: &str = "tessera";
pub const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

pub fn ttl() -> Duration {
    Duration::minutes(5)
}

pub fn leeway() -> Duration {
    Duration::seconds(30)
}

pub fn settings(alg: Alg) -> JwtSettings {
    JwtSettings { alg, issuer: ISSUER.into(), audience: AUDIENCE.into(), access_ttl: ttl(), leeway: leeway() }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

pub fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// One signing key of `alg`, its private bytes (for forging), and the key set it forms at `now`.
pub struct Fixture {
    pub alg: Alg,
    pub kid: String,
    pub private: Vec<u8>,
    pub keys: KeySet,
    pub settings: JwtSettings,
    pub now: OffsetDateTime,
}

impl Fixture {
    pub fn new(alg: Alg) -> Self {
        Self::at(alg, NOW)
    }

    pub fn at(alg: Alg, now: OffsetDateTime) -> Self {
        let (key, private) = SigningKey::generate(alg).unwrap();
        let kid = key.kid().to_owned();
        let keys = KeySet::new(vec![(key, now - Duration::hours(1), None)], now, ttl() + leeway()).unwrap();
        Fixture { alg, kid, private, keys, settings: settings(alg), now }
    }

    pub fn claims(&self) -> AccessClaims {
        AccessClaims {
            iss: ISSUER.into(),
            sub: UserId::generate(),
            aud: AUDIENCE.into(),
            exp: unix(self.now + ttl()),
            iat: unix(self.now),
            jti: TokenId::generate(),
            sid: Some(SessionId::generate()),
        }
    }

    pub fn claims_json(&self) -> Value {
        serde_json::to_value(self.claims()).unwrap()
    }

    /// A genuine token, through the module under test.
    pub fn token(&self) -> String {
        sign(&self.keys, &self.claims()).unwrap()
    }

    pub fn token_with(&self, claims: &AccessClaims) -> String {
        sign(&self.keys, claims).unwrap()
    }

    /// Verifies `token` twice — as the server does, with its own key set, and as a service
    /// does, with the public keys of the JWKS (`verify_public`) — and fails the test unless both
    /// decide the same: every attack case below thereby covers `tessera-verify`'s path too.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, JwtError> {
        self.verify_at(token, self.now)
    }

    pub fn verify_at(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, JwtError> {
        let server = verify(&self.keys, &self.settings, token, now);
        if self.alg.is_asymmetric() {
            let jwks = serde_json::to_vec(&self.keys.jwks()).unwrap();
            let (public, _) = PublicKeySet::from_jwks(&jwks, self.alg).unwrap();
            let service = verify_public(&public, &self.settings, token, now);
            match (&server, &service) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                // The same refusal; not its text, which may list claims in hash-set order.
                (Err(a), Err(b)) => assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b), "{a} vs {b}"),
                _ => panic!("server and service disagree: {server:?} vs {service:?}"),
            }
        }
        server
    }

    /// The header tessera writes, as a JSON value to tamper with.
    pub fn header(&self) -> Value {
        json!({ "alg": self.alg.as_str(), "typ": "at+jwt", "kid": self.kid })
    }

    /// Signs `message` with the real private key, by aws-lc-rs directly.
    pub fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
        raw_sign(self.alg, &self.private, message)
    }

    /// `b64(header).b64(payload).b64(signature by our real key)`: a token only the checks
    /// before and after the signature can refuse.
    pub fn forge(&self, header: &str, payload: &str) -> String {
        forge_with(header, payload, |m| self.sign_raw(m))
    }

    pub fn forge_json(&self, header: &Value, payload: &Value) -> String {
        self.forge(&header.to_string(), &payload.to_string())
    }

    /// Signs an already encoded `header.payload` as is (padding, odd alphabets and all).
    pub fn forge_encoded(&self, message: &str) -> String {
        format!("{message}.{}", b64(&self.sign_raw(message.as_bytes())))
    }
}

pub fn forge_with(header: &str, payload: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let message = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature = sign(message.as_bytes());
    format!("{message}.{}", b64(&signature))
}

pub fn raw_sign(alg: Alg, private: &[u8], message: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    match alg {
        Alg::EdDSA => Ed25519KeyPair::from_pkcs8(private).unwrap().sign(message).as_ref().to_vec(),
        Alg::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, private)
            .unwrap()
            .sign(&rng, message)
            .unwrap()
            .as_ref()
            .to_vec(),
        Alg::RS256 => {
            let pair = RsaKeyPair::from_pkcs8(private).unwrap();
            let mut signature = vec![0; pair.public_modulus_len()];
            pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature).unwrap();
            signature
        }
        Alg::HS256 => hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, private), message).as_ref().to_vec(),
    }
}

pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), message).as_ref().to_vec()
}

/// Splits a compact token into its three encoded parts.
pub fn parts(token: &str) -> (String, String, String) {
    let mut split = token.split('.');
    let (h, p, s) = (split.next().unwrap(), split.next().unwrap(), split.next().unwrap());
    assert!(split.next().is_none());
    (h.into(), p.into(), s.into())
}

/// Asserts refusal and returns the error for closer checks.
#[track_caller]
pub fn refused(result: Result<AccessClaims, JwtError>) -> JwtError {
    match result {
        Ok(claims) => panic!("accepted a token that must be refused: {claims:?}"),
        Err(e) => {
            assert!(e.is_invalid_token(), "{e} is not reported as an invalid token");
            e
        }
    }
}
