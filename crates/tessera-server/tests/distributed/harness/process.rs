//! Child processes a test owns (redis-server, postgres, `tessera serve`): started with their
//! output in a log file of their own, stopped when the test is done with them — also when it
//! panics, so a failed test leaves nothing running — and their last log lines printed when a
//! test fails, since that is usually where the reason is.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::NamedTempFile;

/// Lines of a process's log shown when a test fails.
const TAIL_LINES: usize = 30;

pub struct Process {
    name: String,
    child: Child,
    log: NamedTempFile,
}

impl Process {
    /// Starts `cmd` with stdin closed and stdout and stderr going to a fresh log file.
    pub fn spawn(name: &str, mut cmd: Command) -> Process {
        let log = NamedTempFile::new().expect("a log file");
        let out = log.reopen().expect("reopen the log file");
        let err = out.try_clone().expect("clone the log file");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", cmd.get_program()));
        Process { name: name.to_owned(), child, log }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a signal (`"TERM"`, `"INT"`, …) by pid, with the system's `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill to signal {}: {e}", self.name));
        assert!(status.success(), "kill -s {signal} {} ({}) failed", self.child.id(), self.name);
    }

    /// `SIGKILL`: the process gets no chance to clean up. Waits until it is gone.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// Sends `signal` and waits up to `limit` for the process to exit on its own.
    pub async fn stop(&mut self, signal: &str, limit: Duration) -> ExitStatus {
        if let Some(status) = self.exited() {
            panic!("{} had already exited ({status}) before it was stopped\n{}", self.name, self.log_tail());
        }
        self.signal(signal);
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(start.elapsed() < limit, "{} did not exit within {limit:?} of SIG{signal}", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap_or_else(|e| panic!("wait for {}: {e}", self.name))
    }

    /// Everything the process has written so far.
    pub fn log(&self) -> String {
        std::fs::read(self.log.path()).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
    }

    /// The last lines of the process's output.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.log.path()) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        format!("--- last lines of {} ---\n{tail}\n--- end of {} ---", self.name, self.name)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        self.kill();
    }
}
