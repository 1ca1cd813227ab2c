//! `tessera bench`: measures this machine. Each server under test runs on a one-worker
//! runtime on its own thread and the load generator on another, so on a two-core machine the
//! server has one core and the load the other. Every figure is measured in the same run as
//! the baselines it is compared with, so the ratio is meaningful where the absolute numbers
//! are not. The baselines are what a user would write instead: a bare axum handler with a
//! minimal body, the same handler serialising tessera's `/v1/me` document, and (with Redis
//! configured) a handler doing one Redis `GET` per request through the same client library.
//! Every server gets the same request (`GET /v1/me` with a bearer credential; the baselines
//! ignore it), and the server under test and the load generator are pinned to cores of their
//! own.
//! Each row reports requests/s, the server's CPU per request (the process's CPU less the load
//! generator's thread, from `/proc`), p50/p99 latency, and for rows that read Redis, Redis's
//! own CPU per request (`INFO cpu`). Each mode is measured twice: `GET /v1/me`, and
//! `GET /v1/forward-auth` as a trusted proxy asks it (same credential), which should cost no
//! more.
//!
//! `--login-flood` measures something else: the server's memory through a sustained login
//! flood and the idle minute after it (see [`login_flood`]).

pub mod login_flood;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::routing::get;
use tessera_core::secret::TokenHash;
use tessera_core::store::{AccountStore as _, SessionStore as _};
use tessera_core::{Account, PasswordHash, Session, SessionId, SystemClock, UserId, Username};
use tessera_store::SqliteStore;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::config::{Config, Transport};
use crate::startup::Application;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: usize,
    /// Sessions written to measure bytes stored per session.
    pub sessions: usize,
    /// Runs per server, interleaved; the median is reported.
    pub rounds: usize,
    /// Measures only the modes whose name contains one of these (empty: all of them).
    pub only: Vec<String>,
    /// PostgreSQL and Redis to measure the distributed backend on (from the configuration's
    /// `store.postgres_url` / `store.redis_url`); `None` measures the embedded store only.
    pub distributed: Option<Distributed>,
}

/// Where the distributed backend is measured. The bench works in a schema and under a key
/// prefix of its own, and removes both when it is done.
#[derive(Debug, Clone)]
pub struct Distributed {
    pub postgres_url: String,
    pub redis_url: String,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            connections: 32,
            sessions: 5_000,
            rounds: 3,
            only: Vec::new(),
            distributed: None,
        }
    }
}

/// The configurations measured side by side, each against the same bare handler.
/// The two `metrics on` rows measure what counting costs (`metrics.access = "open"`) against
/// the same mode without it, which is the row just above each.
const MODES: [(&str, &str); 8] = [
    ("session mode", "[auth]\nmode = \"session\""),
    ("session mode, metrics on", "[auth]\nmode = \"session\"\n[metrics]\naccess = \"open\""),
    ("jwt, EdDSA, no revocation check", "[auth]\nmode = \"jwt\"\n[revocation]\ncheck = \"none\""),
    ("hybrid + denylist, EdDSA", "[auth]\nmode = \"hybrid\"\n[revocation]\ncheck = \"denylist\""),
    (
        "hybrid + denylist, EdDSA, metrics on",
        "[auth]\nmode = \"hybrid\"\n[revocation]\ncheck = \"denylist\"\n[metrics]\naccess = \"open\"",
    ),
    (
        "hybrid + denylist, HS256",
        "[auth]\nmode = \"hybrid\"\n[jwt]\nalg = \"HS256\"\n[revocation]\ncheck = \"denylist\"",
    ),
    ("hybrid + allowlist, EdDSA", "[auth]\nmode = \"hybrid\"\n[revocation]\ncheck = \"allowlist\""),
    (
        "hybrid + denylist, ES256",
        "[auth]\nmode = \"hybrid\"\n[jwt]\nalg = \"ES256\"\n[revocation]\ncheck = \"denylist\"",
    ),
];

