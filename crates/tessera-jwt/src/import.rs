//! Bringing a signing key made elsewhere (`tessera keys import`): a PEM or JWK private key in,
//! validated, and turned into the one form a store keeps — PKCS#8 DER for the asymmetric
//! algorithms, the raw secret for HS256 — so an imported key is loaded, sealed and rotated
//! exactly like a generated one.
//!
//! Accepted:
//!
//! - PEM (RFC 7468): `PRIVATE KEY` (PKCS#8, RFC 5208/5958) holding an Ed25519, P-256 or RSA key;
//!   `EC PRIVATE KEY` (SEC 1, RFC 5915) on P-256; `RSA PRIVATE KEY` (PKCS#1, RFC 8017). An
//!   `EC PARAMETERS` block in front (what `openssl ecparam -genkey` writes) is skipped.
//! - JWK (RFC 7517), alone or as a JWK Set with exactly one key: `OKP`/`Ed25519` with `d`,
//!   `EC`/`P-256` with `d`, `RSA` with `d`, `p`, `q`, `dp`, `dq`, `qi`, and `oct` (HS256).
//!
//! Refused, each with its own message: public keys and certificates, encrypted keys, other
//! curves (P-384, P-521, secp256k1, Ed448, X25519), RSA-PSS keys and RSA keys under 2048 bits,
//! HS256 secrets under 256 bits, a JWK whose `alg`, `use` or `key_ops` say it is for something
//! else, and anything malformed. Messages never quote key material: a JSON error is reported
//! by position only.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use super::alg::Alg;
use super::error::JwtError;
use super::key::{SigningKey, der_take};
use crate::secret::{b64, random_bytes};

/// More than any key file: an 8192-bit RSA key in PEM is under 7 KiB.
pub const MAX_IMPORT_LEN: usize = 64 * 1024;

/// A private key read by [`import_private_key`], ready to be given a `kid` and stored.
pub struct ImportedKey {
    alg: Alg,
    private: Zeroizing<Vec<u8>>,
    jwk_kid: Option<String>,
    thumbprint: Option<String>,
}

impl ImportedKey {
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The private key in the form [`SigningKey::from_private`] reads and a store keeps.
    pub fn private(&self) -> &[u8] {
        &self.private
    }

    /// The RFC 7638 thumbprint of the public key (base64url SHA-256, 43 characters); `None`
    /// for HS256, whose key has no public half.
    pub fn thumbprint(&self) -> Option<&str> {
        self.thumbprint.as_deref()
    }

    /// The `kid` the key is stored under: `chosen` (the operator's `--kid`), else the `kid` of
    /// the JWK, else the RFC 7638 thumbprint — so importing the same public key twice names
    /// the same `kid` — and for HS256, whose thumbprint would publish a hash of the secret in
    /// every token header, 8 random bytes as for a generated key.
    pub fn kid(&self, chosen: Option<&str>) -> Result<String, JwtError> {
        let (kid, from) = match (chosen, &self.jwk_kid, &self.thumbprint) {
            (Some(k), _, _) => (k.to_owned(), "--kid"),
            (None, Some(k), _) => (k.clone(), "the JWK's kid"),
            (None, None, Some(t)) => (t.clone(), "the thumbprint"),
            (None, None, None) => (b64(&random_bytes::<8>()), "random"),
        };
        if !SigningKey::is_valid_kid(&kid) {
            return Err(JwtError::Key(format!(
                "{from} is not a usable kid: a kid is 1 to {} characters of A-Z, a-z, 0-9, '-' and '_'{}",
                SigningKey::MAX_KID_LEN,
                if from == "--kid" { "" } else { " (choose one with --kid)" }
            )));
        }
        Ok(kid)
    }
}

impl fmt::Debug for ImportedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportedKey")
            .field("alg", &self.alg)
            .field("thumbprint", &self.thumbprint)
            .field("private", &"[redacted]")
            .finish()
    }
}

/// Private key bytes, wiped when dropped.
type Private = Zeroizing<Vec<u8>>;

fn refuse(message: impl Into<String>) -> JwtError {
    JwtError::Key(message.into())
}

