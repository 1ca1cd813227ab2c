//! `tessera serve` as separate processes on the distributed backend, configured the way an
//! operator would: `TESSERA_*` environment variables, nothing inherited from the test's own
//! environment, an empty working directory (so no `tessera.toml` is picked up).
//!
//! A [`Deployment`] is one configuration (backend + mode + settings) that any number of
//! [`Instance`]s share, and that `tessera` CLI commands run with too. An [`Instance`] speaks the
//! HTTP API with the bearer transport (credentials in JSON bodies and `Authorization`).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::process::Process;
use super::{PASSWORD, eventually, free_port, run};

/// The admin key of a deployment made `.with("ADMIN__API_KEY", ADMIN_KEY)`, for introspection.
pub const ADMIN_KEY: &str = "distributed-tests-admin-key-0123456789";

/// From spawn to answering `/healthz` (migrations included).
const START_LIMIT: Duration = Duration::from_secs(30);
/// Any one request: far above every store timeout, so a hang shows as a failure, not a stall.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the instances keep their state.
#[derive(Clone, Debug)]
pub struct Backend {
    pub postgres_url: String,
    pub redis_url: String,
    pub redis_cluster: bool,
    pub redis_prefix: String,
}

impl Backend {
    /// A standalone Redis (not a cluster) beside a PostgreSQL, under key prefix `prefix`.
    pub fn standalone(postgres_url: String, redis_url: String, prefix: impl Into<String>) -> Backend {
        Backend { postgres_url, redis_url, redis_cluster: false, redis_prefix: prefix.into() }
    }
}

/// One configuration of tessera, shared by its instances and its CLI commands.
pub struct Deployment {
    env: Vec<(String, String)>,
    dir: TempDir,
}