/// Measured on PostgreSQL + Redis when the configuration names them: the same hybrid mode as
/// on the embedded store (the denylist check is local, so the two should be close), and the
/// two that read Redis on every request — session mode and the allowlist — which are held to
/// the hand-written one-`GET` handler.
const DISTRIBUTED_MODES: [(&str, &str); 3] = [
    ("session mode, Redis", "[auth]\nmode = \"session\""),
    ("hybrid + allowlist, EdDSA, Redis", "[auth]\nmode = \"hybrid\"\n[revocation]\ncheck = \"allowlist\""),
    ("hybrid + denylist, EdDSA, PG + Redis", "[auth]\nmode = \"hybrid\"\n[revocation]\ncheck = \"denylist\""),
];

/// One server under load: a tessera mode or a baseline.
struct Target {
    name: String,
    server: ServerThread,
    request: Arc<[u8]>,
    /// The same credential, asked about by a proxy (tessera's modes only).
    forward_auth: Option<Arc<[u8]>>,
    /// The credential's length (tessera's modes only).
    token_len: Option<usize>,
    /// Reads Redis on every request: compared with the one-`GET` handler, and Redis's own CPU
    /// is reported beside it.
    reads_redis: bool,
}

/// The loopback address the load generator connects from, trusted as a proxy so that
/// forward auth reads the original method and URI as it does behind nginx or Caddy.
const PROXY: &str = "127.0.0.1";

/// What a bare handler answers when it has nothing to say: the smallest honest JSON.
#[derive(serde::Serialize)]
struct Minimal {
    ok: bool,
}

pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    println!(
        "tessera bench: {} connections, {} interleaved rounds of {:?} per server after {:?} warm-up; medians",
        options.connections, options.rounds, options.duration, options.warmup
    );

    let scratch = match &options.distributed {
        Some(d) => Some(Scratch::create(d).await?),
        None => None,
    };
    let mut targets = Vec::new();
    let mut me_body = String::new();
    let mut redis_me_body = String::new();
    let distributed_modes = scratch.iter().flat_map(|s| DISTRIBUTED_MODES.iter().map(move |m| (m, Some(s))));
    let wanted = |name: &str| options.only.is_empty() || options.only.iter().any(|w| name.contains(w.as_str()));
    for (i, ((name, toml), scratch)) in MODES.iter().map(|m| (m, None)).chain(distributed_modes).enumerate() {
        if !wanted(name) {
            continue;
        }
        // Tokens must outlive the whole run.
        let mut config = Config::from_toml(toml)?;
        config.jwt.access_ttl = crate::duration::Duration::secs(3600);
        config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        // An API deployment: bearer is the default transport, so requests need no
        // `Tessera-Transport` header to have their `Authorization` read.
        config.auth.transports = vec![Transport::Bearer, Transport::Cookie];
        config.server.trusted_proxies = vec![PROXY.to_owned()];
        config.store.data_dir = dir.path().join(format!("mode-{i}"));
        if let Some(scratch) = scratch {
            scratch.configure(&mut config, i);
        }
        let reads_redis = scratch.is_some() && reads_per_request(&config);
        let server = ServerThread::start(format!("mode-{i}"), move || async move {
            let app = Application::build(config, Arc::new(SystemClock)).await?;
            Ok((app.local_addr(), move |stop| app.run_until_stopped(stop)))
        })?;
        let (token, body) = login(server.addr, i).await?;
        if me_body.is_empty() {
            me_body = body.clone();
        }
        if reads_redis && redis_me_body.is_empty() {
            redis_me_body = body;
        }
        let credential = format!("Authorization: Bearer {token}\r\n");
        let request = format!("GET /v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n{credential}\r\n");
        let forward_auth = format!(
            "GET /v1/forward-auth HTTP/1.1\r\nHost: 127.0.0.1\r\n{credential}\
             X-Forwarded-Method: GET\r\nX-Forwarded-Uri: /app/page\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n"
        );
        targets.push(Target {
            name: (*name).to_owned(),
            server,
            request: Arc::from(request.as_bytes()),
            forward_auth: Some(Arc::from(forward_auth.as_bytes())),
            token_len: Some(token.len()),
            reads_redis,
        });
    }
    if targets.is_empty() {
        bail!("--only {:?} matches none of the modes", options.only.join(","));
    }
    if redis_me_body.is_empty() {
        redis_me_body.clone_from(&me_body);
    }
    // The bare handlers get the very request the first mode gets, credential included: what
    // is compared is what the servers do with it, not how much of it they parse.
    let bare_request = Arc::clone(&targets[0].request);
    let baseline = |name: &str, server| Target {
        name: name.to_owned(),
        server,
        request: bare_request.clone(),
        forward_auth: None,
        token_len: None,
        reads_redis: false,
    };
    // The handler a user would write first: no authentication, a small JSON.
    let minimal = bare_server("bare-minimal", || axum::Json(Minimal { ok: true }))?;
    // The same handler serialising tessera's `/v1/me` document on every request: the
    // difference between the two baselines is the body alone. (tessera itself serialises a
    // caller's document once and answers the kept bytes while nothing in it changes; the
    // load repeats one caller, so its rows show that path.)
    let document: &'static serde_json::Value = Box::leak(Box::new(serde_json::from_str(&me_body)?));
    let with_body = bare_server("bare-body", move || axum::Json(document))?;
    let mut baselines = vec![
        baseline("bare axum handler, minimal body", minimal),
        baseline("bare axum handler, tessera's body", with_body),
    ];
    if let Some(scratch) = &scratch {
        let body: &'static serde_json::Value = Box::leak(Box::new(serde_json::from_str(&redis_me_body)?));
        let server = one_get_server(scratch, body).await?;
        baselines.push(Target { reads_redis: true, ..baseline("one Redis GET per request (hand-written)", server) });
    }
    let (n_baselines, has_get) = (baselines.len(), scratch.is_some());
    baselines.extend(targets);
    let targets = baselines;
    let redis_url = scratch.as_ref().map(|s| s.redis_url.clone());

    // Interleaved rounds, medians reported: on two cores one run can be off by a third.
    let mut runs: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    let mut forward_runs: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    for _ in 0..options.rounds {
        for (t, (r, f)) in targets.iter().zip(runs.iter_mut().zip(forward_runs.iter_mut())) {
            let redis = if t.reads_redis { redis_url.as_deref() } else { None };
            r.push(load(t.server.addr, &t.request, &options, redis)?);
            if let Some(forward) = &t.forward_auth {
                f.push(load(t.server.addr, forward, &options, redis)?);
            }
        }
    }
    // How far single rounds strayed: each round's ratio to the bare handler of the same round,
    // lowest and highest. A wide range says the machine moved, not the server.
    let range: Vec<(f64, f64)> = runs
        .iter()
        .map(|r| {
            r.iter()
                .zip(&runs[0])
                .map(|(s, bare)| 100.0 * s.rps / bare.rps)
                .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)))
        })
        .collect();
    let me: Vec<Sample> = runs.iter_mut().map(|r| Sample::median(r)).collect();
    let forward: Vec<Option<Sample>> =
        forward_runs.iter_mut().map(|r| (!r.is_empty()).then(|| Sample::median(r))).collect();
    let bare_rps = me[0].rps;
    let get_rps = has_get.then(|| me[n_baselines - 1].rps);

    println!();
    println!(
        "{:<42} {:>10} {:>8} {:>9} {:>8} {:>10} {:>8} {:>8} {:>10} {:>6}",
        "GET /v1/me",
        "requests/s",
        "vs bare",
        "rounds",
        "vs GET",
        "CPU µs/req",
        "p50 µs",
        "p99 µs",
        "Redis µs",
        "cred B"
    );
    for ((t, s), (lo, hi)) in targets.iter().zip(&me).zip(&range) {
        let vs_get = match get_rps {
            Some(g) if t.reads_redis => format!("{:.0}%", 100.0 * s.rps / g),
            _ => "-".to_owned(),
        };
        println!(
            "{:<42} {:>10.0} {:>7.0}% {:>9} {:>8} {:>10.1} {:>8.0} {:>8.0} {:>10} {:>6}",
            t.name,
            s.rps,
            100.0 * s.rps / bare_rps,
            format!("{lo:.0}–{hi:.0}%"),
            vs_get,
            s.cpu_us,
            s.p50_us,
            s.p99_us,
            s.redis_us.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}")),
            t.token_len.map_or_else(|| "-".to_owned(), |n| n.to_string()),
        );
    }
    println!();
    println!(
        "{:<42} {:>10} {:>8} {:>10} {:>10}",
        "GET /v1/forward-auth", "requests/s", "vs bare", "vs /v1/me", "CPU µs/req"
    );
    for ((t, s), f) in targets.iter().zip(&me).zip(&forward) {
        if let Some(f) = f {
            println!(
                "{:<42} {:>10.0} {:>7.0}% {:>9.0}% {:>10.1}",
                t.name,
                f.rps,
                100.0 * f.rps / bare_rps,
                100.0 * f.rps / s.rps,
                f.cpu_us
            );
        }
    }
    for t in targets {
        t.server.stop()?;
    }

    let bytes = bytes_per_session(&dir.path().join("size"), options.sessions).await?;
    println!();
    println!("stored bytes per session (SQLite file growth over {} sessions): {:.0}", options.sessions, bytes);
    if let Some(scratch) = scratch {
        let result = redis_figures(&scratch, &options).await;
        scratch.drop_all().await;
        result?;
    }
    Ok(())
}

