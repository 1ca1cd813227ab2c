//! What can go wrong in the domain, in terms a client may be told. The HTTP layer maps each
//! variant to one status and problem type; store details stay in the logs.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Bad input: the message is safe to show.
    #[error("{0}")]
    Invalid(String),
    /// Wrong username or password — one answer for both.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The presented credential is missing, malformed, expired or revoked.
    #[error("the credential is invalid or expired")]
    Unauthenticated,
    #[error("the CSRF token is missing or wrong")]
    CsrfRejected,
    #[error("too many failed attempts; retry after {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error("the username is taken")]
    UsernameTaken,
    #[error("sign-up is closed")]
    SignUpClosed,
    #[error("not found")]
    NotFound,
    /// The resource changed while the request was being decided (a concurrent password
    /// change won); the message is safe to show.
    #[error("{0}")]
    Conflict(String),
    /// A store or the hashing pool cannot answer now; fail closed.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Conflict => Self::Internal("unexpected conflict".into()),
            StoreError::Other(m) => Self::Internal(m),
        }
    }
}

impl From<crate::password::HashError> for AuthError {
    fn from(e: crate::password::HashError) -> Self {
        match e {
            crate::password::HashError::Busy => Self::Unavailable("password hashing is overloaded".into()),
            crate::password::HashError::Failed(m) => Self::Internal(m),
        }
    }
}
