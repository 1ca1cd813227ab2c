use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::config::Transport;
use crate::http::extract::{ApiJson, Caller, Client};
use crate::http::problem::ApiError;
use crate::http::routes::login::issue;
use crate::http::state::AppState;

#[derive(Deserialize)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// `POST /v1/password`: every session ends and the caller gets a new one (a new id).
///
/// Cookie callers get 204 with the new cookies, as the SPEC says. A bearer caller's new token
/// has nowhere to go in a 204, so bearer callers get 200 with login's answer instead.
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
