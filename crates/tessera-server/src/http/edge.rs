//! The one layer every request passes on its way in and out, in place of five (a trace layer,
//! a sensitive-headers layer, two `from_fn` middlewares and a body wrapper): each costed a
//! boxed future, a header walk or a span per request, which on `GET /v1/me` added up to more
//! than the credential check itself. What they did is all still here:
//!
//! - Limits: headers over [`MAX_HEADER_BYTES`] get a clear 431 (hyper's read buffer bounds
//!   them too, higher up), and the whole exchange, reading the body included, must finish
//!   within the request timeout: a client that trickles its body cannot hold a task forever.
//! - Answers carry `X-Content-Type-Options: nosniff` and, unless they say otherwise,
//!   `Cache-Control: no-store` (see [`secure_headers`]).
//! - `Authorization`, `Cookie` and `Set-Cookie` values are marked sensitive, so no debug
//!   output of a request or response ever prints them.
//! - Observability where it matters: a request that fails (5xx) is logged at `error`, one
//!   slower than [`SLOW`] at `warn`, a refused credential (401) at `info` under the `audit`
//!   target, each with method, path, status, latency and the request id; every request is
//!   logged at `debug` (`RUST_LOG=tessera_server::http=debug`). A request id is on demand: a
//!   client or proxy that sends `X-Request-Id` gets it back and finds it in these lines.
//! - A panic in a handler is answered with a plain 500 problem; the connection lives on.
//! - Metrics (when on): every answer, refusals by the limits and the answer to a panic
//!   included, is counted and timed by method, route template and status.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, COOKIE, SET_COOKIE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use futures_util::future::CatchUnwind;
use tower::{Layer, Service};

use super::MAX_HEADER_BYTES;
use super::problem::ApiError;
use crate::metrics::Metrics;

/// A request slower than this is logged at `warn`.
pub const SLOW: Duration = Duration::from_secs(1);

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// A longer `X-Request-Id` is not echoed (nor logged): ids are tokens, not documents.
const MAX_REQUEST_ID: usize = 128;

#[derive(Clone)]
pub struct EdgeLayer {
    pub request_timeout: Duration,
    /// When on, every answer is counted by method, route and status.
    pub metrics: Option<Arc<Metrics>>,
    /// The route templates the metrics label answers with (present with `metrics`).
    pub templates: Option<Templates>,
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        let counted = self.metrics.clone().zip(self.templates.clone());
        Edge { inner, request_timeout: self.request_timeout, counted }
    }
}

/// Which route template a path matches, for the metrics' `route` label. The edge wraps the
/// router from outside (see [`super::App`]), so it matches paths itself — with the same
/// matcher axum routes with, over the templates the router was built from — rather than read
/// the `MatchedPath` routing leaves inside.
#[derive(Clone)]
pub struct Templates(Arc<matchit::Router<&'static str>>);

impl Templates {
    /// The label of each template routed; a template not in [`super::ROUTES`] is `other`.
    pub fn new<'a>(routed: impl IntoIterator<Item = &'a str>) -> Self {
        let mut matcher = matchit::Router::new();
        for template in routed {
            let label = super::ROUTES.iter().find(|r| **r == template).copied().unwrap_or("other");
            // Templates come from the router, which accepted them; one it did not would
            // only go unlabelled.
            let _ = matcher.insert(template, label);
        }
        Self(Arc::new(matcher))
    }

    /// The label of the route `path` matches, `None` for a path no route matches.
    pub fn label(&self, path: &str) -> Option<&'static str> {
        self.0.at(path).ok().map(|m| *m.value)
    }
}

#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    request_timeout: Duration,
    counted: Option<(Arc<Metrics>, Templates)>,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> EdgeFuture<S::Future> {
        let started = Instant::now();
        let size = weigh_and_mark(req.headers_mut());
        let request_id = request_id(req.headers());
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let counted = self.counted.as_ref().map(|(m, templates)| (Arc::clone(m), templates.label(uri.path())));
        let state = if size > MAX_HEADER_BYTES {
            State::Refused { response: Some(ApiError::headers_too_large().into_response()) }
        } else {
            // The service that was made ready is called; routing is synchronous and the
            // handlers run when polled, but a panic here is answered all the same.
            match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
                Ok(future) => {
                    let deadline = started.checked_add(self.request_timeout);
                    State::Called { answer: Deadline::new(deadline, AssertUnwindSafe(future).catch_unwind()) }
                }
                Err(_panic) => State::Refused { response: Some(ApiError::internal().into_response()) },
            }
        };
        EdgeFuture { state, seen: Seen { started, method, uri, request_id, counted } }
    }
}

