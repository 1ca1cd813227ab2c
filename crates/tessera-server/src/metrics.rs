//! Prometheus metrics (`GET /metrics`, when `metrics.access` is not `off`).
//!
//! Each [`Application`](crate::Application) has its own registry, so several servers in one
//! process (the tests) do not mix their numbers. The hot path stays cheap: label values are
//! `&'static str` or integers (no string is built per request), the per-operation store
//! series are looked up once at start-up, and the gauges (denylist, hash queue) are read only
//! when a scraper asks.
//!
//! Series (all prefixed `tessera_`):
//!
//! | series | type | labels |
//! |---|---|---|
//! | `http_requests_total` | counter | `method`, `route` (the route template, or `unmatched`), `status` |
//! | `http_request_duration_seconds` | histogram | `method`, `route` |
//! | `throttled_requests_total` | counter | `route` (answers 429) |
//! | `logins_total` | counter | `outcome`: `succeeded`, `failed`, `throttled` |
//! | `refresh_rotations_total` | counter | |
//! | `refresh_reuse_detected_total` | counter | |
//! | `revocations_total` | counter | `event`: the audit event that revoked something |
//! | `audit_events_total` | counter | `event` |
//! | `denylist_entries` | gauge | this instance's copy |
//! | `denylist_age_seconds` | gauge | since this instance's copy last caught up |
//! | `store_operation_duration_seconds` | histogram | `operation` |
//! | `store_errors_total` | counter | `operation`, `kind`: `unavailable`, `conflict`, `other` |
//! | `password_hash_running` / `password_hash_waiting` / `password_hash_slots` | gauge | |

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tessera_core::Auth;
use tessera_core::audit::AuditKind;
use tessera_core::secret::TokenHash;
use tessera_core::store::StoreError;

pub mod store;

pub use store::{MeteredStore, StoreOp};

