//! The harness for the token modes (jwt, hybrid): configurations, bearer logins that hand out
//! an access and a refresh token, refresh, the RFC 7662/7009 endpoints, and the `tessera`
//! command pointed at the running server's configuration and store.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration as StdDuration;

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::forge;
use crate::helpers::{Reply, TestApp, WithCookies, bare_tessera, run_cmd, spawn_token_app};

pub const ACCESS_COOKIE: &str = "__Host-tessera-access";
pub const REFRESH_COOKIE: &str = "__Host-tessera-refresh";

pub const ADMIN_KEY: &str = "token-suite-admin-key-0123456789abcdef";

/// The defaults of the contract, spelled out where a test computes with them.
pub const ACCESS_TTL: Duration = Duration::minutes(5);
pub const LEEWAY: Duration = Duration::seconds(30);
pub const REUSE_GRACE: Duration = Duration::seconds(10);
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
pub const DEFAULT_AUDIENCE: &str = "tessera";

/// How long a revocation made by another process (the CLI) may take to reach the server's
/// in-process copies (denylist sync and session-cache poll run every 100 ms).
pub const CROSS_PROCESS: StdDuration = StdDuration::from_millis(500);
/// How long the server may take to follow a key change in the store (it reloads every 5 s).
pub const KEY_RELOAD: StdDuration = StdDuration::from_secs(10);
/// A CLI command that should finish at once.
pub const COMMAND_LIMIT: StdDuration = StdDuration::from_secs(30);

/// `[auth] mode = <mode>` followed by `extra` (more TOML) and the admin key.
pub fn token_toml(mode: &str, extra: &str) -> String {
    format!("[auth]\nmode = \"{mode}\"\n{extra}\n[admin]\napi_key = \"{ADMIN_KEY}\"\n")
}

/// Hybrid mode with every default (revocation check: denylist; EdDSA; refresh on).
pub fn hybrid_toml() -> String {
    token_toml("hybrid", "")
}

pub async fn spawn_hybrid() -> TestApp {
    spawn_token_app(&hybrid_toml()).await
}

/// What a bearer-transport login (or refresh, or password change) handed out.
#[derive(Debug, Clone)]
pub struct TokenLogin {
    pub body: Value,
    pub access: String,
    pub refresh: Option<String>,
    pub session_id: Option<String>,
    pub user_id: String,
}

impl TokenLogin {
    pub fn from_reply(reply: &Reply) -> TokenLogin {
        assert_eq!(reply.status, StatusCode::OK, "expected credentials: {}", reply.text);
        let body = reply.json();
        TokenLogin {
            access: body["access_token"].as_str().expect("access_token in the body").to_owned(),
            refresh: body["refresh_token"].as_str().map(str::to_owned),
            session_id: body["session"]["id"].as_str().map(str::to_owned),
            user_id: body["user"]["id"].as_str().expect("user.id").to_owned(),
            body,
        }
    }

    /// The refresh token (fails if the mode hands out none).
    pub fn refresh(&self) -> &str {
        self.refresh.as_deref().unwrap_or_else(|| panic!("a refresh_token in {}", self.body))
    }

    pub fn sid(&self) -> &str {
        self.session_id.as_deref().unwrap_or_else(|| panic!("a session in {}", self.body))
    }

    /// The decoded claims of the access token.
    pub fn claims(&self) -> Value {
        forge::claims_of(&self.access)
    }

    pub fn exp(&self) -> i64 {
        self.claims()["exp"].as_i64().expect("exp is an integer")
    }
}

impl TestApp {
    /// A bearer-transport login that must succeed.
    pub async fn login_tokens(&self, username: &str, password: &str) -> TokenLogin {
        TokenLogin::from_reply(&self.login(username, password, Some("bearer")).await)
    }

    /// `POST /v1/refresh` with `{"refresh_token": …}` and the bearer transport.
    pub async fn refresh_bearer(&self, refresh_token: &str) -> Reply {
        let rb = self.post("/v1/refresh").header("tessera-transport", "bearer");
        self.send(rb.json(&json!({ "refresh_token": refresh_token }))).await
    }

    /// A refresh that must succeed.
    pub async fn refresh_ok(&self, refresh_token: &str) -> TokenLogin {
        TokenLogin::from_reply(&self.refresh_bearer(refresh_token).await)
    }

