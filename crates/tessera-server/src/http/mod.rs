//! The HTTP layer: routes, extractors, cookies, problem+json, and the limits every request
//! passes through (body size, header size, time).

pub mod content_type;
pub mod cookies;
pub mod edge;
pub mod extract;
pub mod forwarded;
pub mod origin;
pub mod original;
pub mod pages;
pub mod problem;
pub mod routes;
pub mod state;
pub mod views;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use tower_http::catch_panic::CatchPanicLayer;

use problem::ApiError;
use state::AppState;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The whole application; `pages` (when given) adds tessera's own web pages.
pub fn router(state: AppState, request_timeout: Duration, pages: Option<pages::Pages>) -> Router {
    use routes::*;
    Router::new()
        .merge(pages::routes(pages))
        .route("/v1/accounts", post(accounts::sign_up))
        .route("/v1/login", post(login::login))
        .route("/v1/me", get(sessions::me))
        .route("/v1/forward-auth", get(forward_auth::forward_auth))
        .route("/v1/logout", post(sessions::logout))
        .route("/v1/logout-all", post(sessions::logout_all))
        .route("/v1/sessions", get(sessions::list))
        .route("/v1/sessions/{id}", delete(sessions::revoke))
        .route("/v1/password", post(password::change))
        .route("/v1/admin/users/{id}/revoke-sessions", post(admin::revoke_sessions))
        .route("/v1/refresh", post(tokens::refresh))
        .route("/v1/introspect", post(tokens::introspect))
        .route("/v1/revoke", post(tokens::revoke))
        .route("/.well-known/jwks.json", get(tokens::jwks))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { ApiError::not_found("no such path") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        // Outermost, so answers to panics, timeouts and refused requests pass it too.
        .layer(edge::EdgeLayer { request_timeout })
}
