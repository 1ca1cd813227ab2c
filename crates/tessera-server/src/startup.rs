//! Building the application from configuration. `Application::build` binds the listener
//! before returning, so a caller (a test) asking for port 0 learns the real port at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tessera_core::auth::Tokens;
use tessera_core::jwt::{Alg, JwtSettings};
use tessera_core::policy::{RefreshPolicy, TokenPolicy};
use tessera_core::revocation::RevocationCheck;
use tessera_core::secret::TokenHash;
use tessera_core::store::Store;
use tessera_core::throttle::ThrottlePolicy;
use tessera_core::username::Confusables;
use tessera_core::{Auth, Clock, Mode, PasswordHasher, Policy, SessionPolicy};
use tessera_store::redis::RedisTls;
use tessera_store::{DistributedStore, RedisSettings, SqliteStore};
use tokio::net::TcpListener;

use crate::config::{Config, JwtAlg, MetricsAccess, ModeSetting, UsernameConfusables};
use crate::http::cookies::CookiePolicy;
use crate::http::extract::TrustedProxies;
use crate::http::origin::OriginPolicy;
use crate::http::state::{AppState, Shared};
use crate::metrics::{MeteredStore, Metrics};

/// How long a login may wait for a free password-hashing slot before answering 503.
const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    router: crate::http::App,
    config: Config,
    store: Backend,
    state: AppState,
}

/// How often each instance catches its denylist copy up with the store.
const DENYLIST_SYNC: std::time::Duration = std::time::Duration::from_millis(100);
/// How often each instance re-reads the signing keys (to follow `tessera keys rotate`).
const KEY_RELOAD: std::time::Duration = std::time::Duration::from_secs(5);

impl Application {
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let metrics = match config.metrics.access {
            MetricsAccess::Off => None,
            MetricsAccess::Open => Some(Arc::new(Metrics::new(None))),
            MetricsAccess::Key => {
                Some(Arc::new(Metrics::new(Some(TokenHash::of(config.metrics.key.expose().as_bytes())))))
            }
        };
        let (auth, store) = open_auth_measured(&config, clock, metrics.clone()).await?;
        let token_mode = auth.tokens().is_some();
        let state = AppState::new(Shared {
            auth,
            cookies: CookiePolicy::new(&config.cookie, token_mode),
            transports: config.auth.transports.clone(),
            proxies: TrustedProxies { nets: config.trusted_proxies()?, header: config.server.proxy_header },
            origins: OriginPolicy::new(&config.server.allowed_origins)
                .map_err(|o| anyhow::anyhow!("server.allowed_origins: {o:?} is not an origin"))?,
            admin_key: (!config.admin.api_key.is_empty())
                .then(|| TokenHash::of(config.admin.api_key.expose().as_bytes())),
            metrics,
            backend: store.clone(),
            verify_keys: config.verify.keys.iter().map(|k| TokenHash::of(k.expose().as_bytes())).collect(),
            openapi: Default::default(),
            // About 3 MB at most for documents of 400 bytes and their inputs. An entry outlives
            // the session it shows until evicted, never answered after the session ends: the
            // credential check refuses first.
            me_memo: tessera_store::memo::Memo::new(4096),
        });
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let router = crate::http::router(state.clone(), config.server.request_timeout.as_std(), pages(&config));
        Ok(Self { listener, router, config, store, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.server.listen)
    }

    /// Where the data lives, for start-up messages.
    pub fn store_description(&self) -> String {
        self.store.describe()
    }

    pub fn mode(&self) -> Mode {
        mode(&self.config)
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let header_timeout = self.config.server.header_timeout.as_std();
        let maintenance = tokio::spawn(maintain(self.state.clone()));
        let pruning = tokio::spawn(prune_audit(self.store.clone(), self.state.clone(), self.config.audit.retention));
        // Feed connections never end by themselves: end them when the server stops, or the
        // graceful shutdown would wait for them until its drain timeout.
        let state = self.state.clone();
        let shutdown = async move {
            shutdown.await;
            if let Some(tokens) = state.auth.tokens() {
                tokens.feed().close();
            }
        };
        let served = crate::serve::serve(self.listener, self.router, header_timeout, shutdown).await;
        maintenance.abort();
        pruning.abort();
        self.store.close().await;
        Ok(served?)
    }
}

