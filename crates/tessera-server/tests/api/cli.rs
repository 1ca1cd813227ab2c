//! The `tessera` command: `serve` from an empty directory, configuration errors that name the
//! key, and the administration commands acting on the store of a running server. In the
//! distributed suite "no configuration" means only the environment naming PostgreSQL and
//! Redis: the embedded store's default `./tessera-data` must then stay untouched.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::backend::{TestStore, distributed};
use crate::helpers::{KillOnDrop, PASSWORD, TestApp, bare_tessera, run_cmd, spawn_app};

/// How long a command that should finish at once may take before the test calls it hung.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

async fn run(cmd: Command) -> Output {
    run_cmd(cmd, None, COMMAND_LIMIT).await
}

async fn run_with_stdin(cmd: Command, input: &str) -> Output {
    run_cmd(cmd, Some(input.to_owned()), COMMAND_LIMIT).await
}

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} succeeds; status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts a non-zero exit whose stderr names `key` (in any case: an environment override is
/// reported the way it was spelt, `AUTH.MODE`).
fn assert_fails_naming(out: &Output, key: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exits non-zero; stderr: {stderr}");
    assert!(stderr.to_lowercase().contains(key), "stderr names {key:?}: {stderr}");
}

async fn cli_user_add(app: &TestApp, name: &str) {
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = app.tessera_cmd(cwd.path());
    cmd.args(["user", "add", name, "--password-stdin"]);
    assert_success(&run_with_stdin(cmd, &format!("{PASSWORD}\n")).await, "tessera user add");
}

/// `tessera` from `cwd` with no configuration: the embedded store then lives in
/// `./tessera-data`; the distributed one is named by the environment alone.
fn unconfigured_tessera(cwd: &Path, store: &TestStore) -> Command {
    let mut cmd = bare_tessera(cwd);
    if distributed() {
        store.configure_env(&mut cmd);
    }
    cmd
}

/// A `tessera serve` child whose stdout is read line by line on a thread.
struct Serving {
    child: KillOnDrop,
    lines: mpsc::Receiver<String>,
    printed: String,
}

impl Serving {
    fn start(mut cmd: Command) -> Serving {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = KillOnDrop(cmd.spawn().expect("tessera serve starts"));
        let stdout = child.0.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Serving { child, lines, printed: String::new() }
    }

    /// Reads stdout until the `listening on http://127.0.0.1:<port>` line; returns the port.
    fn port(&mut self) -> u16 {
        let deadline = Instant::now() + COMMAND_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no listening line on stdout ({e}); printed: {}", self.printed));
            self.printed.push_str(&line);
            self.printed.push('\n');
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return digits.parse().expect("a port number");
            }
        }
    }

    /// Sends SIGTERM to this child (by pid) and waits up to 10 s for it to exit.
    fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.0.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.0.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "tessera serve exits within 10 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.printed.push_str(&line);
            self.printed.push('\n');
        }
        status
    }
}

/// `GET /healthz` over a plain socket; returns the status line.
fn healthz_status_line(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn serve_without_config_listens_creates_database_and_stops_on_sigterm() {
    let store = TestStore::new();
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = unconfigured_tessera(cwd.path(), &store);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut serving = Serving::start(cmd);
    let port = serving.port();
    assert_ne!(port, 0);
    assert!(healthz_status_line(port).starts_with("HTTP/1.1 200"), "healthz answers 200");
    let default_dir = cwd.path().join("tessera-data");
    if distributed() {
        assert!(store.is_migrated(), "the schema holds tessera's tables");
        assert!(!default_dir.exists(), "nothing was written to ./tessera-data");
    } else {
        assert!(default_dir.join("tessera.db").is_file(), "./tessera-data/tessera.db exists");
    }
    let status = serving.terminate();
    assert!(status.success(), "exit status 0 after SIGTERM: {status:?}");
    let printed = &serving.printed;
    let store_shown = if distributed() { "postgres + redis" } else { "tessera-data" };
    assert!(printed.contains(store_shown), "stdout shows where the data lives ({store_shown}): {printed}");
    assert!(["session", "jwt", "hybrid"].iter().any(|m| printed.contains(m)), "stdout shows the mode: {printed}");
}

#[test]
fn serve_prints_the_configured_mode() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let store = TestStore::new();
    std::fs::write(cwd.path().join("tessera.toml"), "[auth]\nmode = \"session\"\n").expect("write config");
    let mut cmd = unconfigured_tessera(cwd.path(), &store);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut serving = Serving::start(cmd);
    serving.port();
    let status = serving.terminate();
    assert!(status.success(), "{status:?}");
    assert!(serving.printed.contains("session"), "stdout shows the mode: {}", serving.printed);
}

