//! The flows, written once and run behind each proxy (see `main.rs`). Every request goes
//! through the proxy, as a browser's or an API client's would.

use reqwest::Method;

use crate::proxy::Kind;
use crate::stack::{HYBRID, JWT_WITHOUT_SESSIONS, Stack};

const PAGE: &str = "/app/page?x=1&y=2";
const LOGIN_FOR_PAGE: &str = "/login?return_to=/app/page%3Fx%3D1%26y%3D2";

fn mode_of(toml: &str) -> &'static str {
    ["session", "hybrid", "jwt"].into_iter().find(|m| toml.contains(&format!("\"{m}\""))).expect("a mode")
}

pub async fn logged_out_requests_are_refused_and_navigations_go_to_login(kind: Kind) {
    let stack = Stack::start(kind, HYBRID).await;
    let api = stack.send(stack.get("/app/data").header("accept", "application/json")).await;
    api.assert_status(401);
    let fetch = stack.get("/app/data").header("sec-fetch-mode", "cors").header("accept", "text/html");
    stack.send(fetch).await.assert_status(401);

    let navigation = stack.get(PAGE).header("sec-fetch-mode", "navigate").header("accept", "text/html");
    let reply = stack.send(navigation).await;
    reply.assert_status(302);
    assert_eq!(reply.header("location"), Some(LOGIN_FOR_PAGE));
    // An older browser without Fetch Metadata: its Accept decides.
    let reply = stack.send(stack.get(PAGE).header("accept", "text/html,*/*;q=0.8")).await;
    reply.assert_status(302);
    assert_eq!(reply.header("location"), Some(LOGIN_FOR_PAGE));

    // A form POST is refused, not redirected (the redirect would lose its body).
    let form = stack.post("/app/form").header("sec-fetch-mode", "navigate").header("accept", "text/html").body("a=1");
    stack.send(form).await.assert_status(401);
    assert_eq!(stack.upstream.hits(), 0, "nothing reached the application");
}

pub async fn tessera_paths_reach_tessera_without_the_check(kind: Kind) {
    let stack = Stack::start(kind, HYBRID).await;
    let me = stack.send(stack.get("/v1/me")).await;
    me.assert_status(401);
    assert_eq!(me.header("content-type"), Some("application/problem+json"), "tessera's own 401: {me:?}");
    let jwks = stack.send(stack.get("/.well-known/jwks.json")).await;
    jwks.assert_status(200);
    assert!(jwks.json()["keys"].as_array().is_some_and(|k| !k.is_empty()), "{}", jwks.text);
    for page in ["/login", "/signup", "/account", "/tessera.js", "/tessera/pages.js", "/login?return_to=/app/"] {
        let reply =
            stack.send(stack.get(page).header("sec-fetch-mode", "navigate").header("accept", "text/html")).await;
        // tessera serves its pages and their assets itself: not forward auth's 302 or 401.
        reply.assert_status(200);
    }
    assert_eq!(stack.upstream.hits(), 0, "tessera's paths never reach the application");
}

pub async fn a_logged_in_browser_reaches_the_application_as_itself(kind: Kind, toml: &str) {
    let stack = Stack::start(kind, toml).await;
    let browser = stack.browser_login("alice").await;
    let request = stack.get("/app/data?q=1").header("cookie", browser.cookies_for("/app/data"));
    let reply = stack.send(request).await;
    reply.assert_status(200);
    let echo = reply.json();
    assert_eq!((echo["method"].as_str(), echo["uri"].as_str()), (Some("GET"), Some("/app/data?q=1")));
    assert_eq!(reply.upstream_saw("tessera-user-id"), [browser.user_id.as_str()]);
    assert_eq!(reply.upstream_saw("tessera-username"), ["alice"]);
    let sid = browser.session_id.as_deref().expect("a session in this mode");
    assert_eq!(reply.upstream_saw("tessera-session-id"), [sid]);
    assert_eq!(reply.upstream_saw("tessera-auth-mode"), [mode_of(toml)]);
}

pub async fn client_sent_identity_headers_never_reach_the_application(kind: Kind) {
    // jwt without refresh has no session: tessera sends no Tessera-Session-Id, so only the
    // proxy's stripping can keep a forged one out.
    let stack = Stack::start(kind, JWT_WITHOUT_SESSIONS).await;
    let alice = stack.bearer_login("alice").await;
    assert!(alice.session_id.is_none());
    let forged = |request: reqwest::RequestBuilder| {
        request
            .header("tessera-user-id", "AAAAAAAAAAAAAAAAAAAAAA")
            .header("tessera-username", "admin")
            .header("tessera-session-id", "forged-session")
            .header("tessera-auth-mode", "session")
    };
    let request = forged(stack.get("/app/data")).bearer_auth(&alice.token).header("tessera-transport", "bearer");
    let reply = stack.send(request).await;
    assert_eq!(reply.upstream_saw("tessera-user-id"), [alice.user_id.as_str()]);
    assert_eq!(reply.upstream_saw("tessera-username"), ["alice"]);
    assert_eq!(reply.upstream_saw("tessera-auth-mode"), ["jwt"]);
    let session_ids = reply.upstream_saw("tessera-session-id");
    assert!(session_ids.iter().all(String::is_empty), "a forged session id got through: {session_ids:?}");

    let hits = stack.upstream.hits();
    stack.send(forged(stack.get("/app/data"))).await.assert_status(401);
    assert_eq!(stack.upstream.hits(), hits, "forged headers alone do not get in");
}

