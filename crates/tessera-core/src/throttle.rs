//! Brute-force protection: failure counters per account and per client IP, each with a delay
//! that doubles with every failure past a free allowance.
//!
//! Counters live in the store, so a restart does not hand an attacker a fresh allowance, and
//! they are keyed by the normalised username whether or not the account exists, so the
//! throttle does not reveal which usernames are real. A success clears the account's counter
//! but not the IP's: otherwise an attacker with one valid account could reset their IP
//! counter between guesses at others.

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};

use crate::username::Username;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// Failed logins (and wrong current passwords) of one username.
    Account(String),
    /// Failed logins from one client address.
    Ip(String),
    /// Revocations of a user's access tokens through `/v1/revoke` (by user id): each one that
    /// adds a denylist entry counts, so one account cannot grow the denylist without bound.
    Revocations(String),
    /// Sign-ups from one client address.
    SignUp(String),
    /// Wrong admin keys from one client address.
    AdminKey(String),
    /// Refused refresh tokens from one client address.
    Refresh(String),
}

impl ThrottleKey {
    pub fn account(username: &Username) -> Self {
        Self::Account(username.as_str().to_owned())
    }

    /// IPv6 clients are grouped by /64: one host usually owns the whole prefix, so counting
    /// single addresses would give it 2^64 fresh allowances.
    pub fn ip(ip: IpAddr) -> Self {
        Self::Ip(address_key(ip))
    }

    pub fn signup(ip: IpAddr) -> Self {
        Self::SignUp(address_key(ip))
    }

    pub fn admin_key(ip: IpAddr) -> Self {
        Self::AdminKey(address_key(ip))
    }

    pub fn refresh(ip: IpAddr) -> Self {
        Self::Refresh(address_key(ip))
    }

    /// The form stores keep: `a:<username>`, `i:<address>`, `s:<address>`, `k:<address>` or
    /// `r:<address>`, or `v:<user id>` for revocations.
    pub fn as_store_key(&self) -> String {
        match self {
            Self::Account(u) => format!("a:{u}"),
            Self::Ip(ip) => format!("i:{ip}"),
            Self::Revocations(user) => format!("v:{user}"),
            Self::SignUp(ip) => format!("s:{ip}"),
            Self::AdminKey(ip) => format!("k:{ip}"),
            Self::Refresh(ip) => format!("r:{ip}"),
        }
    }
}

/// IPv6 clients are grouped by /64 (see [`ThrottleKey::ip`]).
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The failures recorded under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    pub last_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Failures allowed without any delay.
    pub free: u32,
    /// The delay after the first failure past `free`; it doubles with each further one.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Limit {
    /// When the next attempt may be made after `failures`, or `None` if no delay applies.
    pub fn locked_until(&self, failures: Failures) -> Option<OffsetDateTime> {
        let over = failures.count.checked_sub(self.free)?;
        if over == 0 {
            return None;
        }
        let factor = 1i64 << (over - 1).min(30);
        let delay = (self.base_delay * factor as f64).min(self.max_delay);
        Some(failures.last_at + delay)
    }
}

/// What a store needs to decide, atomically with counting, whether an attempt may go ahead:
/// the [`Limit`] and `forget_after` in whole milliseconds. Stores evaluate exactly
/// [`LockRule::is_locked`] (in SQL or a Lua script) so the decision and the count are one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRule {
    pub free: u32,
    /// `base_delay`, never above `max_ms`.
    pub base_ms: i64,
    pub max_ms: i64,
    pub forget_after_ms: i64,
}

impl LockRule {
    /// Largest shift applied to `base_ms` (as in [`Limit::locked_until`]).
    pub const MAX_SHIFT: u32 = 30;

    /// Whether a counter of `count` failures, last at `last_at` (unix seconds), forbids an
    /// attempt at `now_ms` (unix milliseconds). A counter idle for `forget_after` counts zero.
    pub fn is_locked(&self, count: u32, last_at: i64, now_ms: i64) -> bool {
        let last_ms = last_at.saturating_mul(1000);
        if last_ms <= now_ms.saturating_sub(self.forget_after_ms) || count <= self.free {
            return false;
        }
        let shift = (count - self.free - 1).min(Self::MAX_SHIFT);
        let delay = self.base_ms.saturating_mul(1i64 << shift).min(self.max_ms);
        last_ms.saturating_add(delay) > now_ms
    }

    /// The count a counter holds at `now_ms`: zero once forgotten.
    pub fn live_count(&self, count: u32, last_at: i64, now_ms: i64) -> u32 {
        if last_at.saturating_mul(1000) <= now_ms.saturating_sub(self.forget_after_ms) { 0 } else { count }
    }
}

/// Unix milliseconds, the unit [`LockRule`] compares in.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// An attempt counted in advance by [`crate::store::ThrottleStore::reserve_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    /// The counter with this attempt in it.
    pub failures: Failures,
    /// When the counter was last bumped before this reservation, if it was live then; a
    /// release puts it back, so attempts that were no failure do not keep a counter alive.
    pub previous_last_at: Option<OffsetDateTime>,
}

/// What [`crate::store::ThrottleStore::reserve_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt may go ahead and is already counted as a failure; release it if it is not one.
    Reserved(Reserved),
    /// Too many failures: nothing was counted. The counter as it stood, for `Retry-After`.
    Locked(Option<Failures>),
}