#[test]
fn serve_exits_promptly_on_sigterm_with_an_idle_keep_alive_connection() {
    // Browsers keep idle connections open; a graceful shutdown must not wait on them.
    let store = TestStore::new();
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = unconfigured_tessera(cwd.path(), &store);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut serving = Serving::start(cmd);
    let port = serving.port();
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("write");
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).expect("an answer");
    assert_eq!(&first, b"HTTP/1.1 200");
    let start = Instant::now();
    let status = serving.terminate();
    assert!(status.success(), "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "exited after {:?}", start.elapsed());
    drop(idle);
}

#[tokio::test]
async fn serve_with_unknown_config_key_fails_naming_the_key() {
    let cwd = tempfile::tempdir().expect("temp dir");
    std::fs::write(cwd.path().join("tessera.toml"), "[auth]\nmode = \"session\"\nmoed = \"session\"\n").expect("write");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    assert_fails_naming(&run(cmd).await, "moed");
}

#[tokio::test]
async fn serve_with_bad_duration_fails_naming_the_key() {
    let cwd = tempfile::tempdir().expect("temp dir");
    std::fs::write(cwd.path().join("tessera.toml"), "[auth]\nmode = \"session\"\n[session]\nidle_timeout = \"soon\"\n")
        .expect("write");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    assert_fails_naming(&run(cmd).await, "idle_timeout");
}

#[tokio::test]
async fn serve_with_bad_environment_override_fails_naming_the_key() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).env("TESSERA_AUTH__MODE", "bogus");
    assert_fails_naming(&run(cmd).await, "mode");
}

#[tokio::test]
async fn serve_with_missing_config_file_fails() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config", "does-not-exist.toml"]);
    let out = run(cmd).await;
    assert!(!out.status.success(), "an explicit --config that does not exist is an error");
}

#[tokio::test]
async fn migrate_creates_the_database() {
    let store = TestStore::new();
    let cwd = tempfile::tempdir().expect("temp dir");
    let migrate = || {
        let mut cmd = bare_tessera(cwd.path());
        store.configure_env(&mut cmd);
        cmd.arg("migrate").env("TESSERA_AUTH__MODE", "session");
        cmd
    };
    assert!(!store.is_migrated());
    assert_success(&run(migrate()).await, "tessera migrate");
    assert!(store.is_migrated(), "the store named by the environment was created");
    // Running it again is harmless.
    assert_success(&run(migrate()).await, "tessera migrate, again");
}

#[tokio::test]
async fn config_flag_works_for_every_subcommand() {
    let store = TestStore::new();
    let cwd = tempfile::tempdir().expect("temp dir");
    let config = cwd.path().join("elsewhere.toml");
    std::fs::write(&config, format!("[auth]\nmode = \"session\"\n{}", store.toml_section())).expect("write config");
    let config = config.to_str().expect("utf-8 path");

    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["migrate", "--config", config]);
    assert_success(&run(cmd).await, "tessera migrate --config");
    assert!(store.is_migrated(), "the database is where the config file says");

    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["--config", config, "user", "add", "bob", "--password-stdin"]);
    assert_success(&run_with_stdin(cmd, &format!("{PASSWORD}\n")).await, "tessera --config … user add");

    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["user", "list", "--config", config]);
    let out = run(cmd).await;
    assert_success(&out, "tessera user list --config");
    assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.contains("bob")));

    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["sessions", "revoke", "bob", "--config", config]);
    assert_success(&run(cmd).await, "tessera sessions revoke --config");

    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["user", "disable", "bob", "--config", config]);
    assert_success(&run(cmd).await, "tessera user disable --config");

    assert!(!cwd.path().join("tessera-data").exists(), "nothing was written to the default data dir");
}

