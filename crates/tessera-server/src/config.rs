//! Typed settings: `tessera.toml` (when present), then `TESSERA_<SECTION>__<KEY>` environment
//! overrides. Every section rejects unknown keys and every value is checked at start-up, so a
//! typo is an error naming the key instead of a silently ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Deserialize;

use crate::duration::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Values that do not parse: each named as the user wrote it (see [`describe`]).
    #[error("configuration: {0}")]
    Parse(String),
    #[error("configuration: {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// One line per problem, each naming the key the way its source spells it: `session.idle_timeout
/// in tessera.toml`, or `TESSERA_SESSION__IDLE_TIMEOUT` for an environment variable — not
/// figment's `default.session.idle_timeout`.
fn describe(error: figment::Error) -> String {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let path = &e.path;
            let from_env = e.metadata.as_ref().is_some_and(|m| m.name.contains("environment"));
            let key = if from_env {
                format!("TESSERA_{}", path.iter().map(|p| p.to_ascii_uppercase()).collect::<Vec<_>>().join("__"))
            } else {
                path.join(".")
            };
            let place = match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
                Some(figment::Source::File(f)) => format!(" in {}", f.display()),
                _ => String::new(),
            };
            let what = without_source_lines(&e.kind.to_string());
            if key.is_empty() || key == "TESSERA_" { format!("{what}{place}") } else { format!("{key}{place}: {what}") }
        })
        .collect();
    lines.join("\n")
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, message: message.into() }
}

/// A TOML syntax error quotes the offending line (`3 | api_key = 0123`), and that line may hold
/// a secret: the quoted lines are left out, the position and the reason stay.
fn without_source_lines(message: &str) -> String {
    let quoted = |line: &str| {
        let t = line.trim_start();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && t[digits..].trim_start().starts_with('|')
    };
    message.lines().filter(|l| !quoted(l)).collect::<Vec<_>>().join("\n")
}

/// Settings whose environment value is taken as written: the secrets and every other string.
/// figment reads other environment values as TOML-like values, which would turn an admin key
/// `0123` into the number 123 and a Redis prefix `007` into a type error. `verify.keys` from
/// the environment is a comma-separated list (see [`secret_list`]). A new string setting
/// belongs here.
const RAW_ENV_KEYS: [&str; 15] = [
    "admin.api_key",
    "jwt.seal_key",
    "verify.keys",
    "metrics.key",
    "store.data_dir",
    "store.postgres_url",
    "store.redis_url",
    "store.redis_prefix",
    "store.redis_ca_file",
    "store.redis_client_cert_file",
    "store.redis_client_key_file",
    "jwt.issuer",
    "jwt.audience",
    "log.level",
    "pages.title",
];

/// A secret setting. Written as a TOML string or a bare integer (kept as its digits), never
/// shown: its `Debug` prints `[redacted]`, and no error message quotes it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Secret;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            // Anything else would not come back as written (1.50 is 1.5): say so, without it.
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("write this secret as a string, in quotes"))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("write this secret as a string, in quotes"))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub auth: AuthConfig,
    pub jwt: JwtConfig,
    pub refresh: RefreshConfig,
    pub revocation: RevocationConfig,
    pub session: SessionConfig,
    pub cookie: CookieConfig,
    pub admin: AdminConfig,
    pub audit: AuditConfig,
    pub pages: PagesConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub verify: VerifyConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers are believed (addresses or CIDR
    /// blocks). Empty by default: the client IP is the socket's peer, so a client cannot
    /// spoof its way around the per-IP throttle.
    pub trusted_proxies: Vec<String>,
    /// The one header trusted proxies report the client in: `x-forwarded-for` or `forwarded`.
    pub proxy_header: ProxyHeader,
    /// The whole request, body included, must arrive and be answered within this.
    pub request_timeout: Duration,
    /// The request line and headers must arrive within this (slow-loris defence), and an idle
    /// keep-alive connection is closed after it; checked per connection, so within 1.25 × this.
    pub header_timeout: Duration,
    /// Password hashes computed at once; 0 = one per core.
    pub hash_concurrency: usize,
    /// Origins (`https://auth.example.com`) whose pages may log in and send cookie-authenticated
    /// unsafe requests. Empty: the origin each request names in `Host` (or a trusted proxy in
    /// `X-Forwarded-Host`/`-Proto`).
    pub allowed_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            trusted_proxies: Vec::new(),
            proxy_header: ProxyHeader::XForwardedFor,
            request_timeout: Duration::secs(30),
            header_timeout: Duration::secs(10),
            hash_concurrency: 0,
            allowed_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyHeader {
    #[default]
    XForwardedFor,
    Forwarded,
}

/// Its `Debug` shows the store URLs without their passwords.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The embedded store's directory; unused when `postgres_url` and `redis_url` are set.
    pub data_dir: PathBuf,
    /// Accounts, signing keys, server secrets and audit records, e.g.
    /// `postgres://tessera@db:5432/tessera`. Set together with `redis_url`.
    pub postgres_url: String,
    /// Sessions, refresh families, the denylist and throttle counters, e.g.
    /// `redis://cache:6379`, or `rediss://cache:6380` for TLS. With `redis_cluster`, a
    /// comma-separated list of seed nodes.
    pub redis_url: String,
    /// `redis_url` names Redis Cluster nodes rather than one standalone server.
    pub redis_cluster: bool,
    /// Prepended to every Redis key and channel, so several tessera deployments (or test
    /// runs) can share one Redis.
    pub redis_prefix: String,
    /// PEM file of the CAs that sign the Redis servers' certificates, trusted instead of the
    /// system's store (`rediss://` only).
    pub redis_ca_file: Option<PathBuf>,
    /// PEM certificate chain and private key tessera presents when Redis asks for a client
    /// certificate (`tls-auth-clients`). Set both or neither.
    pub redis_client_cert_file: Option<PathBuf>,
    pub redis_client_key_file: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./tessera-data"),
            postgres_url: String::new(),
            redis_url: String::new(),
            redis_cluster: false,
            redis_prefix: "tessera".into(),
            redis_ca_file: None,
            redis_client_cert_file: None,
            redis_client_key_file: None,
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use tessera_store::distributed::redact_url;
        f.debug_struct("StoreConfig")
            .field("data_dir", &self.data_dir)
            .field("postgres_url", &redact_url(&self.postgres_url))
            .field("redis_url", &redact_url(&self.redis_url))
            .field("redis_cluster", &self.redis_cluster)
            .field("redis_prefix", &self.redis_prefix)
            .finish_non_exhaustive()
    }
}

