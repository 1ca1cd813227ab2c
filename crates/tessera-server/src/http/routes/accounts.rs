use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use tessera_core::account::UserView;
use utoipa::ToSchema;

use crate::http::extract::{ApiJson, Client, NotCrossSite};
use crate::http::problem::ApiError;
use crate::http::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct SignUp {
    /// Unicode; compared case-insensitively after normalization.
    username: String,
    password: String,
}

/// `POST /v1/accounts`
#[utoipa::path(
    post,
    path = "/v1/accounts",
    operation_id = "sign_up",
    tag = "accounts",
    summary = "Create an account",
    description = "Opens an account when sign-up is open (`auth.signup`). Does not log in.",
    request_body(content = SignUp, content_type = "application/json"),
    responses(
        (status = 201, description = "The new account", body = crate::http::openapi::User),
        (status = 400, description = "Malformed body, or a username or password the policy refuses"),
        (status = 403, description = "Sign-up is closed, or the request comes from another site"),
        (status = 409, description = "The username is taken"),
        (status = 413, description = "The body exceeds 64 KiB"),
        (status = 415, description = "The body is not JSON"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn sign_up(
    State(state): State<AppState>,
    _: NotCrossSite,
    Client(client): Client,
    ApiJson(body): ApiJson<SignUp>,
) -> Result<impl IntoResponse, ApiError> {
    let account = state.auth.sign_up(&body.username, body.password, &client).await?;
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&account))))
}