/// Reads one private key from PEM or JWK text (see the module documentation).
pub fn import_private_key(input: &[u8]) -> Result<ImportedKey, JwtError> {
    if input.len() > MAX_IMPORT_LEN {
        return Err(refuse(format!("the input is larger than {} KiB: not a key file", MAX_IMPORT_LEN / 1024)));
    }
    let text = std::str::from_utf8(input).map_err(|_| {
        refuse("the input is not text: give a PEM file or a JWK (convert DER with `openssl pkey -inform DER`)")
    })?;
    let text = text.trim_start_matches('\u{feff}').trim();
    let (alg, private, jwk_kid) = if text.starts_with('{') {
        let (alg, private, kid) = from_jwk_text(text)?;
        (alg, private, kid)
    } else if text.contains("-----BEGIN ") {
        let (alg, private) = from_pem(text)?;
        (alg, private, None)
    } else if text.is_empty() {
        return Err(refuse("the input is empty"));
    } else {
        return Err(refuse(
            "neither PEM nor JWK: expected a '-----BEGIN PRIVATE KEY-----' block or a JSON Web Key object",
        ));
    };
    // The same checks a stored key passes when it is loaded, self-test included: what imports
    // is what will sign.
    let key = SigningKey::from_private("import-check", alg, &private)?;
    let thumbprint = key.public_jwk().map(thumbprint);
    Ok(ImportedKey { alg, private, jwk_kid, thumbprint })
}

/// RFC 7638: SHA-256 of the required public members, in lexicographic order, without
/// whitespace. The members are base64url strings or fixed names, so no JSON escaping applies.
fn thumbprint(jwk: &Value) -> String {
    let required: &[&str] = match jwk["kty"].as_str() {
        Some("OKP") => &["crv", "kty", "x"],
        Some("EC") => &["crv", "kty", "x", "y"],
        _ => &["e", "kty", "n"],
    };
    let members: BTreeMap<&str, &str> =
        required.iter().map(|m| (*m, jwk.get(*m).and_then(Value::as_str).unwrap_or_default())).collect();
    let canonical = serde_json::to_string(&members).unwrap_or_default();
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
}

// --- PEM -------------------------------------------------------------------------------------

/// The blocks of a PEM file: `(label, decoded body)`. Text outside the blocks is allowed
/// (RFC 7468 §5.2); headers inside one (`Proc-Type: 4,ENCRYPTED`) are not.
fn pem_blocks(text: &str) -> Result<Vec<(String, Private)>, JwtError> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let label_end = after.find("-----").ok_or_else(|| refuse("PEM: a BEGIN line is not closed by '-----'"))?;
        let label = &after[..label_end];
        if label.len() > 40 || !label.bytes().all(|b| b.is_ascii_uppercase() || b == b' ' || b.is_ascii_digit()) {
            return Err(refuse("PEM: the BEGIN line has no valid label"));
        }
        let body = &after[label_end + "-----".len()..];
        let end_line = format!("-----END {label}-----");
        let end = body.find(&end_line).ok_or_else(|| refuse(format!("PEM: no '{end_line}' line")))?;
        let encoded: Zeroizing<String> =
            Zeroizing::new(body[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect());
        if encoded.contains(':') {
            return Err(refuse(
                "PEM: the block has headers (an encrypted legacy key, Proc-Type: 4,ENCRYPTED): decrypt it \
                 first, e.g. `openssl pkey -in key.pem | tessera keys import -`",
            ));
        }
        let der =
            STANDARD.decode(encoded.as_bytes()).map_err(|_| refuse(format!("PEM: the {label} block is not base64")))?;
        blocks.push((label.to_owned(), Zeroizing::new(der)));
        rest = &body[end + end_line.len()..];
    }
    Ok(blocks)
}

