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
    Account(String),
    Ip(String),
    /// Revocations of a user's access tokens through `/v1/revoke` (by user id): each one that
    /// adds a denylist entry counts, so one account cannot grow the denylist without bound.
    Revocations(String),
}

impl ThrottleKey {
    pub fn account(username: &Username) -> Self {
        Self::Account(username.as_str().to_owned())
    }

    /// IPv6 clients are grouped by /64: one host usually owns the whole prefix, so counting
    /// single addresses would give it 2^64 fresh allowances.
    pub fn ip(ip: IpAddr) -> Self {
        let key = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        };
        Self::Ip(key)
    }

    /// The form stores keep: `a:<username>`, `i:<address>` or `r:<user id>`.
    pub fn as_store_key(&self) -> String {
        match self {
            Self::Account(u) => format!("a:{u}"),
            Self::Ip(ip) => format!("i:{ip}"),
            Self::Revocations(user) => format!("r:{user}"),
        }
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

#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    pub account: Limit,
    pub ip: Limit,
    pub revocations: Limit,
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
    fn ipv6_clients_are_grouped_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(ThrottleKey::ip(a), ThrottleKey::ip(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ThrottleKey::ip(mapped), ThrottleKey::ip("192.0.2.1".parse().unwrap()));
    }
}
