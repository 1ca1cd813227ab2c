//! Brute-force throttling: per account (5 free failures, then 1 s doubling) and per client IP
//! (20 free), 429 with `Retry-After`, counters keyed the same for unknown usernames, and
//! `X-Forwarded-For` believed only from trusted proxies.

use std::sync::Arc;

use serde_json::json;
use time::Duration;
use tokio::sync::Barrier;

use crate::helpers::{PASSWORD, Reply, TestApp, WRONG_PASSWORD, WithCookies, spawn_app, spawn_app_with};

const TRUSTING_LOCALHOST: &str = "[auth]\nmode = \"session\"\n[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n";

async fn fail_login(app: &TestApp, username: &str, times: usize) {
    for i in 0..times {
        let reply = app.login(username, WRONG_PASSWORD, Some("bearer")).await;
        assert_eq!(reply.status.as_u16(), 401, "failure {} of {username}: {}", i + 1, reply.text);
    }
}

async fn login_from(app: &TestApp, ip: &str, username: &str, password: &str) -> Reply {
    app.send(
        app.post("/v1/login")
            .header("tessera-transport", "bearer")
            .header("x-forwarded-for", ip)
            .json(&json!({"username": username, "password": password})),
    )
    .await
}

fn assert_throttled(reply: &Reply) -> u64 {
    reply.assert_problem(429, "throttled");
    let retry_after = reply.retry_after();
    assert!(retry_after >= 1, "Retry-After ≥ 1: {retry_after}");
    retry_after
}

#[tokio::test]
async fn five_failures_are_free() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    fail_login(&app, "alice", 5).await;
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test]
async fn sixth_wrong_password_locks_account_even_for_correct_password() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    fail_login(&app, "alice", 6).await;
    let reply = app.login("alice", PASSWORD, Some("bearer")).await;
    let retry_after = assert_throttled(&reply);
    assert_eq!(retry_after, 1, "the first delay is 1 s (the clock has not moved)");
    // The lock is on the account, whatever the transport.
    assert_throttled(&app.login("alice", PASSWORD, Some("cookie")).await);
}

#[tokio::test]
async fn throttled_account_logs_in_after_retry_after_and_counter_resets() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    fail_login(&app, "alice", 6).await;
    let retry_after = assert_throttled(&app.login("alice", PASSWORD, Some("bearer")).await);
    app.advance(Duration::seconds(retry_after as i64));
    app.login_bearer("alice", PASSWORD).await;
    // The success cleared the account counter: five more failures are free again.
    fail_login(&app, "alice", 5).await;
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test]
async fn throttle_delay_doubles_with_each_further_failure() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    fail_login(&app, "alice", 6).await;
    let mut expected = 1;
    for _ in 0..4 {
        let retry_after = assert_throttled(&app.login("alice", WRONG_PASSWORD, Some("bearer")).await);
        assert_eq!(retry_after, expected);
        app.advance(Duration::seconds(retry_after as i64));
        fail_login(&app, "alice", 1).await;
        expected *= 2;
    }
    assert_eq!(assert_throttled(&app.login("alice", PASSWORD, Some("bearer")).await), 16);
}

#[tokio::test]
async fn throttled_attempt_does_not_extend_the_lock() {
    // A 429 is not a failure: hammering a locked account does not push the end further away.
    let app = spawn_app().await;
    app.create_user("alice").await;
    fail_login(&app, "alice", 6).await;
    for _ in 0..5 {
        assert_eq!(assert_throttled(&app.login("alice", WRONG_PASSWORD, Some("bearer")).await), 1);
    }
    app.advance(Duration::seconds(1));
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test]
async fn throttle_delay_is_capped_at_15_minutes() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    fail_login(&app, "alice", 6).await;
    // Failures 7..=16: each after waiting out the previous delay (1, 2, 4, … 512 s).
    for _ in 0..10 {
        let retry_after = assert_throttled(&app.login("alice", WRONG_PASSWORD, Some("bearer")).await);
        app.advance(Duration::seconds(retry_after as i64));
        fail_login(&app, "alice", 1).await;
    }
    assert_eq!(assert_throttled(&app.login("alice", PASSWORD, Some("bearer")).await), 900);
}

#[tokio::test]
async fn unknown_usernames_throttle_like_real_ones() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    fail_login(&app, "alice", 6).await;
    fail_login(&app, "nobody", 6).await;
    let real = app.login("alice", WRONG_PASSWORD, Some("bearer")).await;
    let unknown = app.login("nobody", WRONG_PASSWORD, Some("bearer")).await;
    assert_eq!(assert_throttled(&real), assert_throttled(&unknown));
    assert_eq!(real.json(), unknown.json(), "no enumeration through the throttle's answer");
}

