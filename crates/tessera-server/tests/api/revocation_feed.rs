//! `GET /v1/revocations`, the revocation feed (README, "Revocation feed"): server-sent events
//! read as a consumer reads them, through a real streaming HTTP connection, on both backends.

use std::time::Duration as StdDuration;

use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, WithCookies, spawn_token_app};
use crate::token_helpers::{TokenLogin, token_toml};

pub const VERIFY_KEY: &str = "feed-suite-verify-key-0123456789abcdef";
/// How long a test waits for an event before it fails (never a measure of speed: a bound so a
/// broken feed fails the test instead of hanging it).
const WAIT: StdDuration = StdDuration::from_secs(10);

pub fn feed_toml() -> String {
    token_toml("hybrid", &format!("[verify]\nkeys = [\"{VERIFY_KEY}\"]\n"))
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Event {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// A consumer's connection: reads the body as it arrives and splits it into events.
pub struct Feed {
    response: reqwest::Response,
    buffer: String,
}

impl Feed {
    /// Connects with the given key and `Last-Event-ID`; the answer must be a 200 stream.
    pub async fn open(app: &TestApp, resume: Option<&str>) -> Feed {
        let mut rb =
            app.client.get(app.url("/v1/revocations")).bearer_auth(VERIFY_KEY).timeout(StdDuration::from_secs(3600));
        if let Some(id) = resume {
            rb = rb.header("last-event-id", id);
        }
        let response = rb.send().await.expect("the feed answers");
        assert_eq!(response.status(), 200, "GET /v1/revocations");
        let h = response.headers();
        assert_eq!(h.get("content-type").map(|v| v.to_str().unwrap()), Some("text/event-stream"));
        assert_eq!(h.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"));
        assert_eq!(h.get("x-accel-buffering").map(|v| v.to_str().unwrap()), Some("no"));
        Feed { response, buffer: String::new() }
    }

    /// The next event, or `None` when the server ended the stream. Fails after [`WAIT`].
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {WAIT:?}; buffered: {:?}", self.buffer))
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                None => return None,
            }
        }
    }

    /// The next event that is not a heartbeat.
    pub async fn next_news(&mut self) -> Event {
        loop {
            let e = self.next().await.expect("the stream goes on");
            if e.event != "heartbeat" {
                return e;
            }
        }
    }

    /// Reads the opening events up to `ready`: the reset's entries (or the replayed revokes),
    /// and the last id seen.
    pub async fn start(&mut self) -> (Vec<Event>, String) {
        let mut opening = Vec::new();
        let mut last = None;
        loop {
            let e = self.next_news().await;
            if let Some(id) = &e.id {
                last = Some(id.clone());
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
        let (field, value) = line.split_once(": ").unwrap_or_else(|| panic!("malformed line {line:?} in {block:?}"));
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "data" => {
                assert!(data.is_none(), "one data line per event: {block:?}");
                data =
                    Some(serde_json::from_str(value).unwrap_or_else(|e| panic!("data is not JSON ({e}): {block:?}")));
            }
            other => panic!("unexpected field {other:?} in {block:?}"),
        }
    }
    Event { event: event.expect("every event is named"), id, data: data.expect("every event has data") }
}

fn is_sid(entry: &Value, sid: &str) -> bool {
    entry["kind"] == "sid" && entry["value"] == sid
}

async fn logged_in(app: &TestApp, user: &str) -> TokenLogin {
    app.login_tokens(user, PASSWORD).await
}

async fn logout(app: &TestApp, login: &TokenLogin) {
    app.send(app.post("/v1/logout").bearer(&login.access)).await.assert_status(204);
}

#[tokio::test]
async fn without_keys_the_feed_does_not_exist() {
    let app = spawn_token_app(&token_toml("hybrid", "")).await;
    let reply = app.send(app.get("/v1/revocations").bearer(VERIFY_KEY)).await;
    let body = reply.assert_problem(404, "not-found");
    assert!(body["detail"].as_str().unwrap().contains("verify.keys"), "{body}");
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_refused_and_learns_nothing() {
    let app = spawn_token_app(&feed_toml()).await;
    app.create_user("alice").await;
    let login = logged_in(&app, "alice").await;
    logout(&app, &login).await;
    for key in [None, Some("feed-suite-verify-key-0123456789abcdeX"), Some(""), Some(&login.access[..])] {
        let mut rb = app.get("/v1/revocations");
        if let Some(k) = key {
            rb = rb.header("authorization", format!("Bearer {k}"));
        }
        let reply = app.send(rb).await;
        reply.assert_401("unauthenticated");
        assert!(!reply.text.contains(login.sid()), "a refused consumer sees no entry: {}", reply.text);
    }
    let twice = app.get("/v1/revocations").bearer(VERIFY_KEY).header("authorization", format!("Bearer {VERIFY_KEY}"));
    app.send(twice).await.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn a_new_consumer_gets_the_live_denylist_then_ready() {
    let app = spawn_token_app(&feed_toml()).await;
    let user = app.create_user("alice").await;
    let (gone, kept) = (logged_in(&app, "alice").await, logged_in(&app, "alice").await);
    logout(&app, &gone).await;
    let mut feed = Feed::open(&app, None).await;
    let reset = feed.next_news().await;
    assert_eq!(reset.event, "reset", "{reset:?}");
    assert!(reset.id.is_some(), "a reset carries the cursor: {reset:?}");
    let entries = reset.data["revocations"].as_array().expect("revocations is a list").clone();
    let entry = entries.iter().find(|e| is_sid(e, gone.sid())).unwrap_or_else(|| panic!("{entries:?}"));
    assert!(entries.iter().all(|e| !is_sid(e, kept.sid())), "only what was revoked: {entries:?}");
    // `until`: as long as any token of the session could live (its exp, plus the leeway).
    let until = entry["until"].as_i64().expect("until is unix seconds");
    assert!(until >= gone.exp(), "{entry} outlives the token's exp {}", gone.exp());
    assert_eq!(entry.as_object().unwrap().len(), 3, "kind, value, until: {entry}");
    let ready = feed.next_news().await;
    assert_eq!((ready.event.as_str(), &ready.data), ("ready", &serde_json::json!({})));
    assert_eq!(user["id"].as_str(), Some(gone.user_id.as_str()));
}

#[tokio::test]
async fn a_logout_reaches_a_connected_consumer_as_a_revoke() {
    let app = spawn_token_app(&feed_toml()).await;
    app.create_user("alice").await;
    let login = logged_in(&app, "alice").await;
    let mut feed = Feed::open(&app, None).await;
    let (_, start) = feed.start().await;
    logout(&app, &login).await;
    let revoke = feed.next_news().await;
    assert_eq!(revoke.event, "revoke", "{revoke:?}");
    assert!(is_sid(&revoke.data, login.sid()), "{revoke:?}");
    let id = revoke.id.expect("a revoke carries its cursor");
    assert_ne!(id, start, "the cursor moved");
}

#[tokio::test]
async fn a_password_change_revokes_by_issue_time_in_jwt_mode() {
    let toml = token_toml(
        "jwt",
        &format!(
            "[refresh]\nenabled = false\n[revocation]\ncheck = \"denylist\"\n[verify]\nkeys = [\"{VERIFY_KEY}\"]\n"
        ),
    );
    let app = spawn_token_app(&toml).await;
    app.create_user("alice").await;
    let login = logged_in(&app, "alice").await;
    let mut feed = Feed::open(&app, None).await;
    feed.start().await;
    // The cut-off is a second before the change (what the change itself issues is spared).
    app.advance(time::Duration::seconds(2));
    let change = app
        .post("/v1/password")
        .bearer(&login.access)
        .json(&serde_json::json!({"current_password": PASSWORD, "new_password": "another long passphrase 42"}));
    app.send(change).await.assert_status(200);
    let revoke = feed.next_news().await;
    assert_eq!(revoke.event, "revoke");
    assert_eq!(revoke.data["kind"], "sub", "{revoke:?}");
    assert_eq!(revoke.data["value"].as_str(), Some(login.user_id.as_str()));
    let iat = login.claims()["iat"].as_i64().unwrap();
    assert!(revoke.data["iat_before"].as_i64().unwrap() > iat, "the old token is covered: {revoke:?}");
}

#[tokio::test]
async fn a_consumer_resuming_from_its_last_id_gets_only_what_it_missed() {
    let app = spawn_token_app(&feed_toml()).await;
    app.create_user("alice").await;
    let (before, a, b) =
        (logged_in(&app, "alice").await, logged_in(&app, "alice").await, logged_in(&app, "alice").await);
    logout(&app, &before).await;
    let mut feed = Feed::open(&app, None).await;
    let (_, last) = feed.start().await;
    drop(feed);
    logout(&app, &a).await;
    logout(&app, &b).await;
    let mut resumed = Feed::open(&app, Some(&last)).await;
    let (opening, _) = resumed.start().await;
    let kinds: Vec<&str> = opening.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["revoke", "revoke"], "no reset, only the two missed: {opening:?}");
    assert!(is_sid(&opening[0].data, a.sid()) && is_sid(&opening[1].data, b.sid()), "{opening:?}");
    // A cursor the server cannot resume from (garbage, or one from another store) resets.
    for id in ["not-a-cursor", "18446744073709551615"] {
        let mut other = Feed::open(&app, Some(id)).await;
        let first = other.next_news().await;
        assert_eq!(first.event, "reset", "{id}: {first:?}");
        let all = first.data["revocations"].as_array().unwrap();
        assert!([&before, &a, &b].iter().all(|l| all.iter().any(|e| is_sid(e, l.sid()))), "{all:?}");
    }
}

#[tokio::test]
async fn heartbeats_follow_ready_while_the_copy_is_fresh() {
    let app = spawn_token_app(&feed_toml()).await;
    let mut feed = Feed::open(&app, None).await;
    feed.start().await;
    for _ in 0..2 {
        let beat = feed.next().await.expect("the stream goes on");
        assert_eq!(beat.event, "heartbeat", "{beat:?}");
        assert_eq!(beat.data["at"].as_i64(), Some(app.now().unix_timestamp()), "{beat:?}");
        assert_eq!(beat.id, None);
    }
}

/// The header timeout closes connections idle between requests; a feed is one request whose
/// answer streams for as long as the consumer stays, and must outlive it.
#[tokio::test]
async fn a_feed_outlives_the_header_timeout() {
    let toml =
        token_toml("hybrid", &format!("[verify]\nkeys = [\"{VERIFY_KEY}\"]\n[server]\nheader_timeout = \"1s\"\n"));
    let app = spawn_token_app(&toml).await;
    let mut feed = Feed::open(&app, None).await;
    feed.start().await;
    let until = std::time::Instant::now() + StdDuration::from_secs(4);
    while std::time::Instant::now() < until {
        let beat = feed.next().await.expect("the stream goes on past the header timeout");
        assert_eq!(beat.event, "heartbeat", "{beat:?}");
    }
}

#[tokio::test]
async fn stopping_the_server_ends_feed_connections() {
    let mut app = spawn_token_app(&feed_toml()).await;
    let mut feed = Feed::open(&app, None).await;
    feed.start().await;
    // `stop` fails unless the server is down within 10 s, which an open stream would prevent.
    app.stop().await;
    while let Some(e) = feed.next().await {
        assert_eq!(e.event, "heartbeat", "{e:?}");
    }
}

#[test]
fn verify_keys_need_the_denylist() {
    let toml = token_toml("jwt", &format!("[verify]\nkeys = [\"{VERIFY_KEY}\"]\n"));
    let err = tessera_server::config::Config::from_toml(&toml).expect_err("jwt mode defaults to no revocation check");
    assert!(format!("{err}").contains("verify.keys"), "{err}");
    assert!(!format!("{err:?}").contains(VERIFY_KEY), "no error quotes a key: {err:?}");
}

/// #13: `POST /v1/revoke` of the same token, again and again, added a denylist entry and an
/// audit row every time. Now the first revocation is the only one: the feed carries one
/// `jti` entry, and one `token_revoked` is audited.
#[tokio::test]
async fn revoking_the_same_token_again_adds_nothing_to_the_denylist_or_the_audit() {
    let app = spawn_token_app(&feed_toml()).await;
    app.create_user("alice").await;
    let (login, marker) = (logged_in(&app, "alice").await, logged_in(&app, "alice").await);
    let mut feed = Feed::open(&app, None).await;
    feed.start().await;
    for _ in 0..20 {
        app.revoke(&login.access, None).await.assert_status(200);
    }
    // A different revocation after them: whatever the repeats added would come before it.
    logout(&app, &marker).await;
    let first = feed.next_news().await;
    assert_eq!((first.data["kind"].as_str(), &first.data["value"]), (Some("jti"), &login.claims()["jti"]), "{first:?}");
    let second = feed.next_news().await;
    assert!(is_sid(&second.data, marker.sid()), "the repeats added nothing: {second:?}");
    let audited = app.audit_kinds().await.into_iter().filter(|k| k == "token_revoked").count();
    assert_eq!(audited, 1, "one audit row for one revocation");
    // A new consumer's reset lists the token once.
    let mut fresh = Feed::open(&app, None).await;
    let reset = fresh.next_news().await;
    let jtis = reset.data["revocations"].as_array().unwrap().iter().filter(|e| e["kind"] == "jti").count();
    assert_eq!(jtis, 1, "{reset:?}");
}

/// #13: each new revocation through `/v1/revoke` counts against its owner's allowance (100),
/// so one account cannot grow the denylist every instance holds without bound.
#[tokio::test]
async fn one_account_cannot_revoke_without_bound() {
    let app = spawn_token_app(&feed_toml()).await;
    app.create_user("alice").await;
    let mut login = logged_in(&app, "alice").await;
    for _ in 0..100 {
        app.revoke(&login.access, None).await.assert_status(200);
        login = app.refresh_ok(login.refresh()).await;
    }
    let refused = app.revoke(&login.access, None).await;
    refused.assert_problem(429, "throttled");
    assert!(refused.retry_after() >= 1);
    // The token is not revoked: the refusal changed nothing.
    app.me_bearer(&login.access).await.assert_status(200);
    // An hour without revocations, and the allowance is back.
    app.advance(time::Duration::hours(2));
    let later = app.refresh_ok(login.refresh()).await;
    app.revoke(&later.access, None).await.assert_status(200);
    app.me_bearer(&later.access).await.assert_invalid_token();
}
