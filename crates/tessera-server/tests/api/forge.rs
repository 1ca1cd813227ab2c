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
    /// A signer from the form the store keeps: PKCS#8 DER, or the raw HS256 secret.
    pub fn from_private(alg: &str, private: &[u8]) -> Signer {
        match alg {
            "EdDSA" => Signer::Ed25519(Ed25519KeyPair::from_pkcs8(private).expect("an Ed25519 PKCS#8 key")),
            "ES256" => Signer::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, private).expect("a P-256 PKCS#8 key"),
            ),
            "RS256" => Signer::Rs256(RsaKeyPair::from_pkcs8(private).expect("an RSA PKCS#8 key")),
            "HS256" => Signer::Hs256(private.to_vec()),
            other => panic!("unexpected algorithm {other}"),
        }
    }

    pub fn sign(&self, header: &str, payload: &str) -> String {
        let input = signing_input(header, payload);
        let signature = self.raw_signature(input.as_bytes());
        format!("{input}.{}", b64u(&signature))
    }

    fn raw_signature(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Ed25519(k) => k.sign(message).as_ref().to_vec(),
            // tessera accepts only low-S ECDSA signatures; a forger with the key can always
            // make one (a fresh nonce per draw: half the draws are low).
            Signer::Es256(k) => loop {
                let sig = k.sign(&rng, message).expect("ES256 signs").as_ref().to_vec();
                if is_low_s(&sig) {
                    break sig;
                }
            },
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
        let signer = Signer::from_private(&key.alg, &key.private);
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

/// Half the order of the P-256 group: an ES256 signature's `s` is "low" at or below it.
pub const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d,
    0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// The order `n` of the P-256 group, big-endian.
pub const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa,
    0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

pub fn is_low_s(signature: &[u8]) -> bool {
    signature.len() == 64 && signature[32..] <= P256_HALF_ORDER[..]
}

/// `(r, n - s)` for a raw ES256 signature `(r, s)`: the other signature of the same message
/// under the same key, equally valid to a plain ECDSA verifier (the malleability low-S
/// removes). Schoolbook big-endian subtraction; test code only.
pub fn high_s_twin(signature: &[u8]) -> Vec<u8> {
    assert_eq!(signature.len(), 64, "a raw ES256 signature is r || s, 32 bytes each");
    let mut out = signature.to_vec();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(P256_ORDER[i]) - i16::from(signature[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[32 + i] = u8::try_from(d).expect("a byte");
    }
    assert_eq!(borrow, 0, "s < n");
    out
}

/// A signing key the test made itself, in every form `tessera keys import` reads, so that
/// after importing it the test can sign any claims with the key the server trusts.
pub struct TestKey {
    pub alg: &'static str,
    /// PKCS#8 DER for the asymmetric algorithms, the raw secret for HS256.
    pub private: Vec<u8>,
    pub signer: Signer,
}

impl TestKey {
    pub fn generate(alg: &'static str) -> TestKey {
        let rng = SystemRandom::new();
        let private = match alg {
            "EdDSA" => Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519").as_ref().to_vec(),
            "ES256" => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("P-256").as_ref().to_vec()
            }
            "RS256" => {
                use aws_lc_rs::encoding::AsDer as _;
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA");
                pair.as_der().expect("PKCS#8").as_ref().to_vec()
            }
            "HS256" => {
                let mut secret = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut secret).expect("random");
                secret
            }
            other => panic!("unexpected algorithm {other}"),
        };
        let signer = Signer::from_private(alg, &private);
        TestKey { alg, private, signer }
    }

    /// `-----BEGIN PRIVATE KEY-----` (PKCS#8).
    pub fn pkcs8_pem(&self) -> String {
        pem("PRIVATE KEY", &self.private)
    }

    /// `-----BEGIN EC PRIVATE KEY-----` (SEC 1, RFC 5915), ES256 only.
    pub fn sec1_pem(&self) -> String {
        use aws_lc_rs::encoding::{AsDer as _, EcPrivateKeyRfc5915Der};
        let Signer::Es256(pair) = &self.signer else { panic!("SEC 1 is for EC keys") };
        let der: EcPrivateKeyRfc5915Der<'_> = pair.private_key().as_der().expect("SEC 1");
        pem("EC PRIVATE KEY", der.as_ref())
    }

    /// `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1), RS256 only: the inner `RSAPrivateKey`.
    pub fn pkcs1_pem(&self) -> String {
        pem("RSA PRIVATE KEY", pkcs1_of(&self.private))
    }

    /// `-----BEGIN PUBLIC KEY-----` (SPKI): the public half alone.
    pub fn public_pem(&self) -> String {
        use aws_lc_rs::encoding::AsDer as _;
        let der = match &self.signer {
            Signer::Ed25519(k) => k.public_key().as_der().expect("SPKI").as_ref().to_vec(),
            Signer::Es256(k) => k.public_key().as_der().expect("SPKI").as_ref().to_vec(),
            Signer::Rs256(k) => k.public_key().as_der().expect("SPKI").as_ref().to_vec(),
            Signer::Hs256(_) => panic!("HS256 has no public key"),
        };
        pem("PUBLIC KEY", &der)
    }

    /// The public JWK members (RFC 7517/7518/8037), without `kid`/`alg`/`use`.
    pub fn public_jwk(&self) -> Value {
        match &self.signer {
            Signer::Ed25519(k) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64u(k.public_key().as_ref())}),
            Signer::Es256(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64u(&point[1..33]), "y": b64u(&point[33..65])})
            }
            Signer::Rs256(_) => {
                let ints = der_integers(pkcs1_of(&self.private));
                json!({"kty": "RSA", "n": b64u(ints[1]), "e": b64u(ints[2])})
            }
            Signer::Hs256(_) => panic!("HS256 has no public key"),
        }
    }

    /// The JWK with its private members.
    pub fn private_jwk(&self) -> Value {
        match &self.signer {
            Signer::Hs256(k) => json!({"kty": "oct", "k": b64u(k)}),
            Signer::Rs256(_) => {
                let ints = der_integers(pkcs1_of(&self.private));
                let mut jwk = self.public_jwk();
                for (name, i) in [("d", 3), ("p", 4), ("q", 5), ("dp", 6), ("dq", 7), ("qi", 8)] {
                    jwk[name] = json!(b64u(ints[i]));
                }
                jwk
            }
            _ => {
                let mut jwk = self.public_jwk();
                jwk["d"] = json!(b64u(&self.secret_core()));
                jwk
            }
        }
    }

    /// Bytes only the private key has (the Ed25519 seed, the EC scalar, the RSA `d`, the HMAC
    /// secret): they must never be found in a sealed row or in the command's output.
    pub fn secret_core(&self) -> Vec<u8> {
        use aws_lc_rs::encoding::{AsBigEndian as _, Curve25519SeedBin, EcPrivateKeyBin};
        match &self.signer {
            Signer::Ed25519(k) => {
                let seed: Curve25519SeedBin<'_> = k.seed().expect("seed").as_be_bytes().expect("seed bytes");
                seed.as_ref().to_vec()
            }
            Signer::Es256(k) => {
                let d: EcPrivateKeyBin<'_> = k.private_key().as_be_bytes().expect("scalar");
                d.as_ref().to_vec()
            }
            Signer::Rs256(_) => der_integers(pkcs1_of(&self.private))[3].to_vec(),
            Signer::Hs256(k) => k.clone(),
        }
    }

    /// Signs `header`/`payload` text as given.
    pub fn sign(&self, header: &str, payload: &str) -> String {
        self.signer.sign(header, payload)
    }

    /// Whether `token` carries a valid signature by this key: proves a token the server issued
    /// was signed with the imported key, independently of the server's own verification.
    pub fn signed(&self, token: &str) -> bool {
        let (h, p, s) = split(token);
        let message = format!("{h}.{p}");
        let sig = unb64u(&s);
        let public = |alg: &'static dyn signature::VerificationAlgorithm, key: &[u8]| {
            signature::UnparsedPublicKey::new(alg, key.to_vec()).verify(message.as_bytes(), &sig).is_ok()
        };
        match &self.signer {
            Signer::Ed25519(k) => public(&signature::ED25519, k.public_key().as_ref()),
            Signer::Es256(k) => public(&signature::ECDSA_P256_SHA256_FIXED, k.public_key().as_ref()),
            Signer::Rs256(k) => public(&signature::RSA_PKCS1_2048_8192_SHA256, k.public_key().as_ref()),
            Signer::Hs256(k) => hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, k), message.as_bytes(), &sig).is_ok(),
        }
    }
}

