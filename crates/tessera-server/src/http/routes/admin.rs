use axum::extract::FromRequestParts;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use tessera_core::UserId;
use tessera_core::secret::TokenHash;

use crate::http::extract::{authorization, bearer_token};
use crate::http::problem::ApiError;
use crate::http::state::AppState;

/// Proof that the request carries the configured admin key.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // With no key configured the admin API does not exist; the answer says how to enable it.
        let expected = state
            .admin_key
            .as_ref()
            .ok_or_else(|| ApiError::not_found("the admin endpoints are disabled: set admin.api_key to enable them"))?;
        let presented = authorization(&parts.headers)?.and_then(bearer_token).ok_or_else(ApiError::unauthenticated)?;
        // Hash both sides so the comparison is constant-time and length-independent.
        if TokenHash::of(presented.as_bytes()).ct_eq(expected) { Ok(Admin) } else { Err(ApiError::invalid_token()) }
    }
}

/// `POST /v1/admin/users/{id}/revoke-sessions`
#[utoipa::path(
    post,
    path = "/v1/admin/users/{id}/revoke-sessions",
    operation_id = "admin_revoke_sessions",
    tag = "admin",
    summary = "End every session of a user",
    description = "Ends every session (and refresh token) of the user. Takes the admin key.",
    params(("id" = String, Path, description = "The user's id")),
    security(("admin_key" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Two `Authorization` headers"),
        (status = 401, description = "No admin key, or a wrong one"),
        (status = 404, description = "No such user, or the admin endpoints are disabled (no `admin.api_key` set)"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = UserId::parse(&id).ok_or_else(|| ApiError::not_found("no such user"))?;
    state.auth.admin_revoke_sessions(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}
