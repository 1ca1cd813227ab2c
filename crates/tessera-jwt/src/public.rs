//! The keys a service that only *verifies* tessera's tokens trusts: the public halves read from
//! tessera's JWKS (`/.well-known/jwks.json`, RFC 7517 §5), for `tessera-verify`.
//!
//! The same [`crate::verify`] rules apply — they run in one shared function — only the key lookup
//! differs: here a `kid` selects among keys read from a JWKS document. Reading that document is
//! strict about what a key must be and lenient about the document around it:
//!
//! - only keys of the configured algorithm are kept (`alg` must name it exactly, `kty`/`crv`
//!   must match it); others are skipped, so a deployment changing algorithms does not break;
//! - a key whose members do not decode to a valid public key, an RSA key under 2048 bits, or one
//!   with a private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`) is skipped — a JWKS publishing
//!   private material is broken, and its keys are not trusted;
//! - HS256 is refused outright: a shared secret is never published, so a JWKS cannot carry it;
//! - a document that is not JSON, has no `keys` array, repeats a `kid`, or leaves no usable key
//!   is an error, so the caller keeps the keys it had.

use std::fmt;

use jsonwebtoken::DecodingKey;
use serde_json::Value;

use super::alg::Alg;
use super::error::JwtError;
use crate::secret::b64_decode_exact;

/// RFC 7518 §3.3: RSA keys of 2048 bits or more.
const RSA_MIN_MODULUS_BYTES: usize = 256;
/// Members only a private JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// One public key from a JWKS.
pub struct PublicKey {
    kid: String,
    alg: Alg,
    decoding: DecodingKey,
}

impl PublicKey {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.kid).field("alg", &self.alg).finish()
    }
}

/// The public keys of one algorithm read from a JWKS. Immutable: a refetch builds a new set.
#[derive(Debug, Default)]
pub struct PublicKeySet {
    keys: Vec<PublicKey>,
}

impl PublicKeySet {
    /// A set that verifies nothing: the state before the first successful fetch.
    pub fn empty() -> Self {
        PublicKeySet::default()
    }

    /// Reads the keys of `alg` from a JWKS document. Returns the set and how many keys were
    /// skipped (another algorithm, or unusable).
    pub fn from_jwks(document: &[u8], alg: Alg) -> Result<(PublicKeySet, usize), JwtError> {
        if !alg.is_asymmetric() {
            return Err(JwtError::Key("HS256 keys are never published in a JWKS".into()));
        }
        let doc: Value = serde_json::from_slice(document).map_err(|_| JwtError::Key("the JWKS is not JSON".into()))?;
        let Some(members) = doc.get("keys").and_then(Value::as_array) else {
            return Err(JwtError::Key("the JWKS has no \"keys\" array".into()));
        };
        let mut keys: Vec<PublicKey> = Vec::new();
        let mut skipped = 0;
        for jwk in members {
            match public_key(jwk, alg) {
                Some(key) if keys.iter().any(|k| k.kid == key.kid) => return Err(JwtError::DuplicateKid(key.kid)),
                Some(key) => keys.push(key),
                None => skipped += 1,
            }
        }
        if keys.is_empty() {
            return Err(JwtError::Key(format!("the JWKS has no usable {alg} key")));
        }
        Ok((PublicKeySet { keys }, skipped))
    }

