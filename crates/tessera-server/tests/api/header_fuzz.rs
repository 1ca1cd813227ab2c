//! Property test over the headers the HTTP layer parses — `Cookie`, `Authorization`,
//! `Tessera-Transport`, `X-CSRF-Token`, `Origin`, `Sec-Fetch-Site`, `Content-Type`, the
//! forwarding headers, and forward auth's original method and URI from a trusted proxy — thrown
//! at the endpoints that read them: whatever arrives, the answer is a 2xx/4xx, never a 5xx (a
//! panic would be a 500). The pure parsers have unit-level property tests beside them; this one
//! runs them inside the real server. `route_fuzz` does the same for bodies, paths and methods.

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use reqwest::Method;
use reqwest::header::HeaderValue;

use crate::helpers::{CSRF_COOKIE, PASSWORD, spawn_token_app};
use crate::token_helpers::{ACCESS_COOKIE, REFRESH_COOKIE, token_toml};

/// A header value: mostly near-misses of what the server expects, sometimes anything.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[ -~]{0,60}",
        "(Bearer|bearer|Basic|) ?[A-Za-z0-9._~+/=-]{0,80}",
        "(cookie|bearer|Cookie|BEARER|pigeon)",
        "(https?|ftp|null)(://)?[a-z0-9.:\\[\\]@/-]{0,30}",
        "(cross-site|same-site|same-origin|none)[ ,;]{0,2}",
        "application/(json|x-www-form-urlencoded|x-json|vnd\\.a\\+json)(; ?charset=[a-z0-9\"-]{0,10}){0,2}",
        "(for|host|proto|by)=[\"\\[\\]a-z0-9.:,; ]{0,40}",
        "(GET|POST|get|DELETE|CONNECT|[A-Z]{0,8})",
        "/[a-z0-9/?&=%#.:@-]{0,60}",
    ]
}

fn cookie() -> impl Strategy<Value = String> {
    let name = prop_oneof![Just(ACCESS_COOKIE), Just(REFRESH_COOKIE), Just(CSRF_COOKIE), Just("other")];
    proptest::collection::vec((name, "[ -:<-~]{0,90}"), 0..4)
        .prop_map(|pairs| pairs.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; "))
}

const HEADERS: [&str; 15] = [
    "authorization",
    "tessera-transport",
    "x-csrf-token",
    "origin",
    "sec-fetch-site",
    "content-type",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "forwarded",
    "host",
    "x-forwarded-method",
    "x-forwarded-uri",
    "x-original-method",
    "x-original-uri",
];

#[test]
fn no_header_value_makes_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // A denylist copy that cannot go stale under a loaded test machine: a 503 here would be the
    // machine, not the parsers.
    let extra = "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[revocation]\nmax_staleness = \"1h\"\n";
    let app = rt.block_on(spawn_token_app(&token_toml("hybrid", extra)));
    rt.block_on(app.create_user("alice"));
    let endpoints = [
        (Method::GET, "/v1/me"),
        (Method::GET, "/v1/forward-auth"),
        (Method::POST, "/v1/logout"),
        (Method::POST, "/v1/refresh"),
        (Method::POST, "/v1/login"),
        (Method::POST, "/v1/accounts"),
        (Method::POST, "/v1/revoke"),
        (Method::DELETE, "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA"),
    ];
    let input = (0..endpoints.len(), cookie(), proptest::collection::vec((0..HEADERS.len(), value()), 0..6));
    let mut runner = TestRunner::new(ProptestConfig { cases: 192, ..ProptestConfig::default() });
    let result = runner.run(&input, |(endpoint, cookie, headers)| {
        let (method, path) = &endpoints[endpoint];
        let mut rb = app.req(method.clone(), path).header("cookie", cookie.as_str());
        for (name, v) in &headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                rb = rb.header(HEADERS[*name], v);
            }
        }
        let body = format!(r#"{{"username":"alice","password":"{PASSWORD}","refresh_token":"x"}}"#);
        let reply = rt.block_on(app.send(rb.body(body)));
        prop_assert!(
            reply.status.as_u16() < 500,
            "{method} {path} {headers:?} cookie {cookie:?}: {} {}",
            reply.status,
            reply.text
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(async move {
        let mut app = app;
        app.stop().await;
    });
}
