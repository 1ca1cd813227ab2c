use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::config::Transport;
use crate::http::extract::{ApiJson, Caller, Client};
use crate::http::problem::ApiError;
use crate::http::routes::login::issue;
use crate::http::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// `POST /v1/password`: every session ends and the caller gets a new one (a new id).
///
/// Cookie callers get 204 with the new cookies, as the SPEC says. A bearer caller's new token
/// has nowhere to go in a 204, so bearer callers get 200 with login's answer instead.
#[utoipa::path(
    post,
    path = "/v1/password",
    operation_id = "change_password",
    tag = "sessions",
    summary = "Change the caller's password",
    description = "Checks `current_password`, stores `new_password`, ends every session of the user (the caller's too) and issues the caller a new one, with a new id. With the cookie transport the answer is 204 with new cookies, among them a new CSRF token (`X-CSRF-Token` of later requests must be the new one; the old session's token no longer works). With the bearer transport the new token has to travel in a body: the answer is 200 with login's answer.",
    params(("Tessera-Transport" = Option<crate::config::Transport>, Header, description = "The transport of the caller's credential.")),
    request_body(content = ChangePassword, content_type = "application/json"),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("access_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Bearer transport: changed; the new session in login's answer", body = crate::http::views::LoginAnswer),
        (status = 204, description = "Cookie transport: changed; the new session in new cookies (and a new CSRF token)"),
        (status = 400, description = "Malformed body or headers, or a new password the policy refuses"),
        (status = 401, description = "No valid credential, or a wrong current password"),
        (status = 403, description = "Cookie transport: CSRF token missing or wrong, or a request from another site"),
        (status = 413, description = "The body exceeds 64 KiB"),
        (status = 415, description = "The body is not JSON"),
        (status = 429, description = "Too many wrong current passwords; `Retry-After` says when to try again"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Client(client): Client,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<Response, ApiError> {
    let issued = state.auth.change_password(&caller.auth, body.current_password, body.new_password, &client).await?;
    let status = match caller.transport {
        Transport::Cookie => StatusCode::NO_CONTENT,
        Transport::Bearer => StatusCode::OK,
    };
    Ok(issue(&state, &issued, caller.transport, status))
}
