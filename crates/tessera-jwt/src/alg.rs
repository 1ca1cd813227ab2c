//! The four signature algorithms tessera can be configured with (RFC 7518 §3.1, RFC 8037 §3.1).
//!
//! The set is closed on purpose: the algorithm of every token comes from configuration, and a
//! header naming anything else — `none`, `HS512`, `PS256` or `eddsa` in another case — is
//! refused before a key is even looked up (RFC 8725 §3.1).

use std::fmt;

/// A JWS algorithm tessera signs with. One per deployment, from `jwt.alg`.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// Ed25519 (RFC 8037): small keys and signatures, deterministic; the default.
    EdDSA,
    /// ECDSA on P-256 with SHA-256, signatures in the fixed 64-byte `r || s` form (RFC 7518 §3.4).
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and a 2048-bit key, for verifiers that know nothing else.
    RS256,
    /// HMAC-SHA-256 with a 256-bit secret: only when the verifiers are tessera itself, since
    /// anyone who can verify can also sign. Never published in the JWKS.
    HS256,
}

impl Alg {
    /// The `alg` value of the JOSE header, exactly as RFC 7518 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
            Alg::HS256 => "HS256",
        }
    }

    /// Parses the exact, case-sensitive name (RFC 7515 §4.1.1: `alg` is a case-sensitive
    /// string). `none`, `eddsa` and every algorithm outside the four are `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" => Some(Alg::EdDSA),
            "ES256" => Some(Alg::ES256),
            "RS256" => Some(Alg::RS256),
            "HS256" => Some(Alg::HS256),
            _ => None,
        }
    }

    /// Whether keys of this algorithm have a public half that may be published.
    pub fn is_asymmetric(self) -> bool {
        !matches!(self, Alg::HS256)
    }

    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Alg::ES256 => jsonwebtoken::Algorithm::ES256,
            Alg::RS256 => jsonwebtoken::Algorithm::RS256,
            Alg::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256] {
            assert_eq!(Alg::parse(alg.as_str()), Some(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
    }

    #[test]
    fn other_spellings_and_algorithms_do_not_parse() {
        for s in ["none", "None", "NONE", "eddsa", "EDDSA", "Ed25519", "es256", "HS512", "PS256", "", "EdDSA "] {
            assert_eq!(Alg::parse(s), None, "{s:?}");
        }
    }
}
