//! `GET /openapi.json`: the OpenAPI 3.1 description of this server's API.
//!
//! The document is built together with the router ([`super::routes`]): each handler carries
//! its `#[utoipa::path]` description and is routed through `utoipa_axum::routes!`, so the path
//! and method a route is served at are the ones the document names. Answers every route can
//! give (a problem for a request that took too long, headers that are too large, an internal
//! error) are added here to every operation, and the document describes what this server
//! serves with its configuration: the pages are in it only when they are enabled.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{OpenApi, ToSchema};

use super::cookies::CookiePolicy;
use super::state::AppState;

/// The media type of every error answer (RFC 9457).
pub const PROBLEM: &str = "application/problem+json";

/// An error answer (RFC 9457). `type` is a stable URN per kind of error
/// (`urn:tessera:problem:<slug>`); `detail` is safe to show and never carries a store's or
/// the server's internal message.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:tessera:problem:unauthenticated",
    "title": "Authentication required",
    "status": 401,
    "detail": "no credential was presented"
}))]
pub struct Problem {
    /// `urn:tessera:problem:<slug>`, one per kind of error.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    /// The HTTP status of the answer.
    pub status: u16,
    pub detail: String,
}

/// Security scheme names, used in the handlers' `security(...)` lists.
pub mod scheme {
    pub const BEARER: &str = "bearer";
    pub const SESSION_COOKIE: &str = "session_cookie";
    pub const ACCESS_COOKIE: &str = "access_cookie";
    pub const REFRESH_COOKIE: &str = "refresh_cookie";
    pub const CSRF: &str = "csrf_token";
    pub const ADMIN_KEY: &str = "admin_key";
    pub const FEED_KEY: &str = "feed_key";
    pub const METRICS_KEY: &str = "metrics_key";
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tessera",
        description = "tessera's HTTP API: accounts, login and sessions, tokens (JWT access \
tokens and refresh tokens in the token modes), their revocation, and the admin endpoints.\n\n\
JSON in and out, except `/v1/introspect` and `/v1/revoke`, which take \
`application/x-www-form-urlencoded` (RFC 7662, RFC 7009). Every error is an \
`application/problem+json` answer (RFC 9457).\n\n\
**Transports.** A client picks where its credentials travel with the request header \
`Tessera-Transport: cookie|bearer` (default: the first of the server's `auth.transports`). \
With `bearer`, login's answer carries the tokens and requests send \
`Authorization: Bearer <token>`. With `cookie`, the tokens are set as `HttpOnly` cookies and \
never appear in a body; the answer carries a `csrf_token` instead, which every unsafe request \
(POST, DELETE) sends back in `X-CSRF-Token`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    components(schemas(Problem, crate::config::Transport)),
    tags(
        (name = "accounts", description = "Sign-up"),
        (name = "sessions", description = "Login, the caller, its sessions, logout, password change"),
        (name = "tokens", description = "Refresh, public keys, introspection and revocation"),
        (name = "admin", description = "Endpoints that take the admin key (`admin.api_key`); without one they are disabled"),
        (name = "operations", description = "Health, readiness, forward auth, this document"),
        (name = "pages", description = "tessera's own web pages and the browser client module")
    )
)]
pub struct ApiDoc;

