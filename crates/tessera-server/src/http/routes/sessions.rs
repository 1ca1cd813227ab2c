use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::account::UserView;
use tessera_core::id::TokenId;
use tessera_core::refresh::RefreshToken;
use tessera_core::{AuthError, SessionId, UserId};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::config::Transport;
use crate::http::extract::{
    Caller, CredentialRequest, Peer, authenticate, authorization, csrf_header_ok, refuse_cross_site,
    requested_transport,
};
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::http::views::{self, SessionView};

#[derive(Serialize, ToSchema)]
struct Me<'a> {
    #[schema(value_type = crate::http::openapi::User)]
    user: &'a UserView,
    /// `null` where the check did not read a server session (the token modes).
    session: Option<SessionView<'a>>,
    auth: AuthView,
}

#[derive(Serialize, ToSchema)]
struct AuthView {
    /// `session`, `hybrid` or `jwt`.
    mode: &'static str,
    /// `cookie` or `bearer`: how this request's credential arrived.
    transport: &'static str,
    /// When the credential presented expires.
    #[serde(serialize_with = "crate::http::views::rfc3339::serialize")]
    expires_at: OffsetDateTime,
}

/// `GET /v1/me`
#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "me",
    tag = "sessions",
    summary = "Who is calling",
    params(("Tessera-Transport" = Option<crate::config::Transport>, Header, description = "The transport of the caller's credential: `cookie` or `bearer`.")),
    security(("bearer" = []), ("session_cookie" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The caller, its session and how it authenticated", body = Me),
        (status = 400, description = "Malformed `Tessera-Transport`, a transport this server does not enable, or two `Authorization` headers"),
        (status = 401, description = "No valid credential; a presented one that is invalid, expired or revoked adds `WWW-Authenticate: Bearer error=\"invalid_token\"`"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Response {
    let Caller { auth: a, transport } = caller;
    let policy = &state.auth.policy().session;
    let key = MeKey { user: a.user_id, session: a.session_id, token: a.token_id, transport };
    let inputs = MeInputs {
        user: UserView { id: a.user_id, username: a.username },
        // Token modes answer from the token alone unless the check read the session anyway.
        session: a.session.map(|s| SessionInputs {
            idle_expires_at: utc(policy.idle_expires_at(&s)),
            id: s.id,
            created_at: utc(s.created_at),
            last_seen_at: utc(s.last_seen_at),
            expires_at: utc(s.expires_at),
            user_agent: s.user_agent,
            ip: s.ip,
        }),
        transport,
        expires_at: utc(a.expires_at),
    };
    let mode = state.auth.policy().mode.as_str();
    // Kept at its length: the serialiser's buffer is larger, and a memo entry lives long.
    let render = |inputs: &MeInputs| views::to_json(&inputs.document(mode)).map(|b| Bytes::copy_from_slice(&b));
    views::json_answer(state.me_memo.get_or_render(key, inputs, render))
}

/// `t` in UTC, as every time tessera keeps already is. `OffsetDateTime`'s equality compares
/// instants and ignores offsets while the document shows them, so the memo's inputs hold one
/// offset only: equal inputs must mean equal bytes.
fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(time::UtcOffset::UTC)
}

/// Whose `/v1/me` document a memo entry holds: one caller's, with one credential, over one
/// transport (see [`tessera_store::memo`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MeKey {
    user: UserId,
    session: Option<SessionId>,
    token: Option<TokenId>,
    transport: Transport,
}

/// Everything `/v1/me` shows but the server's mode: the document is rendered from these
/// alone, so equal inputs mean equal bytes and the memo may answer them.
#[derive(PartialEq)]
pub struct MeInputs {
    user: UserView,
    session: Option<SessionInputs>,
    transport: Transport,
    expires_at: OffsetDateTime,
}

#[derive(PartialEq)]
struct SessionInputs {
    id: SessionId,
    created_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    idle_expires_at: OffsetDateTime,
    user_agent: Option<Arc<str>>,
    ip: Option<Arc<str>>,
}

impl MeInputs {
    fn document<'a>(&'a self, mode: &'static str) -> Me<'a> {
        Me {
            user: &self.user,
            session: self.session.as_ref().map(|s| SessionView {
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                idle_expires_at: s.idle_expires_at,
                user_agent: s.user_agent.as_deref(),
                ip: s.ip.as_deref(),
                // `/v1/me` shows the session of the request that asks.
                current: true,
            }),
            auth: AuthView { mode, transport: self.transport.as_str(), expires_at: self.expires_at },
        }
    }
}

#[derive(Serialize, ToSchema)]
struct SessionList<'a> {
    sessions: Vec<SessionView<'a>>,
}

