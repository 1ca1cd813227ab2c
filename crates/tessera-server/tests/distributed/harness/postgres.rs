//! PostgreSQL for the tests, in two shapes.
//!
//! - [`Schema`]: a schema of the test's own on the shared server (`TESSERA_TEST_POSTGRES_URL`,
//!   default `postgres://postgres@127.0.0.1:5432/test`), dropped with everything in it when the
//!   test ends. Enough for every test that does not take PostgreSQL away.
//! - [`PrivatePostgres`]: a server of the test's own (`initdb` into a temporary directory, a
//!   free loopback port), which the outage test stops and starts again. PostgreSQL refuses to
//!   run as root, so when the tests run as root it runs as the `postgres` OS user, which owns
//!   its directory. [`PrivatePostgres::start_tls`] gives it `ssl = on` with a test CA's server
//!   certificate.
//!
//! Schemas are created and dropped with `psql`, so the tests need no database driver of their
//! own. A missing server or binary fails the test with what to install or start: the
//! distributed backend is not tested by skipping.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::process::Process;
use super::tls::TestPki;
use super::{eventually, free_port, run};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const START_LIMIT: Duration = Duration::from_secs(30);

/// The shared server the schemas live on.
pub fn server_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.into())
}

/// A schema of one test's own on the shared server; dropped (with everything in it) on drop.
pub struct Schema {
    name: String,
}

impl Schema {
    pub async fn create(name: &str) -> Schema {
        psql(&server_url(), &format!("CREATE SCHEMA {name}")).await;
        Schema { name: name.to_owned() }
    }

    /// The value of one SQL query run in this schema (`psql -At`), trimmed.
    pub async fn query_value(&self, sql: &str) -> String {
        query_value(&server_url(), &format!("SET search_path TO {}; {sql}", self.name)).await
    }

    /// A URL whose connections work in this schema (sqlx's `options[search_path]`).
    pub fn url(&self) -> String {
        let url = server_url();
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options[search_path]={}", self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Best effort: the instances that used it are gone by now (they are declared later, so
        // dropped earlier); a lock timeout keeps a straggler from hanging the test.
        let sql = format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let _ = psql_command(&server_url(), &sql).output();
    }
}

/// Runs one SQL statement with `psql`, failing the test with what to do if it cannot.
async fn psql(url: &str, sql: &str) {
    let output = run_psql(psql_command(url, sql)).await;
    assert!(
        output.status.success(),
        "PostgreSQL not usable at {url}: start it or set TESSERA_TEST_POSTGRES_URL \
         (psql -c {sql:?}: {})",
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// The value `sql` yields at `url` (`psql -At`), trimmed; fails the test if psql fails.
async fn query_value(url: &str, sql: &str) -> String {
    let mut cmd = psql_command(url, sql);
    cmd.arg("-At");
    let output = run_psql(cmd).await;
    assert!(output.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&output.stderr).trim());
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn psql_command(url: &str, sql: &str) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]).env("PGCONNECT_TIMEOUT", "10");
    cmd
}

async fn run_psql(cmd: Command) -> std::process::Output {
    if which("psql").is_none() {
        panic!("psql is not on PATH: install the PostgreSQL client (the distributed tests need it)");
    }
    run(cmd).await
}

/// The first `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// A PostgreSQL server of one test's own, which the test may stop and start again on the same
/// port and data directory. Stopped (fast shutdown) when dropped.
pub struct PrivatePostgres {
    dir: TempDir,
    port: u16,
    bin: PathBuf,
    /// The OS user (uid, gid) the server runs as when the tests run as root.
    owner: Option<(u32, u32)>,
    /// `ssl = on` with the certificate and key copied into the server's directory.
    tls: bool,
    /// TCP connections only over TLS with a client certificate signed by the test CA.
    client_certs: bool,
    server: Option<Process>,
}

impl PrivatePostgres {
    /// `initdb` (trust authentication, user `postgres`) and start.
    pub async fn start() -> PrivatePostgres {
        Self::start_with(None, false).await
    }

    /// The same with TLS (`ssl = on`), presenting `pki`'s server certificate (for 127.0.0.1
    /// and localhost), and listening on 127.0.0.1 and 127.0.0.2 — a name the certificate does
    /// not have. Plain connections are still accepted, as by a stock server.
    pub async fn start_tls(pki: &TestPki) -> PrivatePostgres {
        Self::start_with(Some(pki), false).await
    }

    /// [`Self::start_tls`], but TCP clients must use TLS and present a certificate signed by
    /// `pki`'s CA (`hostssl … clientcert=verify-ca`); anything else is turned away.
    pub async fn start_tls_demanding_client_certs(pki: &TestPki) -> PrivatePostgres {
        Self::start_with(Some(pki), true).await
    }