pin_project_lite::pin_project! {
    /// The answer of one request as it leaves the edge. A named future rather than a boxed
    /// `async` block: it lives in the connection's slot for the request in flight, where an
    /// `async` block would be allocated, and copied whole, once more per request.
    pub struct EdgeFuture<F> {
        #[pin]
        state: State<F>,
        seen: Seen,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        /// The inner service was called; a panic while it is polled is caught.
        Called { #[pin] answer: Deadline<CatchUnwind<AssertUnwindSafe<F>>> },
        /// Answered at the edge (headers too large, a panic while calling).
        Refused { response: Option<Response> },
    }
}

/// What the edge noted of a request on its way in, for the answer on its way out.
struct Seen {
    started: Instant,
    method: Method,
    uri: Uri,
    request_id: Option<HeaderValue>,
    counted: Option<(Arc<Metrics>, Option<&'static str>)>,
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.state.project() {
            StateProj::Called { answer } => match std::task::ready!(answer.poll(cx)) {
                Some(Ok(Ok(response))) => response,
                Some(Ok(Err(never))) => match never {},
                // The panic hook has logged it; the connection lives on.
                Some(Err(_panic)) => ApiError::internal().into_response(),
                None => ApiError::request_timeout().into_response(),
            },
            StateProj::Refused { response } => response.take().unwrap_or_else(|| ApiError::internal().into_response()),
        };
        Poll::Ready(Ok(this.seen.answer(response)))
    }
}

impl Seen {
    /// The answer as it leaves: security headers, the request id, counted and logged.
    fn answer(&mut self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        secure_headers(headers);
        for (name, value) in headers.iter_mut() {
            if name == SET_COOKIE {
                value.set_sensitive(true);
            }
        }
        if let Some(id) = &self.request_id {
            headers.insert(&REQUEST_ID, id.clone());
        }
        let elapsed = self.started.elapsed();
        if let Some((metrics, route)) = &self.counted {
            metrics.track(&self.method, *route, response.status(), elapsed);
        }
        observe(&self.method, &self.uri, response.status(), elapsed, self.request_id.as_ref());
        response
    }
}

pin_project_lite::pin_project! {
    /// `future`'s output, or `None` once `deadline` has passed (no deadline: never). What
    /// `tokio::time::timeout` does, except that the timer is only made when the future is
    /// first pending: most answers (a session or token check served from memory) are ready at
    /// the first poll, and then no runtime handle is fetched and no timer made or registered
    /// for them. Like tokio's, the timer is polled outside the task's cooperative budget, so a
    /// future that spends the budget every time cannot starve it.
    pub struct Deadline<F> {
        #[pin]
        future: F,
        #[pin]
        timer: Option<tokio::task::coop::Unconstrained<tokio::time::Sleep>>,
        deadline: Option<Instant>,
    }
}

impl<F> Deadline<F> {
    fn new(deadline: Option<Instant>, future: F) -> Self {
        Deadline { future, timer: None, deadline }
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let mut this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Some(output));
        }
        let Some(deadline) = *this.deadline else { return Poll::Pending };
        if this.timer.is_none() {
            this.timer.set(Some(tokio::task::coop::unconstrained(tokio::time::sleep_until(deadline.into()))));
        }
        match this.timer.as_pin_mut() {
            Some(sleep) => sleep.poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    }
}

/// Answers carry credentials (login, refresh, password change) or personal data (`/v1/me`,
/// `/v1/sessions`, introspection): no cache, shared or private, may keep them. `no-store`
/// is the default for everything; an answer meant to be cached (the JWKS) says so itself.
/// `nosniff` everywhere: a browser must never guess a type and run a JSON body as script.
pub fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
}

/// The size of a request's headers, as the limit counts it; on the same walk (a lookup by
/// name would hash it), `Authorization` and `Cookie` values are marked sensitive.
fn weigh_and_mark(headers: &mut HeaderMap) -> usize {
    let mut size = 0;
    for (name, value) in headers.iter_mut() {
        size += name.as_str().len() + value.len() + 4;
        if name == AUTHORIZATION || name == COOKIE {
            value.set_sensitive(true);
        }
    }
    size
}

