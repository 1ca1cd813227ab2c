//! What a [`crate::Verifier`] needs to know: where tessera is, what its tokens must say, and
//! how stale its copy of the revocations may get. Built in code or read from `VERIFY_*`
//! environment variables ([`Settings::from_env`]).

use std::fmt;
use std::time::Duration;

use tessera_jwt::{Alg, MAX_TOKEN_LEN};

/// The feed's service key (one of tessera's `verify.keys`). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct FeedKey(String);

impl FeedKey {
    pub fn new(key: impl Into<String>) -> Self {
        FeedKey(key.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for FeedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FeedKey([redacted])")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// tessera's base URL as this service reaches it, e.g. `http://tessera:8080`.
    pub url: String,
    /// The `iss` tokens must carry: tessera's `jwt.issuer`. Defaults to `url`.
    pub issuer: String,
    /// The `aud` tokens must carry: tessera's `jwt.audience` (default `tessera`).
    pub audience: String,
    /// The one algorithm accepted: tessera's `jwt.alg` (default EdDSA). HS256 cannot be
    /// verified outside tessera: its key is never published.
    pub algorithm: Alg,
    /// Clock skew tolerated on `iat`, for a signer whose clock runs ahead (default 30 s, as
    /// tessera's `jwt.leeway`). Never added to `exp`: a token is refused from its `exp` on.
    pub leeway: Duration,
    /// Tokens longer than this are refused unread (default and maximum 8 KiB).
    pub max_token_size: usize,
    /// Where the JWKS is (default `{url}/.well-known/jwks.json`).
    pub jwks_url: String,
    /// How often the JWKS is re-read even without an unknown `kid` (default 60 s): this is how
    /// retired keys leave.
    pub jwks_refresh: Duration,
    /// An unknown `kid` refetches the JWKS at most once per this interval (default 5 s), so a
    /// flood of forged kids costs tessera one request per interval.
    pub jwks_min_refetch: Duration,
    /// Where the revocation feed is (default `{url}/v1/revocations`).
    pub feed_url: String,
    /// The feed's service key. `None`: revocations are not followed, and a token stays valid
    /// until it expires, whatever happens at tessera (the `jwt` mode's guarantee only).
    pub feed_key: Option<FeedKey>,
    /// Once nothing (not even a heartbeat) came from the feed for this long, every token is
    /// refused with 503 until the feed is back (default 5 s).
    pub max_staleness: Duration,
    /// Verified tokens remembered (default 10 000).
    pub cache_capacity: usize,
    /// Timeout of one JWKS request and of connecting to the feed (default 5 s).
    pub request_timeout: Duration,
}

impl Settings {
    /// Defaults for a tessera at `url` whose issuer is that same URL.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into().trim_end_matches('/').to_owned();
        Settings {
            issuer: url.clone(),
            audience: "tessera".into(),
            algorithm: Alg::EdDSA,
            leeway: Duration::from_secs(30),
            max_token_size: MAX_TOKEN_LEN,
            jwks_url: format!("{url}/.well-known/jwks.json"),
            jwks_refresh: Duration::from_secs(60),
            jwks_min_refetch: Duration::from_secs(5),
            feed_url: format!("{url}/v1/revocations"),
            feed_key: None,
            max_staleness: Duration::from_secs(5),
            cache_capacity: 10_000,
            request_timeout: Duration::from_secs(5),
            url,
        }
    }

    /// Reads `VERIFY_URL` (required) and the optional `VERIFY_ISSUER`, `VERIFY_AUDIENCE`,
    /// `VERIFY_ALGORITHM`, `VERIFY_LEEWAY`, `VERIFY_MAX_TOKEN_SIZE`, `VERIFY_JWKS_URL`,
    /// `VERIFY_JWKS_REFRESH`, `VERIFY_JWKS_MIN_REFETCH`, `VERIFY_FEED_URL`, `VERIFY_FEED_KEY`,
    /// `VERIFY_MAX_STALENESS`, `VERIFY_CACHE_CAPACITY`, `VERIFY_REQUEST_TIMEOUT`.
    /// Durations are written `500ms`, `5s`, `2m` or `1h`.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Settings::from_env`] over any source of variables.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &'static str| var(name).filter(|v| !v.trim().is_empty());
        let url = get("VERIFY_URL").ok_or(SettingsError::Missing("VERIFY_URL"))?;
        let mut s = Settings::new(url);
        if let Some(v) = get("VERIFY_ISSUER") {
            s.issuer = v;
        }
        if let Some(v) = get("VERIFY_AUDIENCE") {
            s.audience = v;
        }
        if let Some(v) = get("VERIFY_ALGORITHM") {
            s.algorithm = Alg::parse(v.trim()).ok_or(SettingsError::Invalid("VERIFY_ALGORITHM", v))?;
        }
        let duration = |name: &'static str, into: &mut Duration| -> Result<(), SettingsError> {
            if let Some(v) = get(name) {
                *into = parse_duration(&v).ok_or(SettingsError::Invalid(name, v))?;
            }
            Ok(())
        };
        duration("VERIFY_LEEWAY", &mut s.leeway)?;
        duration("VERIFY_JWKS_REFRESH", &mut s.jwks_refresh)?;
        duration("VERIFY_JWKS_MIN_REFETCH", &mut s.jwks_min_refetch)?;
        duration("VERIFY_MAX_STALENESS", &mut s.max_staleness)?;
        duration("VERIFY_REQUEST_TIMEOUT", &mut s.request_timeout)?;
        let number = |name: &'static str, into: &mut usize| -> Result<(), SettingsError> {
            if let Some(v) = get(name) {
                *into = v.trim().parse().map_err(|_| SettingsError::Invalid(name, v))?;
            }
            Ok(())
        };
        number("VERIFY_MAX_TOKEN_SIZE", &mut s.max_token_size)?;
        number("VERIFY_CACHE_CAPACITY", &mut s.cache_capacity)?;
        if let Some(v) = get("VERIFY_JWKS_URL") {
            s.jwks_url = v;
        }
        if let Some(v) = get("VERIFY_FEED_URL") {
            s.feed_url = v;
        }
        s.feed_key = get("VERIFY_FEED_KEY").map(FeedKey::new);
        s.check()?;
        Ok(s)
    }

    /// Refuses settings that cannot work.
    pub fn check(&self) -> Result<(), SettingsError> {
        if !self.algorithm.is_asymmetric() {
            return Err(SettingsError::Invalid("algorithm", "HS256 keys are never published".into()));
        }
        if self.max_token_size == 0 || self.max_token_size > MAX_TOKEN_LEN {
            return Err(SettingsError::Invalid("max_token_size", format!("between 1 and {MAX_TOKEN_LEN}")));
        }
        if self.leeway > Duration::from_secs(60) {
            return Err(SettingsError::Invalid("leeway", "at most 60s".into()));
        }
        if self.max_staleness.is_zero() {
            return Err(SettingsError::Invalid("max_staleness", "must be more than 0".into()));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{0} is invalid: {1}")]
    Invalid(&'static str, String),
}

/// `250ms`, `5s`, `2m`, `1h`; a bare number is seconds.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_url() {
        let s = from(&[("VERIFY_URL", "http://tessera:8080/")]).unwrap();
        assert_eq!(s.issuer, "http://tessera:8080");
        assert_eq!(s.jwks_url, "http://tessera:8080/.well-known/jwks.json");
        assert_eq!(s.feed_url, "http://tessera:8080/v1/revocations");
        assert_eq!(s.max_staleness, Duration::from_secs(5));
        assert!(s.feed_key.is_none());
    }

    #[test]
    fn every_variable_is_read() {
        let s = from(&[
            ("VERIFY_URL", "http://t"),
            ("VERIFY_ISSUER", "https://login.example"),
            ("VERIFY_AUDIENCE", "api"),
            ("VERIFY_ALGORITHM", "ES256"),
            ("VERIFY_LEEWAY", "10s"),
            ("VERIFY_MAX_STALENESS", "1500ms"),
            ("VERIFY_FEED_KEY", "k3y"),
            ("VERIFY_JWKS_MIN_REFETCH", "1m"),
            ("VERIFY_MAX_TOKEN_SIZE", "4096"),
        ])
        .unwrap();
        assert_eq!((s.issuer.as_str(), s.audience.as_str(), s.algorithm), ("https://login.example", "api", Alg::ES256));
        assert_eq!((s.leeway, s.max_staleness), (Duration::from_secs(10), Duration::from_millis(1500)));
        assert_eq!((s.jwks_min_refetch, s.max_token_size), (Duration::from_secs(60), 4096));
        assert_eq!(s.feed_key, Some(FeedKey::new("k3y")));
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        assert!(matches!(from(&[]), Err(SettingsError::Missing("VERIFY_URL"))));
        for (name, value) in [
            ("VERIFY_ALGORITHM", "none"),
            ("VERIFY_ALGORITHM", "HS256"),
            ("VERIFY_LEEWAY", "5 minutes"),
            ("VERIFY_LEEWAY", "2m"),
            ("VERIFY_MAX_STALENESS", "0s"),
            ("VERIFY_MAX_TOKEN_SIZE", "100000"),
        ] {
            let err = from(&[("VERIFY_URL", "http://t"), (name, value)]).unwrap_err().to_string();
            assert!(err.contains(&name["VERIFY_".len()..].to_ascii_lowercase()) || err.contains(name), "{err}");
        }
    }

    #[test]
    fn the_feed_key_is_never_printed() {
        let s = from(&[("VERIFY_URL", "http://t"), ("VERIFY_FEED_KEY", "super-secret-key")]).unwrap();
        assert!(!format!("{s:?}").contains("super-secret"));
    }
}
