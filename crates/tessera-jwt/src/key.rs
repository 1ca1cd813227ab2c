//! One signing key: its `kid`, its algorithm, the jsonwebtoken halves used to sign and verify,
//! and the public JWK that other services fetch from `/.well-known/jwks.json`.
//!
//! Private keys are kept (in the store, sealed or not) as PKCS#8 DER (RFC 5208) for the three
//! asymmetric algorithms and as 32 raw bytes for HS256. The public half is always *derived* from
//! the private key by aws-lc-rs, never stored next to it, so the two cannot disagree; a
//! sign-then-verify self-test at load catches a corrupted row before it signs anything.
//!
//! The JWK carries exactly the public members RFC 7517 §4, RFC 7518 §6 and RFC 8037 §2 define
//! (`kty`, `crv`, `x`, `y`, `n`, `e`) plus `kid`, `alg` and `use: "sig"` — never `d`, `p`, `q`,
//! `dp`, `dq`, `qi` or `k`. An HS256 key has no public half and no JWK at all.

use std::fmt;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};

use super::alg::Alg;
use super::error::JwtError;
use crate::secret::{b64, random_bytes};

/// RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
const HS256_SECRET_LEN: usize = 32;
/// RFC 7518 §3.3: RSA keys of 2048 bits or more.
const RSA_MIN_MODULUS_BYTES: usize = 256;

/// A key tessera signs access tokens with (and verifies them against).
pub struct SigningKey {
    kid: String,
    alg: Alg,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Option<Value>,
}

impl SigningKey {
    /// Makes a new key with a fresh random `kid`. Returns the key and its private bytes — the
    /// form [`SigningKey::from_private`] reads back, and the only thing a store needs to keep.
    pub fn generate(alg: Alg) -> Result<(SigningKey, Vec<u8>), JwtError> {
        let kid = b64(&random_bytes::<8>());
        let rng = SystemRandom::new();
        let private = match alg {
            Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng).map(|d| d.as_ref().to_vec()),
            Alg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map(|d| d.as_ref().to_vec())
            }
            Alg::RS256 => {
                RsaKeyPair::generate(KeySize::Rsa2048).and_then(|k| k.as_der()).map(|der| der.as_ref().to_vec())
            }
            Alg::HS256 => Ok(random_bytes::<HS256_SECRET_LEN>().to_vec()),
        }
        .map_err(|_| JwtError::Key(format!("{alg} key generation failed")))?;
        let key = SigningKey::from_private(&kid, alg, &private)?;
        Ok((key, private))
    }

    /// The longest `kid` a key may have (an RFC 7638 thumbprint is 43 characters).
    pub const MAX_KID_LEN: usize = 64;

    /// Whether `kid` may name a key: 1 to [`Self::MAX_KID_LEN`] characters of the base64url
    /// alphabet. Generated keys have 11 (8 random bytes), imported ones their thumbprint or
    /// the operator's choice. Never a `.`, `/` or space: a `kid` is safe in a path, a log line
    /// and a header, and no `kid` is spelt like a server secret's name (`csrf.sealed`), whose
    /// seal uses the same associated-data label.
    pub fn is_valid_kid(kid: &str) -> bool {
        !kid.is_empty()
            && kid.len() <= Self::MAX_KID_LEN
            && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// Rebuilds a key from its `kid` and private bytes (as [`SigningKey::generate`] returned
    /// them, or [`crate::import_private_key`] read them).
    pub fn from_private(kid: &str, alg: Alg, private: &[u8]) -> Result<SigningKey, JwtError> {
        if !Self::is_valid_kid(kid) {
            return Err(JwtError::Key(format!(
                "a kid is 1 to {} characters of A-Z, a-z, 0-9, '-' and '_'",
                Self::MAX_KID_LEN
            )));
        }
        let (encoding, decoding, jwk) = match alg {
            Alg::EdDSA => eddsa(private)?,
            Alg::ES256 => es256(private)?,
            Alg::RS256 => rs256(private)?,
            Alg::HS256 => hs256(private)?,
        };
        let jwk = jwk.map(|mut members| {
            members.insert("kid".into(), json!(kid));
            members.insert("alg".into(), json!(alg.as_str()));
            members.insert("use".into(), json!("sig"));
            Value::Object(members)
        });
        let key = SigningKey { kid: kid.to_owned(), alg, encoding, decoding, jwk };
        key.self_test()?;
        Ok(key)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public JWK, or `None` for HS256, whose key is a shared secret and is never published.
    pub fn public_jwk(&self) -> Option<&Value> {
        self.jwk.as_ref()
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Signs and verifies a fixed message: a key whose halves disagree (a damaged row, a bad
    /// PKCS#1 extraction) fails here, at load, instead of minting tokens nobody accepts.
    fn self_test(&self) -> Result<(), JwtError> {
        let message = b"tessera signing key self-test";
        let alg = self.alg.to_jsonwebtoken();
        let signature = jsonwebtoken::crypto::sign(message, &self.encoding, alg)
            .map_err(|e| JwtError::Key(format!("{} key cannot sign: {e}", self.alg)))?;
        match jsonwebtoken::crypto::verify(&signature, message, &self.decoding, alg) {
            Ok(true) => Ok(()),
            _ => Err(JwtError::Key(format!("{} key fails its self-test", self.alg))),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private", &"[redacted]")
            .finish()
    }
}

type Halves = (EncodingKey, DecodingKey, Option<serde_json::Map<String, Value>>);

fn members(pairs: &[(&str, String)]) -> serde_json::Map<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), Value::String(v.clone()))).collect()
}