/// Whether a configuration reads the remote store on every request: session mode, and the
/// allowlist check.
fn reads_per_request(config: &Config) -> bool {
    use crate::config::ModeSetting;
    config.auth.mode == ModeSetting::Session
        || config.revocation_check() == tessera_core::revocation::RevocationCheck::Allowlist
}

/// A bare axum server answering `GET /v1/me` with `handler`.
fn bare_server<H, R>(thread: &str, handler: H) -> anyhow::Result<ServerThread>
where
    H: Fn() -> R + Clone + Send + Sync + 'static,
    R: axum::response::IntoResponse + Send + 'static,
{
    ServerThread::start(thread.to_owned(), move || async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = axum::Router::new().route("/v1/me", get(move || std::future::ready(handler())));
        Ok((addr, move |stop| async move { Ok(axum::serve(listener, router).with_graceful_shutdown(stop).await?) }))
    })
}

/// The handler a user would write for a session store in Redis: one `GET` of a value the size
/// of a tessera session, under a key as long as tessera's, through the same client library
/// (`redis`, `ConnectionManager` with its defaults); 401 when the key is missing, otherwise
/// the same `/v1/me` document tessera answers.
async fn one_get_server(scratch: &Scratch, body: &'static serde_json::Value) -> anyhow::Result<ServerThread> {
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    let key = format!("{}:get:{{u:{}}}:s:{}", scratch.name, UserId::generate(), SessionId::generate());
    let mut conn = redis_connection(&scratch.redis_url).await?;
    let value = vec![0x5a_u8; TYPICAL_SESSION_BYTES];
    let _: () = redis::cmd("SET").arg(&key).arg(value).query_async(&mut conn).await?;
    let url = scratch.redis_url.clone();
    ServerThread::start("one-get".to_owned(), move || async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let redis = redis::aio::ConnectionManager::new(redis::Client::open(url)?).await?;
        let key: &'static str = Box::leak(key.into_boxed_str());
        let handler = move || {
            let mut redis = redis.clone();
            async move {
                let value: Result<Option<Vec<u8>>, _> = redis::cmd("GET").arg(key).query_async(&mut redis).await;
                match value {
                    Ok(Some(_)) => axum::Json(body).into_response(),
                    Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
                    Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                }
            }
        };
        let router = axum::Router::new().route("/v1/me", get(handler));
        Ok((addr, move |stop| async move { Ok(axum::serve(listener, router).with_graceful_shutdown(stop).await?) }))
    })
}

/// About what a typical browser session takes in Redis (see `codec.rs` in tessera-store).
const TYPICAL_SESSION_BYTES: usize = 220;

