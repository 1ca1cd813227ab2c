//! Building the application from configuration. `Application::build` binds the listener
//! before returning, so a caller (a test) asking for port 0 learns the real port at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tessera_core::secret::TokenHash;
use tessera_core::throttle::ThrottlePolicy;
use tessera_core::{Auth, Clock, Mode, PasswordHasher, Policy, SessionPolicy};
use tessera_store::SqliteStore;
use tokio::net::TcpListener;

use crate::config::{Config, ModeSetting};
use crate::http::cookies::CookiePolicy;
use crate::http::extract::TrustedProxies;
use crate::http::state::{AppState, Shared};

/// How long a login may wait for a free password-hashing slot before answering 503.
const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    config: Config,
    store: Arc<SqliteStore>,
}

impl Application {
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let (auth, store) = open_auth(&config, clock).await?;
        let state = AppState::new(Shared {
            auth,
            cookies: CookiePolicy::new(&config.cookie),
            transports: config.auth.transports.clone(),
            proxies: TrustedProxies { nets: config.trusted_proxies()?, header: config.server.proxy_header },
            admin_key: (!config.admin.api_key.is_empty()).then(|| TokenHash::of(config.admin.api_key.as_bytes())),
        });
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let router = crate::http::router(state, config.server.request_timeout.as_std());
        Ok(Self { listener, router, config, store })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.server.listen)
    }

    pub fn db_path(&self) -> &std::path::Path {
        self.store.db_path()
    }

    pub fn mode(&self) -> Mode {
        mode(&self.config)
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let header_timeout = self.config.server.header_timeout.as_std();
        crate::serve::serve(self.listener, self.router, header_timeout, shutdown).await?;
        self.store.close().await;
        Ok(())
    }
}

/// The domain service over the configured store; also what the CLI's admin commands use.
pub async fn open_auth(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<(Auth, Arc<SqliteStore>)> {
    let store = Arc::new(
        SqliteStore::open(&config.store.data_dir)
            .await
            .with_context(|| format!("cannot open the store in {}", config.store.data_dir.display()))?,
    );
    let concurrency = match config.server.hash_concurrency {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let hasher = PasswordHasher::new(concurrency, HASH_WAIT)?;
    let auth = Auth::new(store.clone(), clock, hasher, policy(config));
    Ok((auth, store))
}

pub fn policy(config: &Config) -> Policy {
    Policy {
        mode: mode(config),
        signup: config.auth.signup,
        session: SessionPolicy {
            idle_timeout: config.session.idle_timeout.as_time(),
            absolute_timeout: config.session.absolute_timeout.as_time(),
            max_per_user: config.session.max_per_user,
        },
        throttle: ThrottlePolicy::default(),
    }
}

fn mode(config: &Config) -> Mode {
    match config.auth.mode {
        ModeSetting::Session => Mode::Session,
        ModeSetting::Jwt => Mode::Jwt,
        ModeSetting::Hybrid => Mode::Hybrid,
    }
}