impl StoreConfig {
    /// PostgreSQL + Redis rather than the embedded SQLite file.
    pub fn is_distributed(&self) -> bool {
        !self.postgres_url.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeSetting {
    Session,
    Jwt,
    Hybrid,
}

/// Where credentials travel: cookies set by the server, or `Authorization: Bearer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Cookie,
    Bearer,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Cookie => "cookie",
            Transport::Bearer => "bearer",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: ModeSetting,
    /// The first is the default; clients pick another with `Tessera-Transport`.
    pub transports: Vec<Transport>,
    pub signup: bool,
    /// `refuse` (default): sign-up refuses usernames that mix scripts in a confusable way
    /// (Cyrillic `а` in `alice`) or that only look like an ASCII name. `allow` accepts them.
    pub username_confusables: UsernameConfusables,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: ModeSetting::Hybrid,
            transports: vec![Transport::Cookie, Transport::Bearer],
            signup: true,
            username_confusables: UsernameConfusables::Refuse,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsernameConfusables {
    #[default]
    Refuse,
    Allow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlg {
    EdDSA,
    ES256,
    RS256,
    HS256,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    pub alg: JwtAlg,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub leeway: Duration,
    /// `Cache-Control: max-age` of the JWKS; a rotated-in key is published this long before
    /// it signs.
    pub jwks_max_age: Duration,
    /// 32 bytes, base64url: seals private signing keys at rest (AES-256-GCM). Best given as
    /// `TESSERA_JWT__SEAL_KEY` in the environment. Empty = keys stored unsealed.
    pub seal_key: Secret,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            alg: JwtAlg::EdDSA,
            issuer: "http://127.0.0.1:8080".into(),
            audience: "tessera".into(),
            access_ttl: Duration::secs(300),
            leeway: Duration::secs(30),
            jwks_max_age: Duration::secs(60),
            seal_key: Secret::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshConfig {
    pub enabled: bool,
    pub ttl: Duration,
    pub reuse_grace: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self { enabled: true, ttl: Duration::days(30), reuse_grace: Duration::secs(10) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationCheck {
    None,
    Denylist,
    Allowlist,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationConfig {
    /// Default: `none` in jwt mode, `denylist` in hybrid mode.
    pub check: Option<RevocationCheck>,
    /// How long an instance's denylist copy may go without catching up before requests that
    /// need it answer 503 (fail closed).
    pub max_staleness: Duration,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self { check: None, max_staleness: Duration::secs(1) }
    }
}

/// A sane cap on sessions per account (a login beyond it ends the oldest): a browser or two
/// per device is far below it, an attacker scripting logins is stopped by it.
pub const DEFAULT_MAX_PER_USER: u32 = 100;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// 0 = unlimited. Defaults to [`DEFAULT_MAX_PER_USER`]: uncapped, one account could make
    /// its logout-all and session listing arbitrarily expensive.
    pub max_per_user: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::days(7),
            absolute_timeout: Duration::days(30),
            max_per_user: DEFAULT_MAX_PER_USER,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SameSite {
    Lax,
    Strict,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CookieConfig {
    pub secure: bool,
    pub same_site: SameSite,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self { secure: true, same_site: SameSite::Lax }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Empty disables the admin endpoints. Never logged.
    pub api_key: Secret,
}

/// The stored audit trail (`tessera audit`, `GET /v1/admin/audit`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How long a record is kept after its last event; older ones are deleted in the
    /// background.
    pub retention: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { retention: Duration::days(90) }
    }
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event; coloured only when standard error is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// Which events to write, as `RUST_LOG` takes them (`info`, `tessera_server=debug`); the
    /// `RUST_LOG` environment variable wins when set.
    pub level: String,
}

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// No `/metrics` route, and nothing is counted.
    #[default]
    Off,
    /// Anyone who can reach the listener (put it behind a private network or a proxy rule).
    Open,
    /// `Authorization: Bearer <metrics.key>`.
    Key,
}

/// Prometheus metrics at `GET /metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub access: MetricsAccess,
    /// The bearer key scrapers present when `access = "key"`. Never logged.
    pub key: Secret,
}

/// Services that verify tokens themselves (tessera-verify and the like).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// The service keys that may read the revocation feed (`GET /v1/revocations`, as
    /// `Authorization: Bearer <key>`). Empty disables the feed. Never logged. In TOML a list of
    /// strings (or one string); in `TESSERA_VERIFY__KEYS` comma-separated.
    #[serde(deserialize_with = "secret_list")]
    pub keys: Vec<Secret>,
}

/// A list of secrets: a sequence, or one string of comma-separated keys (the environment's
/// form). Blank items are refused rather than skipped: `a,,b` is a typo, not a key.
fn secret_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<Secret>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of strings, or one string of comma-separated keys")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<Secret>, E> {
            if v.trim().is_empty() {
                return Ok(Vec::new());
            }
            v.split(',')
                .map(|k| {
                    let k = k.trim();
                    if k.is_empty() { Err(E::custom("a key in the list is empty")) } else { Ok(Secret::new(k)) }
                })
                .collect()
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Vec<Secret>, E> {
            Ok(vec![Secret::new(v.to_string())])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Secret>, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = seq.next_element::<Secret>()? {
                if key.expose().trim().is_empty() {
                    return Err(serde::de::Error::custom("a key in the list is empty"));
                }
                keys.push(key);
            }
            Ok(keys)
        }
    }
    d.deserialize_any(Visitor)
}