#[tokio::test]
async fn user_added_by_cli_logs_in_to_a_running_server() {
    let app = spawn_app().await;
    cli_user_add(&app, "Carol").await;
    let login = app.login_bearer("carol", PASSWORD).await;
    assert_eq!(login.body["user"]["username"], "carol");
    app.signup("carol", PASSWORD).await.assert_problem(409, "username-taken");
}

#[tokio::test]
async fn user_add_works_when_signup_is_closed() {
    let app = crate::helpers::spawn_app_with("[auth]\nmode = \"session\"\nsignup = false\n").await;
    cli_user_add(&app, "dave").await;
    app.login_bearer("dave", PASSWORD).await;
}

#[tokio::test]
async fn user_add_with_too_short_password_fails() {
    let app = spawn_app().await;
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = app.tessera_cmd(cwd.path());
    cmd.args(["user", "add", "erin", "--password-stdin"]);
    let out = run_with_stdin(cmd, "short\n").await;
    assert!(!out.status.success(), "a 5-byte password is refused");
    app.login("erin", "short", Some("bearer")).await.assert_401("invalid-credentials");
}

#[tokio::test]
async fn user_add_of_taken_username_fails() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = app.tessera_cmd(cwd.path());
    cmd.args(["user", "add", "ALICE", "--password-stdin"]);
    let out = run_with_stdin(cmd, "another password\n").await;
    assert!(!out.status.success(), "the username is taken");
    app.login_bearer("alice", PASSWORD).await;
}

#[tokio::test]
async fn user_list_prints_a_line_per_user() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = app.tessera_cmd(cwd.path());
    cmd.args(["user", "list"]);
    let out = run(cmd).await;
    assert_success(&out, "tessera user list");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in ["alice", "bob"] {
        assert_eq!(stdout.lines().filter(|l| l.contains(name)).count(), 1, "one line for {name}: {stdout}");
    }
    assert!(!stdout.contains("$argon2"), "no password hashes: {stdout}");
}

#[tokio::test]
async fn disabling_a_user_via_cli_ends_its_sessions_in_the_running_server() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let bearer = app.login_bearer("alice", PASSWORD).await;
    let cookie = app.login_cookie("alice", PASSWORD).await;
    let bob = app.login_bearer("bob", PASSWORD).await;
    // Warm whatever cache the server keeps, so the test sees propagation, not a cold read.
    app.me_bearer(&bearer.token).await.assert_status(200);
    app.me_cookie(&cookie.cookies).await.assert_status(200);

    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = app.tessera_cmd(cwd.path());
    cmd.args(["user", "disable", "alice"]);
    assert_success(&run(cmd).await, "tessera user disable");

    let revoked = app
        .eventually(Duration::from_secs(3), || async {
            app.me_bearer(&bearer.token).await.status.as_u16() == 401
                && app.me_cookie(&cookie.cookies).await.status.as_u16() == 401
        })
        .await;
    assert!(revoked, "the running server stops accepting alice's sessions within 3 s");
    app.me_bearer(&bearer.token).await.assert_invalid_token();
    app.login("alice", PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    app.me_bearer(&bob.token).await.assert_status(200);
    app.login_bearer("bob", PASSWORD).await;
}