fn eddsa(pkcs8: &[u8]) -> Result<Halves, JwtError> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| JwtError::Key(format!("EdDSA: {e}")))?;
    let x = b64(pair.public_key().as_ref());
    let decoding = DecodingKey::from_ed_components(&x).map_err(|e| JwtError::Key(format!("EdDSA: {e}")))?;
    // RFC 8037 §2: an Ed25519 public key is the OKP key type with the 32 raw bytes as `x`.
    let jwk = members(&[("kty", "OKP".into()), ("crv", "Ed25519".into()), ("x", x)]);
    Ok((EncodingKey::from_ed_der(pkcs8), decoding, Some(jwk)))
}

fn es256(pkcs8: &[u8]) -> Result<Halves, JwtError> {
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
        .map_err(|e| JwtError::Key(format!("ES256: {e}")))?;
    // The uncompressed SEC 1 point: 0x04 || x || y, 32 bytes each on P-256.
    let point = pair.public_key().as_ref();
    let (x, y) = match point {
        [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
        _ => return Err(JwtError::Key("ES256: unexpected public key encoding".into())),
    };
    let (x, y) = (b64(x), b64(y));
    let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| JwtError::Key(format!("ES256: {e}")))?;
    // RFC 7518 §6.2.1.
    let jwk = members(&[("kty", "EC".into()), ("crv", "P-256".into()), ("x", x), ("y", y)]);
    Ok((EncodingKey::from_ec_der(pkcs8), decoding, Some(jwk)))
}

fn rs256(pkcs8: &[u8]) -> Result<Halves, JwtError> {
    let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| JwtError::Key(format!("RS256: {e}")))?;
    if pair.public_modulus_len() < RSA_MIN_MODULUS_BYTES {
        return Err(JwtError::Key("RS256: the key is shorter than 2048 bits".into()));
    }
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    // jsonwebtoken's aws-lc-rs signer reads an RFC 8017 `RSAPrivateKey`, not PKCS#8, and
    // aws-lc-rs only exports PKCS#8: unwrap the one from the other.
    let pkcs1 = pkcs8_rsa_private_key(pkcs8).ok_or_else(|| JwtError::Key("RS256: not an RSA PKCS#8 key".into()))?;
    let decoding = DecodingKey::from_rsa_raw_components(&public.n, &public.e);
    // RFC 7518 §6.3.1: `n` and `e` as unsigned big-endian integers without leading zeros.
    let jwk = members(&[("kty", "RSA".into()), ("n", b64(&public.n)), ("e", b64(&public.e))]);
    Ok((EncodingKey::from_rsa_der(pkcs1), decoding, Some(jwk)))
}

fn hs256(secret: &[u8]) -> Result<Halves, JwtError> {
    if secret.len() < HS256_SECRET_LEN {
        return Err(JwtError::Key("HS256: the secret is shorter than 256 bits".into()));
    }
    Ok((EncodingKey::from_secret(secret), DecodingKey::from_secret(secret), None))
}

