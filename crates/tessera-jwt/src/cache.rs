//! Verified tokens, remembered: a repeat request with the same access token skips the signature
//! check and the claim parsing.
//!
//! Why: an Ed25519 verification costs about 60 µs and an ES256 one about 76 µs, against about
//! 13 µs of CPU for a whole bare request (DEPENDENCIES.md); a client sends the same token for its
//! whole lifetime, so most verifications are repeats.
//!
//! What the cache does *not* decide: a hit says only "this exact string was once verified by a
//! key we still trust". The caller must still, on every request, check `exp` against its clock
//! and run the revocation check (denylist or allowlist) — the claims are returned for that.
//!
//! A token is looked up by SHA-256 of its signature segment, and an entry is used only when the
//! rest of the token — the signing input, header and payload, which carry no secret — is byte
//! for byte the one verified: a hit means the very same string, as if the whole token were
//! hashed, for a fraction of the hashing (a token is some 400 bytes, seven SHA-256 blocks, its
//! signature one or two; SHA-256 was the largest part of a cached check). The cache holds no
//! bearer credential: a signing input is useless without its signature, and the signature is
//! kept only as a hash. Each entry remembers the `kid` that verified it: when a key stops being trusted, [`flush_kid`]
//! drops its entries. A flushed `kid` is remembered too, so a verification that raced with the
//! flush cannot put an entry for that key back. The cache is bounded; when full it is cleared
//! (simple, and a miss costs only one verification).
//!
//! [`flush_kid`]: VerifiedCache::flush_kid

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use super::claims::AccessClaims;
use super::keyset::KeySet;
use super::public::PublicKeySet;
use super::token::{MAX_TOKEN_LEN, header_kid};
use crate::secret::TokenHash;

/// Flushed kids remembered; kids are random and never reused, and there is one per rotation.
const MAX_FLUSHED_KIDS: usize = 1024;

pub struct VerifiedCache {
    capacity: usize,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Keyed by SHA-256 of verified tokens' signature segments only, so a fast hash is safe.
    entries: HashMap<TokenHash, Entry, foldhash::fast::RandomState>,
    flushed: HashSet<String>,
}

struct Entry {
    /// The verified token's signing input (`header.payload`).
    signed: Box<str>,
    kid: Arc<str>,
    claims: Arc<AccessClaims>,
}

/// A token as the cache sees it: its signing input, and the hash of its signature segment.
fn split(token: &str) -> Option<(&str, TokenHash)> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let (signed, signature) = token.rsplit_once('.')?;
    Some((signed, TokenHash::of(signature.as_bytes())))
}

