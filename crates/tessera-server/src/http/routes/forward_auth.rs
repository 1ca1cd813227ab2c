//! `GET /v1/forward-auth`: tessera's decision for a reverse proxy (nginx `auth_request`,
//! Caddy `forward_auth`, Traefik `ForwardAuth`) about a request meant for another
//! application. The credential check is the one behind `/v1/me`
//! ([`crate::http::extract::authenticate`]), run on the original request: same transports,
//! revocation policy and throttles, and the CSRF rule applied to the original method (see
//! [`crate::http::original`]).

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::http::extract::{Caller, CredentialRequest, authenticate, peer_ip};
use crate::http::original::Original;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

pub static USER_ID: HeaderName = HeaderName::from_static("tessera-user-id");
pub static USERNAME: HeaderName = HeaderName::from_static("tessera-username");
pub static SESSION_ID: HeaderName = HeaderName::from_static("tessera-session-id");
pub static AUTH_MODE: HeaderName = HeaderName::from_static("tessera-auth-mode");

/// Usernames may hold any printable Unicode; a header value holds ASCII. Bytes outside
/// printable ASCII, the space and `%` itself are percent-encoded (UTF-8), so `alice` and
/// `alice@example.com` pass unchanged and any URL-decoding function restores the rest.
const USERNAME_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'%');

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Options {
    /// Answer a browser navigation with a redirect to the login page instead of a 401. Only
    /// for proxies that pass a 3xx from the auth service on to the client (Caddy, Traefik);
    /// nginx's `auth_request` turns one into a 500.
    #[serde(default)]
    redirect: bool,
}

/// `GET /v1/forward-auth[?redirect=true]`
#[utoipa::path(
    get,
    path = "/v1/forward-auth",
    operation_id = "forward_auth",
    tag = "operations",
    summary = "Decide on a request for another application (reverse-proxy forward auth)",
    description = "For nginx `auth_request`, Caddy `forward_auth` and Traefik `ForwardAuth`: checks the credential of the original request (its method from `X-Original-Method` / `X-Forwarded-Method`, from trusted proxies) as `/v1/me` would. 200 with the identity in `Tessera-User-Id`, `Tessera-Username` (percent-encoded), `Tessera-Session-Id` and `Tessera-Auth-Mode`; otherwise 401 (with `Location` to the login page for a browser navigation), or a 302 to it with `redirect=true`.",
    params(Options, ("Tessera-Transport" = Option<crate::config::Transport>, Header, description = "The transport of the caller's credential: `cookie` or `bearer`.")),
    security(("bearer" = []), ("session_cookie" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "Allowed; the identity in the `Tessera-*` headers"),
        (status = 302, description = "`redirect=true` and a browser navigation without a valid credential: to the login page"),
        (status = 400, description = "A query parameter other than `redirect=true|false`"),
        (status = 401, description = "No valid credential (for a browser navigation, `Location` names the login page)"),
        (status = 403, description = "Cookie transport, unsafe original method: CSRF token missing or wrong, or a request from another site"),
        (status = 503, description = "A backing store is unavailable"),
    )
)]
pub async fn forward_auth(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let options: Options = match serde_urlencoded::from_str(parts.uri.query().unwrap_or_default()) {
        Ok(o) => o,
        Err(_) => return ApiError::bad_request("the only query parameter is redirect=true|false").into_response(),
    };
    let peer = peer_ip(&parts);
    let original = Original::from_headers(peer, &parts.method, &parts.headers, &state.proxies);
    let checked = CredentialRequest { method: &original.method, headers: &parts.headers, peer };
    let mut response = match authenticate(&state, &checked).await.map_err(unusable_as_401) {
        Ok(caller) => identity(&state, &caller),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED && original.is_navigation(&parts.headers) => {
            to_login(e, &original, options.redirect)
        }
        Err(e) => e.into_response(),
    };
    // A decision about one request, for one proxy: nothing on the way may keep it.
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Credentials the check cannot use at all (two `Authorization` headers, a malformed
/// `Tessera-Transport`) are a 400 on tessera's own API. nginx's `auth_request` turns a 400
/// into a 500 for the client, so here they are what they amount to: no usable credential.
fn unusable_as_401(e: ApiError) -> ApiError {
    if e.status() == StatusCode::BAD_REQUEST { ApiError::invalid_token() } else { e }
}

/// 200 with the caller's identity in headers, for the proxy to pass upstream. Built in place:
/// this answer is what a proxy asks for on every request it forwards.
fn identity(state: &AppState, caller: &Caller) -> Response {
    let a = &caller.auth;
    let (mut user_id, mut session_id) = ([0u8; 22], [0u8; 22]);
    let username: Cow<'_, str> = utf8_percent_encode(a.username.as_str(), USERNAME_ESCAPES).into();
    let values = [
        (&USER_ID, HeaderValue::from_str(a.user_id.encode_into(&mut user_id))),
        (&USERNAME, HeaderValue::from_str(&username)),
        // Empty, not absent, without a session: Caddy before 2.10 copies a header missing from
        // the answer as the literal text of its placeholder.
        (&SESSION_ID, HeaderValue::from_str(a.session_id.as_ref().map_or("", |s| s.encode_into(&mut session_id)))),
        (&AUTH_MODE, Ok(HeaderValue::from_static(state.auth.policy().mode.as_str()))),
    ];
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    // Ours, the edge's two and the length, without regrowing the map.
    headers.reserve(values.len() + 4);
    for (name, value) in values {
        // ASCII by construction (base64url ids, the escaped username). Were one not, a 200
        // without it could pass for an anonymous caller upstream: refuse instead.
        let Ok(value) = value else { return ApiError::internal().into_response() };
        headers.insert(name.clone(), value);
    }
    response
}

/// A browser navigation without a valid credential: a redirect to the login page where the
/// proxy passes one on, otherwise the 401 with the login page in `Location`, which an nginx
/// configuration can turn into its own redirect.
fn to_login(unauthenticated: ApiError, original: &Original, redirect: bool) -> Response {
    let Ok(location) = HeaderValue::try_from(original.login_location()) else {
        return unauthenticated.into_response();
    };
    let mut response = if redirect { StatusCode::FOUND.into_response() } else { unauthenticated.into_response() };
    response.headers_mut().insert(LOCATION, location);
    response
}
