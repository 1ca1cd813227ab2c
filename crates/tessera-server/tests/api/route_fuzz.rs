//! Property test over every route of a running server: arbitrary methods, paths, query strings,
//! bodies (bytes, JSON of any shape, near-miss forms) and content types, sent with and without
//! real credentials (a bearer access token, a refresh token, cookies with their CSRF token, the
//! admin key), so the handlers behind authentication see attacker-chosen input too. Whatever
//! arrives, the answer is never a 5xx (a panic is caught and would be a 500), and every error
//! under `/v1/` is `application/problem+json`.

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value};

use crate::helpers::{PASSWORD, TestApp, spawn_app_with, spawn_token_app};
use crate::token_helpers::{ADMIN_KEY, token_toml};

/// Real credentials of one user, so generated requests can get past authentication.
struct Credentials {
    access: String,
    refresh: String,
    session_token: Option<String>,
    cookie_header: String,
    csrf: String,
    session_id: String,
    user_id: String,
}

async fn credentials(app: &TestApp) -> Credentials {
    app.create_user("alice").await;
    let bearer = app.login("alice", PASSWORD, Some("bearer")).await;
    assert_eq!(bearer.status.as_u16(), 200, "{}", bearer.text);
    let body = bearer.json();
    let cookie = app.login("alice", PASSWORD, Some("cookie")).await;
    assert_eq!(cookie.status.as_u16(), 200, "{}", cookie.text);
    let cookie_header =
        cookie.set_cookies().iter().map(|c| format!("{}={}", c.name, c.value)).collect::<Vec<_>>().join("; ");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Credentials {
        access: text(&body["access_token"]),
        refresh: text(&body["refresh_token"]),
        session_token: body["session_token"].as_str().map(str::to_owned),
        cookie_header,
        csrf: text(&cookie.json()["csrf_token"]),
        session_id: text(&body["session"]["id"]),
        user_id: text(&body["user"]["id"]),
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String(PASSWORD.into())),
        Just(Value::String("alice".into())),
    ];
    leaf.prop_recursive(3, 20, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((field(), inner), 0..5)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("username"),
            Just("password"),
            Just("refresh_token"),
            Just("current_password"),
            Just("new_password"),
            Just("token"),
            Just("token_type_hint"),
        ]
        .prop_map(String::from),
        "[a-z_]{1,12}",
    ]
}

/// What a body can be; `Cred` placeholders are filled with the real credentials.
#[derive(Debug, Clone)]
enum Body {
    Bytes(Vec<u8>),
    Json(Value),
    /// `{"<field>": <a real credential or a near miss>}`.
    JsonWithCredential(String, usize),
    Form(Vec<(String, String)>),
    FormWithCredential(usize, String),
    Truncated(Value, usize),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Body::Bytes),
        json_value().prop_map(Body::Json),
        (field(), 0..CREDENTIAL_KINDS).prop_map(|(f, c)| Body::JsonWithCredential(f, c)),
        proptest::collection::vec((field(), ".{0,30}"), 0..4).prop_map(Body::Form),
        (
            0..CREDENTIAL_KINDS,
            prop_oneof![Just("access_token"), Just("refresh_token"), Just(""), Just("x")].prop_map(String::from)
        )
            .prop_map(|(c, hint)| Body::FormWithCredential(c, hint)),
        (json_value(), any::<usize>()).prop_map(|(v, cut)| Body::Truncated(v, cut)),
    ]
}

const CREDENTIAL_KINDS: usize = 6;

impl Credentials {
    /// A credential, whole or damaged.
    fn pick(&self, kind: usize) -> String {
        match kind {
            0 => self.access.clone(),
            1 => self.refresh.clone(),
            2 => self.session_token.clone().unwrap_or_else(|| self.csrf.clone()),
            3 => format!("{}x", self.access),
            4 => self.refresh.chars().rev().collect(),
            _ => self.access.replace('.', ""),
        }
    }

    fn encode(&self, body: &Body) -> Vec<u8> {
        match body {
            Body::Bytes(b) => b.clone(),
            Body::Json(v) => v.to_string().into_bytes(),
            Body::JsonWithCredential(f, c) => {
                Value::Object([(f.clone(), Value::String(self.pick(*c)))].into_iter().collect())
                    .to_string()
                    .into_bytes()
            }
            Body::Form(pairs) => serde_urlencoded::to_string(pairs).unwrap_or_default().into_bytes(),
            Body::FormWithCredential(c, hint) => {
                serde_urlencoded::to_string([("token", self.pick(*c)), ("token_type_hint", hint.clone())])
                    .unwrap_or_default()
                    .into_bytes()
            }
            Body::Truncated(v, cut) => {
                let text = v.to_string().into_bytes();
                text[..cut % (text.len() + 1)].to_vec()
            }
        }
    }
}

