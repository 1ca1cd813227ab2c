//! Following tessera's revocation feed (`GET /v1/revocations`, Server-Sent Events) and knowing
//! when the copy it gives can no longer be trusted.
//!
//! The protocol, from the consumer's side: a `reset` event replaces the whole copy, `revoke`
//! events add to it, `ready` says the copy is complete as of now, `heartbeat` says it still is.
//! A reconnect sends the last event `id` as `Last-Event-ID`; tessera then replays what was
//! missed, or starts over with a `reset`.
//!
//! **Fail closed.** The copy is *fresh* while the last event of a connection that reached
//! `ready` is younger than `max_staleness`. tessera stops its heartbeats when its own copy is
//! stale (a store outage), and a dead connection sends nothing, so either way this copy goes
//! stale too and every token is refused with 503 until a connection reaches `ready` again.
//! An event this consumer cannot read is never skipped: the connection is dropped and the next
//! one starts from a `reset`, since a skipped `revoke` would be a logout never applied.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use tessera_jwt::AccessClaims;

use crate::denylist::{Denylist, Entry};
use crate::log_once::LogOnce;
use crate::settings::FeedKey;
use crate::sse::{Event, Parser};

/// A feed line longer than this drops the connection. A `reset` with 100 000 entries is about
/// 8 MiB; beyond that the denylist should be the allowlist policy anyway.
const MAX_LINE: usize = 16 * 1024 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The copy of the denylist and how fresh it is; shared by the feed task and every request.
#[derive(Debug)]
pub(crate) struct Revocations {
    list: RwLock<Denylist>,
    epoch: Instant,
    /// Milliseconds after `epoch` (plus one, so that 0 means "never") of the last event of a
    /// connection that had reached `ready`.
    fresh_at: AtomicU64,
    max_staleness: Duration,
}

/// Why a token is not accepted, as far as revocation goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Revoked,
    Stale,
}

impl Revocations {
    pub(crate) fn new(max_staleness: Duration) -> Self {
        Revocations { list: RwLock::default(), epoch: Instant::now(), fresh_at: AtomicU64::new(0), max_staleness }
    }

    pub(crate) fn is_fresh(&self) -> bool {
        match self.fresh_at.load(Ordering::Acquire) {
            0 => false,
            at => {
                let age = self.epoch.elapsed().saturating_sub(Duration::from_millis(at - 1));
                age <= self.max_staleness
            }
        }
    }