/// Latency buckets for HTTP answers and store calls, in seconds: 100 µs to 10 s.
const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// An HTTP status code as a label value, written without building a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(u16);

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_fmt(encoder, format_args!("{}", self.0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ThrottledLabels {
    route: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StoreLabels {
    operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StoreErrorLabels {
    operation: &'static str,
    kind: &'static str,
}

/// One server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    throttled: Family<ThrottledLabels, Counter>,
    logins: Family<OutcomeLabels, Counter>,
    refresh_rotations: Counter,
    refresh_reuse: Counter,
    revocations: Family<EventLabels, Counter>,
    audit_events: Family<EventLabels, Counter>,
    denylist_entries: Gauge,
    denylist_age: Gauge<f64, AtomicU64>,
    store_durations: Vec<Histogram>,
    store_errors: Family<StoreErrorLabels, Counter>,
    hash_running: Gauge,
    hash_waiting: Gauge,
    hash_slots: Gauge,
    /// SHA-256 of `metrics.key` when `metrics.access = "key"`.
    key: Option<TokenHash>,
}

impl Metrics {
    pub fn new(key: Option<TokenHash>) -> Self {
        let mut registry = Registry::with_prefix("tessera");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route template and status", requests.clone());
        let durations = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from receiving a request to its answer",
            prometheus_client::registry::Unit::Seconds,
            durations.clone(),
        );
        let throttled = Family::<ThrottledLabels, Counter>::default();
        registry.register("throttled_requests", "Requests answered 429 (throttled)", throttled.clone());
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register("logins", "Password logins by outcome: succeeded, failed, throttled", logins.clone());
        let refresh_rotations = Counter::default();
        registry.register(
            "refresh_rotations",
            "Refresh tokens rotated (a refresh that won)",
            refresh_rotations.clone(),
        );
        let refresh_reuse = Counter::default();
        registry.register(
            "refresh_reuse_detected",
            "Refresh tokens presented again after rotation: the family and its session ended",
            refresh_reuse.clone(),
        );
        let revocations = Family::<EventLabels, Counter>::default();
        registry.register("revocations", "Revoking actions, by the audit event they record", revocations.clone());
        let audit_events = Family::<EventLabels, Counter>::default();
        registry.register("audit_events", "Audit events recorded, by kind", audit_events.clone());
        let denylist_entries = Gauge::default();
        registry.register(
            "denylist_entries",
            "Entries in this instance's copy of the denylist",
            denylist_entries.clone(),
        );
        let denylist_age = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "denylist_age",
            "Time since this instance's denylist copy last caught up with the store",
            prometheus_client::registry::Unit::Seconds,
            denylist_age.clone(),
        );
        let store_family = Family::<StoreLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register_with_unit(
            "store_operation_duration",
            "Time of each call into the store, by operation",
            prometheus_client::registry::Unit::Seconds,
            store_family.clone(),
        );
        let store_durations = StoreOp::ALL
            .iter()
            .map(|op| store_family.get_or_create(&StoreLabels { operation: op.as_str() }).clone())
            .collect();
        let store_errors = Family::<StoreErrorLabels, Counter>::default();
        registry.register("store_errors", "Failed calls into the store, by operation and kind", store_errors.clone());
        let hash_running = Gauge::default();
        registry.register("password_hash_running", "Password hashes being computed now", hash_running.clone());
        let hash_waiting = Gauge::default();
        registry.register("password_hash_waiting", "Password hashes waiting for a free slot", hash_waiting.clone());
        let hash_slots = Gauge::default();
        registry.register("password_hash_slots", "Password hashes that may run at once", hash_slots.clone());
        Self {
            registry,
            requests,
            durations,
            throttled,
            logins,
            refresh_rotations,
            refresh_reuse,
            revocations,
            audit_events,
            denylist_entries,
            denylist_age,
            store_durations,
            store_errors,
            hash_running,
            hash_waiting,
            hash_slots,
            key,
        }
    }

    fn observe_request(&self, method: &'static str, route: &'static str, status: StatusCode, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { method, route, status: Status(status.as_u16()) }).inc();
        self.durations.get_or_create(&RouteLabels { method, route }).observe(seconds);
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.throttled.get_or_create(&ThrottledLabels { route }).inc();
        }
    }

    /// A call into the store finished.
    pub fn observe_store(&self, op: StoreOp, seconds: f64, error: Option<&StoreError>) {
        self.store_durations[op as usize].observe(seconds);
        if let Some(e) = error {
            let kind = match e {
                StoreError::Unavailable(_) => "unavailable",
                StoreError::Conflict => "conflict",
                StoreError::Other(_) => "other",
            };
            self.store_errors.get_or_create(&StoreErrorLabels { operation: op.as_str(), kind }).inc();
        }
    }

    /// A refresh rotation won its compare-and-set.
    pub fn refresh_rotated(&self) {
        self.refresh_rotations.inc();
    }

    /// An audit event was recorded (whether or not the store kept it).
    pub fn audited(&self, kind: AuditKind) {
        let event = kind.as_str();
        self.audit_events.get_or_create(&EventLabels { event }).inc();
        let outcome = match kind {
            AuditKind::LoginSucceeded => Some("succeeded"),
            AuditKind::LoginFailed => Some("failed"),
            AuditKind::LoginThrottled => Some("throttled"),
            _ => None,
        };
        if let Some(outcome) = outcome {
            self.logins.get_or_create(&OutcomeLabels { outcome }).inc();
        }
        match kind {
            AuditKind::RefreshReuseDetected => {
                self.refresh_reuse.inc();
                self.revocations.get_or_create(&EventLabels { event }).inc();
            }
            AuditKind::Logout
            | AuditKind::SessionRevoked
            | AuditKind::AllSessionsRevoked
            | AuditKind::PasswordChanged
            | AuditKind::AccountDisabled
            | AuditKind::TokenRevoked => {
                self.revocations.get_or_create(&EventLabels { event }).inc();
            }
            _ => {}
        }
    }

    /// The text a scraper reads, with the gauges read from `auth` just now.
    pub fn render(&self, auth: &Auth) -> Result<String, std::fmt::Error> {
        if let Some(tokens) = auth.tokens() {
            let denylist = tokens.denylist();
            self.denylist_entries.set(i64::try_from(denylist.len()).unwrap_or(i64::MAX));
            self.denylist_age.set(denylist.age().map_or(f64::NAN, |a| a.as_secs_f64()));
        }
        let queue = auth.hasher().queue();
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.hash_running.set(as_i64(queue.running));
        self.hash_waiting.set(as_i64(queue.waiting));
        self.hash_slots.set(as_i64(queue.slots));
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Metrics {
    /// Counts and times one answer by method, route template (`unmatched` when no route
    /// matched) and status. The edge layer (`http::edge`, the outermost) calls it, so it sees
    /// refusals by the limits (408, 413, 431) and the answer to a panic too.
    /// `route` is the label of the template the path matched (see `http::edge::Templates`),
    /// `None` when none did.
    pub fn track(&self, method: &Method, route: Option<&'static str>, status: StatusCode, elapsed: Duration) {
        let route = route.unwrap_or("unmatched");
        self.observe_request(method_label(method), route, status, elapsed.as_secs_f64());
    }
}

/// A bounded label for the method: the ones tessera routes, else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "The series in the OpenMetrics text format, for a Prometheus scrape. Routed only when `metrics.access` is `open` or `key`; with `key` it takes the metrics key (`metrics.key`) as a bearer token.",
    security((), ("metrics_key" = [])),
    responses(
        (status = 200, description = "The metrics", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 400, description = "Two `Authorization` headers"),
        (status = 401, description = "`metrics.access = \"key\"` and no key, or a wrong one"),
    )
)]
pub async fn scrape(State(state): State<crate::http::state::AppState>, headers: axum::http::HeaderMap) -> Response {
    use crate::http::extract::{authorization, bearer_token};
    use crate::http::problem::ApiError;
    let Some(metrics) = &state.metrics else {
        return ApiError::not_found("metrics are off (metrics.access)").into_response();
    };
    if let Some(expected) = &metrics.key {
        let presented = match authorization(&headers) {
            Ok(value) => value.and_then(bearer_token),
            Err(e) => return e.into_response(),
        };
        let Some(presented) = presented else { return ApiError::unauthenticated().into_response() };
        if !TokenHash::of(presented.as_bytes()).ct_eq(expected) {
            return ApiError::invalid_token().into_response();
        }
    }
    match metrics.render(&state.auth) {
        Ok(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            response
        }
        Err(_) => ApiError::internal().into_response(),
    }
}
