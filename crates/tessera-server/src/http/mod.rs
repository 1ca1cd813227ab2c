//! The HTTP layer: routes, extractors, cookies, problem+json, and the limits every request
//! passes through (body size, header size, time).

pub mod content_type;
pub mod cookies;
pub mod extract;
pub mod forwarded;
pub mod openapi;
pub mod origin;
pub mod original;
pub mod pages;
pub mod problem;
pub mod routes;
pub mod state;
pub mod views;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, COOKIE, SET_COOKIE, X_CONTENT_TYPE_OPTIONS};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use problem::ApiError;
use state::AppState;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Every route, and the OpenAPI document that describes them, from one definition: each
/// handler carries its `#[utoipa::path]`, and `routes!` routes it where that says. `pages`
/// (when given) adds tessera's own web pages. The router still wants its state.
pub fn api(pages: Option<pages::Pages>) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use routes::*;
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(pages::routes(pages))
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

/// The whole application; `pages` (when given) adds tessera's own web pages.
pub fn router(state: AppState, request_timeout: Duration, pages: Option<pages::Pages>) -> Router {
    let (routes, doc) = api(pages);
    let doc = openapi::Serialized::new(&openapi::finish(doc, &state.cookies));
    routes
        .fallback(|| async { ApiError::not_found("no such path") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
        .layer(Extension(doc))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(move |req, next| guard(request_timeout, req, next)))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveHeadersLayer::new([AUTHORIZATION, COOKIE, SET_COOKIE]))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .layer(middleware::map_response(secure_headers))
}

/// Limits every request passes (one middleware, not two: this runs on every request).
///
/// - Headers are bounded by hyper's read buffer too; this answers a clear 431 below that.
/// - The whole exchange, reading the body included, must finish in time: a client that
///   trickles its body cannot hold a connection and a task forever.
async fn guard(limit: Duration, req: Request, next: Next) -> Response {
    let size: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if size > MAX_HEADER_BYTES {
        return ApiError::headers_too_large().into_response();
    }
    tokio::time::timeout(limit, next.run(req)).await.unwrap_or_else(|_| ApiError::request_timeout().into_response())
}

/// Answers carry credentials (login, refresh, password change) or personal data (`/v1/me`,
/// `/v1/sessions`, introspection): no cache, shared or private, may keep them. `no-store`
/// is the default for everything; an answer meant to be cached (the JWKS) says so itself.
/// `nosniff` everywhere: a browser must never guess a type and run a JSON body as script.
/// The outermost layer, so answers to panics and to refused requests carry them too.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