#[tokio::test]
async fn sessions_revoke_via_cli_ends_every_session_in_the_running_server() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let one = app.login_bearer("alice", PASSWORD).await;
    let two = app.login_bearer("alice", PASSWORD).await;
    let bob = app.login_bearer("bob", PASSWORD).await;
    app.me_bearer(&one.token).await.assert_status(200);
    app.me_bearer(&two.token).await.assert_status(200);

    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = app.tessera_cmd(cwd.path());
    cmd.args(["sessions", "revoke", "alice"]);
    assert_success(&run(cmd).await, "tessera sessions revoke");

    let revoked = app
        .eventually(Duration::from_secs(3), || async {
            app.me_bearer(&one.token).await.status.as_u16() == 401
                && app.me_bearer(&two.token).await.status.as_u16() == 401
        })
        .await;
    assert!(revoked, "the running server stops accepting alice's sessions within 3 s");
    app.me_bearer(&bob.token).await.assert_status(200);
    // Only sessions end: alice can log in again.
    app.login_bearer("alice", PASSWORD).await;
}

/// `POST /v1/admin/users/x/revoke-sessions` with `key` over a plain socket; the status line.
fn admin_status_line(port: u16, key: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let request = format!(
        "POST /v1/admin/users/x/revoke-sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn an_admin_key_of_digits_from_the_environment_is_taken_as_written() {
    // Before: read as the number 1234…, refused at start with the key printed in the error.
    const KEY: &str = "001234567890123456";
    let store = TestStore::new();
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = unconfigured_tessera(cwd.path(), &store);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_AUTH__MODE", "session")
        .env("TESSERA_ADMIN__API_KEY", KEY);
    let mut serving = Serving::start(cmd);
    let port = serving.port();
    assert!(admin_status_line(port, KEY).starts_with("HTTP/1.1 404"), "the key as written is the admin key");
    assert!(admin_status_line(port, "1234567890123456").starts_with("HTTP/1.1 401"), "not the number it looks like");
    assert!(serving.terminate().success());
    assert!(serving.printed.contains("WARNING admin.api_key"), "a short key is warned about: {}", serving.printed);
    assert!(!serving.printed.contains(KEY), "the key is never printed: {}", serving.printed);
}

/// A plain socket `GET path`: the whole answer.
fn get_text(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn string_settings_from_the_environment_are_taken_as_written() {
    // Before: `007` was read as the number 7 and start failed with "invalid type".
    let store = TestStore::new();
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = unconfigured_tessera(cwd.path(), &store);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_AUTH__MODE", "session")
        .env("TESSERA_PAGES__TITLE", "007")
        .env("TESSERA_STORE__REDIS_PREFIX", "0123");
    let mut serving = Serving::start(cmd);
    let page = get_text(serving.port(), "/login");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(">007<"), "the title as written: {page}");
    assert!(serving.terminate().success());
}

#[tokio::test]
async fn serve_refuses_a_duration_that_would_overflow_naming_the_key() {
    // Before: it started, and every login was a 500 (date arithmetic overflowed).
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_AUTH__MODE", "session")
        .env("TESSERA_SESSION__ABSOLUTE_TIMEOUT", "3000000d");
    assert_fails_naming(&run(cmd).await, "session.absolute_timeout");
}

#[tokio::test]
async fn serve_refuses_to_trust_every_address_as_a_proxy() {
    let cwd = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        cwd.path().join("tessera.toml"),
        "[auth]\nmode = \"session\"\n[server]\ntrusted_proxies = [\"0.0.0.0/0\"]\n",
    )
    .expect("write");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    assert_fails_naming(&run(cmd).await, "server.trusted_proxies");
}

/// `tessera <args>` in `cwd` under a pseudo-terminal, answering each prompt that contains
/// `steps[i].0` with `steps[i].1` (`<EOF>`: close the input). Returns the exit status and
/// everything the terminal showed.
async fn in_terminal(cwd: &Path, steps: &[(&str, &str)], args: &[&str]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/scripts/pty_answer.py");
    // python3 drives the terminal; it starts tessera as `bare_tessera` would (no TESSERA_*).
    let mut python = Command::new("python3");
    python.current_dir(cwd);
    for (key, _) in std::env::vars() {
        if key.starts_with("TESSERA_") {
            python.env_remove(key);
        }
    }
    python.arg(script).arg(cwd);
    for (expect, answer) in steps {
        python.args([expect, answer]);
    }
    python.arg("--").arg(env!("CARGO_BIN_EXE_tessera")).args(args);
    run(python).await
}

