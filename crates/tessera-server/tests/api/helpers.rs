//! The harness: every test runs the real server on a random port, with its own empty store
//! (see [`crate::backend`]) and its own [`ManualClock`], and talks plain HTTP to it.
//!
//! The client has no cookie store on purpose: tessera's cookies are `Secure` and `__Host-`, so
//! a store would (rightly) drop them over plain http, and the tests need to see every attribute
//! anyway. Cookies are parsed from `Set-Cookie` and sent back by hand in a `Cookie` header.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tessera_core::{Clock, ManualClock};
use tessera_server::config::Config;
use tessera_server::startup::{Application, Backend};
use tessera_store::sqlite::AuditRecord;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::backend::TestStore;

pub const SESSION_COOKIE: &str = "__Host-tessera-session";
pub const CSRF_COOKIE: &str = "__Host-tessera-csrf";
/// The User-Agent every login of the harness sends, so `/v1/sessions` has something to show.
pub const LOGIN_UA: &str = "tessera-tests/1.0";
pub const PASSWORD: &str = "correct horse battery staple";
pub const WRONG_PASSWORD: &str = "incorrect horse battery staple";

/// The smallest configuration in scope: session mode, everything else default.
pub const SESSION_TOML: &str = "[auth]\nmode = \"session\"\n";

pub struct TestApp {
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub store: TestStore,
    pub client: reqwest::Client,
    /// The `tessera.toml` the server was started with (the harness overrides the listener and
    /// `[store]`), so a CLI process can be pointed at the same configuration.
    pub toml: String,
    config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(SESSION_TOML).await
}

/// Starts the server with `toml` (a whole `tessera.toml`; it must select session mode).
pub async fn spawn_app_with(toml: &str) -> TestApp {
    assert!(toml.contains("mode = \"session\""), "every test configuration selects session mode explicitly:\n{toml}");
    spawn(toml).await
}

/// Starts the server in one of the token modes: `toml` must select `jwt` or `hybrid`
/// explicitly (the built-in default mode is not what these tests are about).
pub async fn spawn_token_app(toml: &str) -> TestApp {
    assert!(
        toml.contains("mode = \"hybrid\"") || toml.contains("mode = \"jwt\""),
        "every token-mode test configuration selects jwt or hybrid explicitly:\n{toml}"
    );
    spawn(toml).await
}

async fn spawn(toml: &str) -> TestApp {
    let store = TestStore::new();
    let config = harness_config(toml, &store);
    let clock = Arc::new(ManualClock::starting_now());
    let mut app = TestApp {
        addr: config.server.listen,
        clock,
        store,
        client: new_client(),
        toml: toml.to_owned(),
        config,
        shutdown: None,
        server: None,
    };
    app.start().await;
    app
}

/// `toml` with the harness's listener (port 0) and store.
fn harness_config(toml: &str, store: &TestStore) -> Config {
    let mut config = Config::from_toml(toml).unwrap_or_else(|e| panic!("test configuration: {e:?}\n{toml}"));
    config.server.listen = "127.0.0.1:0".parse().expect("socket address");
    store.configure(&mut config);
    config
}

fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(StdDuration::from_secs(30))
        .build()
        .expect("reqwest client")
}

impl TestApp {
    async fn start(&mut self) {
        self.try_start().await.unwrap_or_else(|e| panic!("Application::build: {e:?}"));
    }

    async fn try_start(&mut self) -> anyhow::Result<()> {
        let clock: Arc<dyn Clock> = self.clock.clone();
        let app = Application::build(self.config.clone(), clock).await?;
        self.addr = app.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        self.shutdown = Some(tx);
        self.server = Some(server);
        Ok(())
    }

    /// Stops the server and tries to start it again on the same store and clock with
    /// another configuration; the error is `Application::build`'s. On success `toml` and
    /// `addr` follow the new server.
    pub async fn try_restart_with(&mut self, toml: &str) -> anyhow::Result<()> {
        self.stop().await;
        self.client = new_client();
        self.config = harness_config(toml, &self.store);
        self.toml = toml.to_owned();
        self.try_start().await
    }

