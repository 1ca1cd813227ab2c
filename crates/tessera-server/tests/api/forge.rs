//! Building JWTs by hand, for the attack tests: JOSE base64url, decoding a token's parts, and
//! signing arbitrary header and payload *text* (so duplicate members and odd shapes survive).
//!
//! The sharpest forger holds the server's own signing key: a claim-level attack (expired,
//! wrong audience, `typ: JWT`, a repeated `sub`) must be refused for what it says, not merely
//! because its signature is wrong. [`ServerKey::from_store`] reads the private key out of the
//! server's store (stored unsealed unless `jwt.seal_key` is set), and a positive control in
//! `jwt_attacks.rs` proves that what it signs is accepted when nothing else is wrong.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use aws_lc_rs::{hmac, signature};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// base64url without padding (RFC 7515 §2).
pub fn b64u(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64u(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap_or_else(|e| panic!("{s:?} is base64url: {e}"))
}

/// Standard base64 with padding (what `x5c` holds, RFC 7515 §4.1.6).
pub fn b64_standard(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The three encoded parts of a compact JWS.
pub fn split(token: &str) -> (String, String, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS has three parts: {token}");
    (parts[0].to_owned(), parts[1].to_owned(), parts[2].to_owned())
}

pub fn header_of(token: &str) -> Value {
    json_part(&split(token).0)
}

pub fn claims_of(token: &str) -> Value {
    json_part(&split(token).1)
}

fn json_part(part: &str) -> Value {
    let bytes = unb64u(part);
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("part is JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// `b64u(header).b64u(payload)`: the JWS signing input, from JSON text taken as is.
pub fn signing_input(header: &str, payload: &str) -> String {
    format!("{}.{}", b64u(header.as_bytes()), b64u(payload.as_bytes()))
}

/// A compact JWS from JSON text and raw signature bytes.
pub fn compact(header: &str, payload: &str, signature: &[u8]) -> String {
    format!("{}.{}", signing_input(header, payload), b64u(signature))
}

/// HS256 (RFC 7518 §3.2) over `header`/`payload` text with `key`.
pub fn hs256(key: &[u8], header: &str, payload: &str) -> String {
    let input = signing_input(header, payload);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), input.as_bytes());
    format!("{input}.{}", b64u(tag.as_ref()))
}

/// A private key: the server's (read from its store) or one the attacker made.
pub enum Signer {
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    Hs256(Vec<u8>),
}

impl Signer {
    pub fn sign(&self, header: &str, payload: &str) -> String {
        let input = signing_input(header, payload);
        let signature = self.raw_signature(input.as_bytes());
        format!("{input}.{}", b64u(&signature))
    }

    fn raw_signature(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Ed25519(k) => k.sign(message).as_ref().to_vec(),
            Signer::Es256(k) => k.sign(&rng, message).expect("ES256 signs").as_ref().to_vec(),
            Signer::Rs256(k) => {
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut out).expect("RS256 signs");
                out
            }
            Signer::Hs256(secret) => hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), message).as_ref().to_vec(),
        }
    }
}

/// The server's current signing key, as a forger who got hold of the store has it.
pub struct ServerKey {
    pub kid: String,
    pub alg: String,
    pub signer: Signer,
}

impl ServerKey {
    /// The one key in the store (tests using this never rotate).
    pub async fn from_store(app: &TestApp) -> ServerKey {
        let backend = app.open_store().await;
        let mut keys = backend.store().keys().await.unwrap_or_else(|e| panic!("read the keys: {e:?}"));
        backend.close().await;
        assert_eq!(keys.len(), 1, "exactly one signing key in a fresh store: {keys:?}");
        let key = keys.remove(0);
        assert!(!key.sealed, "the forger reads an unsealed key");
        let signer = match key.alg.as_str() {
            "EdDSA" => Signer::Ed25519(Ed25519KeyPair::from_pkcs8(&key.private).expect("an Ed25519 PKCS#8 key")),
            "ES256" => Signer::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.private).expect("a P-256 PKCS#8 key"),
            ),
            "RS256" => Signer::Rs256(RsaKeyPair::from_pkcs8(&key.private).expect("an RSA PKCS#8 key")),
            "HS256" => Signer::Hs256(key.private.clone()),
            other => panic!("unexpected algorithm {other}"),
        };
        ServerKey { kid: key.kid, alg: key.alg, signer }
    }

    /// The header tessera itself writes: `{"alg","typ":"at+jwt","kid"}`, in that order.
    pub fn header_text(&self) -> String {
        format!(r#"{{"alg":"{}","typ":"at+jwt","kid":"{}"}}"#, self.alg, self.kid)
    }

    /// Signs `claims` under tessera's own header.
    pub fn sign_claims(&self, claims: &Value) -> String {
        self.signer.sign(&self.header_text(), &claims.to_string())
    }

    pub fn sign(&self, header: &str, payload: &str) -> String {
        self.signer.sign(header, payload)
    }
}

/// An Ed25519 key the attacker generated, with its public JWK (RFC 8037).
pub struct ForeignEd25519 {
    pub pair: Ed25519KeyPair,
    pub kid: String,
}

impl ForeignEd25519 {
    pub fn generate() -> ForeignEd25519 {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("generate an Ed25519 key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("read it back");
        ForeignEd25519 { pair, kid: "attacker-key-1".into() }
    }

    pub fn public_jwk(&self) -> Value {
        let x = b64u(self.pair.public_key().as_ref());
        json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"})
    }

    pub fn sign(&self, header: &str, payload: &str) -> String {
        let input = signing_input(header, payload);
        format!("{input}.{}", b64u(self.pair.sign(input.as_bytes()).as_ref()))
    }

    /// The verification a naive server would do with the embedded key; proves the forged
    /// token is genuinely signed by this key (so its refusal is about trust, not bytes).
    pub fn verifies(&self, token: &str) -> bool {
        let (h, p, s) = split(token);
        let public = signature::UnparsedPublicKey::new(&signature::ED25519, self.pair.public_key().as_ref());
        public.verify(format!("{h}.{p}").as_bytes(), &unb64u(&s)).is_ok()
    }
}

/// `token` with its payload replaced by `claims` and everything else kept.
pub fn with_payload(token: &str, claims: &Value) -> String {
    let (h, _, s) = split(token);
    format!("{h}.{}.{s}", b64u(claims.to_string().as_bytes()))
}

/// `token` with its signature replaced by `signature` (encoded text, possibly empty).
pub fn with_signature(token: &str, signature: &str) -> String {
    let (h, p, _) = split(token);
    format!("{h}.{p}.{signature}")
}
