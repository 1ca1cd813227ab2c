//! Opaque secrets: the 256 random bits behind every session, refresh and CSRF token.
//!
//! The randomness, the encoding and the token hash live in `tessera-jwt` (re-exported here), so
//! a service verifying tessera's tokens reads ids exactly as tessera writes them.

use std::fmt;

use zeroize::Zeroize;

pub use tessera_jwt::secret::{TokenHash, b64, b64_decode_exact, random_bytes};

/// 32 secret random bytes that never show up in `Debug` output and are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(pub(crate) [u8; 32]);

impl SecretBytes {
    pub fn generate() -> Self {
        Self(random_bytes())
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        assert_eq!(format!("{:?}", SecretBytes::generate()), "[redacted]");
    }
}