/// DER of the OID rsaEncryption, 1.2.840.113549.1.1.1 (RFC 8017 A.1).
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo` (RFC 5208 §5) whose algorithm is
/// rsaEncryption: that is the RFC 8017 `RSAPrivateKey`.
fn pkcs8_rsa_private_key(pkcs8: &[u8]) -> Option<&[u8]> {
    let (info, trailing) = der_take(pkcs8, 0x30)?;
    if !trailing.is_empty() {
        return None;
    }
    let (version, info) = der_take(info, 0x02)?;
    if version != [0] {
        return None;
    }
    let (algorithm, info) = der_take(info, 0x30)?;
    let (oid, _parameters) = der_take(algorithm, 0x06)?;
    if oid != RSA_ENCRYPTION_OID {
        return None;
    }
    let (private_key, _attributes) = der_take(info, 0x04)?;
    Some(private_key)
}

/// Reads one DER element with tag `tag`: returns its contents and what follows it. Lengths up
/// to 65535 bytes, which covers RSA keys up to 8192 bits.
pub(crate) fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        short if short < 0x80 => (usize::from(short), rest),
        0x81 => {
            let (&len, rest) = rest.split_first()?;
            (usize::from(len), rest)
        }
        0x82 => {
            let (len, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*len)), rest)
        }
        _ => return None,
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Alg; 4] = [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256];
    const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];

    #[test]
    fn generated_keys_load_back_from_their_private_bytes() {
        for alg in ALL {
            let (key, private) = SigningKey::generate(alg).unwrap();
            assert_eq!(key.kid().len(), 11);
            let again = SigningKey::from_private(key.kid(), alg, &private).unwrap();
            assert_eq!(again.public_jwk(), key.public_jwk(), "{alg}");
        }
    }

    #[test]
    fn jwk_has_public_members_only() {
        let expected: [(Alg, &[&str]); 3] = [
            (Alg::EdDSA, &["alg", "crv", "kid", "kty", "use", "x"]),
            (Alg::ES256, &["alg", "crv", "kid", "kty", "use", "x", "y"]),
            (Alg::RS256, &["alg", "e", "kid", "kty", "n", "use"]),
        ];
        for (alg, members) in expected {
            let (key, _) = SigningKey::generate(alg).unwrap();
            let jwk = key.public_jwk().unwrap().as_object().unwrap();
            let mut names: Vec<&str> = jwk.keys().map(String::as_str).collect();
            names.sort_unstable();
            assert_eq!(names, members, "{alg}");
            for private in PRIVATE_MEMBERS {
                assert!(!jwk.contains_key(private), "{alg} publishes {private}");
            }
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["kid"], key.kid());
        }
    }

    #[test]
    fn jwk_members_have_the_rfc_sizes() {
        let (ed, _) = SigningKey::generate(Alg::EdDSA).unwrap();
        assert_eq!(ed.public_jwk().unwrap()["x"].as_str().unwrap().len(), 43);
        let (ec, _) = SigningKey::generate(Alg::ES256).unwrap();
        assert_eq!(ec.public_jwk().unwrap()["x"].as_str().unwrap().len(), 43);
        assert_eq!(ec.public_jwk().unwrap()["y"].as_str().unwrap().len(), 43);
        let (rsa, _) = SigningKey::generate(Alg::RS256).unwrap();
        assert_eq!(rsa.public_jwk().unwrap()["n"].as_str().unwrap().len(), 342);
        assert_eq!(rsa.public_jwk().unwrap()["e"], "AQAB");
    }

    #[test]
    fn hs256_has_no_public_jwk() {
        let (key, private) = SigningKey::generate(Alg::HS256).unwrap();
        assert!(key.public_jwk().is_none());
        assert_eq!(private.len(), 32);
    }

    #[test]
    fn debug_output_has_no_private_material() {
        for alg in ALL {
            let (key, private) = SigningKey::generate(alg).unwrap();
            let debug = format!("{key:?}");
            assert!(debug.contains("[redacted]"));
            assert!(debug.contains(key.kid()));
            assert!(!debug.contains(&b64(&private)), "{alg}");
            // No run of bytes from the private key shows up in any common encoding either.
            let hex: String = private.iter().map(|b| format!("{b:02x}")).collect();
            assert!(!debug.contains(&hex[hex.len() - 16..]), "{alg}");
            assert!(debug.len() < 120, "{alg}: {debug}");
        }
    }

    #[test]
    fn bad_private_bytes_and_kids_are_refused() {
        let (_, private) = SigningKey::generate(Alg::EdDSA).unwrap();
        assert!(SigningKey::from_private("../../etc/p", Alg::EdDSA, &private).is_err());
        assert!(SigningKey::from_private("", Alg::EdDSA, &private).is_err());
        assert!(SigningKey::from_private("with space", Alg::EdDSA, &private).is_err());
        assert!(SigningKey::from_private("csrf.sealed", Alg::EdDSA, &private).is_err());
        assert!(SigningKey::from_private(&"k".repeat(65), Alg::EdDSA, &private).is_err());
        assert!(SigningKey::from_private(&"k".repeat(64), Alg::EdDSA, &private).is_ok());
        assert!(SigningKey::from_private("short", Alg::EdDSA, &private).is_ok());
        let kid = b64(&[7u8; 8]);
        // An EdDSA key is not an ES256 or RS256 key.
        assert!(SigningKey::from_private(&kid, Alg::ES256, &private).is_err());
        assert!(SigningKey::from_private(&kid, Alg::RS256, &private).is_err());
        assert!(SigningKey::from_private(&kid, Alg::EdDSA, &private[..private.len() - 1]).is_err());
        assert!(SigningKey::from_private(&kid, Alg::HS256, &[0u8; 31]).is_err());
        assert!(SigningKey::from_private(&kid, Alg::RS256, b"").is_err());
    }

    #[test]
    fn der_reader_refuses_truncated_input() {
        let (_, private) = SigningKey::generate(Alg::RS256).unwrap();
        assert!(pkcs8_rsa_private_key(&private).is_some());
        for cut in [0, 1, 2, 10, private.len() / 2, private.len() - 1] {
            assert!(pkcs8_rsa_private_key(&private[..cut]).is_none(), "cut at {cut}");
        }
        assert_eq!(der_take(&[0x04, 0x83, 0, 0, 1, 0], 0x04), None);
        assert_eq!(der_take(&[0x04, 0x02, 9, 8, 7], 0x04), Some((&[9u8, 8][..], &[7u8][..])));
    }
}