    /// The key a token's `kid` names, if the JWKS had it.
    pub fn verifier(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn public_key(jwk: &Value, alg: Alg) -> Option<PublicKey> {
    let jwk = jwk.as_object()?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return None;
    }
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    // RFC 7517 §4.4 makes `alg` optional; tessera always writes it, and a key that does not say
    // it is for our algorithm is not trusted with it.
    if text("alg") != Some(alg.as_str()) || text("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let kid = text("kid").filter(|k| !k.is_empty() && k.len() <= 256)?;
    let decoding = match (alg, text("kty")?) {
        (Alg::EdDSA, "OKP") if text("crv") == Some("Ed25519") => {
            let x = text("x")?;
            b64_decode_exact::<32>(x)?;
            DecodingKey::from_ed_components(x).ok()?
        }
        (Alg::ES256, "EC") if text("crv") == Some("P-256") => {
            let (x, y) = (text("x")?, text("y")?);
            b64_decode_exact::<32>(x)?;
            b64_decode_exact::<32>(y)?;
            DecodingKey::from_ec_components(x, y).ok()?
        }
        (Alg::RS256, "RSA") => {
            let (n, e) = (text("n")?, text("e")?);
            let modulus = crate::secret::b64_decode(n)?;
            if modulus.len() < RSA_MIN_MODULUS_BYTES || modulus.first() == Some(&0) {
                return None;
            }
            DecodingKey::from_rsa_components(n, e).ok()?
        }
        _ => return None,
    };
    Some(PublicKey { kid: kid.to_owned(), alg, decoding })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::SigningKey;

    fn jwks(keys: &[&SigningKey]) -> Vec<u8> {
        let keys: Vec<Value> = keys.iter().filter_map(|k| k.public_jwk().cloned()).collect();
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }

    #[test]
    fn the_published_keys_of_each_algorithm_load_back() {
        for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256] {
            let (a, b) = (SigningKey::generate(alg).unwrap().0, SigningKey::generate(alg).unwrap().0);
            let (set, skipped) = PublicKeySet::from_jwks(&jwks(&[&a, &b]), alg).unwrap();
            assert_eq!(skipped, 0);
            assert_eq!(set.kids(), [a.kid(), b.kid()]);
            assert_eq!(set.verifier(a.kid()).unwrap().alg(), alg);
        }
    }

    #[test]
    fn keys_of_other_algorithms_are_skipped() {
        let ed = SigningKey::generate(Alg::EdDSA).unwrap().0;
        let ec = SigningKey::generate(Alg::ES256).unwrap().0;
        let (set, skipped) = PublicKeySet::from_jwks(&jwks(&[&ed, &ec]), Alg::EdDSA).unwrap();
        assert_eq!((set.kids(), skipped), (vec![ed.kid().to_owned()], 1));
        assert!(PublicKeySet::from_jwks(&jwks(&[&ed]), Alg::ES256).is_err());
        assert!(PublicKeySet::from_jwks(&jwks(&[&ed]), Alg::HS256).is_err());
    }

    #[test]
    fn junk_documents_are_errors() {
        for junk in [&b""[..], b"<html>", b"{}", b"{\"keys\":{}}", b"{\"keys\":[]}", b"{\"keys\":[1,\"x\",null]}"] {
            assert!(PublicKeySet::from_jwks(junk, Alg::EdDSA).is_err(), "{}", String::from_utf8_lossy(junk));
        }
        let key = SigningKey::generate(Alg::EdDSA).unwrap().0;
        let twice = serde_json::to_vec(&json!({ "keys": [key.public_jwk(), key.public_jwk()] })).unwrap();
        assert!(matches!(PublicKeySet::from_jwks(&twice, Alg::EdDSA), Err(JwtError::DuplicateKid(_))));
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let key = SigningKey::generate(Alg::EdDSA).unwrap().0;
        let good = key.public_jwk().unwrap().clone();
        let altered = |member: &str, value: Value| {
            let mut jwk = good.clone();
            jwk[member] = value;
            jwk
        };
        let mut no_alg = good.clone();
        no_alg.as_object_mut().unwrap().remove("alg");
        let bad = [
            altered("x", json!("AAAA")),
            altered("x", json!(format!("{}=", good["x"].as_str().unwrap()))),
            altered("crv", json!("Ed448")),
            altered("kty", json!("EC")),
            altered("alg", json!("eddsa")),
            altered("use", json!("enc")),
            altered("d", json!(good["x"])),
            altered("kid", json!("")),
            no_alg,
        ];
        for (i, jwk) in bad.into_iter().enumerate() {
            let mut other = SigningKey::generate(Alg::EdDSA).unwrap().0.public_jwk().unwrap().clone();
            other["kid"] = json!(format!("other{i}"));
            let doc = serde_json::to_vec(&json!({ "keys": [jwk, other] })).unwrap();
            let (set, skipped) = PublicKeySet::from_jwks(&doc, Alg::EdDSA).unwrap();
            assert_eq!((set.kids(), skipped), (vec![format!("other{i}")], 1), "case {i}");
        }
    }
}
