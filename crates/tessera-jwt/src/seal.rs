//! Sealing private signing keys at rest (SPEC §4: "Private keys may be sealed at rest with a key
//! from the environment").
//!
//! AES-256-GCM with a fresh random 96-bit nonce per seal, stored in front of the ciphertext:
//! `nonce (12) || ciphertext || tag (16)`. A random nonce is safe here because the number of
//! seals under one seal key is tiny (one per key rotation), far below the 2^32 messages NIST
//! SP 800-38D §8.3 allows for random nonces.
//!
//! The associated data binds each sealed blob to the `kid` of its row. Without it, someone who
//! can write to the key table (but not read the environment) could copy the sealed private key
//! of one row into another and have tessera sign under a `kid` it did not choose; with it, such
//! a row fails to open.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::error::JwtError;
use crate::secret::{b64_decode_exact, random_bytes};

const TAG_LEN: usize = 16;
/// The AAD is this label followed by the name of the row a value is sealed for: a signing
/// key's `kid`, or a server secret's name (`refresh-chain.sealed`, `csrf.sealed`). The label is
/// the same for both — it is not domain separation — and is kept as it is because changing it
/// would make every sealed row unreadable. What keeps the two apart is the name: a `kid` is
/// base64url characters only (`SigningKey::is_valid_kid`, imported keys included) and a
/// secret's name contains a `.`, so no value sealed for one row opens as another's.
const AAD_LABEL: &[u8] = b"tessera/jwt-signing-key/";

/// Seals and opens private keys with a 256-bit key from configuration.
pub struct Sealer {
    key: Zeroizing<[u8; 32]>,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer { key: Zeroizing::new(*key) }
    }

    /// Reads the seal key as configured: 32 bytes in base64url without padding (43 characters).
    pub fn from_base64(encoded: &str) -> Result<Self, JwtError> {
        b64_decode_exact::<32>(encoded.trim())
            .map(|key| Sealer::new(&key))
            .ok_or(JwtError::SealKey("expected 32 bytes in base64url (43 characters)"))
    }

    /// Encrypts `private` for the row of `kid`.
    pub fn seal(&self, kid: &str, private: &[u8]) -> Result<Vec<u8>, JwtError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut in_out = private.to_vec();
        self.aead()?
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), aad(kid), &mut in_out)
            .map_err(|_| JwtError::Sign("sealing a private key failed".into()))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Decrypts what [`Sealer::seal`] made for the same `kid`. Any change to the bytes, another
    /// seal key or another `kid` gives [`JwtError::Unseal`].
    /// The plaintext is wiped from memory when the returned value is dropped.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, JwtError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(JwtError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| JwtError::Unseal)?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plain = self.aead()?.open_in_place(nonce, aad(kid), &mut in_out).map_err(|_| JwtError::Unseal)?;
        Ok(Zeroizing::new(plain.to_vec()))
    }

    fn aead(&self) -> Result<LessSafeKey, JwtError> {
        UnboundKey::new(&AES_256_GCM, self.key.as_slice())
            .map(LessSafeKey::new)
            .map_err(|_| JwtError::SealKey("not an AES-256 key"))
    }
}

fn aad(kid: &str) -> Aad<Vec<u8>> {
    let mut data = AAD_LABEL.to_vec();
    data.extend_from_slice(kid.as_bytes());
    Aad::from(data)
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::b64;

    fn sealer() -> Sealer {
        Sealer::new(&random_bytes())
    }

    #[test]
    fn sealing_round_trips() {
        let s = sealer();
        let sealed = s.seal("kid-one", b"private key bytes").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 17 + TAG_LEN);
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(s.open("kid-one", &sealed).unwrap().as_slice(), b"private key bytes");
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let s = sealer();
        assert_ne!(s.seal("k", b"same").unwrap(), s.seal("k", b"same").unwrap());
    }

    #[test]
    fn tampered_bytes_do_not_open() {
        let s = sealer();
        let sealed = s.seal("k", b"private key bytes").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(matches!(s.open("k", &bad), Err(JwtError::Unseal)), "byte {i}");
        }
        assert!(s.open("k", &sealed[..sealed.len() - 1]).is_err());
        assert!(s.open("k", &sealed[..NONCE_LEN + TAG_LEN - 1]).is_err());
        assert!(s.open("k", b"").is_err());
    }

    #[test]
    fn a_sealed_key_moved_to_another_kid_does_not_open() {
        let s = sealer();
        let sealed = s.seal("kid-one", b"private key bytes").unwrap();
        assert!(matches!(s.open("kid-two", &sealed), Err(JwtError::Unseal)));
        assert!(matches!(s.open("", &sealed), Err(JwtError::Unseal)));
    }

    #[test]
    fn another_seal_key_does_not_open() {
        let sealed = sealer().seal("k", b"private key bytes").unwrap();
        assert!(matches!(sealer().open("k", &sealed), Err(JwtError::Unseal)));
    }

    #[test]
    fn seal_key_is_read_from_base64url() {
        let raw: [u8; 32] = random_bytes();
        let s = Sealer::from_base64(&format!(" {}\n", b64(&raw))).unwrap();
        let sealed = Sealer::new(&raw).seal("k", b"x").unwrap();
        assert_eq!(s.open("k", &sealed).unwrap().as_slice(), b"x");
        assert!(Sealer::from_base64(&b64(&raw[..31])).is_err());
        assert!(Sealer::from_base64(&format!("{}=", b64(&raw))).is_err());
        assert!(Sealer::from_base64("").is_err());
        assert_eq!(format!("{s:?}"), "Sealer([redacted])");
    }
}
