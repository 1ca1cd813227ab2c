//! The two requests a deployment sends on every page or API call — `GET /v1/me` from an
//! application, `GET /v1/forward-auth` from a reverse proxy — go straight to their handlers;
//! every other request goes through axum's router.
//!
//! The router is built for many routes: it matches the path, records the matched route and
//! its parameters as request extensions, calls the route through a boxed service whose future
//! is boxed again, and boxes the handler's future, moving the request and the futures around
//! at each step. On `GET /v1/me` that was 7% of tessera's own instructions per request (2.1k
//! of 28.2k in callgrind). Here the path is compared once and the handler called.
//!
//! Nothing else changes: the handlers, their extractors and their rejections are the ones the
//! router calls, and the router still routes both paths for every other method (a `HEAD`, a
//! `405` for a `POST`) and describes them in the OpenAPI document. The API tests run every
//! request through this service.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{FromRequestParts as _, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse as _, Response};
use futures_util::future::Either;
use tower::Service;

use super::extract::Caller;
use super::routes::{forward_auth, sessions};
use super::state::AppState;

type HotFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// The router, with the hot paths answered ahead of it.
#[derive(Clone)]
pub struct Routes {
    router: Router,
    state: AppState,
}

impl Routes {
    pub fn new(router: Router, state: AppState) -> Self {
        Self { router, state }
    }
}

impl Service<Request> for Routes {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<<Router as Service<Request>>::Future, HotFuture>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.method() == Method::GET {
            match req.uri().path() {
                "/v1/me" => return Either::Right(Box::pin(me(self.state.clone(), req))),
                "/v1/forward-auth" => {
                    let state = self.state.clone();
                    return Either::Right(Box::pin(
                        async move { Ok(forward_auth::forward_auth(State(state), req).await) },
                    ));
                }
                _ => {}
            }
        }
        Either::Left(self.router.call(req))
    }
}

/// What the router does for `GET /v1/me`: the caller extracted (its rejection is the answer),
/// then the handler.
async fn me(state: AppState, req: Request) -> Result<Response, Infallible> {
    let (mut parts, _body) = req.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(caller) => caller,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    Ok(sessions::me(State(state), caller).await)
}