/// tessera's own web pages (`/login`, `/signup`, `/account`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagesConfig {
    /// Serve the pages (they need the cookie transport; without it they are not served).
    pub enabled: bool,
    /// The name shown in the pages' header and window titles.
    pub title: String,
}

impl Default for PagesConfig {
    fn default() -> Self {
        Self { enabled: true, title: "tessera".into() }
    }
}

impl Config {
    /// Reads `file` (or `./tessera.toml` when it exists) and the `TESSERA_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let default_file = Path::new("tessera.toml");
        let mut figment = Figment::new();
        match file {
            Some(f) => figment = figment.merge(Toml::file_exact(f)),
            None if default_file.exists() => figment = figment.merge(Toml::file_exact(default_file)),
            None => {}
        }
        let env = || Env::prefixed("TESSERA_").split("__");
        let raw = |key: &str| RAW_ENV_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k));
        figment = figment.merge(env().filter(move |k| !raw(k.as_str())));
        for (key, value) in env().iter().filter(|(k, _)| raw(k.as_str())) {
            figment = figment.merge(Serialized::default(&key.as_str().to_ascii_lowercase(), value));
        }
        Self::extract(figment)
    }

    /// Parses TOML text alone (no file, no environment); for tests and tools.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::extract(Figment::new().merge(Toml::string(text)))
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(|e| ConfigError::Parse(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// The TLS files only mean something for `rediss://`: a CA file beside a plain URL would
    /// look like protection while the connection stays in the clear.
    fn validate_redis_tls(&self) -> Result<(), ConfigError> {
        let store = &self.store;
        let files = [
            ("store.redis_ca_file", &store.redis_ca_file),
            ("store.redis_client_cert_file", &store.redis_client_cert_file),
            ("store.redis_client_key_file", &store.redis_client_key_file),
        ];
        let tls = store.redis_url.split(',').any(|u| u.trim().to_ascii_lowercase().starts_with("rediss://"));
        for (key, file) in files {
            match file {
                Some(path) if path.as_os_str().is_empty() => return Err(invalid(key, "empty: leave it unset")),
                Some(_) if !tls => return Err(invalid(key, "needs a rediss:// (TLS) URL in store.redis_url")),
                _ => {}
            }
        }
        if store.redis_client_cert_file.is_some() != store.redis_client_key_file.is_some() {
            let key = if store.redis_client_cert_file.is_none() {
                "store.redis_client_cert_file"
            } else {
                "store.redis_client_key_file"
            };
            return Err(invalid(key, "the client certificate and its key go together: set both"));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.auth.transports.is_empty() {
            return Err(invalid("auth.transports", "name at least one of \"cookie\", \"bearer\""));
        }
        if self.auth.transports.len() == 2 && self.auth.transports[0] == self.auth.transports[1] {
            return Err(invalid("auth.transports", "a transport is listed twice"));
        }
        self.seal_key()?;
        if self.auth.mode == ModeSetting::Jwt
            && !self.refresh.enabled
            && self.revocation.check == Some(RevocationCheck::Allowlist)
        {
            return Err(invalid(
                "revocation.check",
                "\"allowlist\" needs server sessions: enable refresh or use hybrid",
            ));
        }
        if self.store.postgres_url.is_empty() != self.store.redis_url.is_empty() {
            let key = if self.store.postgres_url.is_empty() { "store.postgres_url" } else { "store.redis_url" };
            return Err(invalid(
                key,
                "the distributed backend needs both postgres_url and redis_url (or neither, for the embedded store)",
            ));
        }
        if self.store.redis_cluster && self.store.redis_url.is_empty() {
            return Err(invalid("store.redis_cluster", "needs redis_url: the cluster's seed nodes"));
        }
        self.validate_redis_tls()?;
        if self.store.redis_prefix.is_empty()
            || !self.store.redis_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(invalid("store.redis_prefix", "letters, digits and - _ . : only, not empty"));
        }
        for (key, value, max, written) in
            DURATION_LIMITS.map(|(key, max, written)| (key, self.duration(key), max, written))
        {
            if value.as_std() > max.as_std() {
                return Err(invalid(key, format!("at most {written}")));
            }
        }
        positive("session.idle_timeout", self.session.idle_timeout)?;
        positive("session.absolute_timeout", self.session.absolute_timeout)?;
        positive("jwt.access_ttl", self.jwt.access_ttl)?;
        positive("refresh.ttl", self.refresh.ttl)?;
        positive("server.request_timeout", self.server.request_timeout)?;
        positive("server.header_timeout", self.server.header_timeout)?;
        positive("revocation.max_staleness", self.revocation.max_staleness)?;
        positive("audit.retention", self.audit.retention)?;
        if self.trusted_proxies()?.iter().any(|net| net.prefix_len() == 0) {
            return Err(invalid(
                "server.trusted_proxies",
                "0.0.0.0/0 or ::/0 would let every client name its own IP (and dodge the per-IP limits); list your proxies",
            ));
        }
        let refresh_on = match self.auth.mode {
            ModeSetting::Hybrid => true,
            ModeSetting::Jwt => self.refresh.enabled,
            ModeSetting::Session => false,
        };
        if refresh_on && self.refresh.reuse_grace.as_std() >= self.jwt.access_ttl.as_std() {
            return Err(invalid(
                "refresh.reuse_grace",
                "must be shorter than jwt.access_ttl: a client refreshes about once per access token, so a longer grace \
                 would let a stolen refresh token follow the family forever without ever counting as reuse",
            ));
        }
        if self.metrics.access == MetricsAccess::Key && self.metrics.key.is_empty() {
            return Err(invalid("metrics.key", "metrics.access = \"key\" needs a key: a long random string"));
        }
        if !self.verify.keys.is_empty()
            && self.revocation_check() != tessera_core::revocation::RevocationCheck::Denylist
        {
            return Err(invalid(
                "verify.keys",
                "the revocation feed streams the denylist: it needs revocation.check = \"denylist\" (the default in \
                 hybrid mode); without it a service would never hear a logout",
            ));
        }
        let title = self.pages.title.trim();
        if title.is_empty() || title.chars().count() > 80 || title.chars().any(char::is_control) {
            return Err(invalid("pages.title", "1 to 80 characters, no control characters"));
        }
        if let Some(bad) = self.server.allowed_origins.iter().find(|o| crate::http::origin::parse_origin(o).is_none()) {
            return Err(invalid(
                "server.allowed_origins",
                format!("{bad:?} is not an origin: write scheme://host[:port], http or https, no path"),
            ));
        }
        Ok(())
    }

    /// The value of a duration setting named in [`DURATION_LIMITS`].
    fn duration(&self, key: &str) -> Duration {
        match key {
            "server.request_timeout" => self.server.request_timeout,
            "server.header_timeout" => self.server.header_timeout,
            "session.idle_timeout" => self.session.idle_timeout,
            "session.absolute_timeout" => self.session.absolute_timeout,
            "jwt.access_ttl" => self.jwt.access_ttl,
            "jwt.leeway" => self.jwt.leeway,
            "jwt.jwks_max_age" => self.jwt.jwks_max_age,
            "refresh.ttl" => self.refresh.ttl,
            "refresh.reuse_grace" => self.refresh.reuse_grace,
            "revocation.max_staleness" => self.revocation.max_staleness,
            "audit.retention" => self.audit.retention,
            _ => Duration::secs(0),
        }
    }

    /// Settings that start but deserve a loud warning: each is right somewhere (a plain-HTTP
    /// test network), and wrong in production. `(key, why)`.
    pub fn warnings(&self) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        if !self.cookie.secure && !self.server.listen.ip().is_loopback() {
            found.push((
                "cookie.secure",
                format!(
                    "false on {}, which is not a loopback address: cookies travel in clear text and lose the \
                     __Host- prefix that stops other subdomains from planting them; use it only on a test network",
                    self.server.listen
                ),
            ));
        }
        found.extend(self.without_effect());
        if !self.admin.api_key.is_empty() && self.admin.api_key.expose().len() < MIN_ADMIN_KEY {
            found.push((
                "admin.api_key",
                format!(
                    "shorter than {MIN_ADMIN_KEY} characters: use a long random key, e.g. 32 random bytes in base64"
                ),
            ));
        }
        if self.verify.keys.iter().any(|k| k.expose().len() < MIN_ADMIN_KEY) {
            found.push((
                "verify.keys",
                format!(
                    "a key is shorter than {MIN_ADMIN_KEY} characters: use long random keys, e.g. 32 random bytes in \
                     base64"
                ),
            ));
        }
        found
    }

    /// Settings changed from their defaults that the chosen mode ignores: accepted (a file may
    /// serve several modes), but said, so nobody believes they are in force.
    fn without_effect(&self) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        let (jwt, refresh, revocation) = (JwtConfig::default(), RefreshConfig::default(), RevocationConfig::default());
        let mode = match self.auth.mode {
            ModeSetting::Session => "session",
            ModeSetting::Jwt => "jwt",
            ModeSetting::Hybrid => "hybrid",
        };
        let mut ignored =
            |key: &'static str, why: &str| found.push((key, format!("has no effect in {mode} mode: {why}")));
        if self.auth.mode == ModeSetting::Session {
            let why = "session mode issues no JWTs";
            if self.jwt.alg != jwt.alg {
                ignored("jwt.alg", why);
            }
            if self.jwt.access_ttl != jwt.access_ttl {
                ignored("jwt.access_ttl", why);
            }
            if !self.jwt.seal_key.is_empty() {
                ignored("jwt.seal_key", why);
            }
            if self.refresh.ttl != refresh.ttl || self.refresh.reuse_grace != refresh.reuse_grace {
                ignored("refresh", "session mode has no refresh tokens (sessions slide with session.idle_timeout)");
            }
            if self.revocation.check.is_some() || self.revocation.max_staleness != revocation.max_staleness {
                ignored("revocation", "every request reads the session, so a revocation is in force at once");
            }
        }
        if self.auth.mode == ModeSetting::Hybrid && !self.refresh.enabled {
            ignored("refresh.enabled", "hybrid mode always has refresh tokens; use jwt mode for none");
        }
        if self.auth.mode == ModeSetting::Jwt
            && !self.refresh.enabled
            && (self.refresh.ttl != refresh.ttl || self.refresh.reuse_grace != refresh.reuse_grace)
        {
            ignored("refresh", "refresh.enabled is false");
        }
        if self.metrics.access != MetricsAccess::Key && !self.metrics.key.is_empty() {
            found.push(("metrics.key", "has no effect unless metrics.access = \"key\"".to_owned()));
        }
        found
    }

    /// The decoded `jwt.seal_key`, if one is set and valid.
    pub fn seal_key(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        if self.jwt.seal_key.is_empty() {
            return Ok(None);
        }
        tessera_core::secret::b64_decode_exact::<32>(self.jwt.seal_key.expose().trim())
            .map(Some)
            .ok_or_else(|| invalid("jwt.seal_key", "expected 32 bytes in base64url (43 characters)"))
    }

    /// The revocation check in force: the configured one, or the mode's default.
    pub fn revocation_check(&self) -> tessera_core::revocation::RevocationCheck {
        use tessera_core::revocation::RevocationCheck as Check;
        match self.revocation.check {
            Some(RevocationCheck::None) => Check::None,
            Some(RevocationCheck::Denylist) => Check::Denylist,
            Some(RevocationCheck::Allowlist) => Check::Allowlist,
            None if self.auth.mode == ModeSetting::Hybrid => Check::Denylist,
            None => Check::None,
        }
    }

    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.server
            .trusted_proxies
            .iter()
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| invalid("server.trusted_proxies", format!("{s:?} is not an IP address or CIDR block")))
            })
            .collect()
    }
}

