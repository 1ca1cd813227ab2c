use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use tessera_core::account::UserView;

use crate::http::extract::{ApiJson, Client, NotCrossSite};
use crate::http::problem::ApiError;
use crate::http::state::AppState;

#[derive(Deserialize)]
pub struct SignUp {
    username: String,
    password: String,
}

/// `POST /v1/accounts`
pub async fn sign_up(
    State(state): State<AppState>,
    _: NotCrossSite,
    Client(client): Client,
    ApiJson(body): ApiJson<SignUp>,
) -> Result<impl IntoResponse, ApiError> {
    let account = state.auth.sign_up(&body.username, body.password, &client).await?;
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&account))))
}
