//! Time comes from a [`Clock`] so tests can move it instead of sleeping: idle and absolute
//! timeouts, throttling delays and token expiry are all decided against `clock.now()`.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;

    /// The same clock at millisecond resolution, for the instants whose order within one
    /// second matters: when a session was created (`session.max_per_user` evicts the truly
    /// oldest) and when a refresh family last rotated (a replay one millisecond later is not
    /// "within a zero grace").
    fn now_precise(&self) -> OffsetDateTime {
        self.now()
    }
}

/// The wall clock, truncated to whole seconds: most of what tessera stores or signs has
/// second precision, so comparisons stay exact across a store round trip. The two instants
/// [`Clock::now_precise`] names are kept in milliseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        truncate(OffsetDateTime::now_utc())
    }

    fn now_precise(&self) -> OffsetDateTime {
        truncate_to_millis(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Mutex::new(truncate(start)))
    }

    /// Starts at the current wall-clock time.
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn truncate_to_millis(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_millisecond(t.millisecond()).unwrap_or(t)
}

/// `t` without its fraction of a second: what an instant kept in seconds reads back as.
pub fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    truncate(t)
}

/// Milliseconds since the Unix epoch: how stores keep the instants of [`Clock::now_precise`].
pub fn to_unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(if t.year() < 1970 { i64::MIN } else { i64::MAX })
}

/// The inverse of [`to_unix_ms`]; out-of-range values clamp to the epoch.
pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
/// Seconds since the Unix epoch: the form every store keeps timestamps in.
pub fn to_unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// The inverse of [`to_unix`]; out-of-range values (only a corrupted store has them) clamp to the epoch.
pub fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
