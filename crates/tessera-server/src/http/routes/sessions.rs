use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::SessionId;
use tessera_core::account::UserView;
use time::OffsetDateTime;

use crate::config::Transport;
use crate::http::extract::Caller;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::http::views::SessionView;

#[derive(Serialize)]
struct Me<'a> {
    user: UserView,
    session: Option<SessionView<'a>>,
    auth: AuthView,
}

#[derive(Serialize)]
struct AuthView {
    mode: &'static str,
    transport: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// `GET /v1/me`
pub async fn me(State(state): State<AppState>, caller: Caller) -> Response {
    let a = &caller.auth;
    let me = Me {
        user: UserView { id: a.user_id, username: a.username.clone() },
        // Token modes answer from the token alone unless the check read the session anyway.
        session: a.session.as_ref().map(|s| SessionView::new(&state, s, &s.id)),
        auth: AuthView {
            mode: state.auth.policy().mode.as_str(),
            transport: caller.transport.as_str(),
            expires_at: caller.auth.expires_at,
        },
    };
    axum::Json(me).into_response()
}

#[derive(Serialize)]
struct SessionList<'a> {
    sessions: Vec<SessionView<'a>>,
}

/// `GET /v1/sessions`
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let current = caller.auth.session_id;
    let sessions = state.auth.sessions(&caller.auth.user_id).await?;
    let views = sessions.iter().map(|s| SessionView::new(&state, s, current.as_ref())).collect();
    Ok(axum::Json(SessionList { sessions: views }).into_response())
}

/// `DELETE /v1/sessions/{id}` — only the caller's own sessions; anything else is 404.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = SessionId::parse(&id).ok_or_else(|| ApiError::not_found("no such session"))?;
    state.auth.revoke_session(&caller.auth.user_id, &id).await.map_err(|e| match e {
        tessera_core::AuthError::NotFound => ApiError::not_found("no such session"),
        other => other.into(),
    })?;
    let ended_own = Some(id) == caller.auth.session_id;
    Ok(no_content(&state, caller.transport, ended_own))
}

/// `POST /v1/logout`
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    state.auth.logout(&caller.auth).await?;
    Ok(no_content(&state, caller.transport, true))
}

/// `POST /v1/logout-all`
pub async fn logout_all(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    state.auth.revoke_all_sessions(&caller.auth.user_id, "logout-all").await?;
    Ok(no_content(&state, caller.transport, true))
}

/// 204, clearing the cookies when the caller's own cookie session just ended.
fn no_content(state: &AppState, transport: Transport, ended_own: bool) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if ended_own && transport == Transport::Cookie {
        for cookie in state.cookies.clear() {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
    }
    response
}
