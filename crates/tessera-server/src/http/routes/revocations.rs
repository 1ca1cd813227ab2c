//! `GET /v1/revocations`: the revocation feed, for services that verify tokens themselves
//! (README, "Revocation feed"). Server-sent events: the live denylist (`reset`) or what the
//! consumer missed (`revoke`s), then `ready`, then each revocation as it happens and a
//! `heartbeat` every second while this instance's own copy is fresh.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::clock::to_unix;
use tessera_core::feed::{FeedEvent, Start, Subscription};
use tessera_core::secret::TokenHash;
use tessera_core::store::{Denied, DenyEntry};
use tokio::sync::mpsc;

use crate::http::extract::{authorization, bearer_token};
use crate::http::problem::ApiError;
use crate::http::state::AppState;

/// How often a heartbeat goes out while this instance's denylist copy is fresh.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// `GET /v1/revocations`
#[utoipa::path(
    get,
    path = "/v1/revocations",
    operation_id = "revocation_feed",
    tag = "tokens",
    summary = "The revocation feed (server-sent events)",
    description = "For services that verify access tokens themselves: the live denylist (`reset`) or what the consumer missed since `Last-Event-ID` (`revoke` events), then `ready`, then each revocation as it happens and a `heartbeat` every second while this instance's copy is fresh. The stream stays open. Takes one of `verify.keys`; without any configured the feed is disabled (404).",
    params(("Last-Event-ID" = Option<String>, Header, description = "The last event id received: resume after it")),
    security(("feed_key" = [])),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "Two `Authorization` headers"),
        (status = 401, description = "No feed key, or a wrong one"),
        (status = 404, description = "The feed is disabled (no `verify.keys` set, or session mode)"),
    )
)]
pub async fn feed(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if state.verify_keys.is_empty() {
        return Err(ApiError::not_found("the revocation feed is disabled: set verify.keys"));
    }
    let presented = authorization(&headers)?.and_then(bearer_token).ok_or_else(ApiError::unauthenticated)?;
    // Hash, then compare with every key without stopping at a match: constant time, and the
    // time says nothing of which key (or how much of one) matched.
    let hash = TokenHash::of(presented.as_bytes());
    if !state.verify_keys.iter().fold(false, |found, key| found | hash.ct_eq(key)) {
        return Err(ApiError::invalid_token());
    }
    // Configuration refuses verify.keys unless the denylist is the revocation check.
    let tokens = state.auth.tokens().ok_or_else(|| ApiError::not_found("the revocation feed is disabled"))?;
    let resume = headers.get(LAST_EVENT_ID).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let now = state.auth.now();
    let Subscription { start, events } = tokens.feed().subscribe(resume, now, || tokens.denylist_snapshot(now));
    let first = Bytes::from(start_events(start, now));
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream =
        futures_util::stream::unfold(Connection { state, first: Some(first), events, heartbeat }, |mut c| async move {
            c.next().await.map(|chunk| (Ok::<_, Infallible>(chunk), c))
        });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    Ok(response)
}

struct Connection {
    state: AppState,
    first: Option<Bytes>,
    events: mpsc::Receiver<FeedEvent>,
    heartbeat: tokio::time::Interval,
}

impl Connection {
    /// The next chunk to send; `None` ends the connection (it fell behind, or the server is
    /// stopping): the consumer reconnects and resumes.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            tokio::select! {
                event = self.events.recv() => {
                    let event = event?;
                    let mut chunk = revoke(&event);
                    // Whatever else is already waiting goes in the same write.
                    while let Ok(more) = self.events.try_recv() {
                        chunk.push_str(&revoke(&more));
                    }
                    return Some(Bytes::from(chunk));
                }
                _ = self.heartbeat.tick() => {
                    let tokens = self.state.auth.tokens()?;
                    // A stale copy may be missing revocations: say nothing, so the consumer's
                    // own staleness runs out and it fails closed as this instance does.
                    if tokens.denylist_is_fresh() {
                        let at = to_unix(self.state.auth.now());
                        return Some(Bytes::from(format!("event: heartbeat\ndata: {}\n\n", json!({ "at": at }))));
                    }
                }
            }
        }
    }
}

/// The events that open a connection: a reset or a replay, then `ready`.
fn start_events(start: Start, now: time::OffsetDateTime) -> String {
    match start {
        Start::Reset { entries, cursor } => {
            let live: Vec<_> = entries.iter().filter(|e| now < e.expires_at).map(entry_json).collect();
            format!("event: reset\nid: {cursor}\ndata: {}\n\n{}", json!({ "revocations": live }), ready(cursor))
        }
        Start::Replay { events, cursor } => {
            let mut out: String = events.iter().map(revoke).collect();
            out.push_str(&ready(cursor));
            out
        }
    }
}

fn ready(cursor: u64) -> String {
    format!("event: ready\nid: {cursor}\ndata: {{}}\n\n")
}

fn revoke(event: &FeedEvent) -> String {
    format!("event: revoke\nid: {}\ndata: {}\n\n", event.cursor, entry_json(&event.entry))
}

/// `{"kind":"sid"|"jti"|"sub", "value", ["iat_before",] "until"}`, in unix seconds.
fn entry_json(entry: &DenyEntry) -> serde_json::Value {
    let until = to_unix(entry.expires_at);
    match entry.denied {
        Denied::Session(sid) => json!({ "kind": "sid", "value": sid.to_string(), "until": until }),
        Denied::Token(jti) => json!({ "kind": "jti", "value": jti.to_string(), "until": until }),
        // The denylist stops tokens issued at or before the cut-off; `iat` is whole seconds,
        // so "strictly before the next second" is the same set.
        Denied::IssuedBefore(user, cutoff) => json!({
            "kind": "sub",
            "value": user.to_string(),
            "iat_before": to_unix(cutoff) + 1,
            "until": until,
        }),
    }
}
