use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::problem::ApiError;
use crate::http::state::AppState;

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "The process is up", body = String, content_type = "text/plain", example = "ok"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store answers.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    summary = "Readiness",
    responses(
        (status = 200, description = "The stores answer", body = String, content_type = "text/plain", example = "ready"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.auth.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            ApiError::unavailable().into_response()
        }
    }
}
