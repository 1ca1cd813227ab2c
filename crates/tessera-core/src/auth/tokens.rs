use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use aws_lc_rs::hmac;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::error::AuthError;
use crate::feed::{Feed, FeedEvent};
use crate::id::UserId;
use crate::jwt::{Alg, KeySet, Keys, Sealer, SigningKey, VerifiedCache};
use crate::policy::TokenPolicy;
use crate::refresh::RefreshChain;
use crate::revocation::Denylist;
use crate::secret::random_bytes;
use crate::store::{Store, StoredKey};
use crate::username::Username;
use zeroize::Zeroizing;

/// Everything the token modes need beyond the store: the signing keys (swapped atomically on
/// rotation), the server secrets, the in-process denylist and the verified-token cache.
pub struct Tokens {
    pub(super) policy: TokenPolicy,
    pub(super) keys: Keys,
    sealer: Option<Sealer>,
    pub(super) chain: RefreshChain,
    pub(super) csrf: hmac::Key,
    pub(super) denylist: Denylist,
    pub(super) verified: VerifiedCache,
    /// Usernames never change, so `/v1/me` in token modes reads each one once per process.
    pub(super) usernames: RwLock<HashMap<UserId, Username>>,
    /// Where the next denylist sync reads from; `None` before the first one.
    denylist_cursor: Mutex<Option<u64>>,
    /// The revocation feed (`GET /v1/revocations`): every batch a sync reads.
    feed: Feed,
    /// Signalled when this instance denied something, so the sync (and the feed) need not
    /// wait for the next tick.
    denied_here: Notify,
}

const CHAIN_SECRET: &str = "refresh-chain";
const CSRF_SECRET: &str = "csrf";

/// A 32-byte server secret shared by every instance, created on first start. With a seal key
/// it is stored sealed, under its own name: turning sealing on or off starts new secrets
/// (existing refresh tokens then stop working — users log in again) rather than misreading
/// old ones.
async fn server_secret(
    store: &dyn Store,
    sealer: Option<&Sealer>,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    let internal = |_: crate::jwt::JwtError| {
        AuthError::Internal(format!(
            "jwt.seal_key does not open the server secret {name}: it was sealed with another seal key; set \
             jwt.seal_key (or TESSERA_JWT__SEAL_KEY) to the one it was sealed with"
        ))
    };
    match sealer {
        None => Ok(Zeroizing::new(store.secret_or_insert(name, &random_bytes::<32>()).await?)),
        Some(s) => {
            let sealed_name = format!("{name}.sealed");
            let fresh = s.seal(&sealed_name, &random_bytes::<32>()).map_err(internal)?;
            let stored = store.secret_or_insert(&sealed_name, &fresh).await?;
            s.open(&sealed_name, &stored).map_err(internal)
        }
    }
}

impl Tokens {
    /// Loads the server secrets and signing keys, creating them on first start.
    pub async fn load(store: &dyn Store, now: OffsetDateTime, policy: TokenPolicy) -> Result<Self, AuthError> {
        let sealer = policy.seal_key.map(|k| Sealer::new(&k));
        let chain = server_secret(store, sealer.as_ref(), CHAIN_SECRET).await?;
        let csrf = server_secret(store, sealer.as_ref(), CSRF_SECRET).await?;
        let tokens = Self {
            keys: Keys::new(KeySet::empty()),
            sealer,
            chain: RefreshChain::new(&chain),
            csrf: hmac::Key::new(hmac::HMAC_SHA256, &csrf),
            denylist: Denylist::new(policy.max_staleness),
            verified: VerifiedCache::new(10_000),
            usernames: RwLock::default(),
            denylist_cursor: Mutex::new(None),
            feed: Feed::default(),
            denied_here: Notify::new(),
            policy,
        };
        let stored = store.keys().await?;
        if tokens.sealer.is_some()
            && let Some(k) = stored.iter().find(|k| !k.sealed && k.retires_at.is_none())
        {
            tracing::warn!(
                kid = %k.kid,
                "signing key stored unsealed (it was created without jwt.seal_key); `tessera keys rotate` replaces \
                 it with a sealed one"
            );
        }
        if !tokens.has_usable_key(&stored, now) {
            // Instances starting together on an empty store race here; the store lets one
            // key in, and the reload below picks up whichever that was. The first key is
            // active from `now - leeway`, not `now`: the instance that loses may have read its
            // clock before the winner did (or run a little behind it), and must still find the
            // winner's key active when it reloads with its own, earlier `now`.
            let candidate = tokens.new_key(now, now - tokens.policy.jwt.leeway)?;
            if !candidate.sealed {
                tracing::warn!(
                    kid = %candidate.kid,
                    "creating a signing key stored unsealed: jwt.seal_key is not set (set TESSERA_JWT__SEAL_KEY to \
                     seal signing keys at rest)"
                );
            }
            store.insert_key_if_none_usable(&candidate, now).await?;
        }
        tokens.reload_keys(store, now).await?;
        Ok(tokens)
    }

    /// This instance's copy of the denylist (read by the metrics).
    pub fn denylist(&self) -> &Denylist {
        &self.denylist
    }

    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    fn alg(&self) -> Alg {
        self.policy.jwt.alg
    }

