//! redis-server processes of the test's own, on free loopback ports: a standalone server the
//! test can kill, stop and start again on the same port (optionally with append-only-file
//! persistence, so a stop loses nothing), or a three-master Redis Cluster; either one plain or
//! TLS-only (`--port 0 --tls-port …`, certificates from a [`TestPki`]). Driven with
//! `redis-cli`, as an operator would.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::process::Process;
use super::tls::TestPki;
use super::{eventually, free_cluster_port, free_port, run};

const START_LIMIT: Duration = Duration::from_secs(20);
const STOP_LIMIT: Duration = Duration::from_secs(20);

/// A standalone redis-server.
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    persistent: bool,
    tls: Option<ServerTls>,
    server: Option<Process>,
}

/// A TLS-only server's certificate and the arguments `redis-cli` needs to reach it.
#[derive(Clone)]
struct ServerTls {
    server_args: Vec<String>,
    cli_args: Vec<String>,
}

impl ServerTls {
    /// The server presents `pki`'s server certificate; with `auth_clients` it demands a client
    /// certificate signed by `pki`'s CA (Redis's default), which `redis-cli` then presents.
    fn new(pki: &TestPki, auth_clients: bool) -> ServerTls {
        let path = |p: std::path::PathBuf| p.display().to_string();
        let server_args = vec![
            "--tls-cert-file".into(),
            path(pki.server_cert()),
            "--tls-key-file".into(),
            path(pki.server_key()),
            "--tls-ca-cert-file".into(),
            path(pki.ca()),
            "--tls-auth-clients".into(),
            if auth_clients { "yes" } else { "no" }.into(),
        ];
        let mut cli_args = vec!["--tls".into(), "--cacert".into(), path(pki.ca())];
        if auth_clients {
            cli_args.extend(["--cert".into(), path(pki.client_cert()), "--key".into(), path(pki.client_key())]);
        }
        ServerTls { server_args, cli_args }
    }
}

impl RedisServer {
    /// Memory only: a restart starts empty.
    pub async fn start() -> RedisServer {
        Self::start_with(false).await
    }

    /// Every write is appended and fsynced to a file before it is acknowledged, so a restart
    /// on the same directory comes back with everything.
    pub async fn start_persistent() -> RedisServer {
        Self::start_with(true).await
    }

    /// TLS only, memory only, listening on 127.0.0.1 and 127.0.0.2 (its certificate names
    /// only the first). With `auth_clients` it demands a client certificate.
    pub async fn start_tls(pki: &TestPki, auth_clients: bool) -> RedisServer {
        let tls = Some(ServerTls::new(pki, auth_clients));
        let mut redis = RedisServer {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            persistent: false,
            tls,
            server: None,
        };
        redis.spawn().await;
        redis
    }

    async fn start_with(persistent: bool) -> RedisServer {
        let mut redis = RedisServer {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            persistent,
            tls: None,
            server: None,
        };
        redis.spawn().await;
        redis
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://…` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `SIGKILL`: gone at once, connections cut, nothing saved.
    pub fn kill(&mut self) {
        self.server.take().expect("redis-server is running").kill();
    }

    /// `SIGTERM`: Redis saves (here: flushes its append-only file) and exits.
    pub async fn shutdown(&mut self) {
        let mut server = self.server.take().expect("redis-server is running");
        server.stop("TERM", STOP_LIMIT).await;
    }

    /// `CLIENT PAUSE … WRITE`, as Redis itself does during a failover: reads are answered,
    /// while every command that may write (every Lua script among them) waits until
    /// [`Self::unpause`] or until `limit` has passed. tessera's calls time out long before.
    pub async fn pause_writes(&self, limit: Duration) {
        let ms = limit.as_millis().to_string();
        let out = redis_cli(self.port, self.cli_tls(), &["client", "pause", &ms, "write"]).await;
        assert_eq!(out.as_deref().map(str::trim), Some("OK"), "CLIENT PAUSE on :{}", self.port);
    }

    pub async fn unpause(&self) {
        let out = redis_cli(self.port, self.cli_tls(), &["client", "unpause"]).await;
        assert_eq!(out.as_deref().map(str::trim), Some("OK"), "CLIENT UNPAUSE on :{}", self.port);
    }

    /// Starts again on the same port and directory.
    pub async fn restart(&mut self) {
        assert!(self.server.is_none(), "stop redis-server before restarting it");
        self.spawn().await;
    }

    fn cli_tls(&self) -> &[String] {
        self.tls.as_ref().map_or(&[], |tls| &tls.cli_args)
    }

    /// The data set as of now: `SAVE` (an RDB file), then a copy of the whole directory (with
    /// the append-only files of a persistent server) — what an operator's backup, or a replica
    /// a moment behind, holds. [`Self::restart_from`] brings it back.
    pub async fn snapshot(&self) -> TempDir {
        let out = redis_cli(self.port, self.cli_tls(), &["save"]).await;
        assert_eq!(out.as_deref().map(str::trim), Some("OK"), "SAVE on :{}", self.port);
        let copy = tempfile::tempdir().expect("temp dir");
        copy_dir(self.dir.path(), copy.path());
        copy
    }

    /// Starts again on the same port from `snapshot` (see [`Self::snapshot`]) instead of the
    /// directory's own files: a Redis that comes back without the writes made since.
    pub async fn restart_from(&mut self, snapshot: &TempDir) {
        assert!(self.server.is_none(), "stop redis-server before restarting it");
        for entry in std::fs::read_dir(self.dir.path()).expect("read the Redis directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("remove from the Redis directory");
            } else {
                std::fs::remove_file(&path).expect("remove from the Redis directory");
            }
        }
        copy_dir(snapshot.path(), self.dir.path());
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let mut cmd = redis_server_command(self.port, self.dir.path());
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(tls) = &self.tls {
            // Later arguments win: no plain port, the TLS port where the plain one was.
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string(), "--bind", "127.0.0.1", "127.0.0.2"]);
            cmd.args(&tls.server_args);
        }
        let server = Process::spawn(&format!("redis-server :{}", self.port), cmd);
        self.server = Some(wait_until_serving(server, self.port, self.cli_tls()).await);
    }
}

