//! The [`Verifier`]: one per service, cheap to clone, shared by every request.

use std::fmt;
use std::sync::Arc;

use tessera_jwt::id::{SessionId, TokenId, UserId};
use tessera_jwt::{AccessClaims, JwtError, JwtSettings, VerifiedCache, verify_public};
use time::OffsetDateTime;
use tokio::task::AbortHandle;

use crate::feed::{self, Decision, Feed, Revocations};
use crate::jwks::Jwks;
use crate::settings::{Settings, SettingsError};

/// Checks tessera's access tokens: the server's own rules (`tessera-jwt`), tessera's keys from
/// its JWKS, and tessera's revocations from its feed. Clone it freely.
#[derive(Clone)]
pub struct Verifier(Arc<Inner>);

struct Inner {
    jwt: JwtSettings,
    max_token_size: usize,
    jwks: Arc<Jwks>,
    cache: Arc<VerifiedCache>,
    /// `None` when no feed key is configured: revocations are not followed.
    revocations: Option<Arc<Revocations>>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A token that passed every check: whose it is and until when.
#[derive(Debug, Clone)]
pub struct Verified {
    claims: Arc<AccessClaims>,
}

impl Verified {
    pub fn user_id(&self) -> UserId {
        self.claims.sub
    }

    /// The tessera session the token belongs to (absent in the jwt mode without sessions).
    pub fn session_id(&self) -> Option<SessionId> {
        self.claims.sid
    }

    pub fn token_id(&self) -> TokenId {
        self.claims.jti
    }

    pub fn expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.claims.exp).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }
}

/// Why a request was not let through.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No `Authorization: Bearer` credential (401).
    #[error("no credential was presented")]
    Missing,
    /// More than one `Authorization` header: the request could be read two ways (400, as
    /// tessera itself answers).
    #[error("more than one Authorization header")]
    Repeated,
    /// The credential is not a bearer token (401).
    #[error("the credential is malformed: {0}")]
    Malformed(&'static str),
    /// Not a token tessera issued, not valid now, or signed by a key we do not have (401).
    #[error("invalid token: {0}")]
    Invalid(JwtError),
    /// Revoked at tessera (401).
    #[error("the token was revoked")]
    Revoked,
    /// We cannot decide: no key from tessera yet, or the copy of its revocations is older than
    /// `max_staleness` (503; retry later).
    #[error("cannot check tokens now: {0}")]
    Unavailable(&'static str),
}

impl Verifier {
    /// Starts verifying with `settings`: loads the JWKS once (a failure is logged and retried;
    /// tokens are refused with 503 meanwhile) and starts following the feed. Needs a Tokio
    /// runtime; the background tasks stop when the last clone is dropped.
    pub async fn start(settings: Settings) -> Result<Verifier, SettingsError> {
        settings.check()?;
        let client = reqwest::Client::builder()
            .connect_timeout(settings.request_timeout)
            .build()
            .map_err(|e| SettingsError::Invalid("http client", e.to_string()))?;
        let cache = Arc::new(VerifiedCache::new(settings.cache_capacity));
        let jwks = Arc::new(Jwks::new(
            client.clone(),
            settings.jwks_url.clone(),
            settings.algorithm,
            settings.request_timeout,
            settings.jwks_min_refetch,
            Arc::clone(&cache),
        ));
        jwks.refresh().await;
        let mut tasks = Vec::new();
        let refresher = Arc::clone(&jwks);
        let every = settings.jwks_refresh;
        tasks.push(
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    refresher.refresh().await;
                }
            })
            .abort_handle(),
        );
        let revocations = match settings.feed_key.clone() {
            Some(key) => {
                let revocations = Arc::new(Revocations::new(settings.max_staleness));
                let source =
                    Feed { client, url: settings.feed_url.clone(), key, connect_timeout: settings.request_timeout };
                tasks.push(tokio::spawn(feed::follow(source, Arc::clone(&revocations))).abort_handle());
                Some(revocations)
            }
            None => {
                tracing::warn!(
                    "tessera-verify: no feed key (VERIFY_FEED_KEY): logouts at tessera are not followed, \
                     tokens stay valid until they expire"
                );
                None
            }
        };
        let jwt = JwtSettings {
            alg: settings.algorithm,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            // Only signing reads it; a verifier never signs.
            access_ttl: time::Duration::ZERO,
            leeway: time::Duration::try_from(settings.leeway).unwrap_or(time::Duration::ZERO),
        };
        Ok(Verifier(Arc::new(Inner { jwt, max_token_size: settings.max_token_size, jwks, cache, revocations, tasks })))
    }

    /// Checks a bearer token: signature, claims and expiry by the server's own rules, then the
    /// revocations. A token seen before skips the signature check, never the expiry or the
    /// revocation check.
    pub async fn verify(&self, token: &str) -> Result<Verified, Refusal> {
        let inner = &*self.0;
        if token.len() > inner.max_token_size {
            return Err(Refusal::Invalid(JwtError::TooLarge { max: inner.max_token_size }));
        }
        let now = OffsetDateTime::now_utc();
        let claims = match inner.cache.get(token) {
            Some(claims) => claims,
            None => self.verify_signature(token, now).await?,
        };
        // Checked on every use, cached or not — and, as at tessera, without the leeway: it
        // tolerates clock skew in `iat`, never lengthens a lifetime tessera decided.
        if now.unix_timestamp() >= claims.exp {
            return Err(Refusal::Invalid(JwtError::Expired));
        }
        if let Some(revocations) = &inner.revocations {
            match revocations.check(&claims, now.unix_timestamp()) {
                Ok(()) => {}
                Err(Decision::Revoked) => return Err(Refusal::Revoked),
                Err(Decision::Stale) => return Err(Refusal::Unavailable("the copy of tessera's revocations is stale")),
            }
        }
        Ok(Verified { claims })
    }

    async fn verify_signature(&self, token: &str, now: OffsetDateTime) -> Result<Arc<AccessClaims>, Refusal> {
        let inner = &*self.0;
        let mut keys = inner.jwks.current();
        let mut result = verify_public(&keys, &inner.jwt, token, now);
        if matches!(result, Err(JwtError::UnknownKey))
            && let Some(kid) = header_kid(token)
            && inner.jwks.refetch_for(&kid).await
        {
            keys = inner.jwks.current();
            result = verify_public(&keys, &inner.jwt, token, now);
        }
        match result {
            Ok(claims) => {
                let claims = Arc::new(claims);
                inner.cache.insert_public(token, &keys, Arc::clone(&claims));
                Ok(claims)
            }
            Err(JwtError::UnknownKey) if keys.is_empty() => Err(Refusal::Unavailable("no key from tessera's JWKS yet")),
            Err(e) => Err(Refusal::Invalid(e)),
        }
    }

    /// Whether tokens can be checked now: keys loaded and, if the feed is followed, its copy
    /// fresh. For a readiness probe.
    pub fn is_ready(&self) -> bool {
        !self.0.jwks.current().is_empty() && self.0.revocations.as_ref().is_none_or(|r| r.is_fresh())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.0.jwt.issuer)
            .field("audience", &self.0.jwt.audience)
            .field("alg", &self.0.jwt.alg)
            .field("keys", &self.0.jwks.current().kids())
            .field("follows_revocations", &self.0.revocations.is_some())
            .finish()
    }
}

/// The `kid` of a token, for the refetch decision only: this reads the header leniently and
/// trusts nothing — the token is verified in full afterwards.
fn header_kid(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("kid")?.as_str().filter(|k| !k.is_empty() && k.len() <= 256).map(str::to_owned)
}