pub async fn logout_is_refused_at_once(kind: Kind, toml: &str) {
    let stack = Stack::start(kind, toml).await;
    let browser = stack.browser_login("alice").await;
    let page = || stack.get("/app/data").header("cookie", browser.cookies_for("/app/data"));
    stack.send(page()).await.assert_status(200);
    let logout = stack
        .post("/v1/logout")
        .header("cookie", browser.cookies_for("/v1/logout"))
        .header("x-csrf-token", &browser.csrf);
    stack.send(logout).await.assert_status(204);
    stack.send(page()).await.assert_status(401);
    assert_eq!(stack.upstream.hits(), 1, "only the request before the logout got through");
}

pub async fn an_unsafe_cookie_request_needs_the_csrf_token(kind: Kind) {
    let stack = Stack::start(kind, HYBRID).await;
    let browser = stack.browser_login("alice").await;
    let cookies = browser.cookies_for("/app/items");
    // PROPFIND: a method tessera knows nothing about counts as unsafe.
    for method in ["POST", "PUT", "DELETE", "PROPFIND"] {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let request = stack.request(method.clone(), "/app/items").header("cookie", &cookies).body("name=x");
        let reply = stack.send(request).await;
        assert_eq!(reply.status, 403, "{method} without X-CSRF-Token: {reply:?}");
    }
    // The client cannot claim its POST was a GET: the proxy names the method to tessera.
    let spoofed = stack
        .post("/app/items")
        .header("cookie", &cookies)
        .header("x-forwarded-method", "GET")
        .header("x-original-method", "GET")
        .body("name=x");
    stack.send(spoofed).await.assert_status(403);
    assert_eq!(stack.upstream.hits(), 0, "no unsafe request without the token got through");

    let with_token =
        stack.post("/app/items").header("cookie", &cookies).header("x-csrf-token", &browser.csrf).body("name=x");
    let reply = stack.send(with_token).await;
    reply.assert_status(200);
    let echo = reply.json();
    assert_eq!((echo["method"].as_str(), echo["body"].as_str()), (Some("POST"), Some("name=x")), "{echo}");
    assert_eq!(reply.upstream_saw("tessera-user-id"), [browser.user_id.as_str()]);
}

pub async fn a_bearer_client_needs_no_csrf_token(kind: Kind) {
    let stack = Stack::start(kind, HYBRID).await;
    let client = stack.bearer_login("alice").await;
    let request = stack
        .post("/app/items")
        .bearer_auth(&client.token)
        .header("tessera-transport", "bearer")
        .header("content-type", "application/json")
        .body("{\"name\":\"x\"}");
    let reply = stack.send(request).await;
    reply.assert_status(200);
    assert_eq!(reply.json()["body"], "{\"name\":\"x\"}");
    assert_eq!(reply.upstream_saw("tessera-user-id"), [client.user_id.as_str()]);
    assert_eq!(reply.upstream_saw("tessera-session-id"), [client.session_id.as_deref().expect("hybrid has a session")]);
    assert_eq!(reply.upstream_saw("tessera-auth-mode"), ["hybrid"]);
}

/// tessera trusts its proxy (127.0.0.1), not a neighbour on 127.0.0.2 asking it directly.
pub async fn original_request_claims_from_an_untrusted_peer_are_ignored(kind: Kind) {
    let stack = Stack::start(kind, HYBRID).await;
    let browser = stack.browser_login("alice").await;
    let cookies = browser.cookies_for("/app/items");
    // Through the proxy, this POST needs its CSRF token.
    stack.send(stack.post("/app/items").header("cookie", &cookies)).await.assert_status(403);
    // Asked directly by an untrusted peer, the claimed method is ignored: the request's own
    // GET applies, so the answer is about a GET.
    let claim = stack
        .untrusted_get("/v1/forward-auth")
        .header("cookie", &cookies)
        .header("x-forwarded-method", "POST")
        .header("x-forwarded-uri", "/app/items");
    stack.send(claim).await.assert_status(200);
    // And a claimed URI is not carried to the login page.
    let navigation = stack
        .untrusted_get("/v1/forward-auth?redirect=true")
        .header("sec-fetch-mode", "navigate")
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/app/secret");
    let reply = stack.send(navigation).await;
    reply.assert_status(302);
    assert_eq!(reply.header("location"), Some("/login"));
}
