//! Session keys in Redis follow the idle timeout: an abandoned session leaves Redis when it
//! can no longer be used, not at its absolute end weeks later, and using it moves the expiry
//! forward without a request of its own (the touch carries it).

use time::Duration;

use crate::helpers::{PASSWORD, TestApp, spawn_app_with, spawn_token_app};

const IDLE: Duration = Duration::hours(1);

/// `(key, PEXPIRETIME in unix ms)` of every session key under the test's prefix (not the index,
/// nor a throttle counter such as `t:s:<ip>`: session keys carry the user's hash tag).
async fn session_key_expiries(app: &TestApp) -> Vec<(String, i64)> {
    let (url, prefix) = app.store.redis().expect("the distributed suite has a Redis prefix");
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:{{u:*}}:s:*")).query_async(&mut conn).await.unwrap();
    let mut out = Vec::new();
    for key in keys {
        let at: i64 = redis::cmd("PEXPIRETIME").arg(&key).query_async(&mut conn).await.unwrap();
        out.push((key, at));
    }
    out
}

fn ms(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp() * 1000
}

#[tokio::test]
async fn a_session_key_expires_at_the_idle_end_and_each_touch_moves_it() {
    let app =
        spawn_app_with("[auth]\nmode = \"session\"\n[session]\nidle_timeout = \"1h\"\nabsolute_timeout = \"1d\"\n")
            .await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let keys = session_key_expiries(&app).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].1, ms(app.now() + IDLE), "not the absolute end, a day away");

    // Past the touch interval (idle / 20, at most a minute): the request's touch moves the expiry.
    app.advance(Duration::minutes(2));
    app.me_bearer(&login.token).await.assert_status(200);
    assert_eq!(session_key_expiries(&app).await[0].1, ms(app.now() + IDLE));

    // Within the interval nothing is written, and the key still outlives the session's idle end.
    app.advance(Duration::seconds(30));
    app.me_bearer(&login.token).await.assert_status(200);
    assert_eq!(session_key_expiries(&app).await[0].1, ms(app.now() - Duration::seconds(30) + IDLE));
}

#[tokio::test]
async fn a_hybrid_session_key_expires_at_the_idle_end_and_a_refresh_moves_it() {
    let app = spawn_token_app(
        "[auth]\nmode = \"hybrid\"\n[session]\nidle_timeout = \"1h\"\nabsolute_timeout = \"1d\"\n[refresh]\nttl = \"1d\"\n",
    )
    .await;
    app.create_user("alice").await;
    let login = app.login("alice", PASSWORD, Some("bearer")).await;
    login.assert_status(200);
    assert_eq!(session_key_expiries(&app).await[0].1, ms(app.now() + IDLE));
    app.advance(Duration::minutes(10));
    let refresh = login.json()["refresh_token"].as_str().unwrap().to_owned();
    let request = app.post("/v1/refresh").header("tessera-transport", "bearer");
    let reply = app.send(request.json(&serde_json::json!({"refresh_token": refresh}))).await;
    reply.assert_status(200);
    assert_eq!(session_key_expiries(&app).await[0].1, ms(app.now() + IDLE));
}
