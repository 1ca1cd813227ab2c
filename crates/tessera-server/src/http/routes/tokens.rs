//! The token endpoints: refresh, JWKS, and the two RFC endpoints (form-encoded, as the RFCs
//! say).

use axum::Form;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::AuthError;
use tessera_core::refresh::RefreshToken;
use time::OffsetDateTime;

use crate::config::Transport;
use crate::http::content_type;
use crate::http::extract::{ApiJson, Client, Requested, csrf_header_ok, peer_from, refuse_cross_site};
use crate::http::problem::ApiError;
use crate::http::routes::admin::Admin;
use crate::http::routes::login::issue;
use crate::http::state::AppState;

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

/// `POST /v1/refresh`. The transport (`Tessera-Transport`, else the default) decides where
/// the refresh token is read, and the answer uses it too: bearer reads `{"refresh_token"}` from
/// the body, cookie reads the refresh cookie and demands `X-CSRF-Token`.
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

#[derive(Deserialize)]
pub struct TokenForm {
    token: String,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

#[derive(Serialize)]
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
pub async fn revoke(State(state): State<AppState>, form: FormBody) -> Result<StatusCode, ApiError> {
    state.auth.revoke_token(&form.0.token).await?;
    Ok(StatusCode::OK)
}

/// A form body with problem+json rejections.
pub struct FormBody(TokenForm);

impl FromRequest<AppState> for FormBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !content_type::is(req.headers(), content_type::FORM) {
            return Err(ApiError::unsupported_media_type());
        }
        Form::<TokenForm>::from_request(req, state)
            .await
            .map(|Form(f)| FormBody(f))
            .map_err(|r| ApiError::from_rejection(r.status(), r.body_text()))
    }
}