/// The security schemes, with this server's cookie names (`cookie.secure = false` drops their
/// `__Host-` prefix).
fn add_security_schemes(doc: &mut Document, cookies: &CookiePolicy) {
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = |description: &str| {
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description)).build())
    };
    let cookie = |name: &str, description: &str| {
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(name, description)))
    };
    components.add_security_scheme(
        scheme::BEARER,
        bearer(
            "With `Tessera-Transport: bearer`: the session token (session mode) or the JWT access \
                 token (jwt and hybrid modes) from login's answer.",
        ),
    );
    components.add_security_scheme(
        scheme::SESSION_COOKIE,
        cookie(
            cookies.session_name(),
            "Session mode, cookie transport: set by login. Unsafe requests add `X-CSRF-Token`.",
        ),
    );
    components.add_security_scheme(
        scheme::ACCESS_COOKIE,
        cookie(
            cookies.access_name(),
            "jwt and hybrid modes, cookie transport: the access token, set by login and refresh. \
                 Unsafe requests add `X-CSRF-Token`.",
        ),
    );
    components.add_security_scheme(
        scheme::REFRESH_COOKIE,
        cookie(
            cookies.refresh_name(),
            "Where refresh tokens are on, cookie transport: read by `/v1/refresh` and `/v1/logout` only \
                 (with `X-CSRF-Token`).",
        ),
    );
    components.add_security_scheme(
        scheme::CSRF,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-CSRF-Token",
            &format!(
                "The `csrf_token` of login's answer (also readable by scripts in the `{}` cookie), \
                     sent with every unsafe request that a cookie authenticates. A password change issues a new one.",
                cookies.csrf_name()
            ),
        ))),
    );
    components.add_security_scheme(
        scheme::FEED_KEY,
        bearer(
            "One of the revocation feed's keys (`verify.keys`), as `Authorization: Bearer <key>`. Without any \
             the feed is disabled and answers 404.",
        ),
    );
    components.add_security_scheme(
        scheme::METRICS_KEY,
        bearer("The metrics key (`metrics.key`), when `metrics.access = \"key\"`."),
    );
    components.add_security_scheme(
        scheme::ADMIN_KEY,
        bearer(
            "The admin key (`admin.api_key`), as `Authorization: Bearer <key>`. Without a configured key the \
                 admin endpoints are disabled and answer 404.",
        ),
    );
}

/// Answers any request can get, whatever the route: added to every operation.
const EVERY_ROUTE: [(&str, &str); 3] = [
    ("408", "The request took too long to arrive."),
    ("431", "The request headers exceed 16 KiB."),
    ("500", "An internal error (the log has the cause)."),
];

/// The finished document: the security schemes, and the answers every route can give added to
/// every operation.
pub fn finish(mut doc: Document, cookies: &CookiePolicy) -> Document {
    add_security_schemes(&mut doc, cookies);
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            for (status, description) in EVERY_ROUTE {
                op.responses.responses.entry(status.to_owned()).or_insert_with(|| problem(description));
            }
            // Every error answer is problem+json: the handlers give the status and why.
            for (status, response) in op.responses.responses.iter_mut() {
                if let RefOr::T(response) = response
                    && (status.starts_with('4') || status.starts_with('5'))
                    && response.content.is_empty()
                {
                    *response = problem_with(std::mem::take(&mut response.description));
                }
            }
        }
    }
    doc
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten()
}

/// A problem+json answer with `description`.
fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    problem_with(description.to_owned()).into()
}

fn problem_with(description: String) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM, ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build())
        .build()
}

/// The serialized document, built once when the router is.
#[derive(Clone)]
pub struct Serialized(pub Bytes);

impl Serialized {
    pub fn new(doc: &Document) -> Self {
        Self(Bytes::from(serde_json::to_vec(doc).unwrap_or_default()))
    }
}

/// `GET /openapi.json`
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This document",
    description = "The OpenAPI 3.1 description of this server's API, as configured.",
    responses((status = 200, description = "The document", content_type = "application/json", body = serde_json::Value))
)]
pub async fn document(State(state): State<AppState>) -> Response {
    let doc = state.openapi.get().map(|d| d.0.clone()).unwrap_or_default();
    let mut response = (StatusCode::OK, doc).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An account, as the API shows it.
#[derive(ToSchema)]
#[allow(dead_code)] // a description of `tessera_core::account::UserView`'s JSON
pub struct User {
    pub id: String,
    pub username: String,
}

/// A JSON Web Key Set (RFC 7517): public keys only.
#[derive(ToSchema)]
#[allow(dead_code)] // a description of the JWKS's JSON
pub struct Jwks {
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<()>,
}
