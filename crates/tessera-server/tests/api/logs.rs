//! What `tessera serve` writes to its logs: JSON lines with `log.format = "json"`, readable
//! lines without colour codes when the output is not a terminal, and in neither format a
//! password, a token, a CSRF token or a configured key — checked by running real flows with
//! known secrets against a `tessera serve` process at the most verbose log level and
//! searching everything it printed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{KillOnDrop, PASSWORD, WRONG_PASSWORD, bare_tessera};

const ADMIN_KEY: &str = "log-suite-admin-key-0123456789abcdef";
const METRICS_KEY: &str = "log-suite-metrics-key-0123456789abcdef";
const SEAL_KEY: &str = "bG9nLXN1aXRlLXNlYWwta2V5LTAxMjM0NTY3ODlhYmM";
const NEW_PASSWORD: &str = "a brand new passphrase for the log test";

/// A `tessera serve` process whose standard output and error go to files.
struct Server {
    child: KillOnDrop,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(toml: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("tessera.toml"), toml).expect("write config");
        let out = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
        let err = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let mut cmd: Command = bare_tessera(dir.path());
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "trace")
            .env("TESSERA_JWT__SEAL_KEY", SEAL_KEY)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = KillOnDrop(cmd.spawn().expect("tessera serve starts"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let printed = std::fs::read_to_string(dir.path().join("stdout")).unwrap_or_default();
            if let Some(rest) = printed.split("listening on http://127.0.0.1:").nth(1) {
                break rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().expect("port");
            }
            assert!(
                Instant::now() < deadline,
                "tessera serve did not start: {printed}\n{}",
                read(dir.path(), "stderr")
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Server { child, port, dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops the server (SIGTERM, by pid) and returns everything it wrote (stdout, stderr).
    fn stop(mut self) -> (String, String) {
        let pid = self.child.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.0.try_wait().expect("wait").is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        (read(self.dir.path(), "stdout"), read(self.dir.path(), "stderr"))
    }
}

fn read(dir: &Path, name: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(dir.join(name)).unwrap_or_default()).into_owned()
}

/// Every credential flow of the hybrid mode with the bearer and the cookie transports; returns
/// every secret the client saw or sent.
async fn run_flows(server: &Server) -> Vec<String> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let creds = json!({"username": "alice", "password": PASSWORD});
    let r = client.post(server.url("/v1/accounts")).json(&creds).send().await.expect("sign-up");
    assert_eq!(r.status(), 201);
    let bearer = |rb: reqwest::RequestBuilder| rb.header("tessera-transport", "bearer");
    let login: Value = bearer(client.post(server.url("/v1/login")))
        .json(&creds)
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let access = login["access_token"].as_str().expect("access token").to_owned();
    let refresh = login["refresh_token"].as_str().expect("refresh token").to_owned();
    let r = bearer(client.get(server.url("/v1/me"))).bearer_auth(&access).send().await.expect("me");
    assert_eq!(r.status(), 200);
    let wrong = json!({"username": "alice", "password": WRONG_PASSWORD});
    let r = bearer(client.post(server.url("/v1/login"))).json(&wrong).send().await.expect("failed login");
    assert_eq!(r.status(), 401);
    let renewed: Value = bearer(client.post(server.url("/v1/refresh")))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let access2 = renewed["access_token"].as_str().expect("access token").to_owned();
    let refresh2 = renewed["refresh_token"].as_str().expect("refresh token").to_owned();
    let r = client
        .post(server.url("/v1/introspect"))
        .bearer_auth(ADMIN_KEY)
        .form(&[("token", access2.as_str())])
        .send()
        .await
        .expect("introspect");
    assert_eq!(r.status(), 200);
    let r = client.get(server.url("/metrics")).bearer_auth(METRICS_KEY).send().await.expect("metrics");
    assert_eq!(r.status(), 200);

    let r = bearer(client.post(server.url("/v1/logout"))).bearer_auth(&access2).send().await.expect("logout");
    assert_eq!(r.status(), 204);

    // The cookie transport: cookies, and the CSRF token.
    let r = client.post(server.url("/v1/login")).json(&creds).send().await.expect("cookie login");
    assert_eq!(r.status(), 200);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let body: Value = r.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf token").to_owned();
    let r = client
        .post(server.url("/v1/password"))
        .header("cookie", cookies.join("; "))
        .header("x-csrf-token", &csrf)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .expect("password change");
    assert_eq!(r.status(), 204, "{:?}", r.text().await);

    let mut secrets = vec![
        PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        NEW_PASSWORD.to_owned(),
        ADMIN_KEY.to_owned(),
        METRICS_KEY.to_owned(),
        SEAL_KEY.to_owned(),
        access,
        refresh,
        access2,
        refresh2,
        csrf,
    ];
    secrets
        .extend(cookies.iter().filter_map(|c| c.split_once('=').map(|(_, v)| v.to_owned())).filter(|v| !v.is_empty()));
    secrets
}

fn config(format: &str) -> String {
    format!(
        "[auth]\nmode = \"hybrid\"\n[log]\nformat = \"{format}\"\n[admin]\napi_key = \"{ADMIN_KEY}\"\n\
         [metrics]\naccess = \"key\"\nkey = \"{METRICS_KEY}\"\n"
    )
}

fn assert_no_secret(printed: &str, secrets: &[String]) {
    for secret in secrets {
        // A JWT's signature alone is as good as the token; look for every part of it.
        for part in secret.split('.').filter(|p| p.len() >= 16) {
            assert!(!printed.contains(part), "a secret ({}…) is in the log:\n{printed}", &part[..8]);
        }
    }
}

#[tokio::test]
async fn json_logs_are_json_lines_and_carry_no_secret() {
    let server = Server::start(&config("json"));
    let secrets = run_flows(&server).await;
    let (stdout, stderr) = server.stop();
    assert!(stderr.lines().count() > 10, "the trace level writes plenty: {stderr}");
    for line in stderr.lines() {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(parsed["level"].is_string() && parsed["timestamp"].is_string(), "{line}");
    }
    assert!(stderr.contains("\"login_failed\""), "the audit events are logged: {stderr}");
    assert_no_secret(&stderr, &secrets);
    assert_no_secret(&stdout, &secrets);
}

#[tokio::test]
async fn readable_logs_have_no_colour_codes_off_a_terminal_and_carry_no_secret() {
    let server = Server::start(&config("text"));
    let secrets = run_flows(&server).await;
    let (stdout, stderr) = server.stop();
    assert!(stderr.contains("login_failed"), "the audit events are logged: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no ANSI escape codes in a log written to a file");
    assert!(stderr.lines().all(|l| !l.trim_start().starts_with('{')), "readable, not JSON");
    assert_no_secret(&stderr, &secrets);
    assert_no_secret(&stdout, &secrets);
}