    /// Stops the server gracefully and starts a new one on the same store and clock
    /// (on a new port; `addr` follows).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.client = new_client();
        self.start().await;
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(StdDuration::from_secs(10), server)
                .await
                .expect("the server stops within 10 s of the shutdown signal")
                .expect("the server task does not panic");
            result.unwrap_or_else(|e| panic!("run_until_stopped returned an error: {e:?}"));
        }
    }

    /// Opens the server's store from the outside, as the CLI does; `.store()` for the
    /// storage traits. Close it when done.
    pub async fn open_store(&self) -> Backend {
        self.store.open().await
    }

    /// The `limit` most recent audit records of the server's store, newest first.
    pub async fn recent_audit(&self, limit: i64) -> Vec<AuditRecord> {
        self.store.recent_audit(limit).await
    }

    /// The `tessera` binary acting on this server's store (in session mode) from `cwd`.
    pub fn tessera_cmd(&self, cwd: &Path) -> Command {
        let mut cmd = bare_tessera(cwd);
        self.store.configure_env(&mut cmd);
        cmd.env("TESSERA_AUTH__MODE", "session");
        cmd
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.req(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.req(Method::POST, path)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.req(Method::DELETE, path)
    }

    pub async fn send(&self, rb: RequestBuilder) -> Reply {
        Reply::from(rb.send().await.expect("the request gets an answer")).await
    }

    pub async fn signup(&self, username: &str, password: &str) -> Reply {
        self.send(self.post("/v1/accounts").json(&json!({"username": username, "password": password}))).await
    }

    /// Signs up and returns the created account (`{"id","username"}`).
    pub async fn create_user(&self, username: &str) -> Value {
        let reply = self.signup(username, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::CREATED, "sign-up of {username}: {}", reply.text);
        reply.json()
    }

    /// `POST /v1/login` with an optional `Tessera-Transport` header.
    pub async fn login(&self, username: &str, password: &str, transport: Option<&str>) -> Reply {
        let mut rb = self
            .post("/v1/login")
            .header("user-agent", LOGIN_UA)
            .json(&json!({"username": username, "password": password}));
        if let Some(t) = transport {
            rb = rb.header("tessera-transport", t);
        }
        self.send(rb).await
    }

    pub async fn login_bearer(&self, username: &str, password: &str) -> BearerLogin {
        let reply = self.login(username, password, Some("bearer")).await;
        BearerLogin::from_reply(reply)
    }

    pub async fn login_cookie(&self, username: &str, password: &str) -> CookieLogin {
        let reply = self.login(username, password, Some("cookie")).await;
        CookieLogin::from_reply(reply)
    }

    pub async fn me_bearer(&self, token: &str) -> Reply {
        self.send(self.get("/v1/me").bearer(token)).await
    }

    pub async fn me_cookie(&self, cookies: &Cookies) -> Reply {
        self.send(self.get("/v1/me").header("cookie", cookies.header())).await
    }

    pub async fn sessions_bearer(&self, token: &str) -> Vec<Value> {
        let reply = self.send(self.get("/v1/sessions").bearer(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "GET /v1/sessions: {}", reply.text);
        reply.json()["sessions"].as_array().expect("sessions is an array").clone()
    }

    /// The kinds of the 100 most recent audit records, newest first.
    pub async fn audit_kinds(&self) -> Vec<String> {
        self.recent_audit(100).await.into_iter().map(|r| r.kind).collect()
    }

    /// Polls `check` every 50 ms for up to `limit`; for effects that travel through the store's
    /// 100 ms revocation poll (a CLI process acting on the same store).
    pub async fn eventually<F, Fut>(&self, limit: StdDuration, mut check: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = std::time::Instant::now();
        loop {
            if check().await {
                return true;
            }
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    }
}

/// A second server on the same store, configuration and clock: another instance of the same
/// deployment (two processes on one SQLite file, or two instances sharing PostgreSQL + Redis).
pub struct Sibling {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn sibling(&self) -> Sibling {
        let clock: Arc<dyn Clock> = self.clock.clone();
        let app = Application::build(self.config.clone(), clock)
            .await
            .unwrap_or_else(|e| panic!("Application::build (sibling): {e:?}"));
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Sibling { addr, shutdown: Some(tx), server: Some(server) }
    }
}

impl Sibling {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(StdDuration::from_secs(10), server)
                .await
                .expect("the sibling stops within 10 s of the shutdown signal")
                .expect("the sibling's task does not panic");
            result.unwrap_or_else(|e| panic!("run_until_stopped returned an error: {e:?}"));
        }
    }
}