fn from_pem(text: &str) -> Result<(Alg, Private), JwtError> {
    let blocks: Vec<_> = pem_blocks(text)?.into_iter().filter(|(label, _)| label != "EC PARAMETERS").collect();
    let [(label, der)] = blocks.as_slice() else {
        return Err(refuse(format!("PEM: {} key blocks; give exactly one private key per import", blocks.len())));
    };
    match label.as_str() {
        "PRIVATE KEY" => from_pkcs8(der),
        "EC PRIVATE KEY" => from_sec1(der),
        "RSA PRIVATE KEY" => {
            let pair = RsaKeyPair::from_der(der)
                .map_err(|e| refuse(format!("PEM: not a valid RSA PRIVATE KEY ({e}){RSA_SIZES}")))?;
            rsa_pkcs8(&pair)
        }
        "ENCRYPTED PRIVATE KEY" => Err(refuse(
            "an encrypted PKCS#8 key: decrypt it on the way in, e.g. `openssl pkey -in key.pem | tessera keys import -`",
        )),
        "PUBLIC KEY" | "RSA PUBLIC KEY" | "EC PUBLIC KEY" | "CERTIFICATE" => Err(refuse(format!(
            "a {label} holds no private key: a signing key can only be imported with its private half"
        ))),
        "OPENSSH PRIVATE KEY" => Err(refuse(
            "the OpenSSH key format is not supported: give a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) or a JWK",
        )),
        other => Err(refuse(format!("PEM: a '{other}' block is not a private key tessera can import"))),
    }
}

/// Said whenever aws-lc-rs refuses an RSA key, which it does for sizes it does not support
/// before tessera's own size check could run.
const RSA_SIZES: &str = "; RS256 keys have 2048 to 8192 bits";

// DER of the object identifiers that name key types and curves.
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];
const OID_X25519: &[u8] = &[0x2b, 0x65, 0x6e];
const OID_X448: &[u8] = &[0x2b, 0x65, 0x6f];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];

/// The algorithm OID of a PKCS#8 `PrivateKeyInfo`/`OneAsymmetricKey` and, for EC keys, the
/// named curve of its parameters.
fn pkcs8_algorithm(der: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (info, _) = der_take(der, 0x30)?;
    let (version, info) = der_take(info, 0x02)?;
    if version != [0] && version != [1] {
        return None;
    }
    let (algorithm, _) = der_take(info, 0x30)?;
    let (oid, parameters) = der_take(algorithm, 0x06)?;
    Some((oid, der_take(parameters, 0x06).map(|(curve, _)| curve)))
}

fn curve_name(oid: Option<&[u8]>) -> &'static str {
    match oid {
        Some(OID_P384) => "P-384",
        Some(OID_P521) => "P-521",
        Some(OID_SECP256K1) => "secp256k1",
        Some(OID_P256) => "P-256",
        _ => "an unknown curve",
    }
}

fn wrong_curve(name: &str) -> JwtError {
    refuse(format!("an EC key on {name}: tessera signs ES256, whose curve is P-256, and nothing else"))
}

fn from_pkcs8(der: &[u8]) -> Result<(Alg, Private), JwtError> {
    let (oid, curve) = pkcs8_algorithm(der).ok_or_else(|| refuse("PEM: the PRIVATE KEY block is not PKCS#8"))?;
    let invalid = |e: aws_lc_rs::error::KeyRejected| refuse(format!("not a valid key ({e})"));
    match oid {
        OID_ED25519 => {
            let pair = Ed25519KeyPair::from_pkcs8(der).map_err(invalid)?;
            ed25519_pkcs8(&pair)
        }
        OID_EC_PUBLIC_KEY if curve == Some(OID_P256) => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(invalid)?;
            es256_pkcs8(&pair)
        }
        OID_EC_PUBLIC_KEY => Err(wrong_curve(curve_name(curve))),
        OID_RSA => {
            let pair =
                RsaKeyPair::from_pkcs8(der).map_err(|e| refuse(format!("not a valid RSA key ({e}){RSA_SIZES}")))?;
            rsa_pkcs8(&pair)
        }
        OID_RSA_PSS => Err(refuse("an RSASSA-PSS key: tessera signs RS256 (PKCS#1 v1.5) with an rsaEncryption key")),
        OID_ED448 => Err(refuse("an Ed448 key: tessera's EdDSA is Ed25519 only")),
        OID_X25519 | OID_X448 => Err(refuse("an X25519/X448 key is for key agreement, not for signing")),
        _ => Err(refuse("a PKCS#8 key of a type tessera does not sign with (Ed25519, P-256 or RSA)")),
    }
}

/// SEC 1 `ECPrivateKey` (RFC 5915): the curve is in the `[0]` parameters, when present.
fn from_sec1(der: &[u8]) -> Result<(Alg, Private), JwtError> {
    let curve = der_take(der, 0x30).and_then(|(key, _)| {
        let (_, key) = der_take(key, 0x02)?;
        let (_, key) = der_take(key, 0x04)?;
        let (parameters, _) = der_take(key, 0xa0)?;
        der_take(parameters, 0x06).map(|(oid, _)| oid)
    });
    if curve.is_some_and(|c| c != OID_P256) {
        return Err(wrong_curve(curve_name(curve)));
    }
    let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
        .map_err(|e| refuse(format!("PEM: not a valid P-256 EC PRIVATE KEY ({e})")))?;
    es256_pkcs8(&pair)
}

