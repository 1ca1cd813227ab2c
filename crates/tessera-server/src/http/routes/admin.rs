use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use tessera_core::secret::TokenHash;
use tessera_core::{AuthError, UserId};

use crate::http::extract::{Client, authorization, bearer_token};
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
        let matches = TokenHash::of(presented.as_bytes()).ct_eq(expected);
        // Wrong keys are throttled per client IP, like wrong passwords.
        let Client(client) = Client::from_request_parts(parts, state).await?;
        match state.auth.admin_key_attempt(&client, matches).await {
            Ok(()) => Ok(Admin),
            Err(AuthError::Unauthenticated) => Err(ApiError::invalid_token()),
            Err(e) => Err(e.into()),
        }
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
    // A segment that is not UTF-8 after percent-decoding cannot be an id: the same 404
    // problem as any other unknown id, not axum's plain-text 400.
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let user = id.ok().and_then(|Path(id)| UserId::parse(&id)).ok_or_else(|| ApiError::not_found("no such user"))?;
    state.auth.admin_revoke_sessions(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/admin/audit?user=&event=&since=&cursor=&limit=`: the audit trail, newest first,
/// a page at a time (`next_cursor` is the `cursor` of the next page; `null` on the last).
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    operation_id = "admin_audit",
    tag = "admin",
    summary = "Read the audit trail",
    description = "Audit events, newest first, a page at a time. Takes the admin key.",
    params(
        ("user" = Option<String>, Query, description = "Events of this user (and failed logins typed with this name)"),
        ("event" = Option<String>, Query, description = "Events of this kind, e.g. `login_failed`"),
        ("since" = Option<String>, Query, description = "RFC 3339 time, or a duration ago (`30m`, `7d`)"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
        ("limit" = Option<i64>, Query, description = "Events per page, 1 to 1000 (default 50)"),
    ),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "One page of events", body = crate::audit::AuditPage),
        (status = 400, description = "A filter that cannot be followed (the detail names it), or two `Authorization` headers"),
        (status = 401, description = "No admin key, or a wrong one"),
        (status = 404, description = "The admin endpoints are disabled (no `admin.api_key` set)"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    _: Admin,
    RawQuery(query): RawQuery,
) -> Result<Json<crate::audit::AuditPage>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|_| ApiError::bad_request("query: not a valid query string"))?;
    let filters = crate::audit::Filters::from_pairs(&pairs, state.auth.now())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (records, next) = crate::audit::query(&state.auth, &state.backend, &filters).await?;
    Ok(Json(crate::audit::AuditPage {
        events: records.iter().map(crate::audit::AuditEntry::from).collect(),
        next_cursor: next.map(|c| c.to_string()),
    }))
}
