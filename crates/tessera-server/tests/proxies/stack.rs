//! One deployment per test: tessera (the real server, in this process, on a random loopback
//! port, trusting 127.0.0.1 as its proxy), the echo application, and a real nginx or Caddy in
//! front of both. The client talks to the proxy only, the way a browser or an API client
//! would — except in the tests of what tessera believes from peers that are not its proxy.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tessera_core::SystemClock;
use tessera_server::config::Config;
use tessera_server::startup::Application;
use tokio::sync::oneshot;

use crate::proxy::{Kind, Proxy};
use crate::upstream::Upstream;

pub const PASSWORD: &str = "correct horse battery staple";

/// The modes the flows run in.
pub const SESSION: &str = "[auth]\nmode = \"session\"\n";
pub const HYBRID: &str = "[auth]\nmode = \"hybrid\"\n";
/// jwt without refresh keeps no server session: the answer has no `Tessera-Session-Id`.
pub const JWT_WITHOUT_SESSIONS: &str = "[auth]\nmode = \"jwt\"\n[refresh]\nenabled = false\n";

/// The address the proxies connect to tessera from, and the one listed in
/// `server.trusted_proxies`. A client connecting from another loopback address is untrusted.
const PROXY_SOURCE: &str = "127.0.0.1";
const UNTRUSTED_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

pub struct Stack {
    pub proxy: Proxy,
    pub upstream: Upstream,
    pub tessera: SocketAddr,
    client: reqwest::Client,
    _stop_tessera: oneshot::Sender<()>,
    _data: TempDir,
}

impl Stack {
    /// tessera configured with `toml` (a mode from above), behind a fresh proxy of `kind`.
    pub async fn start(kind: Kind, toml: &str) -> Stack {
        let data = tempfile::tempdir().expect("temp dir");
        let toml = format!("{toml}[server]\ntrusted_proxies = [\"{PROXY_SOURCE}\"]\n");
        let mut config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        config.server.listen = "127.0.0.1:0".parse().expect("socket address");
        config.store.data_dir = data.path().to_owned();
        let app = Application::build(config, Arc::new(SystemClock)).await.expect("tessera starts");
        let tessera = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let upstream = Upstream::start().await;
        let app = upstream.addr;
        // Waiting for the proxy to listen blocks; tessera and the upstream keep running meanwhile.
        let proxy = tokio::task::spawn_blocking(move || Proxy::start(kind, tessera, app))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        Stack { proxy, upstream, tessera, client: client(None), _stop_tessera: stop, _data: data }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.proxy.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// A request straight to tessera from a loopback address that is not its proxy.
    pub fn untrusted_get(&self, path: &str) -> RequestBuilder {
        client(Some(UNTRUSTED_SOURCE)).get(format!("http://{}{path}", self.tessera))
    }

    pub async fn send(&self, request: RequestBuilder) -> Reply {
        Reply::from(request.send().await.expect("the proxy answers")).await
    }

    /// Signs `username` up and logs in through the proxy with the cookie transport.
    pub async fn browser_login(&self, username: &str) -> Browser {
        self.sign_up(username).await;
        let reply = self.send(self.post("/v1/login").json(&credentials(username))).await;
        reply.assert_status(200);
        let body = reply.json();
        Browser {
            jar: Jar::from(&reply),
            csrf: body["csrf_token"].as_str().expect("csrf_token for the cookie transport").to_owned(),
            user_id: body["user"]["id"].as_str().expect("user.id").to_owned(),
            session_id: body["session"]["id"].as_str().map(str::to_owned),
        }
    }

    /// Signs `username` up and logs in through the proxy with the bearer transport.
    pub async fn bearer_login(&self, username: &str) -> Bearer {
        self.sign_up(username).await;
        let request = self.post("/v1/login").header("tessera-transport", "bearer").json(&credentials(username));
        let reply = self.send(request).await;
        reply.assert_status(200);
        let body = reply.json();
        let token = body["access_token"].as_str().or(body["session_token"].as_str()).expect("a token in the body");
        Bearer {
            token: token.to_owned(),
            user_id: body["user"]["id"].as_str().expect("user.id").to_owned(),
            session_id: body["session"]["id"].as_str().map(str::to_owned),
        }
    }

    async fn sign_up(&self, username: &str) {
        self.send(self.post("/v1/accounts").json(&credentials(username))).await.assert_status(201);
    }
}

fn credentials(username: &str) -> Value {
    json!({"username": username, "password": PASSWORD})
}

/// No cookie store (tessera's cookies are `Secure`; the tests send them back by hand, as
/// [`Jar`] decides) and no redirects followed (the tests look at them).
fn client(source: Option<IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .local_address(source)
        .build()
        .expect("reqwest client")
}

/// A browser after a cookie-transport login.
pub struct Browser {
    pub jar: Jar,
    pub csrf: String,
    pub user_id: String,
    pub session_id: Option<String>,
}

impl Browser {
    /// The `Cookie` header a browser sends with a request for `path`.
    pub fn cookies_for(&self, path: &str) -> String {
        self.jar.header_for(path)
    }
}

/// An API client after a bearer-transport login.
pub struct Bearer {
    pub token: String,
    pub user_id: String,
    pub session_id: Option<String>,
}

/// Cookies as a browser keeps them: name, value and path; sent to paths under their path.
pub struct Jar(Vec<(String, String, String)>);

impl Jar {
    fn from(reply: &Reply) -> Jar {
        let cookies = reply
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| {
                let mut parts = v.split(';');
                let (name, value) = parts.next()?.split_once('=')?;
                let path = parts
                    .filter_map(|a| a.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                    .map_or("/".to_owned(), |(_, p)| p.to_owned());
                Some((name.trim().to_owned(), value.trim().to_owned(), path))
            })
            .collect();
        Jar(cookies)
    }

    fn header_for(&self, path: &str) -> String {
        let sent: Vec<String> = self
            .0
            .iter()
            .filter(|(_, _, p)| path.starts_with(p.as_str()))
            .map(|(n, v, _)| format!("{n}={v}"))
            .collect();
        assert!(!sent.is_empty(), "no cookie for {path}");
        sent.join("; ")
    }
}

/// A fully read answer, so failed assertions can show it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    async fn from(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("the body arrives");
        Reply { status, headers, text }
    }

    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {} {:?}\n{}",
            self.status,
            self.headers,
            self.text
        );
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header"))
    }

    /// The upstream's echo: the values of request header `name` it received.
    pub fn upstream_saw(&self, name: &str) -> Vec<String> {
        self.assert_status(200);
        let echo = self.json();
        echo["headers"][name]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}