/// Keeps an instance's copies current: the denylist (every 100 ms, and at once whenever the
/// store signals a change, when it is the revocation check) and the signing keys (every 5 s,
/// so a rotation anywhere is followed without a restart). Failures are logged; a denylist
/// that stays behind fails closed by itself.
///
/// Two loops, not one: a key reload waits on PostgreSQL (up to its acquire timeout while it
/// is down), and a denylist sync queued behind it would let the copy go stale — every JWT
/// request would fail closed during an outage of a store the denylist does not live in.
async fn maintain(state: AppState) {
    let Some(tokens) = state.auth.tokens() else { return };
    tokio::join!(follow_denylist(&state, tokens), follow_keys(&state, tokens));
}

async fn follow_denylist(state: &AppState, tokens: &tessera_core::auth::Tokens) {
    if tokens.policy().revocation != RevocationCheck::Denylist {
        return;
    }
    let store = state.auth.store().as_ref();
    let changes = store.denylist_changes();
    let changed = || async {
        match &changes {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    };
    let mut sync = tokio::time::interval(DENYLIST_SYNC);
    sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = changed() => {}
            () = tokens.denied_here() => {}
            _ = sync.tick() => {}
        }
        if let Err(e) = tokens.sync_denylist(store, state.auth.now()).await {
            tracing::warn!(error = %e, "denylist sync failed");
        }
    }
}

async fn follow_keys(state: &AppState, tokens: &tessera_core::auth::Tokens) {
    let store = state.auth.store().as_ref();
    let mut reload = tokio::time::interval(KEY_RELOAD);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        reload.tick().await;
        if let Err(e) = tokens.reload_keys(store, state.auth.now()).await {
            tracing::warn!(error = %e, "signing key reload failed");
        }
    }
}

/// Deletes audit records whose last event is older than `audit.retention`: at start, then at
/// a tenth of the retention (at least every second, at most every 10 minutes). Every instance
/// does it; deleting what another already deleted costs nothing. Failures are logged and
/// retried at the next tick.
async fn prune_audit(store: Backend, state: AppState, retention: crate::duration::Duration) {
    let every = (retention.as_std() / 10).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(600));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(before) = state.auth.now().checked_sub(retention.as_time()) else { continue };
        match store.prune_audit(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned audit records older than audit.retention"),
            Err(e) => tracing::warn!(error = %e, "audit pruning failed"),
        }
    }
}

/// tessera's web pages, when `pages.enabled`. They log in with the cookie transport, so a
/// server without it serves none (and says so).
fn pages(config: &Config) -> Option<crate::http::pages::Pages> {
    if !config.pages.enabled {
        return None;
    }
    if !config.auth.transports.contains(&crate::config::Transport::Cookie) {
        tracing::warn!("pages.enabled, but the pages need the cookie transport (auth.transports): not serving them");
        return None;
    }
    let refresh = match config.auth.mode {
        ModeSetting::Session => false,
        ModeSetting::Jwt => config.refresh.enabled,
        ModeSetting::Hybrid => true,
    };
    Some(crate::http::pages::Pages::new(config.pages.title.trim(), config.auth.signup, refresh))
}

