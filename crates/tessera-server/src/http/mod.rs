//! The HTTP layer: routes, extractors, cookies, problem+json, and the limits every request
//! passes through (body size, header size, time).

pub mod content_type;
pub mod cookies;
pub mod edge;
pub mod extract;
pub mod forwarded;
pub mod hot;
pub mod openapi;
pub mod origin;
pub mod original;
pub mod pages;
pub mod problem;
pub mod routes;
pub mod state;
pub mod views;

use std::time::Duration;

use axum::Router;
use tower::Layer as _;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use problem::ApiError;
use state::AppState;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Every route template, as the metrics label it (`route="/v1/sessions/{id}"`). A route
/// missing here is counted as `other`.
pub const ROUTES: [&str; 28] = [
    "/",
    "/login",
    "/signup",
    "/account",
    "/tessera.js",
    "/tessera/pages.js",
    "/tessera/pages.css",
    "/tessera/icon.svg",
    "/v1/accounts",
    "/v1/login",
    "/v1/me",
    "/v1/forward-auth",
    "/v1/logout",
    "/v1/logout-all",
    "/v1/sessions",
    "/v1/sessions/{id}",
    "/v1/password",
    "/v1/admin/users/{id}/revoke-sessions",
    "/v1/admin/audit",
    "/v1/refresh",
    "/v1/introspect",
    "/v1/revoke",
    "/v1/revocations",
    "/.well-known/jwks.json",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// Every route, and the OpenAPI document that describes them, from one definition: each
/// handler carries its `#[utoipa::path]`, and `routes!` routes it where that says. `pages`
/// (when given) adds tessera's own web pages, `metrics` the Prometheus scrape endpoint. The
/// router still wants its state.
pub fn api(pages: Option<pages::Pages>, metrics: bool) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use routes::*;
    let mut api = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi());
    if metrics {
        api = api.routes(routes!(crate::metrics::scrape));
    }
    api.merge(pages::routes(pages))
        .routes(routes!(accounts::sign_up))
        .routes(routes!(login::login))
        .routes(routes!(sessions::me))
        .routes(routes!(forward_auth::forward_auth))
        .routes(routes!(sessions::logout))
        .routes(routes!(sessions::logout_all))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::revoke))
        .routes(routes!(password::change))
        .routes(routes!(admin::revoke_sessions))
        .routes(routes!(admin::audit))
        .routes(routes!(tokens::refresh))
        .routes(routes!(tokens::introspect))
        .routes(routes!(tokens::revoke))
        .routes(routes!(revocations::feed))
        .routes(routes!(tokens::jwks))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(openapi::document))
        .split_for_parts()
}

/// The whole application as one service: the edge (limits, panics, security headers,
/// logging, metrics) around the routes, the hot paths answered ahead of the router (see
/// [`hot`]).
///
/// The edge wraps the router once, from outside, rather than through `Router::layer`: that
/// wraps every route on its own, and each wrapping costs an allocation of the route's service
/// and of its future on every request — with the four layers there were, on `GET /v1/me`,
/// more than the credential check. For the same reason the request body limit is applied
/// where bodies are read ([`extract::body_bytes`]) and the OpenAPI document sits in the
/// state rather than in a per-request extension.
pub type App = edge::Edge<hot::Routes>;

/// The whole application; `pages` (when given) adds tessera's own web pages.
pub fn router(state: AppState, request_timeout: Duration, pages: Option<pages::Pages>) -> App {
    let metrics = state.metrics.clone();
    let (routes, doc) = api(pages, metrics.is_some());
    let doc = openapi::finish(doc, &state.cookies);
    // Metrics label answers by route template: the templates this server routes.
    let templates = metrics.as_ref().map(|_| edge::Templates::new(doc.paths.paths.keys().map(String::as_str)));
    // Set once per state; a second router for the same state serves the same document.
    let _ = state.openapi.set(openapi::Serialized::new(&doc));
    let router = routes
        .fallback(|| async { ApiError::not_found("no such path") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state.clone());
    edge::EdgeLayer { request_timeout, metrics, templates }.layer(hot::Routes::new(router, state))
}