#[tokio::test]
async fn account_throttle_is_per_account() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    fail_login(&app, "alice", 6).await;
    assert_throttled(&app.login("alice", PASSWORD, Some("bearer")).await);
    app.login_bearer("bob", PASSWORD).await;
}

#[tokio::test]
async fn account_throttle_applies_to_every_spelling_of_the_username() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    fail_login(&app, "ALICE", 3).await;
    fail_login(&app, "Alice", 3).await;
    assert_throttled(&app.login("ａｌｉｃｅ", PASSWORD, Some("bearer")).await);
}

#[tokio::test]
async fn failure_counters_are_forgotten_after_an_hour_without_failures() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    fail_login(&app, "alice", 5).await;
    app.advance(Duration::hours(1) + Duration::seconds(1));
    // Had the first five been kept, the tenth failure would lock the account for 16 s.
    fail_login(&app, "alice", 5).await;
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test]
async fn failure_counter_within_the_hour_keeps_counting() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    fail_login(&app, "alice", 5).await;
    app.advance(Duration::minutes(59));
    fail_login(&app, "alice", 1).await;
    assert_throttled(&app.login("alice", PASSWORD, Some("bearer")).await);
}

#[tokio::test]
async fn per_ip_limit_throttles_many_usernames_from_one_address() {
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    app.create_user("alice").await;
    // 21 failures from one client address, each against a different username, so no account
    // counter gets anywhere near its limit.
    for i in 0..21 {
        let reply = login_from(&app, "203.0.113.7", &format!("victim{i}"), WRONG_PASSWORD).await;
        reply.assert_401("invalid-credentials");
    }
    assert_throttled(&login_from(&app, "203.0.113.7", "alice", PASSWORD).await);
    // Another client is not affected.
    login_from(&app, "203.0.113.8", "alice", PASSWORD).await.assert_status(200);
}

#[tokio::test]
async fn twenty_failures_from_one_address_are_free() {
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    app.create_user("alice").await;
    for i in 0..20 {
        login_from(&app, "203.0.113.7", &format!("victim{i}"), WRONG_PASSWORD).await.assert_401("invalid-credentials");
    }
    login_from(&app, "203.0.113.7", "alice", PASSWORD).await.assert_status(200);
}

#[tokio::test]
async fn trusted_proxy_forwarded_address_is_the_recorded_client_ip() {
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    app.create_user("alice").await;
    // The rightmost address not in the trusted list is the client; 127.0.0.1 is trusted.
    let reply = login_from(&app, "198.51.100.1, 203.0.113.9, 127.0.0.1", "alice", PASSWORD).await;
    reply.assert_status(200);
    let token = reply.json()["session_token"].as_str().expect("token").to_owned();
    let sessions = app.sessions_bearer(&token).await;
    assert_eq!(sessions[0]["ip"], "203.0.113.9");
}

#[tokio::test]
async fn leftmost_forwarded_address_cannot_dodge_the_ip_limit_behind_a_trusted_proxy() {
    // A client may prepend anything to X-Forwarded-For; only the entry our proxy appended
    // (the rightmost untrusted one) counts.
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    app.create_user("alice").await;
    for i in 0..21 {
        let xff = format!("10.9.{i}.1, 203.0.113.7");
        let reply = login_from(&app, &xff, &format!("victim{i}"), WRONG_PASSWORD).await;
        reply.assert_401("invalid-credentials");
    }
    assert_throttled(&login_from(&app, "10.200.0.1, 203.0.113.7", "alice", PASSWORD).await);
}

#[tokio::test]
async fn spoofed_x_forwarded_for_cannot_dodge_the_ip_limit_without_trusted_proxies() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    for i in 0..21 {
        let reply = login_from(&app, &format!("198.51.100.{i}"), &format!("victim{i}"), WRONG_PASSWORD).await;
        reply.assert_401("invalid-credentials");
    }
    assert_throttled(&login_from(&app, "198.51.100.250", "alice", PASSWORD).await);
}

