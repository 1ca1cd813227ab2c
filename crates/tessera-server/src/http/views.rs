//! The JSON shapes of SPEC §2, built from domain values.

use serde::Serialize;
use tessera_core::account::UserView;
use tessera_core::{Session, SessionId};
use time::OffsetDateTime;

use super::state::AppState;

#[derive(Serialize)]
pub struct SessionView<'a> {
    pub id: SessionId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub idle_expires_at: OffsetDateTime,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub current: bool,
}

impl<'a> SessionView<'a> {
    pub fn new(state: &AppState, s: &'a Session, current: impl Into<Option<&'a SessionId>>) -> Self {
        let current = current.into();
        Self {
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            idle_expires_at: state.auth.policy().session.idle_expires_at(s),
            user_agent: s.user_agent.as_deref(),
            ip: s.ip.as_deref(),
            current: current == Some(&s.id),
        }
    }
}

/// The `session` part of login's answer.
#[derive(Serialize)]
pub struct SessionSummary {
    pub id: SessionId,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub idle_expires_at: OffsetDateTime,
}

/// Login's answer (SPEC §2). Credentials appear only for the bearer transport; the cookie
/// transport puts them in cookies and gives the page only the CSRF token.
#[derive(Serialize)]
pub struct LoginAnswer {
    pub user: UserView,
    /// `null` only in the jwt mode without refresh, which keeps no server session.
    pub session: Option<SessionSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}
