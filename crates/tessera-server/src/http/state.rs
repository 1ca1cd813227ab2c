//! What every handler can reach.

use std::ops::Deref;
use std::sync::Arc;

use axum::body::Bytes;
use tessera_core::Auth;
use tessera_core::secret::TokenHash;

use super::cookies::CookiePolicy;
use crate::config::Transport;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub auth: Auth,
    pub cookies: CookiePolicy,
    /// Enabled transports; the first is the default.
    pub transports: Vec<Transport>,
    pub proxies: super::extract::TrustedProxies,
    /// Whose pages may send cookie-authenticated unsafe requests and log in.
    pub origins: super::origin::OriginPolicy,
    /// SHA-256 of the admin API key; `None` disables the admin endpoints.
    pub admin_key: Option<TokenHash>,
    /// Present when `metrics.access` is not `off`.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The store itself, for what the domain does not do (reading the audit trail).
    pub backend: crate::startup::Backend,
    /// SHA-256 of each `verify.keys` entry: the service keys of the revocation feed. Empty
    /// disables the feed.
    pub verify_keys: Vec<TokenHash>,
    /// `GET /openapi.json`'s answer, serialised once when the router is built (it describes
    /// the routes as configured).
    pub openapi: std::sync::OnceLock<super::openapi::Serialized>,
    /// `GET /v1/me`'s answers, kept serialised (see [`tessera_store::memo`]).
    pub me_memo: tessera_store::memo::Memo<super::routes::sessions::MeKey, super::routes::sessions::MeInputs, Bytes>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