    /// `POST /v1/refresh` the way a browser sends it: only the refresh cookie, plus
    /// `X-CSRF-Token` when `csrf` is given.
    pub async fn refresh_cookie(&self, refresh_cookie: &str, csrf: Option<&str>) -> Reply {
        let mut rb = self.post("/v1/refresh").header("cookie", format!("{REFRESH_COOKIE}={refresh_cookie}"));
        if let Some(c) = csrf {
            rb = rb.header("x-csrf-token", c);
        }
        self.send(rb).await
    }

    pub async fn jwks(&self) -> Value {
        let reply = self.send(self.get("/.well-known/jwks.json")).await;
        reply.assert_status(200);
        reply.json()
    }

    /// The `kid`s the JWKS lists.
    pub async fn jwks_kids(&self) -> Vec<String> {
        self.jwks().await["keys"]
            .as_array()
            .expect("keys is an array")
            .iter()
            .map(|k| k["kid"].as_str().expect("every JWK has a kid").to_owned())
            .collect()
    }

    /// `POST /v1/introspect` with the admin key.
    pub async fn introspect(&self, token: &str) -> Reply {
        self.send(form(self.post("/v1/introspect").bearer(ADMIN_KEY), &[("token", token)])).await
    }

    /// The introspection answer for `token`, which must be a 200.
    pub async fn introspection(&self, token: &str) -> Value {
        let reply = self.introspect(token).await;
        reply.assert_status(200);
        reply.json()
    }

    /// `POST /v1/revoke` (RFC 7009), form-encoded, with an optional `token_type_hint`.
    pub async fn revoke(&self, token: &str, hint: Option<&str>) -> Reply {
        let mut fields = vec![("token", token)];
        if let Some(h) = hint {
            fields.push(("token_type_hint", h));
        }
        self.send(form(self.post("/v1/revoke"), &fields)).await
    }

    /// Polls `GET /v1/me` with `token` until it answers `status`, for effects that travel from
    /// another process through the store.
    pub async fn me_becomes(&self, token: &str, status: u16, limit: StdDuration) -> bool {
        self.eventually(limit, || async { self.me_bearer(token).await.status.as_u16() == status }).await
    }

    /// Writes this server's configuration, with its store, to a file a `tessera` process can be
    /// given with `--config`.
    pub fn config_file(&self) -> PathBuf {
        assert!(!self.toml.contains("[store]"), "the harness owns [store]:\n{}", self.toml);
        let path = self.store.scratch().join("tessera-cli.toml");
        let text = format!("{}\n{}", self.toml, self.store.toml_section());
        std::fs::write(&path, text).expect("write the CLI configuration");
        path
    }

    /// `tessera <args…> --config <this server's configuration>`, from an empty directory and
    /// with no `TESSERA_*` variable inherited; must succeed.
    pub async fn cli_ok(&self, args: &[&str]) -> Output {
        let out = self.cli(args).await;
        assert!(
            out.status.success(),
            "tessera {args:?} succeeds; status {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub async fn cli(&self, args: &[&str]) -> Output {
        let config = self.config_file();
        let cwd = tempfile::tempdir().expect("temp dir");
        let mut cmd: Command = bare_tessera(cwd.path());
        cmd.args(args).arg("--config").arg(&config);
        let out = run_cmd(cmd, None, COMMAND_LIMIT).await;
        drop(cwd);
        out
    }
}

/// An `application/x-www-form-urlencoded` body (the RFC 7009/7662 endpoints' format).
pub fn form(rb: RequestBuilder, fields: &[(&str, &str)]) -> RequestBuilder {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect();
    rb.header("content-type", "application/x-www-form-urlencoded").body(body.join("&"))
}

/// Percent-encodes everything but the unreserved characters (RFC 3986 §2.3).
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The access token is refused the way RFC 6750 says: 401 with `error="invalid_token"`.
pub async fn assert_access_refused(app: &TestApp, token: &str, what: &str) {
    let reply = app.me_bearer(token).await;
    assert_eq!(reply.status.as_u16(), 401, "{what}: GET /v1/me answers 401, got {} {}", reply.status, reply.text);
    reply.assert_invalid_token();
}

pub async fn assert_access_works(app: &TestApp, token: &str, what: &str) {
    let reply = app.me_bearer(token).await;
    assert_eq!(reply.status.as_u16(), 200, "{what}: GET /v1/me answers 200, got {} {}", reply.status, reply.text);
}

pub async fn assert_refresh_refused(app: &TestApp, token: &str, what: &str) {
    let reply = app.refresh_bearer(token).await;
    assert_eq!(reply.status.as_u16(), 401, "{what}: POST /v1/refresh answers 401, got {} {}", reply.status, reply.text);
    reply.assert_invalid_token();
}
