//! `GET /metrics`: who may read it (`metrics.access`), and that each series moves when its
//! event happens. Values are read from the real scrape text.

use time::Duration;

use crate::helpers::{PASSWORD, TestApp, WRONG_PASSWORD, WithCookies, spawn_app_with, spawn_token_app};
use crate::token_helpers::{REUSE_GRACE, assert_refresh_refused, token_toml};

const METRICS_KEY: &str = "metrics-scraper-key-0123456789abcdef";

/// The sum of every sample of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().expect("a number"))
        })
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let reply = app.send(app.get("/metrics")).await;
    reply.assert_status(200);
    assert!(
        reply.header("content-type").is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        reply.header("content-type")
    );
    reply.text
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\n").await;
    app.send(app.get("/metrics")).await.assert_problem(404, "not-found");
}

#[tokio::test]
async fn a_metrics_key_is_demanded_when_configured() {
    let toml = format!("[auth]\nmode = \"session\"\n[metrics]\naccess = \"key\"\nkey = \"{METRICS_KEY}\"\n");
    let app = spawn_app_with(&toml).await;
    app.send(app.get("/metrics")).await.assert_status(401);
    app.send(app.get("/metrics").bearer_auth("wrong-key-0123456789abcdef0123456789")).await.assert_status(401);
    let reply = app.send(app.get("/metrics").bearer_auth(METRICS_KEY)).await;
    reply.assert_status(200);
    assert!(reply.text.contains("tessera_http_requests_total"), "{}", reply.text);
    assert!(!reply.text.contains(METRICS_KEY), "the key is not in the answer");
}

#[tokio::test]
async fn requests_logins_revocations_and_the_store_are_counted() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\n[metrics]\naccess = \"open\"\n").await;
    let before = scrape(&app).await;
    assert_eq!(sample(&before, "tessera_logins_total", &[]), 0.0);
    app.create_user("alice").await;
    let one = app.login_bearer("alice", PASSWORD).await;
    let two = app.login_bearer("alice", PASSWORD).await;
    app.login("alice", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    app.me_bearer(&one.token).await.assert_status(200);
    app.send(app.delete(&format!("/v1/sessions/{}", two.session_id)).bearer(&one.token)).await.assert_status(204);
    app.send(app.post("/v1/logout").bearer(&one.token)).await.assert_status(204);
    app.send(app.get("/v1/nowhere")).await.assert_status(404);
    // Concurrent sign-ups of one name: all pass the cheap "taken?" read while the first is
    // still hashing, so the store's uniqueness rule refuses the later inserts (a conflict).
    let s = || app.signup("carol", PASSWORD);
    let (a, b, c, d, e, f) = tokio::join!(s(), s(), s(), s(), s(), s());
    let statuses: Vec<u16> = [a, b, c, d, e, f].iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");

    let text = scrape(&app).await;
    let me = [("method", "GET"), ("route", "/v1/me"), ("status", "200")];
    assert_eq!(sample(&text, "tessera_http_requests_total", &me), 1.0, "{text}");
    let login = [("route", "/v1/login"), ("status", "200")];
    assert_eq!(sample(&text, "tessera_http_requests_total", &login), 2.0, "{text}");
    let revoke = [("route", "/v1/sessions/{id}"), ("status", "204")];
    assert_eq!(sample(&text, "tessera_http_requests_total", &revoke), 1.0, "the template, not the id: {text}");
    assert!(!text.contains(&two.session_id), "no session id in a label");
    assert!(!text.contains("alice"), "no username in a label");
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(sample(&text, "tessera_http_requests_total", &unmatched), 1.0, "{text}");
    let me_timed = [("method", "GET"), ("route", "/v1/me")];
    assert_eq!(sample(&text, "tessera_http_request_duration_seconds_count", &me_timed), 1.0, "{text}");
    assert_eq!(sample(&text, "tessera_logins_total", &[("outcome", "succeeded")]), 2.0, "{text}");
    assert_eq!(sample(&text, "tessera_logins_total", &[("outcome", "failed")]), 1.0, "{text}");
    assert_eq!(sample(&text, "tessera_revocations_total", &[("event", "session_revoked")]), 1.0, "{text}");
    assert_eq!(sample(&text, "tessera_revocations_total", &[("event", "logout")]), 1.0, "{text}");
    let lookups = [("operation", "account_by_username")];
    assert!(sample(&text, "tessera_store_operation_duration_seconds_count", &lookups) >= 3.0, "{text}");
    assert_eq!(sample(&text, "tessera_password_hash_running", &[]), 0.0, "{text}");
    assert!(sample(&text, "tessera_password_hash_slots", &[]) >= 1.0, "{text}");
    assert!(text.contains("tessera_password_hash_waiting"), "{text}");
    let conflict = [("operation", "insert_account"), ("kind", "conflict")];
    assert!(sample(&text, "tessera_store_errors_total", &conflict) >= 1.0, "a taken username: {text}");
}

#[tokio::test]
async fn throttled_logins_are_counted() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\n[metrics]\naccess = \"open\"\n").await;
    app.create_user("alice").await;
    for _ in 0..6 {
        app.login("alice", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    }
    app.login("alice", PASSWORD, Some("bearer")).await.assert_problem(429, "throttled");
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "tessera_throttled_requests_total", &[("route", "/v1/login")]), 1.0, "{text}");
    assert_eq!(sample(&text, "tessera_logins_total", &[("outcome", "throttled")]), 1.0, "{text}");
    assert_eq!(sample(&text, "tessera_logins_total", &[("outcome", "failed")]), 6.0, "{text}");
}

#[tokio::test]
async fn refresh_rotations_reuse_and_the_denylist_are_counted() {
    let app = spawn_token_app(&token_toml("hybrid", "[metrics]\naccess = \"open\"\n")).await;
    app.create_user("alice").await;
    let login = app.login_tokens("alice", PASSWORD).await;
    let current = app.refresh_ok(login.refresh()).await;
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "tessera_refresh_rotations_total", &[]), 1.0, "{text}");
    assert_eq!(sample(&text, "tessera_refresh_reuse_detected_total", &[]), 0.0, "{text}");
    let entries_before = sample(&text, "tessera_denylist_entries", &[]);
    let age = sample(&text, "tessera_denylist_age_seconds", &[]);
    assert!(age.is_finite() && age >= 0.0, "the copy has been synced: {text}");

    app.advance(REUSE_GRACE + Duration::seconds(1));
    assert_refresh_refused(&app, login.refresh(), "the previous token after the grace").await;
    let _ = current;
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "tessera_refresh_reuse_detected_total", &[]), 1.0, "{text}");
    assert_eq!(sample(&text, "tessera_revocations_total", &[("event", "refresh_reuse_detected")]), 1.0, "{text}");
    assert!(sample(&text, "tessera_denylist_entries", &[]) > entries_before, "the family's sid is denied: {text}");
}
