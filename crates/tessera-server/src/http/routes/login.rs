use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::IssuedSession;
use tessera_core::account::UserView;
use utoipa::ToSchema;

use crate::config::Transport;
use crate::http::extract::{ApiJson, Client, NotCrossSite, Requested};
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::http::views::{LoginAnswer, SessionSummary};

#[derive(Deserialize, ToSchema)]
pub struct Login {
    username: String,
    password: String,
}

/// `POST /v1/login`
#[utoipa::path(
    post,
    path = "/v1/login",
    operation_id = "login",
    tag = "sessions",
    summary = "Log in",
    description = "Checks the password and opens a session in the transport the request names with `Tessera-Transport` (default: the first of `auth.transports`). With `bearer` the answer carries the tokens (`session_token` in session mode; `access_token` and, where refresh is on, `refresh_token` in the token modes). With `cookie` the tokens are set as `HttpOnly` cookies and never appear in the body: the body carries the `csrf_token` that unsafe requests send back in `X-CSRF-Token`.",
    params(("Tessera-Transport" = Option<crate::config::Transport>, Header, description = "Where the credentials go: `cookie` or `bearer`.")),
    request_body(content = Login, content_type = "application/json"),
    responses(
        (status = 200, description = "Logged in", body = crate::http::views::LoginAnswer),
        (status = 400, description = "Malformed body or `Tessera-Transport`"),
        (status = 401, description = "Unknown user or wrong password (one answer for both)"),
        (status = 403, description = "The request comes from another site"),
        (status = 413, description = "The body exceeds 64 KiB"),
        (status = 415, description = "The body is not JSON"),
        (status = 429, description = "Too many failed attempts; `Retry-After` says when to try again"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    _: NotCrossSite,
    Requested(transport): Requested,
    Client(client): Client,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let issued = state.auth.login(&body.username, body.password, &client).await?;
    Ok(issue(&state, &issued, transport, StatusCode::OK))
}

/// Hands a new session to the client in the chosen transport: cookies and a CSRF token, or
/// the token in the body. Shared by login and password change.
pub fn issue(state: &AppState, issued: &IssuedSession, transport: Transport, status: StatusCode) -> Response {
    let mut response = issue_inner(state, issued, transport, status);
    // RFC 6749 §5.1: answers that carry credentials must not be cached anywhere.
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn issue_inner(state: &AppState, issued: &IssuedSession, transport: Transport, status: StatusCode) -> Response {
    let policy = &state.auth.policy().session;
    let now = state.auth.now();
    let summary = issued.session.as_ref().map(|s| SessionSummary {
        id: s.id,
        expires_at: s.expires_at,
        idle_expires_at: policy.idle_expires_at(s),
    });
    let user = UserView { id: issued.account_id, username: issued.username.clone() };
    let access = issued.access.as_ref();
    let mut answer = LoginAnswer {
        user,
        transport: transport.as_str(),
        session: summary,
        access_token: None,
        token_type: access.map(|_| "Bearer"),
        expires_in: access.map(|a| (a.expires_at - now).whole_seconds()),
        refresh_token: None,
        session_token: None,
        csrf_token: None,
    };
    match transport {
        Transport::Bearer => {
            answer.access_token = access.map(|a| a.token.clone());
            answer.refresh_token = issued.refresh.as_ref().map(|r| r.encode());
            answer.session_token = issued.session_token.as_ref().map(|t| t.encode());
            (status, axum::Json(answer)).into_response()
        }
        Transport::Cookie => {
            let cookies = &state.cookies;
            // Cookies live as long as what they carry can; the server enforces the rest.
            let session_left = issued.session.as_ref().map(|s| (s.expires_at - now).whole_seconds());
            let mut headers = HeaderMap::new();
            if let Some(t) = &issued.session_token {
                headers.append(SET_COOKIE, cookies.session(&t.encode(), session_left.unwrap_or(0)));
            }
            if let Some(a) = access {
                headers.append(SET_COOKIE, cookies.access(&a.token, (a.expires_at - now).whole_seconds()));
            }
            if let Some(r) = &issued.refresh {
                headers.append(SET_COOKIE, cookies.refresh(&r.encode(), session_left.unwrap_or(0)));
            }
            let csrf_left = session_left.or(access.map(|a| (a.expires_at - now).whole_seconds())).unwrap_or(0);
            headers.append(SET_COOKIE, cookies.csrf(&issued.csrf, csrf_left));
            answer.csrf_token = Some(issued.csrf.clone());
            if status == StatusCode::NO_CONTENT {
                (status, headers).into_response()
            } else {
                (status, headers, axum::Json(answer)).into_response()
            }
        }
    }
}
