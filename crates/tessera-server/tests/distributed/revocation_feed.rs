//! The revocation feed (`GET /v1/revocations`) across instances: any instance serves it, a
//! logout on one reaches a consumer connected to another, cursors mean the same everywhere,
//! and an instance whose own denylist copy goes stale (Redis down) stops its heartbeats, so its
//! consumers go stale and fail closed with it.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::harness::postgres::Schema;
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{Api, Backend, Deployment};
use crate::harness::unique_name;

const VERIFY_KEY: &str = "distributed-feed-verify-key-0123456789";
/// A bound so a broken feed fails the test instead of hanging it; not a measure of speed.
const WAIT: Duration = Duration::from_secs(15);

#[derive(Debug)]
struct Event {
    event: String,
    id: Option<String>,
    data: Value,
}

struct Feed {
    response: reqwest::Response,
    buffer: String,
}

impl Feed {
    async fn open(api: &Api, resume: Option<&str>) -> Feed {
        let client = reqwest::Client::new();
        let mut rb = client.get(api.url("/v1/revocations")).bearer_auth(VERIFY_KEY);
        if let Some(id) = resume {
            rb = rb.header("last-event-id", id);
        }
        let response = rb.send().await.unwrap_or_else(|e| panic!("the feed of {} answers: {e}", api.name));
        assert_eq!(response.status(), 200, "GET /v1/revocations on {}", api.name);
        Feed { response, buffer: String::new() }
    }

    /// The next event; `None` when the stream ended or nothing came within `limit`.
    async fn next_within(&mut self, limit: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                Ok(_) | Err(_) => return None,
            }
        }
    }

    async fn next_news(&mut self) -> Event {
        loop {
            let e = self.next_within(WAIT).await.unwrap_or_else(|| panic!("no event within {WAIT:?}"));
            if e.event != "heartbeat" {
                return e;
            }
        }
    }

    /// Reads up to `ready`; returns the events before it and the last id.
    async fn start(&mut self) -> (Vec<Event>, String) {
        let (mut opening, mut last) = (Vec::new(), None);
        loop {
            let e = self.next_news().await;
            if e.id.is_some() {
                last.clone_from(&e.id);
            }
            if e.event == "ready" {
                return (opening, last.expect("an id before ready"));
            }
            opening.push(e);
        }
    }
}

fn parse(block: &str) -> Event {
    let (mut event, mut id, mut data) = (None, None, None);
    for line in block.lines().filter(|l| !l.is_empty()) {
        let (field, value) = line.split_once(": ").unwrap_or_else(|| panic!("malformed line {line:?}"));
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "data" => data = Some(serde_json::from_str(value).expect("data is JSON")),
            other => panic!("unexpected field {other:?} in {block:?}"),
        }
    }
    Event { event: event.expect("named"), id, data: data.expect("data") }
}

/// The `sid` claim of an access token.
fn sid_of(jwt: &str) -> String {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON");
    claims["sid"].as_str().expect("a hybrid token has a sid").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_reaches_consumers_of_the_others_and_cursors_travel() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let redis = RedisServer::start().await;
    let backend = Backend::standalone(schema.url(), redis.url(), name);
    let deployment = Deployment::new(&backend, "hybrid").with("VERIFY__KEYS", VERIFY_KEY);
    let fleet = deployment.start_many(&["A", "B", "C"]).await;
    let (a, b, c) = (&fleet[0], &fleet[1], &fleet[2]);
    a.signup_ok("alice").await;
    let (first, second) = (a.login_tokens("alice").await, a.login_tokens("alice").await);

    let mut on_c = Feed::open(c, None).await;
    let (_, start) = on_c.start().await;
    a.logout(&first.access).await.assert_status(204, "logout on A");
    let revoke = on_c.next_news().await;
    assert_eq!(revoke.event, "revoke", "{revoke:?}");
    assert_eq!(revoke.data["kind"], "sid");
    assert_eq!(revoke.data["value"].as_str(), Some(sid_of(&first.access).as_str()), "{revoke:?}");

    // C's cursor resumes on B: B replays only what followed it.
    b.logout(&second.access).await.assert_status(204, "logout on B");
    let mut on_b = Feed::open(b, Some(&start)).await;
    let (opening, _) = on_b.start().await;
    let sids: Vec<&str> = opening.iter().map(|e| e.data["value"].as_str().unwrap_or_default()).collect();
    assert!(opening.iter().all(|e| e.event == "revoke"), "a replay, not a reset: {opening:?}");
    assert_eq!(sids, [sid_of(&first.access), sid_of(&second.access)], "{opening:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_stop_while_the_instance_cannot_reach_redis_and_resume_after() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let mut redis = RedisServer::start().await;
    let backend = Backend::standalone(schema.url(), redis.url(), name);
    let deployment =
        Deployment::new(&backend, "hybrid").with("VERIFY__KEYS", VERIFY_KEY).with("REVOCATION__MAX_STALENESS", "1s");
    let a = deployment.start("A").await;
    let mut feed = Feed::open(&a, None).await;
    feed.start().await;
    let beat = feed.next_within(WAIT).await.expect("a heartbeat while Redis is up");
    assert_eq!(beat.event, "heartbeat", "{beat:?}");

    redis.kill();
    // Within max_staleness of the last sync the heartbeats stop; then nothing for a while
    // (three times the staleness a consumer would allow itself by default is plenty).
    let silent = Duration::from_secs(3);
    let mut waited = Duration::ZERO;
    loop {
        let started = std::time::Instant::now();
        match feed.next_within(silent).await {
            None => break,
            Some(e) => {
                assert_eq!(e.event, "heartbeat", "{e:?}");
                waited += started.elapsed();
                assert!(waited < WAIT, "heartbeats went on {waited:?} after Redis went down");
            }
        }
    }

    redis.restart().await;
    let mut feed = Feed::open(&a, None).await;
    feed.start().await;
    let beat = feed.next_within(WAIT).await.expect("heartbeats again once Redis is back");
    assert_eq!(beat.event, "heartbeat", "{beat:?}");
}