/// A fully read answer, so assertions can print the body when they fail.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn from(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("the body arrives");
        Reply { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("header is ASCII"))
    }

    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| SetCookie::parse(v.to_str().expect("Set-Cookie is ASCII")))
            .collect()
    }

    /// The one `Set-Cookie` for `name`; fails if there are none or several.
    pub fn set_cookie(&self, name: &str) -> SetCookie {
        let mut found: Vec<SetCookie> = self.set_cookies().into_iter().filter(|c| c.name == name).collect();
        assert_eq!(found.len(), 1, "exactly one Set-Cookie for {name}; headers: {:?}", self.headers);
        found.remove(0)
    }

    /// Asserts the status and the problem document (RFC 9457) and returns the document.
    pub fn assert_problem(&self, status: u16, slug: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "expected {status} {slug}, got: {} {}", self.status, self.text);
        let ct = self.header(CONTENT_TYPE.as_str()).unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "Content-Type of a {status} is application/problem+json, got {ct:?}"
        );
        let body = self.json();
        assert_eq!(body["type"], format!("urn:tessera:problem:{slug}"), "problem type: {body}");
        assert_eq!(body["status"], status, "problem status: {body}");
        assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "problem title: {body}");
        assert!(body["detail"].is_string(), "problem detail: {body}");
        body
    }

    /// A 401 for a presented token that is bad, expired or revoked (RFC 6750 §3.1).
    pub fn assert_invalid_token(&self) {
        self.assert_problem(401, "unauthenticated");
        let challenge = self.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "WWW-Authenticate: {challenge:?}");
        assert!(challenge.contains("error=\"invalid_token\""), "WWW-Authenticate: {challenge:?}");
    }

    /// Any 401: a problem document with a Bearer challenge.
    pub fn assert_401(&self, slug: &str) {
        self.assert_problem(401, slug);
        let challenge = self.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "WWW-Authenticate: {challenge:?}");
    }

    pub fn assert_status(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {} {}", self.status, self.text);
    }

    pub fn retry_after(&self) -> u64 {
        self.header("retry-after").expect("a 429 has Retry-After").parse().expect("Retry-After is a number of seconds")
    }
}

/// One `Set-Cookie` header, split into name, value and attributes.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    attrs: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub fn parse(header: &str) -> SetCookie {
        let mut parts = header.split(';');
        let (name, value) = parts
            .next()
            .and_then(|nv| nv.split_once('='))
            .unwrap_or_else(|| panic!("Set-Cookie without name=value: {header:?}"));
        let attrs = parts
            .map(|a| match a.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_owned())),
                None => (a.trim().to_ascii_lowercase(), None),
            })
            .collect();
        SetCookie { name: name.trim().to_owned(), value: value.trim().to_owned(), attrs }
    }

    /// The value of attribute `name` (case-insensitive); `Some(None)` for a flag.
    pub fn attr(&self, name: &str) -> Option<Option<&str>> {
        let name = name.to_ascii_lowercase();
        self.attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_deref())
    }

    pub fn has_flag(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    pub fn max_age(&self) -> i64 {
        self.attr("max-age")
            .flatten()
            .unwrap_or_else(|| panic!("{} has a Max-Age: {self:?}", self.name))
            .parse()
            .expect("Max-Age is an integer")
    }

    /// What a browser requires of a `__Host-` cookie, or it ignores the header: Secure,
    /// `Path=/`, no `Domain`.
    pub fn assert_host_prefix_rules(&self) {
        assert!(self.name.starts_with("__Host-"), "{self:?}");
        assert!(self.has_flag("secure"), "{} is Secure: {self:?}", self.name);
        assert_eq!(self.attr("path"), Some(Some("/")), "{} has Path=/: {self:?}", self.name);
        assert_eq!(self.attr("domain"), None, "{} has no Domain: {self:?}", self.name);
    }
}

/// The cookies a browser would hold after a cookie-transport login.
#[derive(Debug, Clone)]
pub struct Cookies {
    pub session: String,
    pub csrf: String,
}