/// The client's `X-Request-Id`, when it sent exactly one that is short and printable.
fn request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(&REQUEST_ID).iter();
    let (Some(value), None) = (values.next(), values.next()) else { return None };
    let printable = value.as_bytes().iter().all(|b| b.is_ascii_graphic());
    (printable && !value.is_empty() && value.len() <= MAX_REQUEST_ID).then(|| value.clone())
}

/// One log line for the requests worth one; nothing (beyond a disabled `debug` callsite) for
/// the rest.
fn observe(method: &Method, uri: &Uri, status: StatusCode, latency: Duration, id: Option<&HeaderValue>) {
    let path = uri.path();
    let latency_ms = latency.as_secs_f64() * 1e3;
    let request_id = id.and_then(|v| v.to_str().ok()).unwrap_or("");
    if status.is_server_error() {
        tracing::error!(%method, path, status = status.as_u16(), latency_ms, request_id, "request failed");
    } else if latency >= SLOW {
        tracing::warn!(%method, path, status = status.as_u16(), latency_ms, request_id, "slow request");
    } else if status == StatusCode::UNAUTHORIZED {
        tracing::info!(target: "audit", event = "credential_refused", %method, path, request_id);
    } else {
        tracing::debug!(%method, path, status = status.as_u16(), latency_ms, request_id, "request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_short_printable_request_id_is_echoed() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h), None);
        h.insert(&REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h).as_ref().map(HeaderValue::as_bytes), Some(&b"abc-123"[..]));
        h.append(&REQUEST_ID, HeaderValue::from_static("def"));
        assert_eq!(request_id(&h), None, "two ids: neither");
        let mut long = HeaderMap::new();
        long.insert(&REQUEST_ID, HeaderValue::from_str(&"x".repeat(MAX_REQUEST_ID + 1)).unwrap());
        assert_eq!(request_id(&long), None);
        let mut spaced = HeaderMap::new();
        spaced.insert(&REQUEST_ID, HeaderValue::from_static("a b"));
        assert_eq!(request_id(&spaced), None);
    }

    #[tokio::test]
    async fn a_panic_below_the_edge_is_a_500_problem_with_the_security_headers() {
        let panicking = tower::service_fn(|_: Request| async move {
            if true {
                panic!("a handler bug");
            }
            Ok::<Response, Infallible>(Response::default())
        });
        let mut edge =
            EdgeLayer { request_timeout: Duration::from_secs(5), metrics: None, templates: None }.layer(panicking);
        let response = edge.call(Request::new(axum::body::Body::empty())).await.unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(response.headers()[axum::http::header::CONTENT_TYPE], "application/problem+json");
    }

    #[tokio::test]
    async fn a_panic_while_calling_the_service_is_a_500_problem_too() {
        let panicking = tower::service_fn(|_: Request| {
            if true {
                panic!("a routing bug");
            }
            std::future::ready(Ok::<Response, Infallible>(Response::default()))
        });
        let mut edge =
            EdgeLayer { request_timeout: Duration::from_secs(5), metrics: None, templates: None }.layer(panicking);
        let response = edge.call(Request::new(axum::body::Body::empty())).await.unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    #[tokio::test]
    async fn the_deadline_answers_ready_and_late_futures_and_times_out_the_rest() {
        let soon = || Some(Instant::now() + Duration::from_millis(200));
        assert_eq!(Deadline::new(soon(), async { 7 }).await, Some(7), "ready at once");
        let late = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            8
        };
        assert_eq!(Deadline::new(soon(), late).await, Some(8), "pending first, done before the deadline");
        let started = Instant::now();
        assert_eq!(Deadline::new(soon(), std::future::pending::<u8>()).await, None, "never done");
        assert!(started.elapsed() >= Duration::from_millis(190), "not before the deadline");
    }

    #[test]
    fn sensitive_values_do_not_show_in_debug_output() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer secret-token"));
        h.append(COOKIE, HeaderValue::from_static("a=1"));
        h.append(COOKIE, HeaderValue::from_static("b=secret-cookie"));
        let size = weigh_and_mark(&mut h);
        assert_eq!(size, "authorization".len() + 19 + 4 + 2 * ("cookie".len() + 4) + 3 + 15);
        let shown = format!("{h:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
