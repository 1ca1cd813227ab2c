//! A store that cannot be used stops `tessera serve` and `tessera migrate` with a message that
//! names the store — the SQLite file, "PostgreSQL at …" or "Redis at …", passwords hidden —
//! and says what is wrong in words, with no position in a server's source code.
//!
//! These tests set up their own broken store, so both suites (SQLite and distributed) run them
//! alike. File permissions mean nothing to root: run as root, `tessera` is started through
//! `setpriv` without the capabilities that bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH).

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::backend::{TestStore, postgres_url};
use crate::helpers::{bare_tessera, run_cmd};

const LIMIT: Duration = Duration::from_secs(30);

/// `tessera <args>` from `cwd`, in session mode, unable to bypass file permissions, with no
/// `TESSERA_*` variable inherited.
fn tessera(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = if is_root() {
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().find(|p| Path::new(p).exists()).expect(
            "running as root, these tests need setpriv (util-linux) to drop CAP_DAC_OVERRIDE: install util-linux",
        );
        let mut cmd = Command::new(setpriv);
        cmd.current_dir(cwd).args([
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
            env!("CARGO_BIN_EXE_tessera"),
        ]);
        for (key, _) in std::env::vars() {
            if key.starts_with("TESSERA_") {
                cmd.env_remove(key);
            }
        }
        cmd
    } else {
        bare_tessera(cwd)
    };
    cmd.env("TESSERA_AUTH__MODE", "session").args(args);
    cmd
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Runs `cmd`, which must fail; its standard error.
async fn fails(cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let out: Output = run_cmd(cmd, None, LIMIT).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{shown} must fail; stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains(" at line "), "no source positions: {stderr}");
    stderr
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test]
async fn a_read_only_database_file_stops_serve_and_migrate_naming_the_file() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let out = run_cmd(tessera(cwd.path(), &["migrate"]), None, LIMIT).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = Path::new("./tessera-data/tessera.db");
    chmod(&cwd.path().join(db), 0o444);
    for args in [&["serve", "--listen", "127.0.0.1:0"][..], &["migrate"]] {
        let stderr = fails(tessera(cwd.path(), args)).await;
        assert!(stderr.contains("SQLite database ./tessera-data/tessera.db"), "{args:?}: {stderr}");
        assert!(stderr.contains("cannot be opened for writing (permission denied)"), "{args:?}: {stderr}");
        assert!(!stderr.contains("unavailable"), "not a passing condition: {stderr}");
    }
}

#[tokio::test]
async fn an_unwritable_data_directory_stops_serve_and_migrate_naming_it() {
    let cwd = tempfile::tempdir().expect("temp dir");
    // Empty, and holding a database.
    let empty = cwd.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let full = cwd.path().join("full");
    let mut create = tessera(cwd.path(), &["migrate"]);
    create.env("TESSERA_STORE__DATA_DIR", &full);
    assert!(run_cmd(create, None, LIMIT).await.status.success());
    chmod(&empty, 0o500);
    chmod(&full, 0o500);
    for dir in [&empty, &full] {
        for args in [&["serve", "--listen", "127.0.0.1:0"][..], &["migrate"]] {
            let mut cmd = tessera(cwd.path(), args);
            cmd.env("TESSERA_STORE__DATA_DIR", dir);
            let stderr = fails(cmd).await;
            let named = format!("cannot create files in the data directory {} (permission denied)", dir.display());
            assert!(stderr.contains(&named), "{args:?}: {stderr}");
            assert!(stderr.contains(&format!("SQLite database {}", dir.join("tessera.db").display())), "{stderr}");
        }
    }
    // A data directory that cannot be created.
    let mut cmd = tessera(cwd.path(), &["migrate"]);
    cmd.env("TESSERA_STORE__DATA_DIR", empty.join("data"));
    let stderr = fails(cmd).await;
    let named = format!("cannot create the data directory {} (permission denied)", empty.join("data").display());
    assert!(stderr.contains(&named), "{stderr}");
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test]
async fn redis_down_at_start_is_named_as_redis_without_its_password() {
    let store = TestStore::new_distributed();
    let cwd = tempfile::tempdir().expect("temp dir");
    let port = closed_port();
    for args in [&["serve", "--listen", "127.0.0.1:0"][..], &["migrate"]] {
        let mut cmd = tessera(cwd.path(), args);
        store.configure_env(&mut cmd);
        cmd.env("TESSERA_STORE__REDIS_URL", format!("redis://:hunter2secret@127.0.0.1:{port}"));
        let stderr = fails(cmd).await;
        assert!(stderr.contains(&format!("Redis at redis://:***@127.0.0.1:{port}")), "{stderr}");
        assert!(stderr.to_lowercase().contains("connection refused"), "the cause: {stderr}");
        assert!(!stderr.contains("hunter2secret"), "{stderr}");
    }
}

/// `url` with `user:password@` in place of the user of the test server's URL, and `path`
/// (database and query) replaced.
fn postgres_with(password: &str, database: &str, query: &str) -> (String, String) {
    let base = postgres_url();
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let rest = rest.split_once('@').map_or(rest, |(_, host)| host);
    let host = rest.split(['/', '?']).next().expect("a host");
    let url = format!("{scheme}://postgres:{password}@{host}/{database}{query}");
    let shown = format!("{scheme}://postgres:***@{host}/{database}{query}");
    (url, shown)
}

#[tokio::test]
async fn a_missing_postgres_database_is_named_with_what_to_do() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let (url, shown) = postgres_with("hunter2secret", "tessera_no_such_database", "?sslmode=disable");
    for args in [&["serve", "--listen", "127.0.0.1:0"][..], &["migrate"]] {
        let mut cmd = tessera(cwd.path(), args);
        cmd.env("TESSERA_STORE__POSTGRES_URL", &url).env("TESSERA_STORE__REDIS_URL", "redis://127.0.0.1:6379");
        let stderr = fails(cmd).await;
        assert!(stderr.contains(&format!("PostgreSQL at {shown}")), "{stderr}");
        assert!(stderr.contains("database \"tessera_no_such_database\" does not exist"), "{stderr}");
        assert!(stderr.contains("createdb"), "what to do: {stderr}");
        assert!(!stderr.contains("hunter2secret"), "{stderr}");
    }
}

#[tokio::test]
async fn a_missing_postgres_schema_is_named_with_what_to_do() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let (url, shown) = postgres_with("pw", "test", "?sslmode=disable&options[search_path]=tessera_no_such_schema");
    let mut cmd = tessera(cwd.path(), &["migrate"]);
    cmd.env("TESSERA_STORE__POSTGRES_URL", &url).env("TESSERA_STORE__REDIS_URL", "redis://127.0.0.1:6379");
    let stderr = fails(cmd).await;
    assert!(stderr.contains(&format!("PostgreSQL at {shown}")), "{stderr}");
    assert!(stderr.contains("CREATE SCHEMA"), "what to do: {stderr}");
}

#[tokio::test]
async fn postgres_down_at_start_is_named_with_the_cause() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let port = closed_port();
    let mut cmd = tessera(cwd.path(), &["migrate"]);
    cmd.env("TESSERA_STORE__POSTGRES_URL", format!("postgres://tessera:pw@127.0.0.1:{port}/tessera"))
        .env("TESSERA_STORE__REDIS_URL", "redis://127.0.0.1:6379");
    let stderr = fails(cmd).await;
    assert!(stderr.contains(&format!("PostgreSQL at postgres://tessera:***@127.0.0.1:{port}/tessera")), "{stderr}");
    assert!(stderr.to_lowercase().contains("connection refused"), "the cause, not a pool timeout: {stderr}");
}