impl Cookies {
    pub fn header(&self) -> String {
        format!("{SESSION_COOKIE}={}; {CSRF_COOKIE}={}", self.session, self.csrf)
    }

    pub fn from_reply(reply: &Reply) -> Cookies {
        Cookies { session: reply.set_cookie(SESSION_COOKIE).value, csrf: reply.set_cookie(CSRF_COOKIE).value }
    }
}

pub struct BearerLogin {
    pub body: Value,
    pub token: String,
    pub session_id: String,
    pub user_id: String,
}

impl BearerLogin {
    pub fn from_reply(reply: Reply) -> BearerLogin {
        assert_eq!(reply.status, StatusCode::OK, "bearer login: {}", reply.text);
        let body = reply.json();
        let token = body["session_token"].as_str().expect("session_token in the body").to_owned();
        BearerLogin {
            session_id: body["session"]["id"].as_str().expect("session.id").to_owned(),
            user_id: body["user"]["id"].as_str().expect("user.id").to_owned(),
            token,
            body,
        }
    }
}

pub struct CookieLogin {
    pub reply: Reply,
    pub body: Value,
    pub cookies: Cookies,
    pub session_id: String,
    pub user_id: String,
}

impl CookieLogin {
    pub fn from_reply(reply: Reply) -> CookieLogin {
        assert_eq!(reply.status, StatusCode::OK, "cookie login: {}", reply.text);
        let body = reply.json();
        let cookies = Cookies::from_reply(&reply);
        CookieLogin {
            session_id: body["session"]["id"].as_str().expect("session.id").to_owned(),
            user_id: body["user"]["id"].as_str().expect("user.id").to_owned(),
            body,
            cookies,
            reply,
        }
    }
}

/// Adds a browser's cookies (and, for unsafe methods, the CSRF header) to a request, or a
/// bearer client's token.
pub trait WithCookies {
    fn cookies(self, cookies: &Cookies) -> Self;
    fn csrf(self, token: &str) -> Self;
    /// `Authorization: Bearer <token>` and `Tessera-Transport: bearer`: the transport decides
    /// which credential is read, and the harness's servers default to the cookie transport.
    fn bearer(self, token: &str) -> Self;
}

impl WithCookies for RequestBuilder {
    fn cookies(self, cookies: &Cookies) -> Self {
        self.header("cookie", cookies.header())
    }

    fn csrf(self, token: &str) -> Self {
        self.header("x-csrf-token", token)
    }

    fn bearer(self, token: &str) -> Self {
        self.bearer_auth(token).header("tessera-transport", "bearer")
    }
}

pub fn parse_ts(v: &Value) -> OffsetDateTime {
    let s = v.as_str().unwrap_or_else(|| panic!("timestamp is a string: {v}"));
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{s:?} is RFC 3339: {e}"))
}

pub fn is_b64url(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A well-formed id that names nothing.
pub fn random_id() -> String {
    tessera_core::SessionId::generate().to_string()
}

/// The `tessera` binary, started in `cwd` with no `TESSERA_*` variable inherited.
pub fn bare_tessera(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars() {
        if key.starts_with("TESSERA_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs a command that should finish on its own, feeding it `stdin`, off the async workers.
/// A command still running after `limit` is killed and the test fails.
pub async fn run_cmd(cmd: Command, stdin: Option<String>, limit: StdDuration) -> Output {
    tokio::task::spawn_blocking(move || run_cmd_blocking(cmd, stdin, limit))
        .await
        .expect("the command runner does not panic")
}

fn run_cmd_blocking(mut cmd: Command, stdin: Option<String>, limit: StdDuration) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().expect("the command starts"));
    if let Some(input) = stdin {
        let mut pipe = child.0.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let stdout = drain(child.0.stdout.take().expect("stdout"));
    let stderr = drain(child.0.stderr.take().expect("stderr"));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(start.elapsed() < limit, "the command finished within {limit:?} (and did not start serving)");
        std::thread::sleep(StdDuration::from_millis(20));
    };
    Output { status, stdout: stdout.join().expect("stdout reader"), stderr: stderr.join().expect("stderr reader") }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// A child process that is killed (by its own handle) when the test is done with it,
/// whether the test passed or failed.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
