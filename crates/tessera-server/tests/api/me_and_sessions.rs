//! `GET /v1/me`, `GET /v1/sessions`, `DELETE /v1/sessions/{id}`.

use time::Duration;

use crate::helpers::{LOGIN_UA, PASSWORD, WithCookies, parse_ts, random_id, spawn_app, spawn_app_with};

#[tokio::test]
async fn me_with_bearer_token_describes_user_session_and_auth() {
    let app =
        spawn_app_with("[auth]\nmode = \"session\"\n[session]\nidle_timeout = \"1h\"\nabsolute_timeout = \"1d\"\n")
            .await;
    let user = app.create_user("alice").await;
    let login_at = app.now();
    let login = app.login_bearer("alice", PASSWORD).await;
    let reply = app.me_bearer(&login.token).await;
    reply.assert_status(200);
    let me = reply.json();
    assert_eq!(me["user"], user);
    let s = &me["session"];
    assert_eq!(s["id"].as_str(), Some(login.session_id.as_str()));
    assert_eq!(parse_ts(&s["created_at"]), login_at);
    assert_eq!(parse_ts(&s["last_seen_at"]), login_at);
    assert_eq!(parse_ts(&s["expires_at"]), login_at + Duration::days(1));
    assert_eq!(parse_ts(&s["idle_expires_at"]), login_at + Duration::hours(1));
    assert_eq!(s["user_agent"], LOGIN_UA);
    assert_eq!(s["ip"], "127.0.0.1");
    assert_eq!(s["current"], true);
    assert_eq!(me["auth"]["mode"], "session");
    assert_eq!(me["auth"]["transport"], "bearer");
    assert_eq!(parse_ts(&me["auth"]["expires_at"]), login_at + Duration::hours(1));
}

/// `/v1/me` keeps its serialised answer per caller; asked again it must still say what is
/// true now: a touch moves `last_seen_at`, the other transport says so, and a session that
/// ended is refused, never answered from what was kept.
#[tokio::test]
async fn me_asked_again_follows_the_session() {
    let app =
        spawn_app_with("[auth]\nmode = \"session\"\n[session]\nidle_timeout = \"1h\"\nabsolute_timeout = \"1d\"\n")
            .await;
    app.create_user("alice").await;
    let login_at = app.now();
    let login = app.login_bearer("alice", PASSWORD).await;
    let first = app.me_bearer(&login.token).await;
    first.assert_status(200);
    let again = app.me_bearer(&login.token).await;
    assert_eq!(again.text, first.text, "nothing changed, so the same document");

    // Past the touch interval (a minute for a one-hour idle timeout) the session is touched.
    app.advance(Duration::minutes(2));
    let touched = app.me_bearer(&login.token).await.json();
    let s = &touched["session"];
    assert_eq!(parse_ts(&s["last_seen_at"]), login_at + Duration::minutes(2), "{touched}");
    assert_eq!(parse_ts(&s["idle_expires_at"]), login_at + Duration::minutes(62), "{touched}");
    assert_eq!(parse_ts(&touched["auth"]["expires_at"]), login_at + Duration::minutes(62), "{touched}");
    assert_eq!(parse_ts(&s["expires_at"]), login_at + Duration::days(1), "{touched}");

    let by_cookie = app.login_cookie("alice", PASSWORD).await;
    let cookie_me = app.me_cookie(&by_cookie.cookies).await.json();
    assert_eq!(cookie_me["auth"]["transport"], "cookie");
    assert_eq!(cookie_me["session"]["id"].as_str(), Some(by_cookie.session_id.as_str()));
    assert_eq!(app.me_bearer(&login.token).await.json()["auth"]["transport"], "bearer");

    app.send(app.post("/v1/logout").bearer(&login.token)).await.assert_status(204);
    app.me_bearer(&login.token).await.assert_invalid_token();
}

/// The same in a token mode: two access tokens of one session (before and after a refresh)
/// and one of another session each answer with their own expiry, and a revoked one is refused.
#[tokio::test]
async fn me_asked_again_follows_each_access_token() {
    let app = crate::helpers::spawn_token_app("[auth]\nmode = \"hybrid\"\n[jwt]\naccess_ttl = \"10m\"\n").await;
    app.create_user("alice").await;
    let first_at = app.now();
    let first = app.login_tokens("alice", PASSWORD).await;
    app.advance(Duration::minutes(2));
    let refreshed = app.refresh_ok(first.refresh()).await;
    assert_eq!(refreshed.sid(), first.sid(), "the same session");
    app.advance(Duration::minutes(1));
    let other = app.login_tokens("alice", PASSWORD).await;
    for _ in 0..2 {
        for (token, expires) in [(&first.access, 10), (&refreshed.access, 12), (&other.access, 13)] {
            let me = app.me_bearer(token).await.json();
            assert_eq!(parse_ts(&me["auth"]["expires_at"]), first_at + Duration::minutes(expires), "{me}");
        }
    }
    app.send(app.post("/v1/logout").bearer(&first.access)).await.assert_status(204);
    app.me_bearer(&first.access).await.assert_invalid_token();
    app.me_bearer(&refreshed.access).await.assert_invalid_token();
    app.me_bearer(&other.access).await.assert_status(200);
}