#[tokio::test]
async fn spoofed_x_forwarded_for_is_not_recorded_without_trusted_proxies() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let reply = login_from(&app, "198.51.100.77", "alice", PASSWORD).await;
    reply.assert_status(200);
    let token = reply.json()["session_token"].as_str().expect("token").to_owned();
    assert_eq!(app.sessions_bearer(&token).await[0]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn successful_login_does_not_reset_the_ip_counter() {
    // Otherwise one valid account would let an attacker reset their IP allowance between
    // guesses at other accounts.
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    app.create_user("mallory").await;
    for i in 0..21 {
        if i == 10 {
            login_from(&app, "203.0.113.7", "mallory", PASSWORD).await.assert_status(200);
        }
        login_from(&app, "203.0.113.7", &format!("victim{i}"), WRONG_PASSWORD).await.assert_401("invalid-credentials");
    }
    assert_throttled(&login_from(&app, "203.0.113.7", "mallory", PASSWORD).await);
}

#[tokio::test]
async fn wrong_current_password_at_password_change_counts_toward_the_account_throttle() {
    // A stolen session must not become an unthrottled password-guessing oracle.
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    for _ in 0..6 {
        let reply = app
            .send(
                app.post("/v1/password")
                    .bearer(&login.token)
                    .json(&json!({"current_password": WRONG_PASSWORD, "new_password": "another long password"})),
            )
            .await;
        reply.assert_401("invalid-credentials");
    }
    let reply = app
        .send(
            app.post("/v1/password")
                .bearer(&login.token)
                .json(&json!({"current_password": PASSWORD, "new_password": "another long password"})),
        )
        .await;
    assert_throttled(&reply);
}

#[tokio::test]
async fn ipv6_clients_share_the_per_ip_limit_per_64_prefix() {
    // One host usually owns a whole /64; counting single addresses would give it 2^64
    // fresh allowances.
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    app.create_user("alice").await;
    for i in 0..21 {
        let ip = format!("2001:db8:1:2::{:x}", i + 1);
        login_from(&app, &ip, &format!("victim{i}"), WRONG_PASSWORD).await.assert_401("invalid-credentials");
    }
    assert_throttled(&login_from(&app, "2001:db8:1:2:ffff::1", "alice", PASSWORD).await);
    login_from(&app, "2001:db8:1:3::1", "alice", PASSWORD).await.assert_status(200);
}

#[tokio::test]
async fn forwarded_header_is_ignored_without_trusted_proxies() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let reply = app
        .send(
            app.post("/v1/login")
                .header("tessera-transport", "bearer")
                .header("forwarded", "for=198.51.100.77")
                .json(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    reply.assert_status(200);
    let token = reply.json()["session_token"].as_str().expect("token").to_owned();
    assert_eq!(app.sessions_bearer(&token).await[0]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn malformed_x_forwarded_for_from_a_trusted_proxy_is_not_a_5xx() {
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    app.create_user("alice").await;
    for xff in ["not-an-ip", "", ",,,", "999.1.1.1", "1.2.3.4:80, [::1]"] {
        let reply = login_from(&app, xff, "alice", PASSWORD).await;
        assert!(matches!(reply.status.as_u16(), 200 | 400), "X-Forwarded-For {xff:?}: {} {}", reply.status, reply.text);
    }
}

#[tokio::test]
async fn client_supplied_forwarded_header_cannot_dodge_the_ip_limit_behind_an_xff_proxy() {
    // The trusted proxy (127.0.0.1) appends the address it saw to X-Forwarded-For and passes
    // every other header through untouched, as nginx does by default. The client adds its own
    // `Forwarded: for=…`, different on every attempt; the per-IP limit must still count the
    // address the proxy vouched for.
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    app.create_user("alice").await;
    let attempt = |i: usize, username: String, password: &'static str| {
        app.post("/v1/login")
            .header("tessera-transport", "bearer")
            .header("x-forwarded-for", "203.0.113.7")
            .header("forwarded", format!("for=10.66.{i}.1"))
            .json(&json!({"username": username, "password": password}))
    };
    for i in 0..21 {
        app.send(attempt(i, format!("victim{i}"), WRONG_PASSWORD)).await.assert_401("invalid-credentials");
    }
    assert_throttled(&app.send(attempt(99, "alice".to_owned(), PASSWORD)).await);
}

/// One login attempt for [`login_all_at_once`]: where to send it, from which forwarded
/// address (if any), as whom.
struct Attempt {
    url: String,
    xff: Option<String>,
    username: String,
    password: &'static str,
}

/// Sends every attempt at the same moment (one task each, released together) and returns the
/// answers in order.
async fn login_all_at_once(app: &TestApp, attempts: Vec<Attempt>) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(attempts.len()));
    let mut tasks = Vec::new();
    for a in attempts {
        let (client, barrier) = (app.client.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut rb = client
                .post(a.url)
                .header("tessera-transport", "bearer")
                .json(&json!({"username": a.username, "password": a.password}));
            if let Some(xff) = a.xff {
                rb = rb.header("x-forwarded-for", xff);
            }
            barrier.wait().await;
            Reply::from(rb.send().await.expect("an answer")).await
        }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("task"));
    }
    replies
}

