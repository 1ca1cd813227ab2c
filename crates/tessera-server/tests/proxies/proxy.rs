//! A real nginx or Caddy, run as the current user on a free loopback port with everything it
//! writes (configuration, pid, logs, temp files, Caddy's data) in a temporary directory of
//! its own, configured from the files in `deploy/` — nginx includes
//! `deploy/nginx/tessera-routes.conf` verbatim, Caddy imports `deploy/caddy/Caddyfile`
//! verbatim with its addresses given through the environment variables the file names.
//! Stopped when the test is done with it, also on failure.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::Process;

/// From spawn to accepting connections.
const START_LIMIT: Duration = Duration::from_secs(15);
/// From SIGTERM to gone (nginx's master waits for its worker).
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// A port handed out can be taken by another process before the proxy binds it.
const START_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Caddy,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Caddy => "caddy",
        }
    }
}

pub struct Proxy {
    pub addr: SocketAddr,
    process: Option<Process>,
    _dir: TempDir,
}

impl Proxy {
    /// Starts `kind` on a free loopback port in front of `tessera` and `app`.
    pub fn start(kind: Kind, tessera: SocketAddr, app: SocketAddr) -> Proxy {
        let binary = find_binary(kind);
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::tempdir().expect("temp dir");
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let cmd = match kind {
                Kind::Nginx => nginx_command(&binary, dir.path(), addr, tessera, app),
                Kind::Caddy => caddy_command(&binary, dir.path(), addr, tessera, app),
            };
            let mut process = Process::spawn(&format!("{} ({addr})", kind.name()), cmd);
            let start = Instant::now();
            while start.elapsed() < START_LIMIT {
                if process.exited().is_some() {
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Proxy { addr, process: Some(process), _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            last_log = process.log_tail();
            stop(&mut process);
        }
        panic!("{} did not start in {START_ATTEMPTS} attempts\n{last_log}", kind.name());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The process prints its log when a test fails, as it is dropped.
        if let Some(mut process) = self.process.take() {
            stop(&mut process);
        }
    }
}

/// SIGTERM, so nginx's master takes its worker down with it (a SIGKILLed master leaves the
/// worker holding the port); SIGKILL if that does not work in time.
fn stop(process: &mut Process) {
    if process.exited().is_some() {
        return;
    }
    process.signal("TERM");
    let start = Instant::now();
    while start.elapsed() < STOP_LIMIT {
        if process.exited().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    process.kill();
}

/// The proxies are part of what is tested: missing, they fail the test, saying what to install.
fn find_binary(kind: Kind) -> PathBuf {
    let name = kind.name();
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: the forward-auth tests run the real proxy. Install the Debian \
                 package `{name}` (`bash scripts/test` does it when run as root)."
            )
        })
}

fn deploy_file(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(relative);
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// The nginx process: a main configuration of the test's own (the loopback listener, the
/// upstreams, every path nginx writes to inside `dir`), with the server's locations from
/// `deploy/nginx/tessera-routes.conf`.
fn nginx_command(binary: &Path, dir: &Path, addr: SocketAddr, tessera: SocketAddr, app: SocketAddr) -> Command {
    let d = dir.display();
    // As root, nginx would hand its worker to `nobody`; the test runs everything as itself.
    let user = if is_root() { "user root;\n" } else { "" };
    let routes = deploy_file("nginx/tessera-routes.conf");
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\n{user}pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
           access_log {d}/access.log;\n\
           client_body_temp_path {d}/client_body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
           uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream tessera {{ server {tessera}; keepalive 8; }}\n\
           upstream app {{ server {app}; keepalive 8; }}\n\
           server {{\n    listen {addr};\n    include {};\n  }}\n\
         }}\n",
        routes.display()
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, conf).expect("write nginx.conf");
    let mut cmd = Command::new(binary);
    // -e: the error log before the configuration is read (else the compiled-in default under /var/log).
    cmd.arg("-p").arg(dir).arg("-c").arg(&file).arg("-e").arg(dir.join("error.log"));
    cmd
}

/// The Caddy process: global options of the test's own (no admin endpoint, nothing but the
/// loopback listener, no certificates), then `deploy/caddy/Caddyfile` with its addresses set
/// through its environment variables. Caddy's data and configuration directories are in `dir`.
fn caddy_command(binary: &Path, dir: &Path, addr: SocketAddr, tessera: SocketAddr, app: SocketAddr) -> Command {
    let conf = format!(
        "{{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}}\nimport {}\n",
        deploy_file("caddy/Caddyfile").display()
    );
    let file = dir.join("Caddyfile");
    std::fs::write(&file, conf).expect("write Caddyfile");
    let mut cmd = Command::new(binary);
    cmd.args(["run", "--adapter", "caddyfile", "--config"]).arg(&file);
    cmd.env("SITE_ADDRESS", format!("http://{addr}"))
        .env("AUTH_UPSTREAM", tessera.to_string())
        .env("APP_UPSTREAM", app.to_string())
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"));
    cmd
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A loopback port nothing listens on right now (bound and released: another process could
/// take it in between, which [`Proxy::start`] notices and retries).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}
