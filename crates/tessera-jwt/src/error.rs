//! Why a token was refused, or why a key could not be used.
//!
//! The variants exist for logs and tests. At the HTTP boundary every verification error means
//! the same thing — "invalid token" (RFC 6750 §3.1 `invalid_token`) — so a client learns nothing
//! about which check it failed. Attacker-supplied values (a foreign `kid`, an `alg` string) are
//! deliberately not carried, so logging an error cannot inject text into the logs.

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    // --- verification: the token is not ours, not well-formed or not valid now ---
    #[error("token is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token header rejected: {0}")]
    Header(String),
    #[error("algorithm in the header is not the configured one")]
    AlgorithmNotAllowed,
    #[error("token type is not at+jwt")]
    WrongType,
    #[error("no key of ours has this kid")]
    UnknownKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("claims rejected: {0}")]
    Claims(String),
    #[error("required claim missing: {0}")]
    MissingClaim(String),
    #[error("issuer is not ours")]
    WrongIssuer,
    #[error("audience is not ours")]
    WrongAudience,
    #[error("token has expired")]
    Expired,
    #[error("token was issued in the future")]
    NotYetValid,
    /// Any other refusal by jsonwebtoken (its error kinds are non-exhaustive).
    #[error("token rejected: {0}")]
    Rejected(String),

    // --- keys and signing: our own configuration or data is wrong ---
    #[error("no key is active for signing")]
    NoSigningKey,
    #[error("two keys share the kid {0}")]
    DuplicateKid(String),
    #[error("invalid key: {0}")]
    Key(String),
    #[error("signing failed: {0}")]
    Sign(String),
    /// A sealed private key could not be opened: wrong seal key, tampered bytes or a row moved
    /// to another `kid`. Deliberately without detail.
    #[error("sealed key cannot be opened")]
    Unseal,
    #[error("invalid seal key: {0}")]
    SealKey(&'static str),
}

impl JwtError {
    /// Whether this error is about the presented token (a 401) rather than our own keys or
    /// configuration (a 500).
    pub fn is_invalid_token(&self) -> bool {
        !matches!(
            self,
            JwtError::NoSigningKey
                | JwtError::DuplicateKid(_)
                | JwtError::Key(_)
                | JwtError::Sign(_)
                | JwtError::Unseal
                | JwtError::SealKey(_)
        )
    }
}