/// What one run against one server measured.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rps: f64,
    /// CPU time of the whole process less the load generator's thread, per response.
    cpu_us: f64,
    p50_us: f64,
    p99_us: f64,
    /// Redis's own CPU (`INFO cpu`) per response, for servers that read Redis.
    redis_us: Option<f64>,
}

impl Sample {
    /// The median of each figure on its own.
    fn median(runs: &mut [Sample]) -> Sample {
        let of = |f: fn(&Sample) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            median(&mut v)
        };
        Sample {
            rps: of(|s| s.rps),
            cpu_us: of(|s| s.cpu_us),
            p50_us: of(|s| s.p50_us),
            p99_us: of(|s| s.p99_us),
            redis_us: runs[0].redis_us.is_some().then(|| of(|s| s.redis_us.unwrap_or(0.0))),
        }
    }
}

/// The bench's own PostgreSQL schema and Redis key prefix.
struct Scratch {
    admin_url: String,
    redis_url: String,
    name: String,
}

impl Scratch {
    async fn create(d: &Distributed) -> anyhow::Result<Self> {
        use sqlx::Connection as _;
        let name = format!("tessera_bench_{}", hex(&tessera_core::secret::random_bytes::<6>()));
        let mut conn = sqlx::PgConnection::connect(&d.postgres_url)
            .await
            .with_context(|| "cannot connect to store.postgres_url".to_owned())?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut conn).await?;
        conn.close().await?;
        Ok(Self { admin_url: d.postgres_url.clone(), redis_url: d.redis_url.clone(), name })
    }

    fn configure(&self, config: &mut Config, i: usize) {
        let separator = if self.admin_url.contains('?') { '&' } else { '?' };
        config.store.postgres_url = format!("{}{separator}options[search_path]={}", self.admin_url, self.name);
        config.store.redis_url = self.redis_url.clone();
        // Each server its own prefix: they must not share sessions or a denylist.
        config.store.redis_prefix = format!("{}:{i}", self.name);
    }

    fn settings(&self, tag: &str) -> tessera_store::RedisSettings {
        tessera_store::RedisSettings {
            url: self.redis_url.clone(),
            cluster: false,
            prefix: format!("{}:{tag}", self.name),
            tls: Default::default(),
        }
    }

    /// Best effort: a failure to clean up is reported, not fatal.
    async fn drop_all(&self) {
        use sqlx::Connection as _;
        let dropped = async {
            let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name))).execute(&mut conn).await?;
            conn.close().await?;
            anyhow::Ok(())
        };
        if let Err(e) = dropped.await {
            eprintln!("could not drop PostgreSQL schema {}: {e}", self.name);
        }
        if let Err(e) = delete_redis_keys(&self.redis_url, &format!("{}:*", self.name)).await {
            eprintln!("could not delete Redis keys {}:*: {e}", self.name);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn delete_redis_keys(url: &str, pattern: &str) -> anyhow::Result<()> {
    let mut conn = redis_connection(url).await?;
    let keys: Vec<String> = redis_cmd(&mut conn, redis_args(["KEYS", pattern])).await?;
    for chunk in keys.chunks(500) {
        let mut args = vec!["DEL".to_owned()];
        args.extend(chunk.iter().cloned());
        let _: i64 = redis_cmd(&mut conn, args).await?;
    }
    Ok(())
}

/// What the distributed backend costs in Redis, beside what Redis itself does.
async fn redis_figures(scratch: &Scratch, options: &BenchOptions) -> anyhow::Result<()> {
    // Bytes per session: typical sessions, one per user (each user also has a session index).
    let store = tessera_store::RedisStore::connect(&scratch.settings("size")).await?;
    let n = options.sessions.min(2_000);
    let (mut session_keys, mut with_index) = (0u64, 0u64);
    for _ in 0..n {
        let user = UserId::generate();
        let session = typical_session(user, Username::parse("sizer").map_err(|e| anyhow::anyhow!("{e}"))?)?;
        store.insert_session(&session).await?;
        with_index += store.memory_of_user(&user).await?;
        session_keys += store.memory_of_session(&user, &session.id).await?;
    }
    store.close().await;
    println!(
        "Redis MEMORY USAGE per session over {n} sessions: {:.0} B (session hash), {:.0} B with its user's index",
        session_keys as f64 / n as f64,
        with_index as f64 / n as f64
    );

    // redis-benchmark GET, same connection count, as the floor of any one-read request.
    let (host, port) = redis_host_port(&scratch.redis_url)?;
    let requests = (options.duration.as_secs().max(1) * 60_000).to_string();
    let connections = options.connections.to_string();
    let output = std::process::Command::new("redis-benchmark")
        .args(["-h", &host, "-p", &port.to_string(), "-c", &connections, "-n", &requests, "-t", "get", "--csv"])
        .output()
        .context("redis-benchmark (Debian package redis-tools) is needed for the Redis comparison")?;
    let csv = String::from_utf8_lossy(&output.stdout);
    let rps = csv
        .lines()
        .find(|l| l.starts_with("\"GET\""))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.trim_matches('"').parse::<f64>().ok())
        .with_context(|| format!("unexpected redis-benchmark output: {csv}"))?;
    println!("redis-benchmark GET ({} connections): {rps:.0} requests/s", options.connections);
    Ok(())
}

