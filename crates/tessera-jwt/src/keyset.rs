//! Which keys sign and which verify, at one instant — and the lock-free holder that lets every
//! instance swap to a new set when a rotation happens anywhere (SPEC §4 "Signing keys").
//!
//! A rotation is three moments for one key: it is *created* (and published in the JWKS at once),
//! it *activates* (starts signing, once every verifier had time to fetch the new JWKS) and it
//! *retires* (a successor activated). After retiring it stays a verifier — and stays published —
//! until the last token it signed has expired: `retires_at + access_ttl + leeway`.

use std::fmt;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::error::JwtError;
use super::key::SigningKey;

/// The keys trusted at one instant. Immutable: a rotation builds a new set.
pub struct KeySet {
    /// Every key still trusted to verify; index `signer` also signs.
    verifiers: Vec<SigningKey>,
    /// For each verifier, the instant it stops being trusted (`retires_at + lifetime`), if it
    /// retires at all. Checked at every verification, so a retired key's time runs out even
    /// when no newer set replaces this one (a reload failing while the store is down).
    until: Vec<Option<OffsetDateTime>>,
    signer: Option<usize>,
    jwks: Value,
}

impl KeySet {
    /// A set that neither signs nor verifies: the state before the first load.
    pub fn empty() -> Self {
        KeySet { verifiers: Vec::new(), until: Vec::new(), signer: None, jwks: json!({ "keys": [] }) }
    }

    /// Chooses, at `now`, the signer and the verifiers among `keys` — each with the instant it
    /// activates and, once a successor is chosen, the instant it retires. `lifetime` is the
    /// longest a token can be accepted for: `access_ttl + leeway`.
    ///
    /// - The signer is the active, unretired key that activated last (ties go to the greatest
    ///   `kid`, so every instance picks the same one). None → [`JwtError::NoSigningKey`].
    /// - Verifiers are all keys not retired for longer than `lifetime`, *including keys whose
    ///   activation is still ahead*: another instance with a slightly faster clock may already
    ///   sign with them.
    pub fn new(
        keys: Vec<(SigningKey, OffsetDateTime, Option<OffsetDateTime>)>,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<Self, JwtError> {
        let mut verifiers: Vec<SigningKey> = Vec::with_capacity(keys.len());
        let mut until = Vec::with_capacity(keys.len());
        // (activates_at, index in `verifiers`) of the best signing candidate so far.
        let mut signer: Option<(OffsetDateTime, usize)> = None;
        for (key, activates_at, retires_at) in keys {
            if verifiers.iter().any(|k| k.kid() == key.kid()) {
                return Err(JwtError::DuplicateKid(key.kid().to_owned()));
            }
            // `checked_add`: a date too far out to add to is simply "not yet".
            let trusted_until = retires_at.and_then(|r| r.checked_add(lifetime));
            if trusted_until.is_some_and(|t| now >= t) {
                continue;
            }
            let can_sign = activates_at <= now && retires_at.is_none_or(|r| now < r);
            let wins = signer.is_none_or(|(best_at, i)| {
                let best_kid = verifiers.get(i).map(SigningKey::kid).unwrap_or_default();
                (activates_at, key.kid()) > (best_at, best_kid)
            });
            if can_sign && wins {
                signer = Some((activates_at, verifiers.len()));
            }
            verifiers.push(key);
            until.push(trusted_until);
        }
        let Some((_, signer)) = signer else {
            return Err(JwtError::NoSigningKey);
        };
        let published: Vec<Value> = verifiers.iter().filter_map(|k| k.public_jwk().cloned()).collect();
        Ok(KeySet { verifiers, until, signer: Some(signer), jwks: json!({ "keys": published }) })
    }

    /// The key new tokens are signed with.
    pub fn signer(&self) -> Option<&SigningKey> {
        self.signer.and_then(|i| self.verifiers.get(i))
    }

    /// The key a token's `kid` names, if it is one of ours and still trusted. The only way a
    /// key is found for verification: never by URL, never from the token itself.
    pub fn verifier(&self, kid: &str) -> Option<&SigningKey> {
        self.verifiers.iter().find(|k| k.kid() == kid)
    }

    /// [`Self::verifier`], if the key is still trusted at `now`: a retired key stops
    /// verifying once the tokens it signed have all expired, whether or not a newer set has
    /// been loaded since.
    pub fn verifier_at(&self, kid: &str, now: OffsetDateTime) -> Option<&SigningKey> {
        let i = self.verifiers.iter().position(|k| k.kid() == kid)?;
        if self.until.get(i).copied().flatten().is_some_and(|t| now >= t) {
            return None;
        }
        self.verifiers.get(i)
    }

    pub fn verifier_kids(&self) -> Vec<String> {
        self.verifiers.iter().map(|k| k.kid().to_owned()).collect()
    }

    /// `{"keys": [...]}`: the public JWKs of every verifier (RFC 7517 §5). HS256 keys have
    /// none and are never listed.
    pub fn jwks(&self) -> Value {
        self.jwks.clone()
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("signer", &self.signer().map(SigningKey::kid))
            .field("verifiers", &self.verifier_kids())
            .finish()
    }
}

/// The current [`KeySet`], swapped atomically on rotation. Readers take no lock: a verification
/// loads the current set and keeps it for the length of one check, even if a swap happens.
pub struct Keys(ArcSwap<KeySet>);

impl Keys {
    pub fn new(set: KeySet) -> Self {
        Keys(ArcSwap::from_pointee(set))
    }

