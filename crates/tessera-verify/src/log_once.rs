//! One log line per cause, not per request or per reconnect: a JWKS endpoint that is down for
//! an hour, or a feed key that is wrong, is one warning when it starts and one line when it
//! ends — never a line per attempt.

use std::sync::{Mutex, PoisonError};

pub(crate) struct LogOnce {
    what: &'static str,
    cause: Mutex<Option<String>>,
}

impl LogOnce {
    pub(crate) fn new(what: &'static str) -> Self {
        LogOnce { what, cause: Mutex::new(None) }
    }

    /// Records a failure; logs it only if its cause differs from the last one.
    pub(crate) fn failed(&self, cause: &str) {
        let mut last = self.cause.lock().unwrap_or_else(PoisonError::into_inner);
        if last.as_deref() != Some(cause) {
            tracing::warn!(what = self.what, cause, "tessera-verify: {} failing", self.what);
            *last = Some(cause.to_owned());
        }
    }

    /// Records a success; logs the recovery if something had failed.
    pub(crate) fn recovered(&self) {
        if let Some(cause) = self.cause.lock().unwrap_or_else(PoisonError::into_inner).take() {
            tracing::info!(what = self.what, previous = cause, "tessera-verify: {} recovered", self.what);
        }
    }
}