fn redis_host_port(url: &str) -> anyhow::Result<(String, u16)> {
    use redis::IntoConnectionInfo as _;
    match url.into_connection_info()?.addr() {
        redis::ConnectionAddr::Tcp(host, port) => Ok((host.clone(), *port)),
        other => bail!("redis-benchmark needs a TCP address, not {other:?}"),
    }
}

async fn redis_connection(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    Ok(redis::Client::open(url)?.get_multiplexed_async_connection().await?)
}

fn redis_args<const N: usize>(args: [&str; N]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

async fn redis_cmd<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    args: Vec<String>,
) -> anyhow::Result<T> {
    let mut cmd = redis::Cmd::new();
    for a in args {
        cmd.arg(a);
    }
    Ok(cmd.query_async(conn).await?)
}

fn median(runs: &mut [f64]) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs.get(runs.len() / 2).copied().unwrap_or(0.0)
}

/// Creates an account and a bearer login through the API; returns the credential and the
/// `/v1/me` body, which the bare handler then serves verbatim.
/// Signs up `bench<n>` (servers on PostgreSQL share one accounts table) and logs in.
async fn login(addr: SocketAddr, n: usize) -> anyhow::Result<(String, String)> {
    let creds = &serde_json::json!({"username": format!("bench{n}"), "password": "bench password"}).to_string();
    let (status, _) = http(addr, "POST", "/v1/accounts", &[("content-type", "application/json")], creds).await?;
    if status != 201 {
        bail!("sign-up answered {status}");
    }
    let headers = [("content-type", "application/json"), ("tessera-transport", "bearer")];
    let (status, body) = http(addr, "POST", "/v1/login", &headers, creds).await?;
    if status != 200 {
        bail!("login answered {status}");
    }
    let answer: serde_json::Value = serde_json::from_str(&body)?;
    let token = answer["access_token"]
        .as_str()
        .or(answer["session_token"].as_str())
        .context("no access_token or session_token")?
        .to_owned();
    let auth = format!("Bearer {token}");
    let (status, me) = http(addr, "GET", "/v1/me", &[("authorization", &auth)], "").await?;
    if status != 200 {
        bail!("/v1/me answered {status}");
    }
    Ok((token, me))
}

/// One request on a fresh connection, for set-up only.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let mut parsed_headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut parsed_headers);
    let head = match response.parse(&raw)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => bail!("incomplete response"),
    };
    Ok((response.code.unwrap_or(0), String::from_utf8_lossy(&raw[head..]).into_owned()))
}

