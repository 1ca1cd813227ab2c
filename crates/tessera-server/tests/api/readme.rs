//! The README's curl walk-throughs, run as written (bash, curl, jq) against a real server in
//! the mode each one says to start: every `-w '%{http_code}'` line must print the status its
//! comment promises. A walk-through that stops working fails here, not for a newcomer.

use std::process::Command;

use crate::helpers::{TestApp, run_cmd, spawn_app_with, spawn_token_app};

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
const README_ADDR: &str = "http://127.0.0.1:8080";

/// The ```sh blocks of the section headed `heading`, joined into one script.
fn section_script(heading: &str) -> String {
    let start = README.find(heading).unwrap_or_else(|| panic!("README has a section {heading:?}"));
    let rest = &README[start + heading.len()..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut script = String::new();
    let mut inside = false;
    for line in section.lines() {
        match (inside, line.trim_start()) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, _) => {
                script.push_str(line);
                script.push('\n');
            }
            _ => {}
        }
    }
    assert!(!script.is_empty(), "the section {heading:?} has a shell block");
    script
}

/// The statuses the script's comments promise, in order (`… -w '%{http_code}\n'  # 204 …`).
fn promised_statuses(script: &str) -> Vec<String> {
    script
        .lines()
        .filter(|l| l.contains("%{http_code}"))
        .map(|l| {
            let comment = l.rsplit_once("# ").map(|(_, c)| c).unwrap_or_else(|| panic!("no status comment: {l}"));
            comment.chars().take(3).collect()
        })
        .collect()
}

async fn run_walkthrough(app: &TestApp, heading: &str) {
    let script = section_script(heading);
    assert!(script.contains(&format!("B={README_ADDR}")), "the walk-through sets B={README_ADDR}:\n{script}");
    let runnable = script.replace(&format!("B={README_ADDR}"), &format!("B=http://{}", app.addr));
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new("bash");
    cmd.current_dir(cwd.path()).args(["-eu", "-o", "pipefail", "-c", &runnable]);
    let out = run_cmd(cmd, None, std::time::Duration::from_secs(60)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{heading}: the script runs (bash, curl and jq needed)\n{stdout}\n{stderr}");
    // A status follows the body of the previous curl on its line when that body had no final
    // newline (`{…}204`): take the three digits that end a line, after a non-digit.
    let printed: Vec<String> = stdout
        .lines()
        .map(str::trim)
        .filter_map(|l| {
            let (head, tail) = l.split_at(l.len().checked_sub(3)?);
            (tail.chars().all(|c| c.is_ascii_digit()) && !head.ends_with(|c: char| c.is_ascii_digit()))
                .then(|| tail.to_owned())
        })
        .collect();
    assert_eq!(printed, promised_statuses(&script), "{heading}: the statuses the README promises\n{stdout}");
}

#[tokio::test]
async fn the_session_mode_walkthrough_works_as_written() {
    // "Start the server in session mode": TESSERA_AUTH__MODE=session, as the README says.
    let app = spawn_app_with("[auth]\nmode = \"session\"\n").await;
    run_walkthrough(&app, "## A walk through the session mode with curl").await;
}

#[tokio::test]
async fn the_hybrid_mode_walkthrough_works_as_written() {
    // "Start the server with no configuration": the default mode, hybrid.
    let app = spawn_token_app("[auth]\nmode = \"hybrid\"\n").await;
    run_walkthrough(&app, "## A walk through the hybrid mode with curl").await;
}

#[test]
fn the_session_walkthrough_starts_the_server_in_session_mode() {
    let start = README.find("## A walk through the session mode with curl").expect("section");
    let intro = &README[start..start + 400];
    assert!(intro.contains("TESSERA_AUTH__MODE=session"), "{intro}");
}
