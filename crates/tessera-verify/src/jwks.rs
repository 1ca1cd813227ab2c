//! tessera's public keys, fetched from its JWKS and kept.
//!
//! - Read at start, then every `jwks_refresh` (how retired keys leave), and when a token names
//!   a `kid` we do not have (how a rotation arrives: tessera publishes a new key before it signs
//!   with it, but a service started in between may see the first token first) — at most once
//!   per `jwks_min_refetch`, so forged kids cannot make us hammer tessera.
//! - A fetch that fails — tessera down, slow (`request_timeout`), an error status, a body that
//!   is not a JWKS or has no usable key — changes nothing: the keys we had stay, and each cause
//!   is logged once.
//! - Keys that leave the set have their entries flushed from the verified-token cache.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};
use tessera_jwt::{Alg, PublicKeySet, VerifiedCache};

use crate::log_once::LogOnce;

/// A JWKS larger than this is junk (one EdDSA key is ~150 bytes; RS256 ~450).
const MAX_JWKS_BYTES: usize = 256 * 1024;

pub(crate) struct Jwks {
    keys: ArcSwap<PublicKeySet>,
    client: reqwest::Client,
    url: String,
    alg: Alg,
    timeout: Duration,
    min_refetch: Duration,
    last_attempt: Mutex<Option<Instant>>,
    /// One fetch at a time; requests with an unknown `kid` wait for the one in flight.
    fetching: tokio::sync::Mutex<()>,
    cache: Arc<VerifiedCache>,
    log: LogOnce,
}

impl Jwks {
    pub(crate) fn new(
        client: reqwest::Client,
        url: String,
        alg: Alg,
        timeout: Duration,
        min_refetch: Duration,
        cache: Arc<VerifiedCache>,
    ) -> Self {
        Jwks {
            keys: ArcSwap::from_pointee(PublicKeySet::empty()),
            client,
            url,
            alg,
            timeout,
            min_refetch,
            last_attempt: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            cache,
            log: LogOnce::new("JWKS fetch"),
        }
    }

    pub(crate) fn current(&self) -> Guard<Arc<PublicKeySet>> {
        self.keys.load()
    }

    /// Fetches now (the periodic refresh and the first load).
    pub(crate) async fn refresh(&self) {
        let _one = self.fetching.lock().await;
        self.fetch().await;
    }

    /// A token named `kid`, which we do not have: refetch unless we did so very recently.
    /// Returns whether the key is known now.
    pub(crate) async fn refetch_for(&self, kid: &str) -> bool {
        if self.recently_attempted() {
            return false;
        }
        let _one = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if self.current().verifier(kid).is_some() {
            return true;
        }
        if self.recently_attempted() {
            return false;
        }
        self.fetch().await;
        self.current().verifier(kid).is_some()
    }

    fn recently_attempted(&self) -> bool {
        let last = self.last_attempt.lock().unwrap_or_else(PoisonError::into_inner);
        last.is_some_and(|at| at.elapsed() < self.min_refetch)
    }

    async fn fetch(&self) {
        *self.last_attempt.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        match tokio::time::timeout(self.timeout, self.download()).await {
            Err(_) => self.log.failed(&format!("{} did not answer within {:?}", self.url, self.timeout)),
            Ok(Err(cause)) => self.log.failed(&cause),
            Ok(Ok(body)) => match PublicKeySet::from_jwks(&body, self.alg) {
                Err(e) => self.log.failed(&format!("{} is not a usable JWKS: {e}", self.url)),
                Ok((set, _skipped)) => {
                    self.log.recovered();
                    self.install(set);
                }
            },
        }
    }

    async fn download(&self) -> Result<Vec<u8>, String> {
        let mut response =
            self.client.get(&self.url).send().await.map_err(|e| format!("cannot fetch {}: {e}", self.url))?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", self.url, response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading {}: {e}", self.url))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("{} sent more than {MAX_JWKS_BYTES} bytes", self.url));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn install(&self, set: PublicKeySet) {
        let old = self.keys.swap(Arc::new(set));
        let new = self.current();
        for kid in old.kids() {
            if new.verifier(&kid).is_none() {
                self.cache.flush_kid(&kid);
                tracing::info!(kid, "tessera-verify: key left tessera's JWKS");
            }
        }
    }
}