#[tokio::test]
async fn me_with_session_cookie_reports_cookie_transport() {
    let app = spawn_app().await;
    let user = app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let reply = app.me_cookie(&login.cookies).await;
    reply.assert_status(200);
    let me = reply.json();
    assert_eq!(me["user"], user);
    assert_eq!(me["session"]["id"].as_str(), Some(login.session_id.as_str()));
    assert_eq!(me["auth"]["transport"], "cookie");
    assert_eq!(me["auth"]["mode"], "session");
}

#[tokio::test]
async fn me_with_only_the_session_cookie_works() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let reply =
        app.send(app.get("/v1/me").header("cookie", format!("__Host-tessera-session={}", login.cookies.session))).await;
    reply.assert_status(200);
}

#[tokio::test]
async fn me_without_credentials_is_401_with_bearer_challenge_without_error_code() {
    let app = spawn_app().await;
    let reply = app.send(app.get("/v1/me")).await;
    reply.assert_401("unauthenticated");
    // RFC 6750 §3.1: no error code when the request carried no credential at all.
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(!challenge.contains("invalid_token"), "WWW-Authenticate: {challenge:?}");
}

#[tokio::test]
async fn me_with_garbage_bearer_token_is_401_invalid_token() {
    let app = spawn_app().await;
    app.me_bearer("not-a-token").await.assert_invalid_token();
}

#[tokio::test]
async fn me_with_well_formed_token_with_wrong_secret_is_401() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    // Characters 44..86 encode secret bytes only; changing one keeps ids and shape intact.
    let mut forged: Vec<char> = login.token.chars().collect();
    forged[60] = if forged[60] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    app.me_bearer(&forged).await.assert_invalid_token();
    app.me_bearer(&login.token).await.assert_status(200);
}

#[tokio::test]
async fn me_with_token_of_another_kind_is_401() {
    // The first byte of a token is its kind; a session token relabelled as a refresh token
    // (same ids, same secret) must not pass.
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let mut raw = decode_b64url(&login.token);
    assert_eq!(raw[0], 1, "session tokens start with kind byte 1");
    raw[0] = 2;
    let relabelled = tessera_core::secret::b64(&raw);
    app.me_bearer(&relabelled).await.assert_invalid_token();
}

#[tokio::test]
async fn token_in_query_string_is_never_accepted() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    for param in ["token", "session_token", "access_token"] {
        let reply = app.send(app.get(&format!("/v1/me?{param}={}", login.token))).await;
        reply.assert_401("unauthenticated");
    }
}

#[tokio::test]
async fn authorization_scheme_other_than_bearer_is_401() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let basic = app.get("/v1/me").header("authorization", format!("Basic {}", login.token));
    let reply = app.send(basic.header("tessera-transport", "bearer")).await;
    reply.assert_401("unauthenticated");
}

#[tokio::test]
async fn sessions_lists_every_session_oldest_first_with_current_flag() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let t0 = app.now();
    let first = app.login_bearer("alice", PASSWORD).await;
    app.advance(Duration::seconds(5));
    let second = app.login_cookie("alice", PASSWORD).await;
    app.advance(Duration::seconds(5));
    let third = app.login_bearer("alice", PASSWORD).await;

    let sessions = app.sessions_bearer(&third.token).await;
    let ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().expect("id")).collect();
    assert_eq!(ids, [first.session_id.as_str(), second.session_id.as_str(), third.session_id.as_str()]);
    let current: Vec<bool> = sessions.iter().map(|s| s["current"].as_bool().expect("current")).collect();
    assert_eq!(current, [false, false, true]);
    for (i, s) in sessions.iter().enumerate() {
        assert_eq!(parse_ts(&s["created_at"]), t0 + Duration::seconds(5 * i as i64), "{s}");
        assert!(s.get("last_seen_at").is_some() && s.get("expires_at").is_some(), "{s}");
        assert!(s.get("idle_expires_at").is_some(), "{s}");
        assert_eq!(s["user_agent"], LOGIN_UA, "{s}");
        assert_eq!(s["ip"], "127.0.0.1", "{s}");
    }

    let from_cookie = app.send(app.get("/v1/sessions").cookies(&second.cookies)).await;
    from_cookie.assert_status(200);
    let current: Vec<bool> = from_cookie.json()["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["current"].as_bool().expect("current"))
        .collect();
    assert_eq!(current, [false, true, false]);
}

#[tokio::test]
async fn sessions_shows_only_the_callers_own_sessions() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let alice = app.login_bearer("alice", PASSWORD).await;
    let _bob = app.login_bearer("bob", PASSWORD).await;
    let sessions = app.sessions_bearer(&alice.token).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"].as_str(), Some(alice.session_id.as_str()));
}

