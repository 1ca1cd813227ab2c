//! The real tessera, run in the test process on a random loopback port with its own data
//! directory (or the PostgreSQL + Redis backend), spoken to over HTTP with the bearer transport.
//! It can be stopped and started again on the same port and data, and its keys rotated the way
//! `tessera keys rotate` does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tessera_core::SystemClock;
use tessera_server::config::Config;
use tessera_server::startup::{Application, open_auth};
use tessera_verify::{FeedKey, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery staple";
pub const ISSUER: &str = "http://tessera.test";
pub const FEED_KEY: &str = "verify-tests-feed-key-0123456789abcdef";

/// hybrid mode, bearer only, and a JWKS cache age of 1 s so that a rotated key signs one
/// second after it is published.
pub fn base_toml() -> String {
    format!(
        "[auth]\nmode = \"hybrid\"\ntransports = [\"bearer\"]\n\
         [jwt]\nissuer = \"{ISSUER}\"\njwks_max_age = \"1s\"\n"
    )
}

/// The revocation feed on, with [`FEED_KEY`] as the one service key.
pub fn feed_toml() -> String {
    format!("[verify]\nkeys = [\"{FEED_KEY}\"]\n")
}

pub struct Tessera {
    pub addr: SocketAddr,
    config: Config,
    running: Option<(oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>)>,
    _data: Option<TempDir>,
    client: reqwest::Client,
}

pub struct Login {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub session_id: String,
}

impl Tessera {
    /// tessera on the embedded store, configured with [`base_toml`] and `extra` after it.
    pub async fn start(extra: &str) -> Tessera {
        let data = tempfile::tempdir().expect("temp dir");
        let toml = format!("{}{extra}", base_toml());
        let mut config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        config.store.data_dir = data.path().to_owned();
        Self::start_with(config, Some(data)).await
    }

    /// tessera with `config` as it is (the distributed backend, a second instance).
    pub async fn start_with(mut config: Config, data: Option<TempDir>) -> Tessera {
        config.server.listen = "127.0.0.1:0".parse().expect("address");
        let mut t = Tessera { addr: config.server.listen, config, running: None, _data: data, client: client() };
        t.run().await;
        t
    }

    async fn run(&mut self) {
        let app = Application::build(self.config.clone(), Arc::new(SystemClock)).await.expect("tessera starts");
        self.serve(app);
    }

    fn serve(&mut self, app: Application) {
        self.addr = app.local_addr();
        // A restart binds the same port: the services were told this address.
        self.config.server.listen = self.addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        self.running = Some((stop, handle));
    }

    /// Stops the server and waits until it has closed its connections.
    pub async fn stop(&mut self) {
        if let Some((stop, handle)) = self.running.take() {
            let _ = stop.send(());
            let _ = handle.await;
        }
    }

    /// Starts it again, same port, same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        let start = Instant::now();
        loop {
            match Application::build(self.config.clone(), Arc::new(SystemClock)).await {
                Ok(app) => return self.serve(app),
                // The port may linger a moment after the old listener closed.
                Err(e) if start.elapsed() < Duration::from_secs(10) => {
                    eprintln!("restart: {e:#}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("tessera does not restart: {e:#}"),
            }
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Settings for a verifier of this tessera that follows its feed.
    pub fn verify_settings(&self) -> Settings {
        Settings { feed_key: Some(FeedKey::new(FEED_KEY)), ..self.verify_settings_without_feed() }
    }

    /// Settings for a verifier of this tessera that does not follow revocations.
    pub fn verify_settings_without_feed(&self) -> Settings {
        let mut s = Settings::new(self.url(""));
        s.issuer = ISSUER.into();
        s.jwks_min_refetch = Duration::from_millis(200);
        s
    }

    pub async fn sign_up_and_login(&self, username: &str) -> Login {
        let body = json!({ "username": username, "password": PASSWORD });
        let r = self.client.post(self.url("/v1/accounts")).json(&body).send().await.expect("sign-up");
        assert_eq!(r.status(), 201, "sign-up: {}", r.text().await.unwrap_or_default());
        self.login(username).await
    }

    pub async fn login(&self, username: &str) -> Login {
        let body = json!({ "username": username, "password": PASSWORD });
        let r = self
            .client
            .post(self.url("/v1/login"))
            .header("tessera-transport", "bearer")
            .json(&body)
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 200, "login");
        let v: Value = r.json().await.expect("login JSON");
        let text = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_else(|| panic!("{p} in {v}")).to_owned();
        Login {
            access_token: text("/access_token"),
            refresh_token: text("/refresh_token"),
            user_id: text("/user/id"),
            session_id: text("/session/id"),
        }
    }

    pub async fn logout(&self, login: &Login) {
        let r = self
            .client
            .post(self.url("/v1/logout"))
            .header("tessera-transport", "bearer")
            .bearer_auth(&login.access_token)
            .send()
            .await
            .expect("logout");
        assert_eq!(r.status(), 204, "logout: {}", r.text().await.unwrap_or_default());
    }

    /// What `GET /v1/me` says of `token`: 200 or 401.
    pub async fn me_status(&self, token: &str) -> u16 {
        let r = self
            .client
            .get(self.url("/v1/me"))
            .header("tessera-transport", "bearer")
            .bearer_auth(token)
            .send()
            .await
            .expect("/v1/me");
        r.status().as_u16()
    }

    /// `tessera keys rotate`: a new key, published now, signing from `jwt.jwks_max_age` (1 s).
    /// Returns its kid.
    pub async fn rotate_keys(&self) -> String {
        let (auth, store) = open_auth(&self.config, Arc::new(SystemClock)).await.expect("open the store");
        let key = auth.rotate_keys().await.expect("rotate");
        store.close().await;
        key.kid
    }
}

impl Drop for Tessera {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.running.take() {
            let _ = stop.send(());
            handle.abort();
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("client")
}

/// The `kid` in a token's header.
pub fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().expect("a header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64url");
    let v: Value = serde_json::from_slice(&bytes).expect("JSON");
    v["kid"].as_str().expect("kid").to_owned()
}

/// Polls `probe` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