/// The domain service over the configured store; also what the CLI's admin commands use.
pub async fn open_auth(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<(Auth, Backend)> {
    open_auth_measured(config, clock, None).await
}

/// [`open_auth`], with every store call measured when `metrics` is given.
async fn open_auth_measured(
    config: &Config,
    clock: Arc<dyn Clock>,
    metrics: Option<Arc<Metrics>>,
) -> anyhow::Result<(Auth, Backend)> {
    let backend = Backend::open(config).await?;
    let store: Arc<dyn Store> = match metrics {
        Some(m) => Arc::new(MeteredStore::new(backend.store(), m)),
        None => backend.store(),
    };
    let concurrency = match config.server.hash_concurrency {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let hasher = PasswordHasher::new(concurrency, HASH_WAIT)?;
    let policy = policy(config)?;
    let tokens = match &policy.tokens {
        Some(t) => {
            let tokens = Tokens::load(store.as_ref(), clock.now(), t.clone()).await?;
            if t.revocation == RevocationCheck::Denylist {
                // Start with the whole live denylist, not an empty copy.
                tokens.sync_denylist(store.as_ref(), clock.now()).await?;
            }
            Some(tokens)
        }
        None => None,
    };
    let auth = Auth::new(store, clock, hasher, policy, tokens);
    Ok((auth, backend))
}

/// The configured store: the embedded SQLite file, or PostgreSQL + Redis.
#[derive(Clone)]
pub enum Backend {
    Embedded(Arc<SqliteStore>),
    Distributed(Arc<DistributedStore>),
}

impl Backend {
    /// Opens the store `config` names, applying migrations.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        if config.store.is_distributed() {
            let redis = RedisSettings {
                url: config.store.redis_url.clone(),
                cluster: config.store.redis_cluster,
                prefix: config.store.redis_prefix.clone(),
                tls: RedisTls {
                    ca_file: config.store.redis_ca_file.clone(),
                    client_cert_file: config.store.redis_client_cert_file.clone(),
                    client_key_file: config.store.redis_client_key_file.clone(),
                },
            };
            let store = DistributedStore::connect(&config.store.postgres_url, &redis)
                .await
                .context("cannot open the distributed store (store.postgres_url, store.redis_url)")?;
            // Session keys leave Redis at their idle end, not weeks later at the absolute one.
            store.redis.set_session_idle_timeout(config.session.idle_timeout.as_std());
            Ok(Self::Distributed(Arc::new(store)))
        } else {
            let store = SqliteStore::open(&config.store.data_dir)
                .await
                .with_context(|| format!("cannot open the store in {}", config.store.data_dir.display()))?;
            Ok(Self::Embedded(Arc::new(store)))
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Embedded(s) => s.clone(),
            Self::Distributed(s) => s.clone(),
        }
    }

    /// Where the data lives, for start-up messages (no credentials).
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(s) => format!("sqlite at {}", s.db_path().display()),
            Self::Distributed(_) => "postgres + redis".to_owned(),
        }
    }

    /// Audit records `q` selects, newest first (the audit trail lives in SQLite or PostgreSQL).
    pub async fn query_audit(
        &self,
        q: &tessera_store::AuditQuery,
    ) -> Result<Vec<tessera_store::AuditRecord>, tessera_core::StoreError> {
        match self {
            Self::Embedded(s) => s.query_audit(q).await,
            Self::Distributed(s) => s.postgres.query_audit(q).await,
        }
    }

    /// Deletes audit records whose last event is before `before`, in short batches; how many.
    pub async fn prune_audit(&self, before: time::OffsetDateTime) -> Result<u64, tessera_core::StoreError> {
        match self {
            Self::Embedded(s) => s.prune_audit(before).await,
            Self::Distributed(s) => s.postgres.prune_audit(before).await,
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Embedded(s) => s.close().await,
            Self::Distributed(s) => s.close().await,
        }
    }
}

pub fn policy(config: &Config) -> anyhow::Result<Policy> {
    let tokens = match config.auth.mode {
        ModeSetting::Session => None,
        ModeSetting::Jwt | ModeSetting::Hybrid => Some(TokenPolicy {
            jwt: JwtSettings {
                alg: match config.jwt.alg {
                    JwtAlg::EdDSA => Alg::EdDSA,
                    JwtAlg::ES256 => Alg::ES256,
                    JwtAlg::RS256 => Alg::RS256,
                    JwtAlg::HS256 => Alg::HS256,
                },
                issuer: config.jwt.issuer.clone(),
                audience: config.jwt.audience.clone(),
                access_ttl: config.jwt.access_ttl.as_time(),
                leeway: config.jwt.leeway.as_time(),
            },
            refresh: (config.auth.mode == ModeSetting::Hybrid || config.refresh.enabled).then(|| RefreshPolicy {
                ttl: config.refresh.ttl.as_time(),
                reuse_grace: config.refresh.reuse_grace.as_time(),
            }),
            revocation: config.revocation_check(),
            max_staleness: config.revocation.max_staleness.as_std(),
            jwks_max_age: config.jwt.jwks_max_age.as_time(),
            seal_key: config.seal_key()?,
        }),
    };
    Ok(Policy {
        mode: mode(config),
        signup: config.auth.signup,
        username_confusables: match config.auth.username_confusables {
            UsernameConfusables::Refuse => Confusables::Refuse,
            UsernameConfusables::Allow => Confusables::Allow,
        },
        session: SessionPolicy {
            idle_timeout: config.session.idle_timeout.as_time(),
            absolute_timeout: config.session.absolute_timeout.as_time(),
            max_per_user: config.session.max_per_user,
        },
        throttle: ThrottlePolicy::default(),
        tokens,
    })
}

fn mode(config: &Config) -> Mode {
    match config.auth.mode {
        ModeSetting::Session => Mode::Session,
        ModeSetting::Jwt => Mode::Jwt,
        ModeSetting::Hybrid => Mode::Hybrid,
    }
}