fn ed25519_pkcs8(pair: &Ed25519KeyPair) -> Result<(Alg, Private), JwtError> {
    let doc = pair.to_pkcs8().map_err(|_| refuse("EdDSA: cannot export the key"))?;
    Ok((Alg::EdDSA, Zeroizing::new(doc.as_ref().to_vec())))
}

fn es256_pkcs8(pair: &EcdsaKeyPair) -> Result<(Alg, Private), JwtError> {
    let doc = pair.to_pkcs8v1().map_err(|_| refuse("ES256: cannot export the key"))?;
    Ok((Alg::ES256, Zeroizing::new(doc.as_ref().to_vec())))
}

fn rsa_pkcs8(pair: &RsaKeyPair) -> Result<(Alg, Private), JwtError> {
    if pair.public_modulus_len() < 256 {
        return Err(refuse(format!(
            "an RSA key of {} bits: RS256 keys have 2048 to 8192 bits",
            pair.public_modulus_len() * 8
        )));
    }
    let der = pair.as_der().map_err(|_| refuse("RS256: cannot export the key"))?;
    Ok((Alg::RS256, Zeroizing::new(der.as_ref().to_vec())))
}

// --- JWK -------------------------------------------------------------------------------------

/// The members of a private JWK tessera reads (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2). Others
/// (`x5c`, `ext`, …) are ignored; a repeated member is an error.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<String>,
    k: Option<String>,
    n: Option<String>,
    e: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
    oth: Option<serde::de::IgnoredAny>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    key_ops: Option<Vec<String>>,
}

