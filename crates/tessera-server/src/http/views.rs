//! The JSON shapes of SPEC §2, built from domain values.

use serde::Serialize;
use tessera_core::account::UserView;
use tessera_core::{Session, SessionId};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct SessionView<'a> {
    /// The session's public id (not its token).
    #[schema(value_type = String)]
    pub id: SessionId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub idle_expires_at: OffsetDateTime,
    /// The `User-Agent` of the login that opened it.
    pub user_agent: Option<&'a str>,
    /// The client address of the login that opened it.
    pub ip: Option<&'a str>,
    /// Whether this is the session of the request that lists it.
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
#[derive(Serialize, ToSchema)]
pub struct SessionSummary {
    #[schema(value_type = String)]
    pub id: SessionId,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub idle_expires_at: OffsetDateTime,
}

/// Login's answer (SPEC §2). Credentials appear only for the bearer transport; the cookie
/// transport puts them in cookies and gives the page only the CSRF token.
#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    #[schema(value_type = super::openapi::User)]
    pub user: UserView,
    /// `cookie` or `bearer`: where this answer put the credentials. With `cookie` they are in
    /// `Set-Cookie` only, never in this body (send `Tessera-Transport: bearer` to get them here).
    #[schema(value_type = crate::config::Transport)]
    pub transport: &'static str,
    /// `null` only in the jwt mode without refresh, which keeps no server session.
    pub session: Option<SessionSummary>,
    /// jwt and hybrid modes, bearer transport: the JWT access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `Bearer`, with an access token.
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Seconds the access token lives.
    pub expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Bearer transport where refresh is on: the refresh token, for `/v1/refresh`.
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Session mode, bearer transport: the session token.
    pub session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Cookie transport: the token unsafe requests send in `X-CSRF-Token`.
    pub csrf_token: Option<String>,
}
