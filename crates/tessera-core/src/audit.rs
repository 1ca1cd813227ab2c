//! Security-relevant events, written both as structured `tracing` events (target `audit`) and
//! as stored records, so an operator can answer "who logged in from where, and what was
//! revoked" after the fact.

use time::OffsetDateTime;

use crate::id::{SessionId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    AccountCreated,
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    Logout,
    SessionRevoked,
    AllSessionsRevoked,
    PasswordChanged,
    AccountDisabled,
    AccountEnabled,
    RefreshReuseDetected,
    TokenRevoked,
    KeyRotated,
    /// A wrong admin key at the admin endpoints.
    AdminKeyRefused,
}

impl AuditKind {
    pub const ALL: [AuditKind; 13] = [
        Self::AccountCreated,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginThrottled,
        Self::Logout,
        Self::SessionRevoked,
        Self::AllSessionsRevoked,
        Self::PasswordChanged,
        Self::AccountDisabled,
        Self::AccountEnabled,
        Self::RefreshReuseDetected,
        Self::TokenRevoked,
        Self::KeyRotated,
    ];

    /// The kind named `s` (as [`AuditKind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountCreated => "account_created",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::LoginThrottled => "login_throttled",
            Self::Logout => "logout",
            Self::SessionRevoked => "session_revoked",
            Self::AllSessionsRevoked => "all_sessions_revoked",
            Self::PasswordChanged => "password_changed",
            Self::AccountDisabled => "account_disabled",
            Self::AccountEnabled => "account_enabled",
            Self::RefreshReuseDetected => "refresh_reuse_detected",
            Self::TokenRevoked => "token_revoked",
            Self::KeyRotated => "key_rotated",
            Self::AdminKeyRefused => "admin_key_refused",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub at: OffsetDateTime,
    pub kind: AuditKind,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    /// The username as typed (normalised) for failed logins, where there may be no account.
    pub username: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

impl AuditEvent {
    pub fn new(at: OffsetDateTime, kind: AuditKind) -> Self {
        Self { at, kind, user_id: None, session_id: None, username: None, ip: None, detail: None }
    }

    pub fn user(mut self, id: UserId) -> Self {
        self.user_id = Some(id);
        self
    }

    pub fn session(mut self, id: SessionId) -> Self {
        self.session_id = Some(id);
        self
    }

    pub fn username(mut self, name: &str) -> Self {
        self.username = Some(name.to_owned());
        self
    }

    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}