    /// The set in force now. Hold the guard for one verification, not across `.await`s.
    pub fn current(&self) -> Guard<Arc<KeySet>> {
        self.0.load()
    }

    pub fn replace(&self, set: KeySet) {
        self.0.store(Arc::new(set));
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Keys").field(&**self.current()).finish()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::Alg;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn lifetime() -> Duration {
        Duration::minutes(5) + Duration::seconds(30)
    }

    fn key() -> SigningKey {
        SigningKey::generate(Alg::EdDSA).unwrap().0
    }

    fn copy(k: &SigningKey, private: &[u8]) -> SigningKey {
        SigningKey::from_private(k.kid(), k.alg(), private).unwrap()
    }

    #[test]
    fn empty_set_neither_signs_nor_verifies() {
        let set = KeySet::empty();
        assert!(set.signer().is_none());
        assert!(set.verifier_kids().is_empty());
        assert_eq!(set.jwks(), json!({ "keys": [] }));
    }

    #[test]
    fn no_active_key_is_an_error() {
        let future = vec![(key(), T0 + Duration::hours(1), None)];
        assert!(matches!(KeySet::new(future, T0, lifetime()), Err(JwtError::NoSigningKey)));
        assert!(matches!(KeySet::new(Vec::new(), T0, lifetime()), Err(JwtError::NoSigningKey)));
    }

    #[test]
    fn duplicate_kids_are_an_error() {
        let (a, private) = SigningKey::generate(Alg::EdDSA).unwrap();
        let b = copy(&a, &private);
        let keys = vec![(a, T0, None), (b, T0, None)];
        assert!(matches!(KeySet::new(keys, T0, lifetime()), Err(JwtError::DuplicateKid(_))));
    }

    /// Rotation at `T1`: `new` is published at `T0 + 1h`, activates at `T1`, `old` retires at `T1`.
    #[test]
    fn rotation_publishes_before_signing_and_keeps_the_old_key_until_its_tokens_expire() {
        let (old, old_private) = SigningKey::generate(Alg::EdDSA).unwrap();
        let (new, new_private) = SigningKey::generate(Alg::EdDSA).unwrap();
        let (old_kid, new_kid) = (old.kid().to_owned(), new.kid().to_owned());
        let t1 = T0 + Duration::hours(2);
        let set_at = |now: OffsetDateTime| {
            let keys = vec![(copy(&old, &old_private), T0, Some(t1)), (copy(&new, &new_private), t1, None)];
            KeySet::new(keys, now, lifetime()).unwrap()
        };
        let published = |set: &KeySet| -> Vec<String> {
            set.jwks()["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
        };

        // Before activation: old signs, new already verifies and is published.
        let before = set_at(t1 - Duration::seconds(1));
        assert_eq!(before.signer().unwrap().kid(), old_kid);
        assert!(before.verifier(&new_kid).is_some());
        assert_eq!(published(&before), [old_kid.clone(), new_kid.clone()]);

        // From activation: new signs, old still verifies.
        let after = set_at(t1);
        assert_eq!(after.signer().unwrap().kid(), new_kid);
        assert!(after.verifier(&old_kid).is_some());

        // Until retires_at + access_ttl + leeway, then not.
        let last = set_at(t1 + lifetime() - Duration::seconds(1));
        assert!(last.verifier(&old_kid).is_some());
        assert_eq!(published(&last).len(), 2);
        let gone = set_at(t1 + lifetime());
        assert!(gone.verifier(&old_kid).is_none());
        assert_eq!(gone.verifier_kids(), [new_kid.as_str()]);
        assert_eq!(published(&gone), [new_kid]);
    }

    #[test]
    fn ties_are_broken_the_same_way_everywhere() {
        let (a, pa) = SigningKey::generate(Alg::EdDSA).unwrap();
        let (b, pb) = SigningKey::generate(Alg::EdDSA).unwrap();
        let greatest = a.kid().max(b.kid()).to_owned();
        let one = KeySet::new(vec![(copy(&a, &pa), T0, None), (copy(&b, &pb), T0, None)], T0, lifetime()).unwrap();
        let two = KeySet::new(vec![(copy(&b, &pb), T0, None), (copy(&a, &pa), T0, None)], T0, lifetime()).unwrap();
        assert_eq!(one.signer().unwrap().kid(), greatest);
        assert_eq!(two.signer().unwrap().kid(), greatest);
    }

    #[test]
    fn jwks_never_lists_hs256_keys() {
        let hs = SigningKey::generate(Alg::HS256).unwrap().0;
        let set = KeySet::new(vec![(hs, T0, None)], T0, lifetime()).unwrap();
        assert!(set.signer().is_some());
        assert_eq!(set.jwks(), json!({ "keys": [] }));
    }

    #[test]
    fn keys_swap_without_disturbing_a_held_set() {
        let keys = Keys::new(KeySet::empty());
        let held = keys.current();
        keys.replace(KeySet::new(vec![(key(), T0, None)], T0, lifetime()).unwrap());
        assert!(held.signer().is_none());
        assert!(keys.current().signer().is_some());
    }
}