/// The largest value of every duration setting. Beyond them the date arithmetic of a login
/// would overflow (`3000000d` made every login a 500), and long before that a value is a typo.
const DURATION_LIMITS: [(&str, Duration, &str); 11] = [
    ("server.request_timeout", Duration::secs(3600), "1h"),
    ("server.header_timeout", Duration::secs(3600), "1h"),
    ("session.idle_timeout", Duration::days(3650), "3650d"),
    ("session.absolute_timeout", Duration::days(3650), "3650d"),
    ("jwt.access_ttl", Duration::days(1), "1d"),
    ("jwt.leeway", Duration::secs(60), "60s"),
    ("jwt.jwks_max_age", Duration::days(7), "7d"),
    ("refresh.ttl", Duration::days(3650), "3650d"),
    ("refresh.reuse_grace", Duration::secs(3600), "1h"),
    ("revocation.max_staleness", Duration::secs(3600), "1h"),
    ("audit.retention", Duration::days(3650), "3650d"),
];

/// Below this an admin key is worth a warning.
const MIN_ADMIN_KEY: usize = 32;

fn positive(key: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d.as_std().is_zero() { Err(invalid(key, "must be more than 0s")) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn debug_never_shows_store_passwords() {
        let store = StoreConfig {
            postgres_url: "postgres://tessera:pg-secret@db:5432/tessera".into(),
            redis_url: "redis://:redis-secret@cache:6379,redis://u:other-secret@cache2:6379".into(),
            ..StoreConfig::default()
        };
        let shown = format!("{:?}", Config { store, ..Config::default() });
        for secret in ["pg-secret", "redis-secret", "other-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("postgres://tessera:***@db:5432/tessera"), "{shown}");
    }

    /// Verification refuses a token whose `exp` is further from its `iat` than the longest
    /// access-token lifetime: that must be the largest `jwt.access_ttl` configuration allows.
    #[test]
    fn the_access_ttl_limit_is_the_lifetime_verification_allows() {
        let limit = DURATION_LIMITS.iter().find(|(key, _, _)| *key == "jwt.access_ttl").map(|(_, d, _)| d.as_std());
        let allowed = tessera_core::jwt::MAX_ACCESS_TTL.whole_seconds();
        assert_eq!(limit.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)), Some(allowed));
    }

    /// Every key of the reference, so generated files reach every field's parser.
    const KEYS: [&str; 41] = [
        "server.listen",
        "server.trusted_proxies",
        "server.proxy_header",
        "server.request_timeout",
        "server.header_timeout",
        "server.hash_concurrency",
        "server.allowed_origins",
        "store.data_dir",
        "store.postgres_url",
        "store.redis_url",
        "store.redis_cluster",
        "store.redis_prefix",
        "store.redis_ca_file",
        "store.redis_client_cert_file",
        "store.redis_client_key_file",
        "auth.mode",
        "auth.transports",
        "auth.signup",
        "auth.username_confusables",
        "jwt.alg",
        "jwt.issuer",
        "jwt.audience",
        "jwt.access_ttl",
        "jwt.leeway",
        "jwt.jwks_max_age",
        "jwt.seal_key",
        "refresh.enabled",
        "refresh.ttl",
        "refresh.reuse_grace",
        "revocation.check",
        "revocation.max_staleness",
        "session.idle_timeout",
        "session.absolute_timeout",
        "session.max_per_user",
        "cookie.secure",
        "cookie.same_site",
        "admin.api_key",
        "audit.retention",
        "pages.enabled",
        "pages.title",
        "verify.keys",
    ];

    fn toml_value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{1,22}(ms|s|m|h|d)".prop_map(|d| format!("\"{d}\"")),
            "-?[0-9]{1,20}",
            Just("true".to_owned()),
            Just("false".to_owned()),
            "[ -!#-\\[\\]-~]{0,30}".prop_map(|s| format!("\"{s}\"")),
            prop_oneof![
                Just("\"session\""),
                Just("\"jwt\""),
                Just("\"hybrid\""),
                Just("\"cookie\""),
                Just("\"EdDSA\""),
                Just("\"HS256\""),
                Just("\"allowlist\""),
                Just("\"Strict\""),
                Just("\"allow\""),
                Just("[\"cookie\"]"),
                Just("[\"bearer\", \"cookie\"]"),
                Just("[]"),
                Just("[\"0.0.0.0/0\"]"),
                Just("[\"10.0.0.0/8\", \"::1\"]"),
                Just("\"127.0.0.1:0\""),
                Just("{}"),
            ]
            .prop_map(str::to_owned),
        ]
    }

    proptest! {
        /// Configuration is operator input, but often assembled by scripts and templates:
        /// whatever the file holds, loading it and deriving the policy answers with a value
        /// or an error, never a panic.
        #[test]
        fn any_configuration_loads_or_is_refused_without_panicking(
            entries in proptest::collection::vec((0..KEYS.len(), toml_value()), 0..8),
        ) {
            let mut by_section: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
            for (key, value) in &entries {
                let (section, name) = KEYS[*key].split_once('.').unwrap_or(("server", "listen"));
                by_section.entry(section).or_default().push(format!("{name} = {value}"));
            }
            let text: String = by_section
                .iter()
                .map(|(section, lines)| format!("[{section}]\n{}\n", lines.join("\n")))
                .collect();
            if let Ok(config) = Config::from_toml(&text) {
                let _ = crate::startup::policy(&config);
            }
        }
    }

    #[test]
    fn the_spec_example_file_parses() {
        let text = r#"
            [server]
            listen = "127.0.0.1:8080"
            [store]
            data_dir = "./tessera-data"
            postgres_url = ""
            redis_url = ""
            [auth]
            mode = "session"
            transports = ["cookie", "bearer"]
            signup = true
            [jwt]
            alg = "EdDSA"
            issuer = "http://127.0.0.1:8080"
            audience = "tessera"
            access_ttl = "5m"
            leeway = "30s"
            [refresh]
            enabled = true
            ttl = "30d"
            reuse_grace = "10s"
            [revocation]
            check = "denylist"
            [session]
            idle_timeout = "7d"
            absolute_timeout = "30d"
            max_per_user = 0
            [cookie]
            secure = true
            same_site = "Lax"
            [admin]
            api_key = ""
        "#;
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.session.idle_timeout, Duration::days(7));
        assert_eq!(c.jwt.access_ttl, Duration::secs(300));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let e = Config::from_toml("[auth]\nmoed = \"session\"").unwrap_err().to_string();
        assert!(e.contains("moed"), "{e}");
        let e = Config::from_toml("[nonsense]\nx = 1").unwrap_err().to_string();
        assert!(e.contains("nonsense"), "{e}");
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        let e = Config::from_toml("[session]\nidle_timeout = \"soon\"").unwrap_err().to_string();
        assert!(e.contains("idle_timeout"), "{e}");
        let e = Config::from_toml("[jwt]\nleeway = \"2m\"").unwrap_err().to_string();
        assert!(e.contains("jwt.leeway"), "{e}");
        let e = Config::from_toml("[server]\ntrusted_proxies = [\"nope\"]").unwrap_err().to_string();
        assert!(e.contains("trusted_proxies"), "{e}");
    }

    #[test]
    fn half_or_malformed_distributed_store_settings_are_errors_naming_the_key() {
        let e = Config::from_toml("[store]\npostgres_url = \"postgres://db/t\"").unwrap_err().to_string();
        assert!(e.contains("store.redis_url"), "{e}");
        let e = Config::from_toml("[store]\nredis_url = \"redis://cache\"").unwrap_err().to_string();
        assert!(e.contains("store.postgres_url"), "{e}");
        let e = Config::from_toml("[store]\nredis_cluster = true").unwrap_err().to_string();
        assert!(e.contains("store.redis_cluster"), "{e}");
        for prefix in ["", "a{b}", "with space"] {
            let toml = format!("[store]\nredis_prefix = \"{prefix}\"");
            let e = Config::from_toml(&toml).unwrap_err().to_string();
            assert!(e.contains("store.redis_prefix"), "{prefix:?}: {e}");
        }
        let both = "[store]\npostgres_url = \"postgres://db/t\"\nredis_url = \"redis://cache\"";
        assert!(Config::from_toml(both).unwrap().store.is_distributed());
    }

    #[test]
    fn redis_tls_files_need_a_rediss_url_and_come_in_pairs() {
        let store = |url: &str, extra: &str| {
            Config::from_toml(&format!("[store]\npostgres_url = \"postgres://db/t\"\nredis_url = \"{url}\"\n{extra}"))
        };
        let e = store("redis://cache", "redis_ca_file = \"/etc/ca.pem\"").unwrap_err().to_string();
        assert!(e.contains("store.redis_ca_file") && e.contains("rediss://"), "{e}");
        let e = store("rediss://cache", "redis_client_cert_file = \"/etc/c.pem\"").unwrap_err().to_string();
        assert!(e.contains("store.redis_client_key_file"), "{e}");
        let e = store("rediss://cache", "redis_client_key_file = \"/etc/k.pem\"").unwrap_err().to_string();
        assert!(e.contains("store.redis_client_cert_file"), "{e}");
        let e = store("rediss://cache", "redis_ca_file = \"\"").unwrap_err().to_string();
        assert!(e.contains("store.redis_ca_file"), "{e}");
        let all =
            "redis_ca_file = \"/ca.pem\"\nredis_client_cert_file = \"/c.pem\"\nredis_client_key_file = \"/k.pem\"";
        let c = store("rediss://cache:6380", all).unwrap();
        assert_eq!(c.store.redis_ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert!(store("rediss://cache:6380", "").is_ok(), "TLS with the system trust store");
    }

    #[test]
    fn every_duration_is_bounded_with_an_error_naming_the_key() {
        for (key, _, written) in DURATION_LIMITS {
            let (section, name) = key.split_once('.').unwrap();
            let toml = format!("[{section}]\n{name} = \"3000000d\"");
            let e = Config::from_toml(&toml).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(written), "{key}: {e}");
        }
        let at_limit = "[session]\nidle_timeout = \"3650d\"\nabsolute_timeout = \"3650d\"\n[refresh]\nttl = \"3650d\"";
        Config::from_toml(at_limit).unwrap();
    }

    #[test]
    fn trusting_every_address_as_a_proxy_is_refused() {
        for net in ["0.0.0.0/0", "::/0"] {
            let e = Config::from_toml(&format!("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"{net}\"]")).unwrap_err();
            assert!(e.to_string().contains("server.trusted_proxies"), "{e}");
        }
        Config::from_toml("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]").unwrap();
    }

    #[test]
    fn a_reuse_grace_as_long_as_the_access_token_is_refused_where_refresh_is_on() {
        let grace = "[jwt]\naccess_ttl = \"1m\"\n[refresh]\nreuse_grace = \"1m\"\n";
        for mode in ["hybrid", "jwt"] {
            let e = Config::from_toml(&format!("[auth]\nmode = \"{mode}\"\n{grace}")).unwrap_err().to_string();
            assert!(e.contains("refresh.reuse_grace"), "{mode}: {e}");
        }
        Config::from_toml(&format!("[auth]\nmode = \"session\"\n{grace}")).unwrap();
        Config::from_toml(&format!("[auth]\nmode = \"jwt\"\n{grace}enabled = false\n")).unwrap();
    }

    #[test]
    fn insecure_cookies_off_loopback_and_short_admin_keys_start_with_warnings() {
        let quiet =
            Config::from_toml("[cookie]\nsecure = false\n[admin]\napi_key = \"0123456789abcdef0123456789abcdef\"")
                .unwrap();
        assert!(quiet.warnings().is_empty(), "{:?}", quiet.warnings());
        let loud = Config::from_toml(
            "[server]\nlisten = \"0.0.0.0:8080\"\n[cookie]\nsecure = false\n[admin]\napi_key = \"short\"",
        )
        .unwrap();
        let keys: Vec<&str> = loud.warnings().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["cookie.secure", "admin.api_key"]);
    }

    #[test]
    fn settings_the_mode_ignores_start_with_warnings() {
        let c = Config::from_toml(
            "[auth]\nmode = \"session\"\n[jwt]\naccess_ttl = \"10m\"\n[revocation]\ncheck = \"allowlist\"\n\
             [metrics]\nkey = \"k\"",
        )
        .unwrap();
        let keys: Vec<&str> = c.warnings().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["jwt.access_ttl", "revocation", "metrics.key"]);
        let c = Config::from_toml("[auth]\nmode = \"hybrid\"\n[refresh]\nenabled = false").unwrap();
        assert_eq!(c.warnings().iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["refresh.enabled"]);
        assert!(Config::from_toml("[auth]\nmode = \"session\"").unwrap().warnings().is_empty());
    }

    #[test]
    fn errors_name_the_key_as_written_once() {
        let e = Config::from_toml("[session]\nidle_timout = \"1h\"").unwrap_err().to_string();
        assert!(e.contains("session.idle_timout"), "{e}");
        assert!(!e.contains("default."), "{e}");
        assert_eq!(e.matches("idle_timout").count(), 2, "the key, and the field figment names: {e}");
    }

    #[test]
    fn a_numeric_admin_key_is_its_digits_and_no_error_quotes_a_secret() {
        let c = Config::from_toml("[admin]\napi_key = 123456789012345678").unwrap();
        assert_eq!(c.admin.api_key.expose(), "123456789012345678");
        assert_eq!(format!("{:?}", c.admin), "AdminConfig { api_key: [redacted] }");
        for (toml, secret) in [
            ("[admin]\napi_key = 0123987\n", "0123987"),
            ("[admin]\napi_key = 31.4159\n", "31.4159"),
            ("[admin]\napi_key = \"unterminated-9876\n", "9876"),
            ("[jwt]\nseal_key = 98765.4321\n", "98765"),
        ] {
            let e = Config::from_toml(toml).unwrap_err().to_string();
            assert!(!e.contains(secret), "the error quotes the secret: {e}");
        }
    }
}