fn path() -> impl Strategy<Value = String> {
    let fixed = prop_oneof![
        Just("/v1/accounts"),
        Just("/v1/login"),
        Just("/v1/me"),
        Just("/v1/forward-auth"),
        Just("/v1/logout"),
        Just("/v1/logout-all"),
        Just("/v1/sessions"),
        Just("/v1/sessions/{sid}"),
        Just("/v1/sessions/{any}"),
        Just("/v1/password"),
        Just("/v1/admin/users/{uid}/revoke-sessions"),
        Just("/v1/admin/users/{any}/revoke-sessions"),
        Just("/v1/refresh"),
        Just("/v1/introspect"),
        Just("/v1/revoke"),
        Just("/.well-known/jwks.json"),
        Just("/healthz"),
        Just("/readyz"),
        Just("/"),
        Just("/login"),
        Just("/signup"),
        Just("/account"),
        Just("/tessera.js"),
        Just("/v1/{any}"),
    ];
    let any_segment = prop_oneof!["[A-Za-z0-9_-]{0,30}", "(%[0-9A-Fa-f]{2}|[a-z.]){0,10}", "[^/?#]{0,20}"];
    let query = proptest::option::of("[a-z_=&%0-9A-F.]{0,40}");
    (fixed, any_segment, query).prop_map(|(p, seg, q)| {
        let seg: String = seg.chars().filter(|c| !c.is_control() && *c != ' ').collect();
        let mut path = p.replace("{any}", &seg);
        if let Some(q) = q {
            path.push('?');
            path.push_str(&q);
        }
        path
    })
}

const METHODS: [&str; 7] = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"];

const CONTENT_TYPES: [&str; 7] = [
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/json; charset=utf-16",
    "multipart/form-data; boundary=x",
    "",
];

/// Which credential the request carries.
const AUTH_KINDS: usize = 6;

#[derive(Debug, Clone)]
struct Case {
    method: usize,
    path: String,
    content_type: usize,
    body: Body,
    auth: usize,
    transport: Option<bool>,
}

fn case() -> impl Strategy<Value = Case> {
    (0..METHODS.len(), path(), 0..CONTENT_TYPES.len(), body(), 0..AUTH_KINDS, proptest::option::of(any::<bool>()))
        .prop_map(|(method, path, content_type, body, auth, transport)| Case {
            method,
            path,
            content_type,
            body,
            auth,
            transport,
        })
}

fn run_cases(app: &TestApp, rt: &tokio::runtime::Runtime, creds: &Credentials, cases: u32) {
    let mut runner = TestRunner::new(ProptestConfig { cases, ..ProptestConfig::default() });
    let result = runner.run(&case(), |case| {
        let method = Method::from_bytes(METHODS[case.method].as_bytes()).expect("method");
        let path = case.path.replace("{sid}", &creds.session_id).replace("{uid}", &creds.user_id);
        let mut rb = app.req(method.clone(), &path);
        if !CONTENT_TYPES[case.content_type].is_empty() {
            rb = rb.header(CONTENT_TYPE, CONTENT_TYPES[case.content_type]);
        }
        match case.auth {
            0 => {}
            1 => rb = rb.bearer_auth(&creds.access),
            2 => rb = rb.bearer_auth(creds.session_token.as_deref().unwrap_or(&creds.refresh)),
            3 => rb = rb.header("cookie", &creds.cookie_header).header("x-csrf-token", &creds.csrf),
            4 => rb = rb.bearer_auth(ADMIN_KEY),
            _ => rb = rb.header("cookie", &creds.cookie_header),
        }
        if let Some(bearer) = case.transport {
            rb = rb.header("tessera-transport", HeaderValue::from_static(if bearer { "bearer" } else { "cookie" }));
        }
        let reply = rt.block_on(app.send(rb.body(creds.encode(&case.body))));
        prop_assert!(reply.status.as_u16() < 500, "{method} {path} {case:?}: {} {}", reply.status, reply.text);
        if path.starts_with("/v1/") && reply.status.is_client_error() && method != Method::HEAD {
            let ct = reply.header(CONTENT_TYPE.as_str()).unwrap_or_default();
            prop_assert!(ct.starts_with("application/problem+json"), "{method} {path}: {} with {ct:?}", reply.status);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

#[test]
fn no_request_to_any_route_makes_a_5xx_in_hybrid_mode() {
    let rt = runtime();
    // A denylist copy that cannot go stale under a loaded test machine: a 503 here would be
    // the machine, not the input.
    let app = rt.block_on(spawn_token_app(&token_toml("hybrid", "[revocation]\nmax_staleness = \"1h\"\n")));
    let creds = rt.block_on(credentials(&app));
    run_cases(&app, &rt, &creds, 256);
    rt.block_on(async move {
        let mut app = app;
        app.stop().await;
    });
}

#[test]
fn no_request_to_any_route_makes_a_5xx_in_session_mode() {
    let rt = runtime();
    let toml = format!("[auth]\nmode = \"session\"\n[admin]\napi_key = \"{ADMIN_KEY}\"\n");
    let app = rt.block_on(spawn_app_with(&toml));
    let creds = rt.block_on(credentials(&app));
    run_cases(&app, &rt, &creds, 128);
    rt.block_on(async move {
        let mut app = app;
        app.stop().await;
    });
}

/// Found by the property test above: a path id that is not UTF-8 once percent-decoded was
/// axum's plain-text 400, not a problem document.
#[tokio::test]
async fn a_session_or_user_id_that_is_not_utf8_is_a_404_problem() {
    let app = spawn_token_app(&token_toml("hybrid", "")).await;
    let creds = credentials(&app).await;
    let rb = app.delete("/v1/sessions/%F7%EF").bearer_auth(&creds.access).header("tessera-transport", "bearer");
    let reply = app.send(rb).await;
    reply.assert_problem(404, "not-found");
    let reply = app.send(app.post("/v1/admin/users/%F7%EF/revoke-sessions").bearer_auth(ADMIN_KEY)).await;
    reply.assert_problem(404, "not-found");
}
