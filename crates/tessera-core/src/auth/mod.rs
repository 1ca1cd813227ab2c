//! [`Auth`]: the one place that creates credentials and decides whether a presented one is
//! valid now. Handlers call it; it calls the store; nothing else makes these decisions.
//!
//! - `accounts.rs` — sign-up and account administration
//! - `login.rs` — password login with brute-force throttling
//! - `sessions.rs` — checking a session token, listing and revoking sessions, password change

mod accounts;
mod login;
mod sessions;

use std::sync::Arc;

use time::OffsetDateTime;

use crate::account::Account;
use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::id::SessionId;
use crate::password::PasswordHasher;
use crate::policy::Policy;
use crate::session::{CsrfToken, Session, SessionToken};
use crate::store::Store;

/// Who is asking: recorded with sessions and audit events, and keyed by the throttle.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

/// A session that was just created, with the secrets to hand to the client once.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub account: Account,
    pub session: Session,
    pub token: SessionToken,
    pub csrf: CsrfToken,
}

/// A session whose token checked out just now.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session: Session,
    /// When this credential stops working if unused: the idle end, capped by the absolute end.
    pub expires_at: OffsetDateTime,
}

impl Authenticated {
    pub fn session_id(&self) -> SessionId {
        self.session.id
    }
}

pub struct Auth {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    policy: Policy,
}

impl Auth {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, hasher: PasswordHasher, policy: Policy) -> Self {
        Self { store, clock, hasher, policy }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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