/// `GET /v1/sessions`
#[utoipa::path(
    get,
    path = "/v1/sessions",
    operation_id = "list_sessions",
    tag = "sessions",
    summary = "The caller's sessions",
    params(("Tessera-Transport" = Option<crate::config::Transport>, Header, description = "The transport of the caller's credential: `cookie` or `bearer`.")),
    security(("bearer" = []), ("session_cookie" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "Every live session of the user, the current one marked", body = SessionList),
        (status = 400, description = "Malformed `Tessera-Transport`, a transport this server does not enable, or two `Authorization` headers"),
        (status = 401, description = "No valid credential; a presented one that is invalid, expired or revoked adds `WWW-Authenticate: Bearer error=\"invalid_token\"`"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let current = caller.auth.session_id;
    let sessions = state.auth.sessions(&caller.auth.user_id).await?;
    let listed = sessions.iter().map(|s| SessionView::new(&state, s, current.as_ref())).collect();
    Ok(views::json(&SessionList { sessions: listed }))
}

/// `DELETE /v1/sessions/{id}` — only the caller's own sessions; anything else is 404.
#[utoipa::path(
    delete,
    path = "/v1/sessions/{id}",
    operation_id = "revoke_session",
    tag = "sessions",
    summary = "End one of the caller's sessions",
    description = "Ending the caller's own current session clears its cookies (cookie transport).",
    params(("id" = String, Path, description = "The session's public id"), ("Tessera-Transport" = Option<crate::config::Transport>, Header, description = "The transport of the caller's credential: `cookie` or `bearer`.")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("access_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 400, description = "Malformed `Tessera-Transport`, a transport this server does not enable, or two `Authorization` headers"),
        (status = 401, description = "No valid credential; a presented one that is invalid, expired or revoked adds `WWW-Authenticate: Bearer error=\"invalid_token\"`"),
        (status = 403, description = "Cookie transport: CSRF token missing or wrong, or a request from another site"),
        (status = 404, description = "No such session among the caller's"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    // A segment that is not UTF-8 after percent-decoding cannot be an id: the same 404
    // problem as any other unknown id, not axum's plain-text 400.
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id =
        id.ok().and_then(|Path(id)| SessionId::parse(&id)).ok_or_else(|| ApiError::not_found("no such session"))?;
    state.auth.revoke_session(&caller.auth.user_id, &id).await.map_err(|e| match e {
        tessera_core::AuthError::NotFound => ApiError::not_found("no such session"),
        other => other.into(),
    })?;
    let ended_own = Some(id) == caller.auth.session_id;
    Ok(no_content(&state, caller.transport, ended_own))
}

/// `POST /v1/logout`: ends the session by whichever credential the client still holds. With
/// the cookie transport in the modes with refresh tokens, that is the refresh cookie when it is
/// there: the access cookie lives minutes, the refresh cookie weeks, and a logout that needed
/// the former would leave the latter working. Its CSRF token is the session's, as for refresh.
#[utoipa::path(
    post,
    path = "/v1/logout",
    operation_id = "logout",
    tag = "sessions",
    summary = "Log out",
    description = "Ends the caller's session and clears its cookies. With the cookie transport where refresh tokens are on, the refresh cookie is the credential read when present (with its session's `X-CSRF-Token`).",
    params(("Tessera-Transport" = Option<crate::config::Transport>, Header, description = "The transport of the caller's credential: `cookie` or `bearer`.")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("access_cookie" = [], "csrf_token" = []), ("refresh_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Logged out; cookies cleared"),
        (status = 400, description = "Malformed `Tessera-Transport`, a transport this server does not enable, or two `Authorization` headers"),
        (status = 401, description = "No valid credential; a presented one that is invalid, expired or revoked adds `WWW-Authenticate: Bearer error=\"invalid_token\"`"),
        (status = 403, description = "Cookie transport: CSRF token missing or wrong, or a request from another site"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Peer(peer): Peer,
) -> Result<Response, ApiError> {
    let request = CredentialRequest { method: &method, headers: &headers, peer };
    let has_refresh = state.auth.tokens().is_some_and(|t| t.policy().refresh.is_some());
    if has_refresh && requested_transport(&headers, &state.transports)? == Transport::Cookie {
        authorization(&headers)?;
        if let Some(raw) = state.cookies.read(&headers)?.refresh {
            refuse_cross_site(&state, &headers, peer)?;
            let sid = RefreshToken::parse(raw).map(|r| r.session_id).ok_or_else(ApiError::invalid_token)?;
            if !csrf_header_ok(&headers, |v| state.auth.csrf_matches_session(&sid, v)) {
                return Err(AuthError::CsrfRejected.into());
            }
            state.auth.logout_refresh(raw).await?;
            return Ok(no_content(&state, Transport::Cookie, true));
        }
    }
    let caller = authenticate(&state, &request).await?;
    state.auth.logout(&caller.auth).await?;
    Ok(no_content(&state, caller.transport, true))
}

/// `POST /v1/logout-all`
#[utoipa::path(
    post,
    path = "/v1/logout-all",
    operation_id = "logout_all",
    tag = "sessions",
    summary = "End every session of the caller's user",
    params(("Tessera-Transport" = Option<crate::config::Transport>, Header, description = "The transport of the caller's credential: `cookie` or `bearer`.")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("access_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Every session ended; cookies cleared"),
        (status = 400, description = "Malformed `Tessera-Transport`, a transport this server does not enable, or two `Authorization` headers"),
        (status = 401, description = "No valid credential; a presented one that is invalid, expired or revoked adds `WWW-Authenticate: Bearer error=\"invalid_token\"`"),
        (status = 403, description = "Cookie transport: CSRF token missing or wrong, or a request from another site"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
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