/// Drives `connections` keep-alive connections, each sending `request` and reading the whole
/// answer before the next, on a one-thread runtime of its own. Measures responses per second,
/// the latency of each, the CPU the rest of the process spent per response (the server under
/// test: every other server is idle), and with `redis` Redis's CPU per response.
fn load(addr: SocketAddr, request: &Arc<[u8]>, options: &BenchOptions, redis: Option<&str>) -> anyhow::Result<Sample> {
    let request = Arc::clone(request);
    let options = options.clone();
    let redis = redis.map(str::to_owned);
    std::thread::Builder::new()
        .name("load".to_owned())
        .spawn(move || -> anyhow::Result<Sample> {
            pin(Core::Load);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let mut redis = match redis {
                    Some(url) => Some(redis_connection(&url).await?),
                    None => None,
                };
                let counting = Arc::new(AtomicBool::new(false));
                let stop = Arc::new(AtomicBool::new(false));
                let mut tasks = Vec::new();
                for _ in 0..options.connections {
                    let (request, counting, stop) = (request.clone(), counting.clone(), stop.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut stream = TcpStream::connect(addr).await?;
                        stream.set_nodelay(true)?;
                        let mut buf = vec![0u8; 16 * 1024];
                        let mut latencies: Vec<u32> = Vec::with_capacity(64 * 1024);
                        while !stop.load(Ordering::Relaxed) {
                            let sent = Instant::now();
                            stream.write_all(&request).await?;
                            let status = read_response(&mut stream, &mut buf).await?;
                            if status != 200 {
                                bail!("answered {status} under load");
                            }
                            if counting.load(Ordering::Relaxed) {
                                latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                            }
                        }
                        anyhow::Ok(latencies)
                    }));
                }
                tokio::time::sleep(options.warmup).await;
                let redis_before = match &mut redis {
                    Some(conn) => Some(redis_cpu_seconds(conn).await?),
                    None => None,
                };
                let cpu_before = Cpu::now()?;
                counting.store(true, Ordering::Relaxed);
                let start = Instant::now();
                tokio::time::sleep(options.duration).await;
                stop.store(true, Ordering::Relaxed);
                let elapsed = start.elapsed();
                let cpu = Cpu::now()?.since(cpu_before);
                let redis_after = match &mut redis {
                    Some(conn) => Some(redis_cpu_seconds(conn).await?),
                    None => None,
                };
                let mut latencies = Vec::new();
                for t in tasks {
                    latencies.extend(t.await??);
                }
                latencies.sort_unstable();
                let count = latencies.len().max(1) as f64;
                Ok(Sample {
                    rps: latencies.len() as f64 / elapsed.as_secs_f64(),
                    cpu_us: cpu.others_seconds() * 1e6 / count,
                    p50_us: percentile(&latencies, 0.50),
                    p99_us: percentile(&latencies, 0.99),
                    redis_us: redis_before.zip(redis_after).map(|(b, a)| (a - b) * 1e6 / count),
                })
            })
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("load generator panicked"))?
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)])
}

/// CPU time of the whole process and of the calling thread, from `/proc` (in clock ticks of
/// 10 ms: Linux's `USER_HZ` is 100). Over seconds of load the tick is well under 1%.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    process: u64,
    thread: u64,
}

const TICK_SECONDS: f64 = 0.01;

impl Cpu {
    fn now() -> anyhow::Result<Self> {
        Ok(Self { process: ticks("/proc/self/stat")?, thread: ticks("/proc/thread-self/stat")? })
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu { process: self.process.saturating_sub(before.process), thread: self.thread.saturating_sub(before.thread) }
    }

    /// The process's CPU less the calling thread's: with the load generator calling, the
    /// server's.
    fn others_seconds(self) -> f64 {
        self.process.saturating_sub(self.thread) as f64 * TICK_SECONDS
    }
}

/// `utime + stime` of a `/proc/…/stat` file (fields 14 and 15, counted after the command name,
/// which may itself hold spaces and parentheses).
fn ticks(path: &str) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).with_context(|| format!("odd {path}"));
    Ok(field(11)? + field(12)?)
}