/// A Redis Cluster of three masters (no replicas), each a process of the test's own.
pub struct RedisCluster {
    ports: Vec<u16>,
    tls: Option<ServerTls>,
    _nodes: Vec<Process>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Starts three `--cluster-enabled` servers, joins them with `redis-cli --cluster create`
    /// and waits until every node reports `cluster_state:ok`.
    pub async fn start() -> RedisCluster {
        Self::start_with(None).await
    }

    /// The same, TLS only: clients, the cluster bus between the nodes and `redis-cli` all use
    /// TLS, and every node demands a client certificate.
    pub async fn start_tls(pki: &TestPki) -> RedisCluster {
        Self::start_with(Some(ServerTls::new(pki, true))).await
    }

    async fn start_with(tls: Option<ServerTls>) -> RedisCluster {
        let cli_tls: &[String] = tls.as_ref().map_or(&[], |tls| &tls.cli_args);
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<u16> = (0..3).map(|_| free_cluster_port()).collect();
        let mut nodes = Vec::new();
        for &port in &ports {
            let node_dir = dir.path().join(port.to_string());
            std::fs::create_dir(&node_dir).expect("node directory");
            let mut cmd = redis_server_command(port, &node_dir);
            cmd.args(["--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "5000"]);
            if let Some(tls) = &tls {
                cmd.args(["--port", "0", "--tls-port", &port.to_string(), "--tls-cluster", "yes"]);
                cmd.args(&tls.server_args);
            }
            let node = Process::spawn(&format!("redis-server cluster node :{port}"), cmd);
            nodes.push(wait_until_serving(node, port, cli_tls).await);
        }
        // Bounded: nodes that cannot reach each other's bus leave it waiting for ever.
        let mut create = Command::new("timeout");
        create.args(["60", "redis-cli"]).args(cli_tls).arg("--cluster").arg("create");
        create.args(ports.iter().map(|p| format!("127.0.0.1:{p}")));
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = run(create).await;
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for &port in &ports {
            eventually(
                &format!("cluster node :{port} reports cluster_state:ok"),
                START_LIMIT,
                Duration::from_millis(50),
                || async move {
                    redis_cli(port, cli_tls, &["cluster", "info"])
                        .await
                        .filter(|info| info.contains("cluster_state:ok"))
                },
            )
            .await;
        }
        RedisCluster { ports, tls, _nodes: nodes, _dir: dir }
    }

    /// The seed list tessera takes with `store.redis_cluster = true` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        self.ports.iter().map(|p| format!("{scheme}://127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }

    /// The keys matching `pattern` on each node (a node holds only its own slots' keys).
    pub async fn keys_per_node(&self, pattern: &str) -> Vec<Vec<String>> {
        let mut nodes = Vec::new();
        for &port in &self.ports {
            let cli_tls = self.tls.as_ref().map_or(&[][..], |tls| &tls.cli_args);
            let out = redis_cli(port, cli_tls, &["--scan", "--pattern", pattern])
                .await
                .unwrap_or_else(|| panic!("redis-cli --scan on cluster node :{port} failed"));
            nodes.push(out.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect());
        }
        nodes
    }
}

/// redis-server on 127.0.0.1:`port`, in the foreground, writing into `dir`, no RDB snapshots.
fn redis_server_command(port: u16, dir: &Path) -> Command {
    if !binary_exists("redis-server") || !binary_exists("redis-cli") {
        panic!("redis-server and redis-cli must be on PATH: install Redis (the distributed tests start their own)");
    }
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--protected-mode", "no"])
        .args(["--daemonize", "no", "--save", "", "--dir"])
        .arg(dir);
    cmd
}

/// Copies the files (and directories of files) in `from` into `to`.
fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read a Redis directory") {
        let path = entry.expect("a directory entry").path();
        let target = to.join(path.file_name().expect("a file name"));
        if path.is_dir() {
            std::fs::create_dir_all(&target).expect("create a directory");
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy a Redis file");
        }
    }
}

fn binary_exists(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
}

async fn wait_until_serving(mut server: Process, port: u16, cli_tls: &[String]) -> Process {
    eventually(&format!("{} answers PING", server.name()), START_LIMIT, Duration::from_millis(20), || {
        if let Some(status) = server.exited() {
            panic!("{} exited ({status}) while starting\n{}", server.name(), server.log_tail());
        }
        async move { redis_cli(port, cli_tls, &["ping"]).await.filter(|out| out.trim() == "PONG") }
    })
    .await;
    server
}

/// `redis-cli -p port [TLS options] args…`'s output, or `None` if it failed.
async fn redis_cli(port: u16, tls: &[String], args: &[&str]) -> Option<String> {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(tls).args(args);
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    // redis-cli exits 0 even when the server answers with an error or is unreachable.
    (output.status.success() && !stdout.starts_with("Could not connect") && !stdout.starts_with("ERR"))
        .then_some(stdout)
}
