//! Security-relevant events, written both as structured `tracing` events (target `audit`) and
//! as stored records, so an operator can answer "who logged in from where, and what was
//! revoked" after the fact.
//!
//! Events an outsider can repeat at will (failed and throttled logins, revocations, wrong
//! admin keys) are *folded*: identical events within one [`FOLD_WINDOW_SECS`] window become
//! one stored record with a count, so a loop of them cannot fill the disk. Every other kind
//! stays one record per event.

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
    pub const ALL: [AuditKind; 14] = [
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
        Self::AdminKeyRefused,
    ];

    /// The kind named `s` (as [`AuditKind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether identical events of this kind are folded into one record per window. Only
    /// kinds an attacker can repeat cheaply: a successful login, a password change or an
    /// administrator's action is always a record of its own.
    pub fn folds(self) -> bool {
        matches!(self, Self::LoginFailed | Self::LoginThrottled | Self::TokenRevoked | Self::AdminKeyRefused)
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

/// The length of the windows identical events of a [folding](AuditKind::folds) kind are counted
/// in: windows start at multiples of it (unix time), so every instance sharing a store agrees
/// on them.
pub const FOLD_WINDOW_SECS: i64 = 60;

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

    /// The key under which identical events of a folding kind meet: the kind, the window of
    /// `at`, and every other field. `None` for kinds stored one record per event.
    pub fn fold_key(&self) -> Option<String> {
        if !self.kind.folds() {
            return None;
        }
        let window = self.at.unix_timestamp().div_euclid(FOLD_WINDOW_SECS);
        // `-` for an absent field and `=value` for a present one, so no two events share a key
        // unless they are identical; the unit separator cannot occur in a username or an IP.
        let field = |v: Option<String>| v.map_or_else(|| "-".to_owned(), |v| format!("={v}"));
        Some(
            [
                self.kind.as_str().to_owned(),
                window.to_string(),
                field(self.user_id.map(|u| u.to_string())),
                field(self.session_id.map(|s| s.to_string())),
                field(self.username.clone()),
                field(self.ip.clone()),
                field(self.detail.clone()),
            ]
            .join("\u{1f}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttled(unix: i64) -> AuditEvent {
        AuditEvent::new(OffsetDateTime::from_unix_timestamp(unix).unwrap(), AuditKind::LoginThrottled)
            .username("alice")
            .ip(Some("192.0.2.7".into()))
    }

    #[test]
    fn identical_events_in_one_window_share_a_fold_key() {
        assert_eq!(throttled(1_700_000_040).fold_key(), throttled(1_700_000_099).fold_key());
        assert!(throttled(0).fold_key().is_some());
    }

    #[test]
    fn another_window_or_field_is_another_fold_key() {
        let key = throttled(1_700_000_040).fold_key();
        assert_ne!(key, throttled(1_700_000_039).fold_key(), "the window before");
        assert_ne!(key, throttled(1_700_000_100).fold_key(), "the window after");
        assert_ne!(key, throttled(1_700_000_040).ip(Some("192.0.2.8".into())).fold_key());
        assert_ne!(key, throttled(1_700_000_040).ip(None).fold_key());
        assert_ne!(key, throttled(1_700_000_040).detail("").fold_key(), "an empty detail is not none");
        let mut failed = throttled(1_700_000_040);
        failed.kind = AuditKind::LoginFailed;
        assert_ne!(key, failed.fold_key());
    }

    #[test]
    fn only_kinds_an_outsider_repeats_fold() {
        let folding: Vec<&str> = AuditKind::ALL.iter().filter(|k| k.folds()).map(|k| k.as_str()).collect();
        assert_eq!(folding, ["login_failed", "login_throttled", "token_revoked", "admin_key_refused"]);
        let at = OffsetDateTime::from_unix_timestamp(0).unwrap();
        assert_eq!(AuditEvent::new(at, AuditKind::LoginSucceeded).fold_key(), None);
    }

    #[test]
    fn every_kind_is_listed_and_parses_back() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::parse("admin_key_refused"), Some(AuditKind::AdminKeyRefused));
    }
}
