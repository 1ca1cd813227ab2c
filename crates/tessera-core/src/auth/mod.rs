//! [`Auth`]: the one place that creates credentials and decides whether a presented one is
//! valid now. Handlers call it; it calls the store; nothing else makes these decisions.
//!
//! - `accounts.rs` — sign-up and account administration
//! - `login.rs` — password login with brute-force throttling; what a login hands out per mode
//! - `sessions.rs` — checking a session token, listing and revoking sessions, password change
//! - `tokens.rs` — signing keys, server secrets, the denylist copy (jwt and hybrid modes)
//! - `access.rs` — issuing and checking access tokens, CSRF for cookie-carried tokens
//! - `refresh.rs` — refresh rotation and reuse detection

mod access;
mod accounts;
mod introspect;
mod login;
mod refresh;
mod sessions;
mod tokens;

pub use access::IssuedAccess;
pub use introspect::Introspection;
pub use tokens::Tokens;

use std::sync::Arc;

use time::OffsetDateTime;

use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::id::{SessionId, TokenId, UserId};
use crate::password::PasswordHasher;
use crate::policy::Policy;
use crate::refresh::RefreshToken;
use crate::session::{Session, SessionToken};
use crate::store::Store;
use crate::username::Username;

/// Who is asking: recorded with sessions and audit events, and keyed by the throttle.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

/// Credentials just issued (login, refresh, password change), to hand to the client once.
/// Which of them exist depends on the mode.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub account_id: UserId,
    pub username: Username,
    /// The server session, where the mode keeps one.
    pub session: Option<Session>,
    /// Session mode's opaque credential.
    pub session_token: Option<SessionToken>,
    pub access: Option<IssuedAccess>,
    pub refresh: Option<RefreshToken>,
    /// The anti-CSRF token for cookie transport.
    pub csrf: String,
}

/// A credential that checked out just now.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user_id: UserId,
    pub username: Username,
    /// The server session, when this check read it (session mode, allowlist).
    pub session: Option<Session>,
    /// The session the credential belongs to, if any (`sid` of an access token).
    pub session_id: Option<SessionId>,
    /// The `jti` of an access token.
    pub token_id: Option<TokenId>,
    /// When this credential stops working.
    pub expires_at: OffsetDateTime,
}

pub struct Auth {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    policy: Policy,
    tokens: Option<Tokens>,
}

impl Auth {
    /// `tokens` is required exactly when the policy has a token policy (jwt, hybrid).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
        policy: Policy,
        tokens: Option<Tokens>,
    ) -> Self {
        Self { store, clock, hasher, policy, tokens }
    }

    pub fn tokens(&self) -> Option<&Tokens> {
        self.tokens.as_ref()
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// [`Clock::now_precise`]: for session creation and refresh rotation.
    pub fn now_precise(&self) -> OffsetDateTime {
        self.clock.now_precise()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Writes the event to the log at once and to the store best-effort: an audit-store hiccup
    /// must not turn a successful logout into an error, and the log line still exists.
    async fn audit(&self, event: AuditEvent) {
        tracing::info!(
            target: "audit",
            event = event.kind.as_str(),
            user_id = event.user_id.map(|u| u.to_string()),
            session_id = event.session_id.map(|s| s.to_string()),
            username = event.username.as_deref(),
            ip = event.ip.as_deref(),
            detail = event.detail.as_deref(),
        );
        if let Err(e) = self.store.append_audit(&event).await {
            tracing::warn!(error = %e, "could not store an audit record");
        }
    }
}
