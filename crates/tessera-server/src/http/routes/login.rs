use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::IssuedSession;
use tessera_core::account::UserView;

use crate::config::Transport;
use crate::http::extract::{ApiJson, Client, Requested};
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::http::views::{LoginAnswer, SessionSummary};

#[derive(Deserialize)]
pub struct Login {
    username: String,
    password: String,
}

/// `POST /v1/login`
pub async fn login(
    State(state): State<AppState>,
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
    let session = &issued.session;
    let summary = SessionSummary {
        id: session.id,
        expires_at: session.expires_at,
        idle_expires_at: policy.idle_expires_at(session),
    };
    let user = UserView::from(&issued.account);
    match transport {
        Transport::Bearer => {
            let answer =
                LoginAnswer { user, session: summary, session_token: Some(issued.token.encode()), csrf_token: None };
            (status, axum::Json(answer)).into_response()
        }
        Transport::Cookie => {
            let csrf = issued.csrf.encode();
            // The cookie lives as long as the session can; the server enforces the idle end.
            let max_age = (session.expires_at - state.auth.now()).whole_seconds();
            let mut headers = HeaderMap::new();
            headers.append(SET_COOKIE, state.cookies.session(&issued.token.encode(), max_age));
            headers.append(SET_COOKIE, state.cookies.csrf(&csrf, max_age));
            let answer = LoginAnswer { user, session: summary, session_token: None, csrf_token: Some(csrf) };
            if status == StatusCode::NO_CONTENT {
                (status, headers).into_response()
            } else {
                (status, headers, axum::Json(answer)).into_response()
            }
        }
    }
}
