//! The token endpoints: refresh, JWKS, and the two RFC endpoints (form-encoded, as the RFCs
//! say).

use axum::extract::{FromRequest, Request, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::AuthError;
use tessera_core::refresh::RefreshToken;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::config::Transport;
use crate::http::content_type;
use crate::http::extract::{ApiJson, Client, Requested, csrf_header_ok, peer_from, refuse_cross_site};
use crate::http::problem::ApiError;
use crate::http::routes::admin::Admin;
use crate::http::routes::login::issue;
use crate::http::state::AppState;

#[derive(Deserialize, ToSchema)]
struct RefreshBody {
    refresh_token: String,
}

/// `POST /v1/refresh`. The transport (`Tessera-Transport`, else the default) decides where
/// the refresh token is read, and the answer uses it too: bearer reads `{"refresh_token"}` from
/// the body, cookie reads the refresh cookie and demands `X-CSRF-Token`.
#[utoipa::path(
    post,
    path = "/v1/refresh",
    operation_id = "refresh",
    tag = "tokens",
    summary = "Trade a refresh token for new tokens",
    description = "Rotates the refresh token (the old one stops working; presenting it again ends the session) and issues a new access token. Bearer transport: the refresh token in the body, the new tokens in the answer. Cookie transport: the refresh cookie with `X-CSRF-Token`, the new tokens in cookies. Only where refresh tokens are on (the token modes with `jwt.refresh`); elsewhere 404.",
    params(("Tessera-Transport" = Option<crate::config::Transport>, Header, description = "Where the refresh token is read and the new tokens go: `cookie` or `bearer`.")),
    request_body(content = Option<RefreshBody>, content_type = "application/json", description = "Bearer transport only"),
    security((), ("refresh_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "New tokens, as in login's answer", body = crate::http::views::LoginAnswer),
        (status = 400, description = "Malformed body or `Tessera-Transport`"),
        (status = 401, description = "The refresh token is missing, invalid, expired or reused"),
        (status = 403, description = "Cookie transport: CSRF token missing or wrong, or a request from another site"),
        (status = 404, description = "Refresh tokens are not enabled on this server"),
        (status = 413, description = "The body exceeds 64 KiB"),
        (status = 415, description = "The body is not JSON"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    Client(client): Client,
    Requested(transport): Requested,
    req: Request,
) -> Result<Response, ApiError> {
    if state.auth.tokens().is_none_or(|t| t.policy().refresh.is_none()) {
        return Err(ApiError::not_found("refresh tokens are not enabled"));
    }
    let raw = match transport {
        Transport::Bearer => {
            let ApiJson(body) = ApiJson::<RefreshBody>::from_request(req, &state).await?;
            body.refresh_token
        }
        Transport::Cookie => {
            let raw = state.cookies.read(req.headers())?.refresh.ok_or_else(ApiError::unauthenticated)?;
            refuse_cross_site(&state, req.headers(), peer_from(req.extensions()))?;
            // A cookie arrives by itself on cross-site requests: demand the CSRF token of the
            // session this refresh token belongs to.
            let sid = RefreshToken::parse(raw).map(|r| r.session_id).ok_or_else(ApiError::invalid_token)?;
            if !csrf_header_ok(req.headers(), |v| state.auth.csrf_matches_session(&sid, v)) {
                return Err(AuthError::CsrfRejected.into());
            }
            raw.to_owned()
        }
    };
    let issued = state.auth.refresh(&raw, &client).await?;
    Ok(issue(&state, &issued, transport, StatusCode::OK))
}

#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    operation_id = "jwks",
    tag = "tokens",
    summary = "The public keys that verify access tokens",
    description = "RFC 7517 JSON Web Key Set: public keys only, cacheable (`Cache-Control: public, max-age`). Empty in session mode.",
    responses((status = 200, description = "The key set", body = crate::http::openapi::Jwks))
)]
/// `GET /.well-known/jwks.json`: public keys only, cacheable for `jwt.jwks_max_age` (a new
/// key is published at least that long before it signs).
pub async fn jwks(State(state): State<AppState>) -> Response {
    let (body, max_age) = match state.auth.tokens() {
        Some(t) => (t.jwks(), t.policy().jwks_max_age.whole_seconds()),
        None => (serde_json::json!({ "keys": [] }), 300),
    };
    let mut response = axum::Json(body).into_response();
    let cache =
        HeaderValue::from_str(&format!("public, max-age={max_age}")).unwrap_or(HeaderValue::from_static("no-cache"));
    response.headers_mut().insert(CACHE_CONTROL, cache);
    response
}

#[derive(Deserialize, ToSchema)]
pub struct TokenForm {
    /// An access, refresh or session token.
    token: String,
    /// `access_token` or `refresh_token` (RFC 7009); optional, not needed.
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// RFC 7662's answer: `{"active": false}` alone, or the token's claims.
#[derive(Serialize, ToSchema)]
#[schema(as = Introspection)]
struct Active {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

/// `POST /v1/introspect` (RFC 7662), for resource servers holding the admin key.
#[utoipa::path(
    post,
    path = "/v1/introspect",
    operation_id = "introspect",
    tag = "admin",
    summary = "Is this token active (RFC 7662)",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "Whether the token is active, and its claims when it is", body = Active),
        (status = 400, description = "Malformed form, or two `Authorization` headers"),
        (status = 401, description = "No admin key, or a wrong one"),
        (status = 404, description = "The admin endpoints are disabled (no `admin.api_key` set)"),
        (status = 413, description = "The body exceeds 64 KiB"),
        (status = 415, description = "The body is not `application/x-www-form-urlencoded`"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn introspect(State(state): State<AppState>, _: Admin, form: FormBody) -> Result<Response, ApiError> {
    let found = state.auth.introspect(&form.0.token).await?;
    let jwt = state.auth.tokens().map(|t| &t.policy().jwt);
    let answer = match found {
        None => Active {
            active: false,
            token_type: None,
            sub: None,
            username: None,
            sid: None,
            jti: None,
            iat: None,
            exp: None,
            iss: None,
            aud: None,
        },
        Some(i) => Active {
            active: true,
            token_type: Some(i.token_type),
            sub: Some(i.sub.to_string()),
            username: Some(i.username),
            sid: i.sid.map(|s| s.to_string()),
            jti: i.jti.map(|j| j.to_string()),
            iat: i.iat.map(OffsetDateTime::unix_timestamp),
            exp: Some(i.exp.unix_timestamp()),
            iss: jwt.map(|j| j.issuer.clone()),
            aud: jwt.map(|j| j.audience.clone()),
        },
    };
    let mut response = axum::Json(answer).into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /v1/revoke` (RFC 7009): 200 whether or not the token was known.
#[utoipa::path(
    post,
    path = "/v1/revoke",
    operation_id = "revoke_token",
    tag = "tokens",
    summary = "Revoke a token (RFC 7009)",
    description = "Holding a token is the authority to revoke it: a refresh or session token ends its session, an access token is denied until it expires. 200 also for unknown tokens.",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or not a known token"),
        (status = 400, description = "Malformed form"),
        (status = 413, description = "The body exceeds 64 KiB"),
        (status = 415, description = "The body is not `application/x-www-form-urlencoded`"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn revoke(State(state): State<AppState>, form: FormBody) -> Result<StatusCode, ApiError> {
    state.auth.revoke_token(&form.0.token).await?;
    Ok(StatusCode::OK)
}

/// A form body with problem+json rejections.
pub struct FormBody(TokenForm);

impl FromRequest<AppState> for FormBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, ApiError> {
        if !content_type::is(req.headers(), content_type::FORM) {
            return Err(ApiError::unsupported_media_type());
        }
        let body = crate::http::extract::body_bytes(req).await?;
        serde_urlencoded::from_bytes::<TokenForm>(&body)
            .map(FormBody)
            .map_err(|e| ApiError::bad_request(format!("Failed to deserialize form body: {e}")))
    }
}