/// RFC 7468 text: `-----BEGIN label-----`, base64 in 64-character lines, `-----END label-----`.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// One DER element of tag `tag` at the front of `input`: `(contents, rest)`. Test code only.
fn der_element(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
    assert_eq!(input[0], tag, "DER tag");
    let (len, header) = match input[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(input[2]), 3),
        0x82 => (usize::from(u16::from_be_bytes([input[2], input[3]])), 4),
        other => panic!("DER length form {other:#x}"),
    };
    input[header..].split_at(len)
}

/// The `RSAPrivateKey` inside an RSA PKCS#8 `PrivateKeyInfo`.
fn pkcs1_of(pkcs8: &[u8]) -> &[u8] {
    let (info, _) = der_element(pkcs8, 0x30);
    let (_, rest) = der_element(info, 0x02);
    let (_, rest) = der_element(rest, 0x30);
    let (octets, _) = der_element(rest, 0x04);
    octets
}

/// The INTEGERs of a PKCS#1 `RSAPrivateKey` (version, n, e, d, p, q, dp, dq, qi), each without
/// the leading zero DER adds to keep it positive.
fn der_integers(pkcs1: &[u8]) -> Vec<&[u8]> {
    let (mut rest, _) = der_element(pkcs1, 0x30);
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (int, next) = der_element(rest, 0x02);
        out.push(if int.len() > 1 && int[0] == 0 { &int[1..] } else { int });
        rest = next;
    }
    assert_eq!(out.len(), 9, "a two-prime RSAPrivateKey");
    out
}