    pub(crate) fn check(&self, claims: &AccessClaims, now: i64) -> Result<(), Decision> {
        if !self.is_fresh() {
            return Err(Decision::Stale);
        }
        let list = self.list.read().unwrap_or_else(PoisonError::into_inner);
        if list.revokes(claims, now) { Err(Decision::Revoked) } else { Ok(()) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.fresh_at.store(ms + 1, Ordering::Release);
    }

    fn replace(&self, list: Denylist) {
        *self.list.write().unwrap_or_else(PoisonError::into_inner) = list;
    }

    fn add(&self, entry: Entry) {
        self.list.write().unwrap_or_else(PoisonError::into_inner).add(entry);
    }

    fn prune(&self, now: i64) {
        self.list.write().unwrap_or_else(PoisonError::into_inner).prune(now);
    }
}

/// Where the feed is and how to ask for it.
pub(crate) struct Feed {
    pub client: reqwest::Client,
    pub url: String,
    pub key: FeedKey,
    pub connect_timeout: Duration,
}

#[derive(Deserialize)]
struct Reset {
    revocations: Vec<Entry>,
}

/// Why a connection ended; each cause is logged once, not at every reconnect.
#[derive(Debug)]
enum Ended {
    Refused(String),
    Broken(String),
}

/// Follows the feed for ever: connect, read, reconnect with exponential backoff and jitter.
pub(crate) async fn follow(feed: Feed, revocations: std::sync::Arc<Revocations>) {
    let mut cursor: Option<String> = None;
    let mut backoff = BACKOFF_MIN;
    let log = LogOnce::new("revocation feed");
    loop {
        let mut reached_ready = false;
        let ended = connection(&feed, &revocations, &mut cursor, &mut reached_ready, &log).await;
        // A connection that reached `ready` starts the backoff over.
        if reached_ready {
            backoff = BACKOFF_MIN;
        }
        match ended {
            Ended::Refused(cause) => log.failed(&cause),
            Ended::Broken(cause) => log.failed(&cause),
        }
        tokio::time::sleep(jitter(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn connection(
    feed: &Feed,
    revocations: &Revocations,
    cursor: &mut Option<String>,
    ready: &mut bool,
    log: &LogOnce,
) -> Ended {
    let mut request =
        feed.client.get(&feed.url).bearer_auth(feed.key.expose()).header(reqwest::header::ACCEPT, "text/event-stream");
    if let Some(id) = cursor.as_deref() {
        request = request.header("last-event-id", id);
    }
    let response = match tokio::time::timeout(feed.connect_timeout, request.send()).await {
        Err(_) => return Ended::Broken("tessera did not answer in time".into()),
        Ok(Err(e)) => return Ended::Broken(format!("cannot reach tessera: {}", without_url(&e))),
        Ok(Ok(r)) => r,
    };
    match response.status() {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED => {
            return Ended::Refused("tessera refused the feed key (check VERIFY_FEED_KEY against verify.keys)".into());
        }
        StatusCode::NOT_FOUND => {
            return Ended::Refused("tessera's feed is disabled or absent (set verify.keys there)".into());
        }
        status => return Ended::Broken(format!("tessera answered {status}")),
    }
    let is_sse = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_sse {
        return Ended::Refused("the feed URL does not answer with text/event-stream".into());
    }
    read(response, revocations, cursor, ready, log).await
}

async fn read(
    mut response: reqwest::Response,
    revocations: &Revocations,
    cursor: &mut Option<String>,
    ready: &mut bool,
    log: &LogOnce,
) -> Ended {
    let mut parser = Parser::new(MAX_LINE);
    let mut last_prune = Instant::now();
    // Silence longer than this means a dead peer the kernel has not noticed (tessera sends a
    // heartbeat every second while its own copy is fresh); the copy went stale long before.
    let silence = (revocations.max_staleness * 3).max(Duration::from_secs(10));
    loop {
        let chunk = match tokio::time::timeout(silence, response.chunk()).await {
            Err(_) => return Ended::Broken("the feed went silent".into()),
            Ok(Err(e)) => return Ended::Broken(format!("the feed connection broke: {}", without_url(&e))),
            Ok(Ok(None)) => return Ended::Broken("tessera closed the feed".into()),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let events = match parser.push(&chunk) {
            Ok(events) => events,
            Err(e) => {
                *cursor = None;
                return Ended::Broken(format!("unreadable feed: {e}"));
            }
        };
        for event in events {
            if let Err(e) = apply(&event, revocations, cursor, ready) {
                // Never skip an event: start over from a reset.
                *cursor = None;
                return Ended::Broken(format!("unreadable {} event: {e}", event.event));
            }
            if event.event == "ready" {
                log.recovered();
            }
        }
        if last_prune.elapsed() > Duration::from_secs(30) {
            revocations.prune(unix_now());
            last_prune = Instant::now();
        }
    }
}

fn apply(
    event: &Event,
    revocations: &Revocations,
    cursor: &mut Option<String>,
    ready: &mut bool,
) -> Result<(), serde_json::Error> {
    match event.event.as_str() {
        "reset" => {
            let reset: Reset = serde_json::from_str(&event.data)?;
            let mut list = Denylist::from_entries(reset.revocations);
            list.prune(unix_now());
            tracing::debug!(entries = list.len(), "tessera-verify: revocation feed reset");
            revocations.replace(list);
        }
        "revoke" => revocations.add(serde_json::from_str(&event.data)?),
        "ready" => *ready = true,
        // Heartbeats and events of later versions only say the connection is alive.
        _ => {}
    }
    if let Some(id) = &event.id {
        *cursor = Some(id.clone());
    }
    if *ready {
        revocations.touch();
    }
    Ok(())
}

/// reqwest's errors name the URL; ours is not secret, but its query could be, and the log
/// line is clearer without it.
fn without_url(e: &reqwest::Error) -> String {
    let mut cause = e.to_string();
    if let Some(url) = e.url() {
        cause = cause.replace(url.as_str(), "the feed URL");
    }
    cause
}

/// `base` ± up to 50%, so that services restarted together do not reconnect in step.
fn jitter(base: Duration) -> Duration {
    let [r] = tessera_jwt::secret::random_bytes::<1>();
    base.mul_f64(0.5 + f64::from(r) / 255.0)
}

pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_stale_until_ready_and_after_silence() {
        let r = Revocations::new(Duration::from_millis(500));
        assert!(!r.is_fresh());
        let (mut cursor, mut ready) = (None, false);
        let event = |name: &str, data: &str, id: Option<&str>| Event {
            event: name.into(),
            data: data.into(),
            id: id.map(Into::into),
        };
        apply(&event("reset", r#"{"revocations":[]}"#, Some("c1")), &r, &mut cursor, &mut ready).unwrap();
        assert!(!r.is_fresh(), "a reset alone is not the whole copy yet");
        apply(&event("ready", "{}", None), &r, &mut cursor, &mut ready).unwrap();
        assert!(r.is_fresh());
        assert_eq!(cursor.as_deref(), Some("c1"));
        std::thread::sleep(Duration::from_millis(600));
        assert!(!r.is_fresh());
        apply(&event("heartbeat", r#"{"at":1}"#, None), &r, &mut cursor, &mut ready).unwrap();
        assert!(r.is_fresh());
    }

    #[test]
    fn an_unreadable_revoke_is_an_error_not_a_skip() {
        let r = Revocations::new(Duration::from_secs(5));
        let (mut cursor, mut ready) = (None, true);
        let bad = Event { event: "revoke".into(), data: r#"{"kind":"sid"}"#.into(), id: Some("9".into()) };
        assert!(apply(&bad, &r, &mut cursor, &mut ready).is_err());
        assert_eq!(cursor, None);
    }

    #[test]
    fn jitter_stays_within_half_either_side() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(100));
            assert!(j >= Duration::from_millis(50) && j <= Duration::from_millis(150), "{j:?}");
        }
    }
}
