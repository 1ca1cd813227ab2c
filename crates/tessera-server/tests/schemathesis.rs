//! Schemathesis (property-based API testing, from PyPI) against the running server, in each
//! mode: it reads `/openapi.json`, generates valid and invalid requests for every operation and
//! checks that no answer is a server error, that every status and content type is one the
//! document names, and that every body matches its schema.
//!
//! It runs authenticated: the document's `bearer` scheme gets a user's token and `admin_key`
//! the admin key, so the generated requests reach past the credential check. The operations
//! that end the caller's session (logout, logout-all, password change) run last, in a run of
//! their own with another user's token, so the first run keeps a valid token throughout.
//!
//! Schemathesis lives in the virtualenv `bash scripts/test` creates
//! (`target/schemathesis-venv`; `TESSERA_SCHEMATHESIS` names another binary). Without it the
//! test fails and says how to get it; it is never skipped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tessera_core::{Clock, SystemClock};
use tessera_server::config::Config;
use tessera_server::startup::Application;

const ADMIN_KEY: &str = "schemathesis-admin-key-0123456789abcdef";
const PASSWORD: &str = "correct horse battery staple";
/// The operations that end the caller's session: tested last, with a token of their own.
const ENDS_THE_SESSION: [&str; 3] = ["logout", "logout_all", "change_password"];
/// Test cases per operation and phase: the whole run (three modes) stays within minutes.
const MAX_EXAMPLES: &str = "10";
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("TESSERA_SCHEMATHESIS") {
        return path.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("schemathesis-venv/bin/schemathesis")
}

fn require_schemathesis() -> PathBuf {
    let bin = schemathesis();
    let version = Command::new(&bin).arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "Schemathesis is missing: {} does not run ({:?}). `bash scripts/test` creates the virtualenv \
         (target/schemathesis-venv) with it; or set TESSERA_SCHEMATHESIS to a schemathesis binary.",
        bin.display(),
        version.err()
    );
    bin
}

struct Server {
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(mode_toml: &str) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let toml = format!("{mode_toml}\n[admin]\napi_key = \"{ADMIN_KEY}\"\n");
        let mut config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("configuration: {e:?}\n{toml}"));
        config.server.listen = "127.0.0.1:0".parse().expect("address");
        config.store.data_dir = dir.path().to_path_buf();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let app = Application::build(config, clock).await.unwrap_or_else(|e| panic!("Application::build: {e:?}"));
        let base = format!("http://{}", app.local_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        Server { base, client, stop: Some(tx), task, _dir: dir }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Tessera-Transport", "bearer")
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A new account, logged in with the bearer transport: its token.
    async fn user_token(&self, username: &str) -> String {
        let (status, body) = self.post("/v1/accounts", json!({"username": username, "password": PASSWORD})).await;
        assert_eq!(status, 201, "sign-up: {body}");
        let (status, body) = self.post("/v1/login", json!({"username": username, "password": PASSWORD})).await;
        assert_eq!(status, 200, "login: {body}");
        body["session_token"].as_str().or(body["access_token"].as_str()).expect("a token in login's answer").to_owned()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let stopped = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        stopped.expect("the server stops").expect("the server task does not panic").expect("the server ran");
    }
}

/// One `schemathesis run` against `server`, with `token` for the bearer scheme; `filter` selects
/// operations (`--include-operation-id …` / `--exclude-operation-id …`).
fn run(bin: &PathBuf, server: &Server, mode: &str, token: &str, filter: &[String]) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("schemathesis.toml");
    // Auth by the document's security scheme names: each operation gets what it asks for.
    let text =
        format!("[auth.openapi.bearer]\nbearer = \"{token}\"\n\n[auth.openapi.admin_key]\nbearer = \"{ADMIN_KEY}\"\n");
    std::fs::write(&config, text).expect("write schemathesis.toml");
    let output = Command::new(bin)
        .current_dir(dir.path())
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/openapi.json", server.base))
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: Python 3.11's `ast` is not thread-safe, and Hypothesis parses with it.
        .args(["--workers", "1"])
        .args(["--seed", "20261129"])
        .args(["--request-timeout", "20"])
        .args(filter)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let report = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("== schemathesis, {mode} mode, {filter:?}\n{report}");
    if output.status.success() { Ok(()) } else { Err(format!("{mode} mode, {filter:?}:\n{report}")) }
}

async fn check_mode(mode: &str, mode_toml: &str) -> Vec<String> {
    let bin = require_schemathesis();
    let server = Server::start(mode_toml).await;
    let token = server.user_token("alice").await;
    let other = server.user_token("bob").await;
    let mut failures = Vec::new();
    let exclude: Vec<String> =
        ENDS_THE_SESSION.iter().flat_map(|id| ["--exclude-operation-id".to_owned(), (*id).to_owned()]).collect();
    let include: Vec<String> =
        ENDS_THE_SESSION.iter().flat_map(|id| ["--include-operation-id".to_owned(), (*id).to_owned()]).collect();
    for (token, filter) in [(token, exclude), (other, include)] {
        let (bin, base) = (bin.clone(), &server);
        // The run blocks for its whole length; the server keeps answering on the runtime.
        let result = tokio::task::block_in_place(|| run(&bin, base, mode, &token, &filter));
        failures.extend(result.err());
    }
    server.stop().await;
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_in_session_mode() {
    let failures = check_mode("session", "[auth]\nmode = \"session\"\n").await;
    assert!(failures.is_empty(), "Schemathesis found problems:\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_in_hybrid_mode() {
    let failures = check_mode("hybrid", "[auth]\nmode = \"hybrid\"\n").await;
    assert!(failures.is_empty(), "Schemathesis found problems:\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_in_jwt_mode() {
    let failures = check_mode("jwt", "[auth]\nmode = \"jwt\"\n").await;
    assert!(failures.is_empty(), "Schemathesis found problems:\n{}", failures.join("\n"));
}
