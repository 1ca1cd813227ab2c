//! The browser tests: tessera's pages and `clients/js` in real headless Chromium.
//!
//! They live in `clients/js/test/*.test.mjs` (node's test runner driving Debian's Chromium
//! through playwright-core) and start the `tessera` binary cargo just built, so `cargo test`
//! stays the single entry point. Nothing here is skipped: without node, Chromium or the npm
//! packages the test fails and says what to install (`bash scripts/test` installs all three).
//! Screenshots of every page land in `target/tmp/browser-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn clients_js() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/js")
}

fn require(ok: bool, what: &str) {
    assert!(ok, "the browser tests need {what}; `bash scripts/test` installs it");
}

#[test]
fn pages_and_client_work_in_headless_chromium() {
    let js = clients_js();
    let node = std::env::var("TESSERA_NODE").unwrap_or_else(|_| "node".into());
    let version =
        Command::new(&node).arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let major =
        version.as_deref().ok().and_then(|v| v.trim().trim_start_matches('v').split('.').next()?.parse::<u32>().ok());
    require(major.is_some_and(|m| m >= 20), "Node.js 20 or newer (`node`, or TESSERA_NODE)");
    let chromium = std::env::var("TESSERA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    require(
        Path::new(&chromium).exists(),
        "Chromium at /usr/bin/chromium (Debian package `chromium`, or TESSERA_CHROMIUM)",
    );
    require(
        js.join("node_modules/playwright-core").is_dir() && js.join("node_modules/esbuild").is_dir(),
        "clients/js/node_modules (`npm ci` in clients/js)",
    );

    let mut files: Vec<PathBuf> = std::fs::read_dir(js.join("test"))
        .expect("clients/js/test")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no browser tests found in clients/js/test");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let started = Instant::now();
    let output = Command::new(&node)
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(&files)
        .current_dir(&js)
        .env("TESSERA_BIN", env!("CARGO_BIN_EXE_tessera"))
        .env("TESSERA_CHROMIUM", &chromium)
        .env("TESSERA_SCREENSHOTS", &shots)
        .output()
        .expect("node runs");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}\n{}", String::from_utf8_lossy(&output.stderr));
    println!("browser tests: {:.0} s; screenshots in {}", started.elapsed().as_secs_f64(), shots.display());
    assert!(output.status.success(), "browser tests failed:\n{report}");
}
