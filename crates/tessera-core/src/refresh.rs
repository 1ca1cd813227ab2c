//! Refresh tokens and the chain that links a family's generations.
//!
//! A refresh token is `base64url(2 ‖ user id ‖ session id ‖ generation ‖ secret)`. The store
//! keeps only the SHA-256 of the current generation's secret. Each successor's secret is
//! derived, not drawn: `HMAC-SHA256(chain key, session id ‖ generation ‖ secret)`. That gives
//! two properties without keeping any token in plaintext:
//!
//! - a retry inside `refresh.reuse_grace` (a client that lost the answer) can be given the
//!   very same successor, recomputed from the token it presents;
//! - a token several generations old is still recognisable as genuine — walking the chain
//!   forward from it reaches the stored hash — so its reuse revokes the family instead of
//!   being shrugged off as an unknown token.

use std::fmt;

use aws_lc_rs::hmac;

use crate::id::{SessionId, UserId};
use crate::secret::{SecretBytes, TokenHash, b64, b64_decode_exact};

const KIND: u8 = 2;
const BYTES: usize = 1 + 16 + 16 + 4 + 32;

#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub generation: u32,
    secret: SecretBytes,
}

impl RefreshToken {
    /// The first token of a new family.
    pub fn first(user_id: UserId, session_id: SessionId) -> Self {
        Self { user_id, session_id, generation: 0, secret: SecretBytes::generate() }
    }

    /// Shape only: never panics; the kind byte keeps session tokens out.
    pub fn parse(s: &str) -> Option<Self> {
        let raw = b64_decode_exact::<BYTES>(s)?;
        if raw[0] != KIND {
            return None;
        }
        let mut user = [0u8; 16];
        let mut session = [0u8; 16];
        let mut gen_bytes = [0u8; 4];
        let mut secret = [0u8; 32];
        user.copy_from_slice(&raw[1..17]);
        session.copy_from_slice(&raw[17..33]);
        gen_bytes.copy_from_slice(&raw[33..37]);
        secret.copy_from_slice(&raw[37..]);
        Some(Self {
            user_id: UserId::from_bytes(user),
            session_id: SessionId::from_bytes(session),
            generation: u32::from_be_bytes(gen_bytes),
            secret: SecretBytes(secret),
        })
    }

    pub fn encode(&self) -> String {
        let mut raw = [0u8; BYTES];
        raw[0] = KIND;
        raw[1..17].copy_from_slice(self.user_id.as_bytes());
        raw[17..33].copy_from_slice(self.session_id.as_bytes());
        raw[33..37].copy_from_slice(&self.generation.to_be_bytes());
        raw[37..].copy_from_slice(&self.secret.0);
        b64(&raw)
    }

    pub fn hash(&self) -> TokenHash {
        self.secret.hash()
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefreshToken({}, gen {}, [redacted])", self.session_id, self.generation)
    }
}

/// Derives successors. The key is a server secret shared by every instance.
pub struct RefreshChain(hmac::Key);

impl RefreshChain {
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    pub fn successor(&self, token: &RefreshToken) -> RefreshToken {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(b"tessera refresh chain v1");
        ctx.update(token.session_id.as_bytes());
        ctx.update(&token.generation.to_be_bytes());
        ctx.update(&token.secret.0);
        let tag = ctx.sign();
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&tag.as_ref()[..32]);
        RefreshToken {
            user_id: token.user_id,
            session_id: token.session_id,
            generation: token.generation.wrapping_add(1),
            secret: SecretBytes(secret),
        }
    }

    /// Walks forward from `token` to `generation` (at most `max_steps`), for recognising old
    /// tokens of a family.
    pub fn advance(&self, token: &RefreshToken, generation: u32, max_steps: u32) -> Option<RefreshToken> {
        let steps = generation.checked_sub(token.generation)?;
        if steps > max_steps {
            return None;
        }
        let mut t = token.clone();
        for _ in 0..steps {
            t = self.successor(&t);
        }
        Some(t)
    }

    /// 16 bytes derived from a token, used where a retry must reproduce an id (the `jti`
    /// of the access token handed out with a successor).
    pub fn derive_id(&self, token: &RefreshToken, label: &[u8]) -> [u8; 16] {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(label);
        ctx.update(&token.secret.0);
        let mut out = [0u8; 16];
        out.copy_from_slice(&ctx.sign().as_ref()[..16]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refresh_token_round_trips_and_is_not_a_session_token() {
        let t = RefreshToken::first(UserId::generate(), SessionId::generate());
        let s = t.encode();
        assert_eq!(RefreshToken::parse(&s), Some(t));
        let session = crate::session::OpaqueToken::generate(
            crate::session::TokenKind::Session,
            UserId::generate(),
            SessionId::generate(),
        );
        assert_eq!(RefreshToken::parse(&session.encode()), None);
        assert!(crate::SessionToken::parse(&s).is_none());
    }

    #[test]
    fn successors_are_deterministic_and_advance_walks_the_chain() {
        let chain = RefreshChain::new(b"k");
        let t0 = RefreshToken::first(UserId::generate(), SessionId::generate());
        let t1 = chain.successor(&t0);
        assert_eq!(t1.generation, 1);
        assert_eq!(chain.successor(&t0), t1);
        let t3 = chain.successor(&chain.successor(&t1));
        assert_eq!(chain.advance(&t0, 3, 10), Some(t3.clone()));
        assert_eq!(chain.advance(&t0, 3, 2), None);
        assert_eq!(chain.advance(&t3, 1, 10), None);
        assert_ne!(RefreshChain::new(b"other").successor(&t0), t1);
    }

    proptest! {
        #[test]
        fn refresh_parser_never_panics(s in ".{0,200}") {
            let _ = RefreshToken::parse(&s);
        }
    }
}