impl Deployment {
    /// `mode` (`session` or `hybrid`), bearer transport, on `backend`.
    pub fn new(backend: &Backend, mode: &str) -> Deployment {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("unused-embedded-store").display().to_string();
        let deployment = Deployment { env: Vec::new(), dir };
        deployment
            .with("STORE__POSTGRES_URL", &backend.postgres_url)
            .with("STORE__REDIS_URL", &backend.redis_url)
            .with("STORE__REDIS_CLUSTER", if backend.redis_cluster { "true" } else { "false" })
            .with("STORE__REDIS_PREFIX", &backend.redis_prefix)
            .with("STORE__DATA_DIR", &data_dir)
            .with("AUTH__MODE", mode)
            .with("AUTH__TRANSPORTS", r#"["bearer"]"#)
    }

    /// Sets `TESSERA_<key>` (e.g. `with("REVOCATION__CHECK", "denylist")`).
    pub fn with(mut self, key: &str, value: &str) -> Deployment {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The `tessera` binary with this deployment's environment and nothing else of tessera's.
    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.current_dir(self.dir.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("TESSERA_") {
                cmd.env_remove(key);
            }
        }
        for (key, value) in &self.env {
            cmd.env(format!("TESSERA_{key}"), value);
        }
        // Plain logs: the last lines are printed when a test fails. (`RUST_LOG` is inherited.)
        cmd.env("NO_COLOR", "1");
        cmd
    }

    /// Starts one instance and waits until it answers.
    pub async fn start(&self, name: &str) -> Instance {
        self.spawn(name).ready().await
    }

    /// Starts several instances at once, on a store none of them has seen (they race to
    /// apply the migrations and to create the first signing key), and waits for them all.
    pub async fn start_many(&self, names: &[&str]) -> Vec<Instance> {
        let starting: Vec<Starting> = names.iter().map(|name| self.spawn(name)).collect();
        join_all(starting.into_iter().map(Starting::ready)).await
    }

    /// Starts `tessera serve` expecting it to refuse to start: returns the end of its output
    /// and how long it took to exit. Fails the test if it exits successfully or is still
    /// running after [`START_LIMIT`] (a hang is not a refusal).
    pub async fn serve_refused(&self) -> (String, Duration) {
        let mut process = self.spawn("expected to refuse").process;
        let what = format!("{} exits", process.name());
        let (status, took) = eventually(&what, START_LIMIT, Duration::from_millis(25), || {
            let status = process.exited();
            async move { status }
        })
        .await;
        let log = process.log_tail();
        assert!(!status.success(), "tessera serve exited successfully ({status}) instead of refusing\n{log}");
        (log, took)
    }

    fn spawn(&self, name: &str) -> Starting {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut cmd = self.command();
        cmd.arg("serve").env("TESSERA_SERVER__LISTEN", addr.to_string());
        let process = Process::spawn(&format!("tessera {name} ({addr})"), cmd);
        Starting { name: name.to_owned(), addr, process }
    }

    /// Runs `tessera args…` (e.g. `keys rotate`) to completion and returns its output; fails
    /// the test if it fails.
    pub async fn cli_ok(&self, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        let output = run(cmd).await;
        assert!(
            output.status.success(),
            "tessera {args:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

/// Joins futures without a dependency on `futures`: each is spawned, then awaited in turn.
async fn join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
    }
    out
}

struct Starting {
    name: String,
    addr: SocketAddr,
    process: Process,
}

impl Starting {
    async fn ready(mut self) -> Instance {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("reqwest client");
        let url = format!("http://{}/healthz", self.addr);
        let what = format!("{} answers /healthz", self.process.name());
        let process = &mut self.process;
        eventually(&what, START_LIMIT, Duration::from_millis(25), || {
            if let Some(status) = process.exited() {
                panic!("{} exited ({status}) while starting\n{}", process.name(), process.log_tail());
            }
            let probe = client.get(&url).send();
            async move { probe.await.ok().filter(|r| r.status() == StatusCode::OK).map(|_| ()) }
        })
        .await;
        Instance { api: Api { name: self.name, addr: self.addr, client }, process: self.process }
    }
}

/// One running `tessera serve`; its HTTP API through [`Api`].
pub struct Instance {
    api: Api,
    process: Process,
}

impl Instance {
    /// `SIGKILL`: no graceful shutdown, connections cut mid-request.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Everything the instance has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

impl std::ops::Deref for Instance {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The HTTP API of one instance, bearer transport. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    pub name: String,
    pub addr: SocketAddr,
    client: reqwest::Client,
}

/// What a bearer login or refresh in the token modes hands out.
#[derive(Clone, Debug)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request; `Err` only when no answer arrives (connection refused or cut).
    pub async fn try_request(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Result<Reply> {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(token) = bearer {
            rb = rb.bearer_auth(token);
        }
        if let Some(body) = body {
            rb = rb.json(body);
        }
        let resp = rb.send().await?;
        let status = resp.status();
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = resp.text().await?;
        Ok(Reply { status, content_type, text, from: self.name.clone() })
    }

    async fn request(&self, method: reqwest::Method, path: &str, bearer: Option<&str>, body: Option<&Value>) -> Reply {
        self.try_request(method.clone(), path, bearer, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} on {} gets no answer: {e}", self.name))
    }

    /// A form-encoded POST, as RFC 7009 and RFC 7662 want.
    pub async fn post_form(&self, path: &str, bearer: Option<&str>, fields: &[(&str, &str)]) -> Reply {
        let mut rb = self.client.post(self.url(path)).form(fields);
        if let Some(token) = bearer {
            rb = rb.bearer_auth(token);
        }
        let resp = rb.send().await.unwrap_or_else(|e| panic!("POST {path} on {} gets no answer: {e}", self.name));
        let status = resp.status();
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = resp.text().await.unwrap_or_else(|e| panic!("POST {path} on {}: no body: {e}", self.name));
        Reply { status, content_type, text, from: self.name.clone() }
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        self.request(reqwest::Method::GET, path, bearer, None).await
    }

    pub async fn post(&self, path: &str, bearer: Option<&str>, body: Option<&Value>) -> Reply {
        self.request(reqwest::Method::POST, path, bearer, body).await
    }

    pub async fn signup(&self, username: &str) -> Reply {
        self.post("/v1/accounts", None, Some(&json!({"username": username, "password": PASSWORD}))).await
    }

    pub async fn signup_ok(&self, username: &str) {
        self.signup(username).await.assert_status(201, &format!("sign-up of {username}"));
    }

    pub async fn login(&self, username: &str) -> Reply {
        self.post("/v1/login", None, Some(&json!({"username": username, "password": PASSWORD}))).await
    }

    /// Session mode: the session token.
    pub async fn login_session(&self, username: &str) -> String {
        let reply = self.login(username).await;
        reply.assert_status(200, &format!("login of {username}"));
        reply.json()["session_token"].as_str().expect("session_token in the body").to_owned()
    }

    /// Token modes: the access and refresh tokens.
    pub async fn login_tokens(&self, username: &str) -> TokenPair {
        let reply = self.login(username).await;
        reply.assert_status(200, &format!("login of {username}"));
        reply.token_pair()
    }

    pub async fn me(&self, token: &str) -> Reply {
        self.get("/v1/me", Some(token)).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post("/v1/refresh", None, Some(&json!({"refresh_token": refresh_token}))).await
    }

    pub async fn refresh_ok(&self, refresh_token: &str) -> TokenPair {
        let reply = self.refresh(refresh_token).await;
        reply.assert_status(200, "refresh");
        reply.token_pair()
    }

    pub async fn logout(&self, token: &str) -> Reply {
        self.post("/v1/logout", Some(token), None).await
    }

    pub async fn logout_all(&self, token: &str) -> Reply {
        self.post("/v1/logout-all", Some(token), None).await
    }

    /// `POST /v1/revoke` (RFC 7009) of any token.
    pub async fn revoke(&self, token: &str) -> Reply {
        self.post_form("/v1/revoke", None, &[("token", token)]).await
    }

    /// `POST /v1/introspect` (RFC 7662) with [`ADMIN_KEY`].
    pub async fn introspect(&self, token: &str) -> Reply {
        self.post_form("/v1/introspect", Some(ADMIN_KEY), &[("token", token)]).await
    }

    pub async fn readyz(&self) -> Reply {
        self.get("/readyz", None).await
    }

    /// Polls `GET /v1/me` with `token` (about every 2 ms) until it gets 401, and returns how
    /// long that took. A 200 after `limit`, or any other answer, fails the test.
    pub async fn refused_within(&self, token: &str, limit: Duration, what: &str) -> Duration {
        let start = std::time::Instant::now();
        loop {
            let reply = self.me(token).await;
            match reply.status.as_u16() {
                401 => return start.elapsed(),
                200 => assert!(
                    start.elapsed() < limit,
                    "{what}: still accepted by {} {:?} later (bound {limit:?})",
                    self.name,
                    start.elapsed()
                ),
                _ => panic!("{what}: {} answered {} {}", self.name, reply.status, reply.text),
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The key ids `/.well-known/jwks.json` publishes, sorted.
    pub async fn jwks_kids(&self) -> Vec<String> {
        let reply = self.get("/.well-known/jwks.json", None).await;
        reply.assert_status(200, "JWKS");
        let mut kids: Vec<String> = reply.json()["keys"]
            .as_array()
            .expect("keys is an array")
            .iter()
            .map(|k| k["kid"].as_str().expect("every key has a kid").to_owned())
            .collect();
        kids.sort();
        kids
    }
}

/// A fully read answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
    /// The instance that answered, for messages.
    pub from: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    pub fn assert_status(&self, status: u16, context: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{context} on {}: expected {status}, got {} {}",
            self.from,
            self.status,
            self.text
        );
    }

    /// 503 with the problem document for an unavailable store (RFC 9457), not a 500 or a
    /// stack trace.
    pub fn assert_unavailable(&self, context: &str) {
        self.assert_status(503, context);
        assert!(
            self.content_type.starts_with("application/problem+json"),
            "{context} on {}: a 503 is application/problem+json, got {:?}",
            self.from,
            self.content_type
        );
        assert_eq!(self.json()["type"], "urn:tessera:problem:unavailable", "{context} on {}: {}", self.from, self.text);
    }

    fn token_pair(&self) -> TokenPair {
        let body = self.json();
        let field = |name: &str| {
            body[name].as_str().unwrap_or_else(|| panic!("{name} in the answer of {}: {body}", self.from)).to_owned()
        };
        TokenPair { access: field("access_token"), refresh: field("refresh_token") }
    }
}

/// The `kid` in a JWT's header.
pub fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().expect("a JWT has a header");
    let bytes = URL_SAFE_NO_PAD.decode(header).expect("the header is base64url");
    let header: Value = serde_json::from_slice(&bytes).expect("the header is JSON");
    header["kid"].as_str().expect("the header names a kid").to_owned()
}