#[tokio::test]
async fn sessions_without_credentials_is_401() {
    let app = spawn_app().await;
    app.send(app.get("/v1/sessions")).await.assert_401("unauthenticated");
}

#[tokio::test]
async fn deleting_another_own_session_revokes_its_token() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let laptop = app.login_bearer("alice", PASSWORD).await;
    let phone = app.login_bearer("alice", PASSWORD).await;
    let reply = app.send(app.delete(&format!("/v1/sessions/{}", phone.session_id)).bearer(&laptop.token)).await;
    reply.assert_status(204);
    assert!(reply.text.is_empty(), "204 has no body");
    app.me_bearer(&phone.token).await.assert_invalid_token();
    app.me_bearer(&laptop.token).await.assert_status(200);
    let sessions = app.sessions_bearer(&laptop.token).await;
    assert_eq!(sessions.len(), 1);
}

#[tokio::test]
async fn deleting_the_current_session_ends_it() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let reply = app.send(app.delete(&format!("/v1/sessions/{}", login.session_id)).bearer(&login.token)).await;
    reply.assert_status(204);
    app.me_bearer(&login.token).await.assert_invalid_token();
}

#[tokio::test]
async fn deleting_another_users_session_is_404_and_leaves_it_alive() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let alice = app.login_bearer("alice", PASSWORD).await;
    let bob = app.login_bearer("bob", PASSWORD).await;
    let reply = app.send(app.delete(&format!("/v1/sessions/{}", bob.session_id)).bearer(&alice.token)).await;
    reply.assert_problem(404, "not-found");
    app.me_bearer(&bob.token).await.assert_status(200);
}

#[tokio::test]
async fn deleting_an_unknown_or_malformed_session_id_is_404() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let alice = app.login_bearer("alice", PASSWORD).await;
    let unknown = random_id();
    for id in [unknown.as_str(), "not-an-id", "..%2F..%2Fetc%2Fpasswd", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let reply = app.send(app.delete(&format!("/v1/sessions/{id}")).bearer(&alice.token)).await;
        reply.assert_problem(404, "not-found");
    }
    app.me_bearer(&alice.token).await.assert_status(200);
}

#[tokio::test]
async fn deleting_a_session_without_credentials_is_401() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let alice = app.login_bearer("alice", PASSWORD).await;
    let reply = app.send(app.delete(&format!("/v1/sessions/{}", alice.session_id))).await;
    reply.assert_401("unauthenticated");
    app.me_bearer(&alice.token).await.assert_status(200);
}

fn decode_b64url(s: &str) -> Vec<u8> {
    tessera_core::secret::b64_decode_exact::<65>(s).expect("a session token decodes to 65 bytes").to_vec()
}

/// `GET /v1/me` and `GET /v1/forward-auth` skip the router (the hot paths); every other
/// method and spelling of their paths is the router's, and answers as it always did.
#[tokio::test]
async fn the_hot_paths_answer_as_the_router_does_around_them() {
    use reqwest::Method;
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let bearer = |rb: reqwest::RequestBuilder| {
        rb.header("authorization", format!("Bearer {}", login.token)).header("tessera-transport", "bearer")
    };
    let get = app.send(bearer(app.get("/v1/me"))).await;
    get.assert_status(200);
    assert_eq!(get.header("content-type"), Some("application/json"));
    assert_eq!(get.header("content-length"), Some(get.text.len().to_string().as_str()));
    assert_eq!(get.header("cache-control"), Some("no-store"));
    assert_eq!(get.header("x-content-type-options"), Some("nosniff"));
    // A query string does not change the path.
    app.send(bearer(app.get("/v1/me?x=1"))).await.assert_status(200);
    // HEAD is the router's GET without a body.
    let head = app.send(bearer(app.req(Method::HEAD, "/v1/me"))).await;
    head.assert_status(200);
    assert!(head.text.is_empty());
    app.send(bearer(app.post("/v1/me"))).await.assert_problem(405, "method-not-allowed");
    app.send(bearer(app.get("/v1/me/"))).await.assert_problem(404, "not-found");
    app.send(bearer(app.get("/v1/ME"))).await.assert_problem(404, "not-found");
    app.send(bearer(app.post("/v1/forward-auth"))).await.assert_problem(405, "method-not-allowed");
    // Rejected by the credential check on the hot path: the same problem as on any route.
    app.send(app.get("/v1/me").header("tessera-transport", "bearer")).await.assert_401("unauthenticated");
    app.send(app.get("/v1/me").header("tessera-transport", "nonsense")).await.assert_problem(400, "invalid-request");
    let forward = app.send(bearer(app.get("/v1/forward-auth"))).await;
    forward.assert_status(200);
    assert_eq!(forward.header("tessera-user-id"), Some(login.user_id.as_str()));
}
