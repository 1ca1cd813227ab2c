//! The example service as a real process (`verify-service`, this package's binary), pointed at
//! a tessera, spoken to over HTTP.

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::process::Process;
use crate::tessera::{FEED_KEY, ISSUER, Tessera, eventually};

pub struct Service {
    pub addr: SocketAddr,
    client: reqwest::Client,
    _process: Process,
}

impl Service {
    /// The service for `tessera`, its copy of the revocations stale after `max_staleness`.
    pub async fn start(tessera: &Tessera, max_staleness: &str) -> Service {
        // A free port, handed over: the service binds it again at once.
        let addr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_verify-service"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LISTEN", addr.to_string())
            .env("RUST_LOG", "info")
            .env("VERIFY_URL", tessera.url(""))
            .env("VERIFY_ISSUER", ISSUER)
            .env("VERIFY_FEED_KEY", FEED_KEY)
            .env("VERIFY_MAX_STALENESS", max_staleness)
            .env("VERIFY_JWKS_MIN_REFETCH", "200ms");
        let process = Process::spawn("verify-service", cmd);
        let service = Service { addr, client: crate::tessera::client(), _process: process };
        eventually("the service answers", Duration::from_secs(30), || async {
            service.client.get(format!("http://{addr}/")).send().await.ok().filter(|r| r.status().is_success())
        })
        .await;
        service
    }

    /// `GET path` with `token` as the bearer token (none if empty): status and JSON body.
    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value, Option<String>) {
        let mut request = self.client.get(format!("http://{}{path}", self.addr));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), content_type)
    }

    pub async fn status(&self, path: &str, token: &str) -> u16 {
        self.get(path, token).await.0.as_u16()
    }
}