/// The private members are wiped when the JWK is dropped.
impl Drop for Jwk {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        for secret in [&mut self.d, &mut self.k, &mut self.p, &mut self.q, &mut self.dp, &mut self.dq, &mut self.qi]
            .into_iter()
            .flatten()
        {
            secret.zeroize();
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JwkSet {
    keys: Vec<Jwk>,
}

/// A JSON error without the text it choked on (which may be key material).
fn json_error(e: &serde_json::Error) -> JwtError {
    let message = e.to_string();
    let safe = ["missing field", "duplicate field", "unknown field"].iter().any(|p| message.starts_with(p));
    if safe {
        refuse(format!("JWK: {message}"))
    } else {
        refuse(format!("JWK: not a valid JSON Web Key (error at line {}, column {})", e.line(), e.column()))
    }
}

fn from_jwk_text(text: &str) -> Result<(Alg, Private, Option<String>), JwtError> {
    let shape: Value = serde_json::from_str(text).map_err(|e| json_error(&e))?;
    let jwk = if shape.get("keys").is_some() {
        let mut set: JwkSet = serde_json::from_str(text).map_err(|e| json_error(&e))?;
        if set.keys.len() != 1 {
            return Err(refuse(format!("JWK Set with {} keys: give exactly one key per import", set.keys.len())));
        }
        set.keys.remove(0)
    } else {
        serde_json::from_str(text).map_err(|e| json_error(&e))?
    };
    from_jwk(jwk)
}

fn member(jwk_value: Option<&str>, name: &str) -> Result<Zeroizing<Vec<u8>>, JwtError> {
    let value = jwk_value.ok_or_else(|| refuse(format!("JWK: the member {name:?} is missing")))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map(Zeroizing::new)
        .map_err(|_| refuse(format!("JWK: {name:?} is not base64url without padding")))
}

fn private_member(value: &Option<String>, name: &str) -> Result<Zeroizing<Vec<u8>>, JwtError> {
    member(value.as_deref(), name)
}

fn from_jwk(mut jwk: Jwk) -> Result<(Alg, Private, Option<String>), JwtError> {
    if let Some(usage) = jwk.usage.as_deref().filter(|u| *u != "sig") {
        return Err(refuse(format!(
            "JWK: \"use\" is {:?}, not \"sig\": this key is not for signing",
            printable(usage)
        )));
    }
    if let Some(ops) = &jwk.key_ops
        && !ops.iter().any(|op| op == "sign")
    {
        return Err(refuse("JWK: \"key_ops\" does not include \"sign\": this key is not for signing"));
    }
    let public_only = |what: &str| {
        refuse(format!(
            "JWK: a public {what} key (no private member): a signing key can only be imported with its private half"
        ))
    };
    let (alg, private) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("OKP", Some("Ed25519")) => {
            let x = member(jwk.x.as_deref(), "x")?;
            if jwk.d.is_none() {
                return Err(public_only("Ed25519"));
            }
            let d = private_member(&jwk.d, "d")?;
            let pair = Ed25519KeyPair::from_seed_and_public_key(&d, &x)
                .map_err(|_| refuse("JWK: \"d\" and \"x\" are not one Ed25519 key"))?;
            ed25519_pkcs8(&pair)?
        }
        ("OKP", Some("Ed448")) => return Err(refuse("an Ed448 key: tessera's EdDSA is Ed25519 only")),
        ("OKP", Some("X25519" | "X448")) => {
            return Err(refuse("an X25519/X448 key is for key agreement, not for signing"));
        }
        ("EC", Some("P-256")) => {
            let (x, y) = (member(jwk.x.as_deref(), "x")?, member(jwk.y.as_deref(), "y")?);
            if jwk.d.is_none() {
                return Err(public_only("EC"));
            }
            let d = private_member(&jwk.d, "d")?;
            if x.len() != 32 || y.len() != 32 || d.len() != 32 {
                return Err(refuse("JWK: a P-256 key has 32-byte \"x\", \"y\" and \"d\""));
            }
            let mut point = vec![0x04];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let pair = EcdsaKeyPair::from_private_key_and_public_key(&ECDSA_P256_SHA256_FIXED_SIGNING, &d, &point)
                .map_err(|_| refuse("JWK: \"d\", \"x\" and \"y\" are not one P-256 key"))?;
            es256_pkcs8(&pair)?
        }
        ("EC", Some(crv)) => return Err(wrong_curve(printable(crv).as_str())),
        ("RSA", _) => {
            let (n, e) = (member(jwk.n.as_deref(), "n")?, member(jwk.e.as_deref(), "e")?);
            if jwk.d.is_none() {
                return Err(public_only("RSA"));
            }
            if jwk.oth.is_some() {
                return Err(refuse("JWK: multi-prime RSA keys (\"oth\") are not supported"));
            }
            let components = KeyPairComponents {
                public_key: PublicKeyComponents { n: n.as_slice(), e: e.as_slice() },
                d: private_member(&jwk.d, "d")?,
                p: private_member(&jwk.p, "p")?,
                q: private_member(&jwk.q, "q")?,
                dP: private_member(&jwk.dp, "dp")?,
                dQ: private_member(&jwk.dq, "dq")?,
                qInv: private_member(&jwk.qi, "qi")?,
            };
            let pair = RsaKeyPair::from_components(&components)
                .map_err(|e| refuse(format!("JWK: the RSA members are not one valid key ({e}){RSA_SIZES}")))?;
            rsa_pkcs8(&pair)?
        }
        ("oct", _) => {
            let k = private_member(&jwk.k, "k")?;
            if k.len() < 32 {
                return Err(refuse(format!(
                    "an HS256 secret of {} bytes: it must be at least 32 bytes (256 bits, RFC 7518 §3.2)",
                    k.len()
                )));
            }
            (Alg::HS256, k)
        }
        ("OKP" | "EC", _) => return Err(refuse("JWK: \"crv\" is missing or not a curve tessera signs with")),
        (kty, _) => {
            return Err(refuse(format!(
                "JWK: key type {:?} is not one tessera signs with (OKP, EC, RSA, oct)",
                printable(kty)
            )));
        }
    };
    if let Some(named) = jwk.alg.as_deref()
        && named != alg.as_str()
    {
        return Err(refuse(format!("JWK: \"alg\" is {:?}, but this key can only sign {alg}", printable(named))));
    }
    Ok((alg, private, jwk.kid.take()))
}

/// A value from the input, fit for a message: short and printable.
fn printable(s: &str) -> String {
    s.chars().take(32).map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    fn message(result: Result<ImportedKey, JwtError>) -> String {
        match result {
            Ok(k) => panic!("imported {k:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn generated_keys_import_from_pem_and_keep_their_public_half() {
        for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256] {
            let (key, private) = SigningKey::generate(alg).unwrap();
            let imported = import_private_key(pem("PRIVATE KEY", &private).as_bytes()).unwrap();
            assert_eq!(imported.alg(), alg);
            let again = SigningKey::from_private(key.kid(), alg, imported.private()).unwrap();
            assert_eq!(again.public_jwk(), key.public_jwk(), "{alg}");
            let kid = imported.kid(None).unwrap();
            assert_eq!(kid.len(), 43, "{alg}: the thumbprint");
            assert_eq!(Some(kid.as_str()), imported.thumbprint());
        }
    }

    /// RFC 7468 §5.2: text around the block is allowed; Windows line ends and a byte-order
    /// mark are what editors and `Out-File` leave behind.
    #[test]
    fn pem_tolerates_surrounding_text_crlf_and_a_bom() {
        let (key, private) = SigningKey::generate(Alg::ES256).unwrap();
        let text = format!("\u{feff}Key for tessera\r\n{}", pem("PRIVATE KEY", &private).replace('\n', "\r\n"));
        let imported = import_private_key(text.as_bytes()).unwrap();
        let again = SigningKey::from_private(key.kid(), Alg::ES256, imported.private()).unwrap();
        assert_eq!(again.public_jwk(), key.public_jwk());
    }

    /// RFC 7638 §3.1's example key and thumbprint.
    #[test]
    fn thumbprint_matches_rfc_7638() {
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(thumbprint(&jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn refusals_say_why() {
        let (_, ed) = SigningKey::generate(Alg::EdDSA).unwrap();
        assert!(message(import_private_key(b"")).contains("empty"));
        assert!(message(import_private_key(b"hello")).contains("neither PEM nor JWK"));
        assert!(message(import_private_key(&[0xff, 0xfe, 0x30])).contains("not text"));
        assert!(message(import_private_key(pem("PUBLIC KEY", b"x").as_bytes())).contains("no private key"));
        assert!(message(import_private_key(pem("ENCRYPTED PRIVATE KEY", b"x").as_bytes())).contains("encrypted"));
        let two = format!("{}{}", pem("PRIVATE KEY", &ed), pem("PRIVATE KEY", &ed));
        assert!(message(import_private_key(two.as_bytes())).contains("exactly one"));
        let truncated = pem("PRIVATE KEY", &ed[..ed.len() - 3]);
        assert!(message(import_private_key(truncated.as_bytes())).contains("not"));
        let unclosed = pem("PRIVATE KEY", &ed).replace("-----END PRIVATE KEY-----", "");
        assert!(message(import_private_key(unclosed.as_bytes())).contains("no '-----END PRIVATE KEY-----'"));
        assert!(message(import_private_key(br#"{"kty":"oct","k":"AAAA"}"#)).contains("at least 32 bytes"));
        assert!(
            message(import_private_key(br#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA","d":"AA"}"#)).contains("P-384")
        );
        assert!(message(import_private_key(br#"{"kty":"OKP","crv":"Ed25519","x":"AA"}"#)).contains("public"));
        assert!(message(import_private_key(br#"{"kty":"oct","k":"AAAA","k":"BBBB"}"#)).contains("duplicate field"));
        // A JSON error never quotes the text around it.
        let secretish = br#"{"kty":"oct","k": SECRETSECRET}"#;
        assert!(!message(import_private_key(secretish)).contains("SECRET"));
        assert!(message(import_private_key(&vec![b' '; MAX_IMPORT_LEN + 1])).contains("larger"));
    }

    #[test]
    fn hs256_kid_is_random_not_a_thumbprint() {
        let k = b64(&[7u8; 32]);
        let imported = import_private_key(format!(r#"{{"kty":"oct","k":"{k}"}}"#).as_bytes()).unwrap();
        assert_eq!(imported.alg(), Alg::HS256);
        assert!(imported.thumbprint().is_none());
        assert_ne!(imported.kid(None).unwrap(), imported.kid(None).unwrap());
        assert_eq!(imported.kid(Some("mine")).unwrap(), "mine");
        assert!(imported.kid(Some("no/slashes")).is_err());
        assert!(imported.kid(Some("")).is_err());
    }
}