impl VerifiedCache {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        VerifiedCache { capacity: capacity.max(1), inner: RwLock::default() }
    }

    /// The claims of `token` if it was verified before. Still check `exp` and revocation.
    pub fn get(&self, token: &str) -> Option<Arc<AccessClaims>> {
        let (signed, hash) = split(token)?;
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.entries.get(&hash).filter(|e| *e.signed == *signed).map(|e| Arc::clone(&e.claims))
    }

    /// Remembers that `token` was just verified against `keys` and said `claims`. Only call it
    /// after [`super::verify`] succeeded with that same key set. Nothing is stored if the
    /// token's key is not in `keys` or has been flushed.
    pub fn insert(&self, token: &str, keys: &KeySet, claims: Arc<AccessClaims>) {
        self.insert_if(token, |kid| keys.verifier(kid).is_some(), claims);
    }

    /// [`VerifiedCache::insert`] for a token verified with [`super::verify_public`] against `keys`.
    pub fn insert_public(&self, token: &str, keys: &PublicKeySet, claims: Arc<AccessClaims>) {
        self.insert_if(token, |kid| keys.verifier(kid).is_some(), claims);
    }

    fn insert_if(&self, token: &str, trusted: impl FnOnce(&str) -> bool, claims: Arc<AccessClaims>) {
        let Some((signed, hash)) = split(token) else { return };
        let Some(kid) = header_kid(token) else { return };
        if !trusted(&kid) {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.flushed.contains(&kid) {
            return;
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&hash) {
            inner.entries.clear();
        }
        inner.entries.insert(hash, Entry { signed: signed.into(), kid: kid.into(), claims });
    }

    /// Forgets every token verified by `kid`, now and for good: call it when the key leaves
    /// the key set.
    pub fn flush_kid(&self, kid: &str) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.entries.retain(|_, e| &*e.kid != kid);
        if inner.flushed.len() >= MAX_FLUSHED_KIDS {
            inner.flushed.clear();
        }
        inner.flushed.insert(kid.to_owned());
    }

    /// Forgets every token.
    pub fn clear(&self) {
        self.inner.write().unwrap_or_else(PoisonError::into_inner).entries.clear();
    }

    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedCache").field("capacity", &self.capacity).field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::id::{SessionId, TokenId, UserId};
    use crate::{Alg, JwtSettings, SigningKey, sign, verify};

    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn settings() -> JwtSettings {
        JwtSettings {
            alg: Alg::EdDSA,
            issuer: "http://127.0.0.1:8080".into(),
            audience: "tessera".into(),
            access_ttl: Duration::minutes(5),
            leeway: Duration::seconds(30),
        }
    }

    fn keyset() -> KeySet {
        let key = SigningKey::generate(Alg::EdDSA).unwrap().0;
        KeySet::new(vec![(key, NOW, None)], NOW, Duration::minutes(6)).unwrap()
    }

    fn token(keys: &KeySet) -> String {
        let s = settings();
        let claims = AccessClaims {
            iss: s.issuer,
            sub: UserId::generate(),
            aud: s.audience,
            exp: NOW.unix_timestamp() + 300,
            iat: NOW.unix_timestamp(),
            jti: TokenId::generate(),
            sid: Some(SessionId::generate()),
        };
        sign(keys, &claims).unwrap()
    }

    fn verified(cache: &VerifiedCache, keys: &KeySet, token: &str) -> Arc<AccessClaims> {
        let claims = Arc::new(verify(keys, &settings(), token, NOW).unwrap());
        cache.insert(token, keys, Arc::clone(&claims));
        claims
    }

    #[test]
    fn a_hit_returns_the_same_claims() {
        let (cache, keys) = (VerifiedCache::new(10), keyset());
        let t = token(&keys);
        assert!(cache.get(&t).is_none());
        let claims = verified(&cache, &keys, &t);
        let hit = cache.get(&t).unwrap();
        assert!(Arc::ptr_eq(&hit, &claims));
        assert!(cache.get(&token(&keys)).is_none());
        assert!(cache.get(&format!("{t}x")).is_none());
    }

    /// A hit needs both halves: the signature (looked up by its hash) and the signing input
    /// (compared), so a verified token's signature on other claims, or its claims under
    /// another signature, is a miss — left to the full verification, which refuses both.
    #[test]
    fn a_hit_needs_the_same_signing_input_and_the_same_signature() {
        let (cache, keys) = (VerifiedCache::new(10), keyset());
        let (t, other) = (token(&keys), token(&keys));
        verified(&cache, &keys, &t);
        let (signed, signature) = t.rsplit_once('.').unwrap();
        let (other_signed, other_signature) = other.rsplit_once('.').unwrap();
        assert!(cache.get(&format!("{other_signed}.{signature}")).is_none(), "another payload, this signature");
        assert!(cache.get(&format!("{signed}.{other_signature}")).is_none(), "this payload, another signature");
        assert!(cache.get(&format!("x{t}")).is_none(), "another header");
        assert!(cache.get(signature).is_none(), "the signature alone");
        assert!(cache.get(&t).is_some());
    }

    #[test]
    fn flush_kid_forgets_that_key_and_refuses_it_afterwards() {
        let cache = VerifiedCache::new(10);
        let (a, b) = (keyset(), keyset());
        let (ta, tb) = (token(&a), token(&b));
        verified(&cache, &a, &ta);
        verified(&cache, &b, &tb);
        let kid = a.signer().unwrap().kid().to_owned();
        cache.flush_kid(&kid);
        assert!(cache.get(&ta).is_none());
        assert!(cache.get(&tb).is_some());
        // A verification that raced with the flush cannot bring the entry back.
        verified(&cache, &a, &ta);
        assert!(cache.get(&ta).is_none());
    }

    #[test]
    fn clear_forgets_everything() {
        let (cache, keys) = (VerifiedCache::new(10), keyset());
        let t = token(&keys);
        verified(&cache, &keys, &t);
        cache.clear();
        assert!(cache.is_empty());
        assert!(cache.get(&t).is_none());
    }

    #[test]
    fn tokens_of_keys_outside_the_set_are_not_stored() {
        let (cache, keys, other) = (VerifiedCache::new(10), keyset(), keyset());
        let t = token(&keys);
        let claims = Arc::new(verify(&keys, &settings(), &t, NOW).unwrap());
        cache.insert(&t, &other, claims);
        assert!(cache.is_empty());
        cache.insert("not a token", &keys, Arc::new(verify(&keys, &settings(), &t, NOW).unwrap()));
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let (cache, keys) = (VerifiedCache::new(3), keyset());
        let tokens: Vec<String> = (0..7).map(|_| token(&keys)).collect();
        for t in &tokens {
            verified(&cache, &keys, t);
            assert!(cache.len() <= 3);
        }
        assert!(cache.get(&tokens[6]).is_some());
    }
}