/// `used_cpu_user + used_cpu_sys` of the Redis server, in seconds.
async fn redis_cpu_seconds(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<f64>().ok())
            .with_context(|| format!("no {name} in INFO cpu"))
    };
    Ok(field("used_cpu_user")? + field("used_cpu_sys")?)
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> anyhow::Result<u16> {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            bail!("connection closed");
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = response.parse(&buf[..filled])? {
            let length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                .unwrap_or(0);
            let status = response.code.unwrap_or(0);
            while filled < head + length {
                let n = stream.read(&mut buf[filled..]).await?;
                if n == 0 {
                    bail!("connection closed mid-body");
                }
                filled += n;
            }
            return Ok(status);
        }
        if filled == buf.len() {
            bail!("response headers too large");
        }
    }
}

/// SQLite file growth per session: the file after `n` sessions less the file with none, both
/// measured after closing the store (which checkpoints the WAL into the file).
async fn bytes_per_session(dir: &Path, n: usize) -> anyhow::Result<f64> {
    let store = SqliteStore::open(dir).await?;
    let user = Account {
        id: UserId::generate(),
        username: Username::parse("sizer").map_err(|e| anyhow::anyhow!("{e}"))?,
        password_hash: PasswordHash::from_stored(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g".into(),
        ),
        created_at: time::OffsetDateTime::now_utc(),
        disabled: false,
    };
    store.insert_account(&user).await?;
    store.close().await;
    let before = dir_size(dir)?;
    let store = SqliteStore::open(dir).await?;
    for _ in 0..n {
        store.insert_session(&typical_session(user.id, user.username.clone())?).await?;
    }
    store.close().await;
    let after = dir_size(dir)?;
    Ok((after.saturating_sub(before)) as f64 / n as f64)
}

/// A typical browser session: a real user agent and an IPv4 address.
fn typical_session(user_id: UserId, username: Username) -> anyhow::Result<Session> {
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0)?;
    Ok(Session {
        id: SessionId::generate(),
        user_id,
        username,
        secret_hash: TokenHash::of(&tessera_core::secret::random_bytes::<32>()),
        csrf_hash: TokenHash::of(&tessera_core::secret::random_bytes::<32>()),
        created_at: now,
        last_seen_at: now,
        expires_at: now + time::Duration::days(30),
        user_agent: Some(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36".into(),
        ),
        ip: Some("203.0.113.42".into()),
        refresh: None,
    })
}

fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

/// Which core a bench thread runs on.
#[derive(Clone, Copy)]
enum Core {
    /// The server under test (and the idle ones): the second core.
    Server,
    /// The load generator: the first core.
    Load,
}

/// Pins the calling thread, with two cores or more, so that the server under test and the load
/// generator never share a core (the scheduler otherwise moves them together now and then,
/// and one round comes out a third slower). Other processes (Redis, PostgreSQL) still run
/// wherever the system puts them. With one core, nothing is pinned.
fn pin(core: Core) {
    let Some(cores) = core_affinity::get_core_ids() else { return };
    if cores.len() < 2 {
        return;
    }
    let id = match core {
        Core::Load => cores[0],
        Core::Server => cores[1],
    };
    core_affinity::set_for_current(id);
}

/// A server on a one-worker runtime on its own OS thread.
struct ServerThread {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl ServerThread {
    /// `thread` names the OS thread (as profilers show it: at most 15 bytes).
    fn start<B, BF, R, RF>(thread: String, build: B) -> anyhow::Result<Self>
    where
        B: FnOnce() -> BF + Send + 'static,
        BF: Future<Output = anyhow::Result<(SocketAddr, R)>>,
        R: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> RF,
        RF: Future<Output = anyhow::Result<()>>,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(thread).spawn(move || -> anyhow::Result<()> {
            pin(Core::Server);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let (addr, run) = match build().await {
                    Ok(pair) => pair,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e.to_string()));
                        return Err(e);
                    }
                };
                let _ = addr_tx.send(Ok(addr));
                run(Box::pin(async move {
                    let _ = stop_rx.await;
                }))
                .await
            })
        })?;
        let addr = addr_rx.recv().context("server thread died")?.map_err(|e| anyhow::anyhow!(e))?;
        Ok(Self { addr, stop, thread })
    }

    fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.thread.join().map_err(|_| anyhow::anyhow!("server thread panicked"))?
    }
}