    fn has_usable_key(&self, stored: &[StoredKey], now: OffsetDateTime) -> bool {
        stored.iter().any(|k| k.alg == self.alg().as_str() && k.retires_at.is_none_or(|r| r > now))
    }

    async fn create_key(
        &self,
        store: &dyn Store,
        now: OffsetDateTime,
        activates_at: OffsetDateTime,
    ) -> Result<StoredKey, AuthError> {
        let stored = self.new_key(now, activates_at)?;
        store.insert_key(&stored).await?;
        Ok(stored)
    }

    /// A fresh signing key for the configured algorithm, sealed when a seal key is set.
    fn new_key(&self, now: OffsetDateTime, activates_at: OffsetDateTime) -> Result<StoredKey, AuthError> {
        let (key, private) = SigningKey::generate(self.alg()).map_err(|e| AuthError::Internal(e.to_string()))?;
        self.to_store(key.kid(), Zeroizing::new(private), now, activates_at)
    }

    /// The stored form of a key's private bytes: sealed when a seal key is set.
    fn to_store(
        &self,
        kid: &str,
        private: Zeroizing<Vec<u8>>,
        now: OffsetDateTime,
        activates_at: OffsetDateTime,
    ) -> Result<StoredKey, AuthError> {
        let (private, sealed) = match &self.sealer {
            Some(s) => (Zeroizing::new(s.seal(kid, &private).map_err(|e| AuthError::Internal(e.to_string()))?), true),
            None => (private, false),
        };
        Ok(StoredKey {
            kid: kid.to_owned(),
            alg: self.alg().as_str().to_owned(),
            private,
            sealed,
            created_at: now,
            activates_at,
            retires_at: None,
        })
    }

    /// Rebuilds the key set from the store (every instance does this periodically, so a
    /// rotation made anywhere is followed without a restart) and prunes keys whose tokens
    /// have all expired. Cached verifications by keys no longer trusted are dropped.
    ///
    /// The rows of expired keys are deleted only once the new set is built and in force: a
    /// reload that fails half-way (a row that does not open) deletes nothing. A reload that
    /// fails leaves the previous set in force, but its retired keys still stop verifying on
    /// time ([`KeySet::verifier_at`]).
    pub async fn reload_keys(&self, store: &dyn Store, now: OffsetDateTime) -> Result<(), AuthError> {
        let lifetime = self.policy.jwt.access_ttl + self.policy.jwt.leeway;
        let mut entries = Vec::new();
        let mut expired = Vec::new();
        for k in store.keys().await? {
            if k.retires_at.is_some_and(|r| r + lifetime <= now) {
                expired.push(k.kid.clone());
                continue;
            }
            if k.alg != self.alg().as_str() {
                continue;
            }
            let private = match (&self.sealer, k.sealed) {
                (Some(s), true) => s.open(&k.kid, &k.private).map_err(|_| {
                    AuthError::Internal(format!(
                        "jwt.seal_key does not open signing key {}: the store's keys were sealed with another \
                         seal key; set jwt.seal_key (or TESSERA_JWT__SEAL_KEY) to the one they were sealed with",
                        k.kid
                    ))
                })?,
                (None, true) => {
                    return Err(AuthError::Internal(format!(
                        "signing key {} is sealed, but jwt.seal_key is not set: set jwt.seal_key (or \
                         TESSERA_JWT__SEAL_KEY) to the seal key it was sealed with",
                        k.kid
                    )));
                }
                (_, false) => k.private.clone(),
            };
            let key = SigningKey::from_private(&k.kid, self.alg(), &private)
                .map_err(|e| AuthError::Internal(e.to_string()))?;
            entries.push((key, k.activates_at, k.retires_at));
        }
        let set = KeySet::new(entries, now, lifetime).map_err(|e| AuthError::Internal(e.to_string()))?;
        let before: Vec<String> = self.keys.current().verifier_kids();
        let after = set.verifier_kids();
        // Swap first, then flush: a verification racing the flush can no longer use the old set.
        self.keys.replace(set);
        for gone in before.iter().filter(|k| !after.contains(k)) {
            self.verified.flush_kid(gone);
        }
        for kid in &expired {
            store.delete_key(kid).await?;
        }
        Ok(())
    }

    /// Publishes a new key that starts signing after `jwks_max_age` — by then every verifier
    /// that cached the old JWKS has fetched the new one — and retires the others from then.
    pub async fn rotate_keys(&self, store: &dyn Store, now: OffsetDateTime) -> Result<StoredKey, AuthError> {
        let activates_at = now + self.policy.jwks_max_age;
        let key = self.create_key(store, now, activates_at).await?;
        store.retire_keys(&key.kid, activates_at).await?;
        self.reload_keys(store, now).await?;
        Ok(key)
    }