#[tokio::test]
async fn init_asks_again_explains_writes_a_file_and_that_file_starts_a_session_server() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let steps = [
        ("1. Will tessera run on more than one server", "maybe"),
        ("please answer yes or no", "no"),
        ("2. Is the data sensitive", "yes"),
        ("3. Do clients renew", "no"),
        ("4. Will authenticated requests be very frequent", ""),
        ("5. Is the simplest setup", "yes"),
        ("6. Store", "mongodb"),
        ("please answer sqlite or postgres", "sqlite"),
    ];
    let out = in_terminal(cwd.path(), &steps, &["init", "--listen", "127.0.0.1:0"]).await;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tessera init succeeds: {shown}");
    assert!(shown.contains("-> one instance"), "each answer is explained: {shown}");
    assert!(shown.contains("mode session"), "the decision is printed: {shown}");
    let file = std::fs::read_to_string(cwd.path().join("tessera.toml")).expect("tessera.toml written");
    assert!(file.contains("mode = \"session\""), "{file}");
    assert!(file.contains("#   a logout must act at once:     yes"), "the answers are in the file: {file}");

    // The file it wrote starts a server in that mode, on the first try.
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve"]);
    let mut serving = Serving::start(cmd);
    let port = serving.port();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let body = serde_json::json!({ "username": "alice", "password": PASSWORD });
    let created = client.post(format!("{base}/v1/accounts")).json(&body).send().await.expect("sign-up");
    assert_eq!(created.status(), 201);
    let login = client
        .post(format!("{base}/v1/login"))
        .header("tessera-transport", "bearer")
        .json(&body)
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let login: serde_json::Value = login.json().await.expect("json");
    assert!(login["session_token"].is_string(), "a session-mode login: {login}");
    assert!(serving.terminate().success());
    assert!(serving.printed.contains("mode:  session"), "{}", serving.printed);
}

#[tokio::test]
async fn init_refuses_to_overwrite_without_force_and_fails_cleanly_on_closed_input() {
    let cwd = tempfile::tempdir().expect("temp dir");
    std::fs::write(cwd.path().join("tessera.toml"), "# mine\n").expect("write");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["init", "--yes"]);
    let out = run(cmd).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tessera.toml exists") && stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(cwd.path().join("tessera.toml")).expect("read"), "# mine\n");

    // Closed input (no terminal, nothing piped): a message naming the flag, not a panic.
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["init", "--force"]);
    let out = run(cmd).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("standard input closed") && stderr.contains("--scale-out"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Ctrl-D at a terminal prompt: the same.
    let out = in_terminal(cwd.path(), &[("1. Will tessera", "<EOF>")], &["init", "--force"]).await;
    assert!(!out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("standard input closed") && !shown.contains("panicked"), "{shown}");
}

#[tokio::test]
async fn init_with_flags_writes_a_hybrid_configuration_without_asking() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args([
        "init",
        "--output",
        "custom.toml",
        "--scale-out",
        "yes",
        "--instant-logout",
        "no",
        "--refresh",
        "yes",
        "--high-rate",
        "yes",
        "--simple",
        "no",
        "--store",
        "postgres",
        "--postgres-url",
        "postgres://db.internal/tessera",
        "--redis-url",
        "redis://cache.internal:6379",
    ]);
    let out = run(cmd).await;
    assert_success(&out, "tessera init with every answer as a flag");
    let file = std::fs::read_to_string(cwd.path().join("custom.toml")).expect("custom.toml written");
    assert!(file.contains("mode = \"hybrid\"") && file.contains("check = \"denylist\""), "{file}");
    assert!(file.contains("postgres_url = \"postgres://db.internal/tessera\""), "{file}");
    let config = tessera_server::Config::from_toml(&file).expect("tessera loads the file");
    assert!(config.store.is_distributed());
}

