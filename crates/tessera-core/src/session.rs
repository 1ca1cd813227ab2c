//! Server-side sessions and the opaque tokens that name them.
//!
//! A session token is `base64url(kind ‖ user id ‖ session id ‖ secret)`: the ids let every store
//! find the record with one keyed lookup (and shard it by user on Redis Cluster); the 256-bit
//! secret is what proves possession, and the store keeps only its SHA-256. The leading kind
//! byte means a refresh token can never be presented as a session token, or the reverse.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::id::{SessionId, UserId};
use crate::secret::{SecretBytes, TokenHash, b64, b64_decode_exact};
use crate::username::Username;

const TOKEN_BYTES: usize = 1 + 16 + 16 + 32;

/// What an opaque token is for; the first byte of its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TokenKind {
    Session = 1,
    Refresh = 2,
}

/// An opaque credential bound to one user's session. Parsing checks shape only; the secret
/// is checked against the stored hash by [`crate::Auth`].
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken {
    kind: TokenKind,
    pub user_id: UserId,
    pub session_id: SessionId,
    secret: SecretBytes,
}

impl OpaqueToken {
    pub fn generate(kind: TokenKind, user_id: UserId, session_id: SessionId) -> Self {
        Self { kind, user_id, session_id, secret: SecretBytes::generate() }
    }

    /// Parses the encoded form, accepting only tokens of `kind`. Never panics, whatever the input.
    pub fn parse(kind: TokenKind, s: &str) -> Option<Self> {
        let raw = b64_decode_exact::<TOKEN_BYTES>(s)?;
        if raw[0] != kind as u8 {
            return None;
        }
        let mut user = [0u8; 16];
        let mut session = [0u8; 16];
        let mut secret = [0u8; 32];
        user.copy_from_slice(&raw[1..17]);
        session.copy_from_slice(&raw[17..33]);
        secret.copy_from_slice(&raw[33..]);
        Some(Self {
            kind,
            user_id: UserId::from_bytes(user),
            session_id: SessionId::from_bytes(session),
            secret: SecretBytes(secret),
        })
    }

    pub fn encode(&self) -> String {
        let mut raw = [0u8; TOKEN_BYTES];
        raw[0] = self.kind as u8;
        raw[1..17].copy_from_slice(self.user_id.as_bytes());
        raw[17..33].copy_from_slice(self.session_id.as_bytes());
        raw[33..].copy_from_slice(&self.secret.0);
        b64(&raw)
    }

    pub fn secret_hash(&self) -> TokenHash {
        self.secret.hash()
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}Token({}, [redacted])", self.kind, self.session_id)
    }
}

/// The credential of `session` mode: sent as a cookie or a bearer token.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SessionToken(pub OpaqueToken);

impl SessionToken {
    pub fn parse(s: &str) -> Option<Self> {
        OpaqueToken::parse(TokenKind::Session, s).map(Self)
    }

    pub fn encode(&self) -> String {
        self.0.encode()
    }
}

/// The anti-CSRF token of a cookie-authenticated session: random, given to the page (body and
/// a script-readable cookie), kept hashed in the session, and required in `X-CSRF-Token` on
/// unsafe requests. A cross-site attacker can make the browser send cookies but cannot read
/// this value, so it cannot forge the header.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfToken(SecretBytes);

impl CsrfToken {
    pub fn generate() -> Self {
        Self(SecretBytes::generate())
    }

    pub fn encode(&self) -> String {
        b64(&self.0.0)
    }

    pub fn hash(&self) -> TokenHash {
        self.0.hash()
    }
}

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfToken([redacted])")
    }
}

/// A server-side session as every store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// Kept with the session so `GET /v1/me` needs one lookup, not two. Usernames never
    /// change, so the copy cannot go stale.
    pub username: Username,
    pub secret_hash: TokenHash,
    pub csrf_hash: TokenHash,
    pub created_at: OffsetDateTime,
    /// Persisted at most once per [`crate::SessionPolicy::touch_interval`].
    pub last_seen_at: OffsetDateTime,
    /// The absolute end, fixed at creation.
    pub expires_at: OffsetDateTime,
    /// Shared rather than copied, like the username: sessions are cloned out of caches on
    /// every authenticated request.
    pub user_agent: Option<Arc<str>>,
    pub ip: Option<Arc<str>>,
    /// The session's refresh family, in the modes that have one (hybrid; jwt with refresh).
    pub refresh: Option<RefreshState>,
}

/// Where a session's refresh family stands. Only the current token's hash is kept; see
/// `auth/refresh.rs` for how an older token is still recognised (and punished) as reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshState {
    /// How many rotations the family has had; the current token carries this number.
    pub generation: u32,
    /// SHA-256 of the current refresh token's secret.
    pub hash: TokenHash,
    /// When the current token was issued: the start of the reuse grace for its predecessor.
    pub rotated_at: OffsetDateTime,
}

impl Session {
    /// Checks a presented CSRF token against this session's, in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        match b64_decode_exact::<32>(presented) {
            Some(raw) => TokenHash::of(&raw).ct_eq(&self.csrf_hash),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn token() -> OpaqueToken {
        OpaqueToken::generate(TokenKind::Session, UserId::generate(), SessionId::generate())
    }

    #[test]
    fn session_token_round_trips() {
        let t = SessionToken(token());
        let s = t.encode();
        assert_eq!(s.len(), 87);
        assert_eq!(SessionToken::parse(&s), Some(t));
    }

    #[test]
    fn refresh_token_is_not_a_session_token() {
        let t = OpaqueToken::generate(TokenKind::Refresh, UserId::generate(), SessionId::generate());
        assert_eq!(SessionToken::parse(&t.encode()), None);
    }

    #[test]
    fn token_debug_hides_the_secret() {
        let t = token();
        assert!(!format!("{t:?}").contains(&t.encode()[33..]));
    }

    proptest! {
        #[test]
        fn token_parser_never_panics(s in ".{0,200}") {
            let _ = SessionToken::parse(&s);
        }

        #[test]
        fn any_altered_character_changes_or_breaks_the_token(idx in 0usize..87, c in "[A-Za-z0-9_-]") {
            let t = token();
            let s = t.encode();
            let mut altered: Vec<char> = s.chars().collect();
            let c = c.chars().next().unwrap_or('A');
            prop_assume!(altered[idx] != c);
            altered[idx] = c;
            let altered: String = altered.into_iter().collect();
            prop_assert_ne!(SessionToken::parse(&altered), Some(SessionToken(t)));
        }
    }
}