/// (answers 401, answers 429); anything else fails the test.
fn tally(replies: &[Reply]) -> (usize, usize) {
    let (mut evaluated, mut throttled) = (0, 0);
    for r in replies {
        match r.status.as_u16() {
            401 => {
                r.assert_401("invalid-credentials");
                evaluated += 1;
            }
            429 => {
                assert_throttled(r);
                throttled += 1;
            }
            other => panic!("a guess answers 401 or 429, not {other}: {}", r.text),
        }
    }
    (evaluated, throttled)
}

/// How many of `n` sequential wrong passwords for `username` are evaluated (401) before the
/// throttle answers 429, with the clock standing still.
async fn evaluated_in_sequence(app: &TestApp, username: &str, n: usize) -> usize {
    let mut evaluated = 0;
    for _ in 0..n {
        let reply = app.login(username, WRONG_PASSWORD, Some("bearer")).await;
        if reply.status.as_u16() == 401 {
            evaluated += 1;
        } else {
            assert_throttled(&reply);
        }
    }
    evaluated
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_for_one_account_cost_what_sequential_ones_do() {
    // Found by attack: 60 parallel guesses were all evaluated, the counter being read before
    // the hash and written after it.
    const N: usize = 60;
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let attempts = (0..N)
        .map(|_| Attempt { url: app.url("/v1/login"), xff: None, username: "alice".into(), password: WRONG_PASSWORD })
        .collect();
    let (evaluated, throttled) = tally(&login_all_at_once(&app, attempts).await);
    // The five free failures, and the sixth, which starts the first delay.
    assert_eq!((evaluated, throttled), (6, N - 6));
    assert_eq!(evaluated, evaluated_in_sequence(&app, "bob", N).await, "parallel guesses cost what sequential ones do");
    assert_throttled(&app.login("alice", PASSWORD, Some("bearer")).await);
    app.advance(Duration::seconds(1));
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_from_one_address_cost_what_sequential_ones_do() {
    const N: usize = 60;
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    app.create_user("alice").await;
    let attempts = (0..N)
        .map(|i| Attempt {
            url: app.url("/v1/login"),
            xff: Some("203.0.113.7".into()),
            username: format!("victim{i}"),
            password: WRONG_PASSWORD,
        })
        .collect();
    let (evaluated, throttled) = tally(&login_all_at_once(&app, attempts).await);
    // Twenty free failures and the one that starts the delay, as in sequence.
    assert_eq!((evaluated, throttled), (21, N - 21));
    assert_throttled(&login_from(&app, "203.0.113.7", "alice", PASSWORD).await);
    login_from(&app, "203.0.113.8", "alice", PASSWORD).await.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_across_two_instances_share_one_allowance() {
    // Two servers on one store (one SQLite file; or PostgreSQL + Redis): the reservation is
    // atomic in the store, not in either process.
    const N: usize = 60;
    let app = spawn_app().await;
    let sibling = app.sibling().await;
    app.create_user("alice").await;
    let attempts = (0..N)
        .map(|i| Attempt {
            url: if i % 2 == 0 { app.url("/v1/login") } else { sibling.url("/v1/login") },
            xff: None,
            username: "alice".into(),
            password: WRONG_PASSWORD,
        })
        .collect();
    let (evaluated, throttled) = tally(&login_all_at_once(&app, attempts).await);
    assert_eq!((evaluated, throttled), (6, N - 6));
    sibling.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn correct_passwords_among_parallel_guesses_give_their_reservation_back() {
    // Every attempt is counted against the address before its hash; a success gives that
    // back. 15 wrong guesses and 5 real logins at once leave 15 failures on the address, so six
    // more guesses are evaluated (as after 15 sequential failures) before the delay starts.
    let app = spawn_app_with(TRUSTING_LOCALHOST).await;
    app.create_user("alice").await;
    let attempt = |username: String, password| Attempt {
        url: app.url("/v1/login"),
        xff: Some("203.0.113.7".into()),
        username,
        password,
    };
    let mut attempts: Vec<Attempt> = (0..15).map(|i| attempt(format!("victim{i}"), WRONG_PASSWORD)).collect();
    attempts.extend((0..5).map(|_| attempt("alice".into(), PASSWORD)));
    let replies = login_all_at_once(&app, attempts).await;
    for r in &replies[15..] {
        r.assert_status(200);
    }
    assert_eq!(tally(&replies[..15]), (15, 0));
    for i in 15..21 {
        login_from(&app, "203.0.113.7", &format!("victim{i}"), WRONG_PASSWORD).await.assert_401("invalid-credentials");
    }
    assert_throttled(&login_from(&app, "203.0.113.7", "alice", PASSWORD).await);
}