#[tokio::test]
async fn management_commands_refuse_to_create_a_store_and_name_the_path() {
    let cwd = tempfile::tempdir().expect("temp dir");
    for args in [&["user", "list"][..], &["keys", "list"], &["sessions", "revoke", "bob"], &["audit"]] {
        let mut cmd = bare_tessera(cwd.path());
        cmd.args(args);
        let out = run(cmd).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} fails without a store");
        assert!(stderr.contains("no tessera store at") && stderr.contains("tessera-data"), "{args:?}: {stderr}");
        assert!(stderr.contains("tessera migrate"), "{args:?} says how to create one: {stderr}");
        assert!(!cwd.path().join("tessera-data").exists(), "{args:?} created nothing");
    }
}

#[tokio::test]
async fn a_configuration_error_prints_once_naming_the_key_as_written() {
    let cwd = tempfile::tempdir().expect("temp dir");
    std::fs::write(cwd.path().join("tessera.toml"), "[session]\nidle_timeout = \"soon\"\n").expect("write");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    let out = run(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.matches("session.idle_timeout").count(), 1, "once: {stderr}");
    assert!(stderr.contains("tessera.toml"), "where: {stderr}");
    assert!(!stderr.contains("default."), "{stderr}");

    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).env("TESSERA_SESSION__IDLE_TIMEOUT", "soon");
    let out = run(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.matches("TESSERA_SESSION__IDLE_TIMEOUT").count(), 1, "the variable, once: {stderr}");
}

#[tokio::test]
async fn a_list_in_an_environment_variable_is_a_toml_array() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).env("TESSERA_AUTH__TRANSPORTS", "[\"bearer\"]");
    let mut serving = Serving::start(cmd);
    let port = serving.port();
    assert!(healthz_status_line(port).starts_with("HTTP/1.1 200"));
    assert!(serving.terminate().success());
}

#[tokio::test]
async fn a_seal_key_problem_says_what_is_wrong_and_how_to_fix_it() {
    const SEAL: &str = "c2VhbC1rZXktZm9yLXRoZS1jbGktdGVzdC0wMTIzNDU";
    const OTHER: &str = "b3RoZXItc2VhbC1rZXktZm9yLXRoZS1jbGktdGVzdDA";
    let cwd = tempfile::tempdir().expect("temp dir");
    // The first start, sealed, creates the keys.
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).env("TESSERA_JWT__SEAL_KEY", SEAL);
    let mut serving = Serving::start(cmd);
    serving.port();
    assert!(serving.terminate().success());
    for (seal, says) in [(None, "jwt.seal_key is not set"), (Some(OTHER), "sealed with another seal key")] {
        let mut cmd = bare_tessera(cwd.path());
        cmd.args(["keys", "list"]);
        if let Some(k) = seal {
            cmd.env("TESSERA_JWT__SEAL_KEY", k);
        }
        let out = run(cmd).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{seal:?}");
        assert!(stderr.contains(says) && stderr.contains("TESSERA_JWT__SEAL_KEY"), "{seal:?}: {stderr}");
    }
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["keys", "list"]).env("TESSERA_JWT__SEAL_KEY", SEAL);
    let out = run(cmd).await;
    assert_success(&out, "keys list with the right seal key");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\tsealed"), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test]
async fn migrate_creates_no_signing_key() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = bare_tessera(cwd.path());
    cmd.arg("migrate");
    assert_success(&run(cmd).await, "tessera migrate");
    // The first serve, with a seal key, creates the key, sealed.
    const SEAL: &str = "c2VhbC1rZXktZm9yLXRoZS1jbGktdGVzdC0wMTIzNDU";
    let mut cmd = bare_tessera(cwd.path());
    cmd.args(["keys", "list"]).env("TESSERA_JWT__SEAL_KEY", SEAL);
    let out = run(cmd).await;
    assert_success(&out, "keys list");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.lines().all(|l| l.ends_with("\tsealed")), "{listed}");
}
