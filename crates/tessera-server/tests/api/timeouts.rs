//! Idle and absolute timeouts, enforced by the server against its clock (never by sleeping:
//! the tests move the clock), and the bounded write rate of `last_seen_at`.

use time::Duration;

use crate::helpers::{PASSWORD, TestApp, parse_ts, spawn_app_with};

/// idle 10 min, absolute 1 h: `last_seen_at` is written at most every 30 s (idle / 20).
const TIMEOUTS: &str = "[auth]\nmode = \"session\"\n[session]\nidle_timeout = \"10m\"\nabsolute_timeout = \"1h\"\n";
const IDLE: Duration = Duration::minutes(10);
const ABSOLUTE: Duration = Duration::hours(1);

async fn app_with_alice() -> TestApp {
    let app = spawn_app_with(TIMEOUTS).await;
    app.create_user("alice").await;
    app
}

#[tokio::test]
async fn idle_session_expires_when_clock_passes_idle_timeout() {
    let app = app_with_alice().await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.advance(IDLE + Duration::seconds(1));
    app.me_bearer(&login.token).await.assert_invalid_token();
}

#[tokio::test]
async fn idle_cookie_session_expires_on_the_server_not_only_in_the_browser() {
    let app = app_with_alice().await;
    let login = app.login_cookie("alice", PASSWORD).await;
    app.advance(IDLE + Duration::seconds(1));
    app.me_cookie(&login.cookies).await.assert_invalid_token();
}

#[tokio::test]
async fn session_unused_for_just_under_idle_timeout_still_works() {
    let app = app_with_alice().await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.advance(IDLE - Duration::seconds(1));
    app.me_bearer(&login.token).await.assert_status(200);
}

#[tokio::test]
async fn using_a_session_slides_its_idle_expiry() {
    let app = app_with_alice().await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.advance(Duration::minutes(9));
    let used_at = app.now();
    let me = app.me_bearer(&login.token).await;
    me.assert_status(200);
    assert_eq!(parse_ts(&me.json()["session"]["idle_expires_at"]), used_at + IDLE);
    // 18 minutes after login, but only 9 after the last use.
    app.advance(Duration::minutes(9));
    app.me_bearer(&login.token).await.assert_status(200);
    app.advance(IDLE + Duration::seconds(1));
    app.me_bearer(&login.token).await.assert_invalid_token();
}

#[tokio::test]
async fn busy_session_ends_at_absolute_timeout() {
    let app = app_with_alice().await;
    let login_at = app.now();
    let login = app.login_bearer("alice", PASSWORD).await;
    // Used every 5 minutes: never idle, yet it cannot outlive the absolute timeout.
    for _ in 0..11 {
        app.advance(Duration::minutes(5));
        app.me_bearer(&login.token).await.assert_status(200);
    }
    app.advance(Duration::minutes(4));
    assert_eq!(app.now(), login_at + Duration::minutes(59));
    let me = app.me_bearer(&login.token).await;
    me.assert_status(200);
    // Near the end, the idle expiry is capped by the absolute one.
    let me = me.json();
    assert_eq!(parse_ts(&me["session"]["expires_at"]), login_at + ABSOLUTE);
    assert_eq!(parse_ts(&me["session"]["idle_expires_at"]), login_at + ABSOLUTE);
    assert_eq!(parse_ts(&me["auth"]["expires_at"]), login_at + ABSOLUTE);
    app.advance(Duration::minutes(2));
    app.me_bearer(&login.token).await.assert_invalid_token();
}

#[tokio::test]
async fn busy_cookie_session_ends_at_absolute_timeout() {
    let app = app_with_alice().await;
    let login = app.login_cookie("alice", PASSWORD).await;
    for _ in 0..12 {
        app.advance(Duration::minutes(5) - Duration::seconds(1));
        app.me_cookie(&login.cookies).await.assert_status(200);
    }
    app.advance(Duration::minutes(1) + Duration::seconds(13));
    app.me_cookie(&login.cookies).await.assert_invalid_token();
}

#[tokio::test]
async fn last_seen_at_is_written_at_most_once_per_touch_interval() {
    let app = app_with_alice().await;
    let login_at = app.now();
    let login = app.login_bearer("alice", PASSWORD).await;
    let last_seen = |reply: &crate::helpers::Reply| parse_ts(&reply.json()["session"]["last_seen_at"]);

    app.advance(Duration::seconds(10));
    let me = app.me_bearer(&login.token).await;
    me.assert_status(200);
    assert_eq!(last_seen(&me), login_at, "10 s < 30 s touch interval: not written");

    app.advance(Duration::seconds(25));
    let me = app.me_bearer(&login.token).await;
    assert_eq!(last_seen(&me), login_at + Duration::seconds(35), "35 s ≥ 30 s: written");

    app.advance(Duration::seconds(29));
    let me = app.me_bearer(&login.token).await;
    assert_eq!(last_seen(&me), login_at + Duration::seconds(35), "29 s since the last write");

    let sessions = app.sessions_bearer(&login.token).await;
    assert_eq!(parse_ts(&sessions[0]["last_seen_at"]), login_at + Duration::seconds(35));
}

#[tokio::test]
async fn expired_sessions_are_left_out_of_the_session_list() {
    let app = app_with_alice().await;
    let stale = app.login_bearer("alice", PASSWORD).await;
    let busy = app.login_bearer("alice", PASSWORD).await;
    for _ in 0..3 {
        app.advance(Duration::minutes(4));
        app.me_bearer(&busy.token).await.assert_status(200);
    }
    let sessions = app.sessions_bearer(&busy.token).await;
    let ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().expect("id")).collect();
    assert_eq!(ids, [busy.session_id.as_str()]);
    app.me_bearer(&stale.token).await.assert_invalid_token();
}

#[tokio::test]
async fn expired_session_stays_expired_when_the_clock_is_not_moved_back() {
    // Once seen expired the session is gone, not merely refused: a later request at the same
    // time is refused too, and a new login is a new session.
    let app = app_with_alice().await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.advance(IDLE + Duration::seconds(1));
    app.me_bearer(&login.token).await.assert_invalid_token();
    app.me_bearer(&login.token).await.assert_invalid_token();
    let again = app.login_bearer("alice", PASSWORD).await;
    assert_ne!(again.session_id, login.session_id);
    app.me_bearer(&again.token).await.assert_status(200);
}