#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    pub account: Limit,
    pub ip: Limit,
    pub revocations: Limit,
    /// Accounts created from one client IP (`POST /v1/accounts`): every sign-up that reaches
    /// the password hash counts, successful or not.
    pub signup: Limit,
    /// Wrong admin keys on the admin endpoints, per client IP.
    pub admin: Limit,
    /// Refused refresh tokens at `/v1/refresh`, per client IP.
    pub refresh: Limit,
    /// A counter with no new failure for this long starts again from zero.
    pub forget_after: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account: Limit { free: 5, base_delay: Duration::seconds(1), max_delay: Duration::minutes(15) },
            ip: Limit { free: 20, base_delay: Duration::seconds(1), max_delay: Duration::minutes(15) },
            // A client revokes a token when it is done with it: a hundred without an hour's
            // pause is far beyond any honest use. (The check precedes the count, as for
            // logins: with 99 counted the 100th still goes through, the 101st waits.)
            revocations: Limit { free: 99, base_delay: Duration::seconds(1), max_delay: Duration::minutes(15) },
            signup: Limit { free: 20, base_delay: Duration::seconds(1), max_delay: Duration::minutes(15) },
            admin: Limit { free: 10, base_delay: Duration::seconds(1), max_delay: Duration::minutes(15) },
            // Generous: a refresh fails for a legitimate client whenever its session has ended,
            // and many clients may share an address. The walk a refused token costs is bounded
            // anyway (`auth::refresh::MAX_TRACE`); this bounds how often.
            refresh: Limit { free: 100, base_delay: Duration::seconds(1), max_delay: Duration::minutes(1) },
            forget_after: Duration::hours(1),
        }
    }
}

impl ThrottlePolicy {
    pub fn limit(&self, key: &ThrottleKey) -> &Limit {
        match key {
            ThrottleKey::Account(_) => &self.account,
            ThrottleKey::Ip(_) => &self.ip,
            ThrottleKey::Revocations(_) => &self.revocations,
            ThrottleKey::SignUp(_) => &self.signup,
            ThrottleKey::AdminKey(_) => &self.admin,
            ThrottleKey::Refresh(_) => &self.refresh,
        }
    }

    /// The rule a store applies to `key` when reserving an attempt.
    pub fn rule(&self, key: &ThrottleKey) -> LockRule {
        let limit = self.limit(key);
        let ms = |d: Duration| i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX).max(0);
        let max_ms = ms(limit.max_delay);
        LockRule {
            free: limit.free,
            base_ms: ms(limit.base_delay).min(max_ms),
            max_ms,
            forget_after_ms: ms(self.forget_after).max(1),
        }
    }

    /// Seconds to wait before trying again, rounded up, or `None` if an attempt may go ahead.
    pub fn retry_after(&self, key: &ThrottleKey, failures: Option<Failures>, now: OffsetDateTime) -> Option<u64> {
        let failures = failures.filter(|f| now - f.last_at < self.forget_after)?;
        let until = self.limit(key).locked_until(failures)?;
        let wait = until - now;
        (wait > Duration::ZERO).then(|| wait.whole_seconds().max(0) as u64 + u64::from(wait.subsec_nanoseconds() > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_starts_after_the_allowance_and_doubles() {
        let policy = ThrottlePolicy::default();
        let key = ThrottleKey::Account("alice".into());
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1000);
        let at = |count| Some(Failures { count, last_at: now });
        assert_eq!(policy.retry_after(&key, at(5), now), None);
        assert_eq!(policy.retry_after(&key, at(6), now), Some(1));
        assert_eq!(policy.retry_after(&key, at(7), now), Some(2));
        assert_eq!(policy.retry_after(&key, at(9), now), Some(8));
        assert_eq!(policy.retry_after(&key, at(60), now), Some(900));
        assert_eq!(policy.retry_after(&key, at(9), now + Duration::seconds(8)), None);
        assert_eq!(policy.retry_after(&key, at(60), now + Duration::hours(2)), None);
    }

    #[test]
    fn the_stores_lock_rule_agrees_with_retry_after() {
        let policy = ThrottlePolicy::default();
        for key in [ThrottleKey::Account("alice".into()), ThrottleKey::Ip("192.0.2.1".into())] {
            let rule = policy.rule(&key);
            let last_at = OffsetDateTime::UNIX_EPOCH + Duration::days(20000);
            for count in 0..40 {
                for after_ms in [0, 1, 999, 1000, 1001, 4000, 65_000, 900_000, 3_599_999, 3_600_000, 3_600_001] {
                    let now = last_at + Duration::milliseconds(after_ms);
                    let expected = policy.retry_after(&key, Some(Failures { count, last_at }), now).is_some();
                    let locked = rule.is_locked(count, last_at.unix_timestamp(), unix_ms(now));
                    assert_eq!(locked, expected, "{key:?}: {count} failures, {after_ms} ms later");
                }
            }
        }
    }

    #[test]
    fn ipv6_clients_are_grouped_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(ThrottleKey::ip(a), ThrottleKey::ip(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ThrottleKey::ip(mapped), ThrottleKey::ip("192.0.2.1".parse().unwrap()));
    }
}