    async fn start_with(pki: Option<&TestPki>, client_certs: bool) -> PrivatePostgres {
        let bin = server_binaries();
        let dir = tempfile::tempdir().expect("temp dir");
        let owner = if running_as_root() { Some(postgres_user()) } else { None };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown the data directory to postgres");
        }
        let mut pg =
            PrivatePostgres { dir, port: free_port(), bin, owner, tls: pki.is_some(), client_certs, server: None };
        let mut initdb = pg.command("initdb");
        initdb.arg("-D").arg(pg.data_dir()).args(["--auth=trust", "-U", "postgres", "--no-sync", "--locale=C"]);
        let output = run(initdb).await;
        assert!(output.status.success(), "initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        if let Some(pki) = pki {
            // PostgreSQL reads them as its own user and refuses a key others can read.
            let files = [(pki.server_cert(), "server.pem"), (pki.server_key(), "server.key"), (pki.ca(), "ca.pem")];
            for (from, to) in files {
                let to = pg.dir.path().join(to);
                std::fs::copy(&from, &to).expect("copy the server certificate");
                std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                    .expect("chmod the server certificate");
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(&to, Some(uid), Some(gid)).expect("chown the server certificate");
                }
            }
        }
        if client_certs {
            let hba = pg.data_dir().join("pg_hba.conf");
            std::fs::write(&hba, "local all all trust\nhostssl all all 127.0.0.1/32 trust clientcert=verify-ca\n")
                .expect("write pg_hba.conf");
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&hba, Some(uid), Some(gid)).expect("chown pg_hba.conf");
            }
        }
        pg.spawn().await;
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The value of one SQL query (`psql -At`), trimmed.
    pub async fn query_value(&self, sql: &str) -> String {
        query_value(&self.url(), sql).await
    }

    /// Fast shutdown (`SIGINT`): sessions are cut, the server checkpoints and exits.
    pub async fn stop(&mut self) {
        let mut server = self.server.take().expect("the private PostgreSQL is running");
        server.stop("INT", START_LIMIT).await;
    }

    /// Starts again on the same port and data directory.
    pub async fn restart(&mut self) {
        assert!(self.server.is_none(), "stop the private PostgreSQL before restarting it");
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let mut cmd = self.command("postgres");
        cmd.arg("-D").arg(self.data_dir()).arg("-p").arg(self.port.to_string()).arg("-k").arg(self.dir.path()).args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ]);
        if self.tls {
            let file = |name: &str| self.dir.path().join(name).display().to_string();
            cmd.args(["-c", "ssl=on", "-c", &format!("ssl_cert_file={}", file("server.pem"))])
                .args(["-c", &format!("ssl_key_file={}", file("server.key"))])
                .args(["-c", "listen_addresses=127.0.0.1,127.0.0.2"]);
        }
        if self.client_certs {
            cmd.args(["-c", &format!("ssl_ca_file={}", self.dir.path().join("ca.pem").display())]);
        }
        let mut server = Process::spawn("postgres (private)", cmd);
        let isready = self.bin.join("pg_isready");
        let port = self.port.to_string();
        eventually("the private PostgreSQL accepts connections", START_LIMIT, Duration::from_millis(50), || {
            if let Some(status) = server.exited() {
                panic!("the private PostgreSQL exited ({status}) while starting\n{}", server.log_tail());
            }
            let mut probe = Command::new(&isready);
            probe.args(["-q", "-h", "127.0.0.1", "-p", &port]);
            async move { run(probe).await.status.success().then_some(()) }
        })
        .await;
        self.server = Some(server);
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of the server's programs, run as its owner.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // A fast shutdown releases shared memory; SIGKILL (Process's drop) only if it hangs.
            server.signal("INT");
            for _ in 0..250 {
                if server.exited().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The directory holding `initdb`, `postgres` and `pg_isready`: `TESSERA_TEST_PG_BINDIR`, the
/// newest `/usr/lib/postgresql/*/bin`, or where `initdb` on `PATH` really lives.
fn server_binaries() -> PathBuf {
    let has_all = |dir: &Path| ["initdb", "postgres", "pg_isready"].iter().all(|p| dir.join(p).is_file());
    let mut candidates: Vec<PathBuf> =
        std::env::var_os("TESSERA_TEST_PG_BINDIR").map(PathBuf::from).into_iter().collect();
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    candidates.extend(versioned.into_iter().map(|(_, dir)| dir));
    if let Some(initdb) = which("initdb").and_then(|p| p.canonicalize().ok()) {
        candidates.extend(initdb.parent().map(Path::to_path_buf));
    }
    candidates.into_iter().find(|dir| has_all(dir)).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries (initdb, postgres, pg_isready) found in /usr/lib/postgresql/*/bin \
             or next to initdb on PATH: install the PostgreSQL server or set TESSERA_TEST_PG_BINDIR"
        )
    })
}

fn running_as_root() -> bool {
    id(&["-u"]) == 0
}

/// The `postgres` OS user's uid and gid: PostgreSQL will not run as root.
fn postgres_user() -> (u32, u32) {
    (id(&["-u", "postgres"]), id(&["-g", "postgres"]))
}

fn id(args: &[&str]) -> u32 {
    let output = Command::new("id").args(args).output().expect("run id");
    assert!(
        output.status.success(),
        "id {args:?} failed: {} (running as root, the private PostgreSQL needs a `postgres` OS user)",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("id prints a number")
}