    /// Stores a key made elsewhere (`tessera keys import`) under `kid`, sealed when a seal key
    /// is set, exactly as a generated key would be. It is published at once and signs like a
    /// rotated key: after `jwks_max_age`, or at once with `activate_now` (verifiers holding an
    /// older JWKS then refuse its tokens until they fetch again). The other keys retire when it
    /// starts signing and stay published until the tokens they signed have expired.
    pub async fn import_key(
        &self,
        store: &dyn Store,
        now: OffsetDateTime,
        imported: &crate::jwt::ImportedKey,
        kid: &str,
        activate_now: bool,
    ) -> Result<StoredKey, AuthError> {
        if imported.alg() != self.alg() {
            return Err(AuthError::Invalid(format!(
                "this is an {} key, but the server signs with jwt.alg = \"{}\": import a key of that algorithm, or \
                 change jwt.alg (which starts a new key set)",
                imported.alg(),
                self.alg()
            )));
        }
        let key = SigningKey::from_private(kid, self.alg(), imported.private())
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let existing = store.keys().await?;
        if existing.iter().any(|k| k.kid == kid) {
            return Err(AuthError::Conflict(format!(
                "a key with kid {kid} already exists (`tessera keys list`): this key was imported before, or choose \
                 another with --kid"
            )));
        }
        let activates_at = if activate_now { now } else { now + self.policy.jwks_max_age };
        let stored = self.to_store(key.kid(), Zeroizing::new(imported.private().to_vec()), now, activates_at)?;
        store.insert_key(&stored).await.map_err(|e| match e {
            crate::store::StoreError::Conflict => {
                AuthError::Conflict(format!("a key with kid {kid} already exists (`tessera keys list`)"))
            }
            other => other.into(),
        })?;
        store.retire_keys(kid, activates_at).await?;
        self.reload_keys(store, now).await?;
        Ok(stored)
    }

    /// The public keys, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.current().jwks()
    }

    /// Catches the denylist copy up with the store, and publishes what it read on the feed.
    ///
    /// Only what follows the cursor is read: a read costs what was revoked since the last one,
    /// never the size of the whole denylist (which an attacker could otherwise drive). The
    /// store says when it cannot continue from the cursor (its log was lost or rolled back);
    /// the read is then the whole live log, and the copy keeps what it had besides.
    pub async fn sync_denylist(&self, store: &dyn Store, now: OffsetDateTime) -> Result<usize, AuthError> {
        let started = std::time::Instant::now();
        let cursor = *self.denylist_cursor.lock().unwrap_or_else(|p| p.into_inner());
        let read = store.read_denylist(cursor.unwrap_or(0), now).await?;
        let entries: Vec<_> = read.entries.iter().map(|(_, e)| *e).collect();
        self.denylist.apply(&entries);
        // One sync at a time (the maintenance loop), so the store's answer is the cursor:
        // it may move backwards when the store says its log started over.
        *self.denylist_cursor.lock().unwrap_or_else(|p| p.into_inner()) = Some(read.next);
        let events: Vec<FeedEvent> =
            read.entries.iter().map(|(cursor, entry)| FeedEvent { cursor: *cursor, entry: *entry }).collect();
        self.feed.publish(&events, read.next, read.restarted);
        self.denylist.mark_synced_as_of(started);
        self.denylist.purge(now);
        Ok(entries.len())
    }

    /// The revocation feed this instance serves.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// Whether this instance's denylist copy is fresh (within `revocation.max_staleness`):
    /// while it is not, the feed sends no heartbeats, so its consumers go stale too.
    pub fn denylist_is_fresh(&self) -> bool {
        self.denylist.is_fresh()
    }

    /// The live denylist, as the feed's `reset` sends it.
    pub fn denylist_snapshot(&self, now: OffsetDateTime) -> Vec<crate::store::DenyEntry> {
        self.denylist.snapshot(now)
    }

    /// Resolves when this instance denied something since the last call (a hint to sync now).
    pub async fn denied_here(&self) {
        self.denied_here.notified().await;
    }

    pub(super) fn note_denied_here(&self) {
        self.denied_here.notify_one();
    }
}

impl super::Auth {
    /// `tessera keys rotate`: publishes the next key (see [`Tokens::rotate_keys`]) and audits it.
    pub async fn rotate_keys(&self) -> Result<StoredKey, AuthError> {
        let tokens = self.tokens_or_internal()?;
        let key = tokens.rotate_keys(self.store.as_ref(), self.now()).await?;
        self.audit(
            crate::audit::AuditEvent::new(self.now(), crate::audit::AuditKind::KeyRotated)
                .detail(format!("{} signs from {}", key.kid, key.activates_at)),
        )
        .await;
        Ok(key)
    }

    /// `tessera keys import`: stores a key made elsewhere (see [`Tokens::import_key`]) and
    /// audits it as a rotation.
    pub async fn import_key(
        &self,
        imported: &crate::jwt::ImportedKey,
        kid: &str,
        activate_now: bool,
    ) -> Result<StoredKey, AuthError> {
        let tokens = self.tokens_or_internal()?;
        let key = tokens.import_key(self.store.as_ref(), self.now(), imported, kid, activate_now).await?;
        self.audit(
            crate::audit::AuditEvent::new(self.now(), crate::audit::AuditKind::KeyRotated)
                .detail(format!("{} imported; signs from {}", key.kid, key.activates_at)),
        )
        .await;
        Ok(key)
    }
}
