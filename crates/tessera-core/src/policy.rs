//! The settings the domain decides with. The server builds a [`Policy`] from configuration;
//! tests build one directly.

use time::{Duration, OffsetDateTime};

use crate::jwt::JwtSettings;
use crate::revocation::RevocationCheck;
use crate::session::Session;
use crate::throttle::ThrottlePolicy;
use crate::username::Confusables;

/// Where on the sessions–JWT line a deployment stands (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Session,
    Jwt,
    Hybrid,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Session => "session",
            Mode::Jwt => "jwt",
            Mode::Hybrid => "hybrid",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    /// Whether `POST /v1/accounts` is open to anyone.
    pub signup: bool,
    /// Whether new usernames that can pass for another name are refused.
    pub username_confusables: Confusables,
    pub session: SessionPolicy,
    pub throttle: ThrottlePolicy,
    /// Access tokens, refresh and revocation; `None` in session mode.
    pub tokens: Option<TokenPolicy>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            mode: Mode::Session,
            signup: true,
            username_confusables: Confusables::Refuse,
            session: SessionPolicy::default(),
            throttle: ThrottlePolicy::default(),
            tokens: None,
        }
    }
}

/// How access tokens are issued, refreshed and revoked (jwt and hybrid modes).
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub jwt: JwtSettings,
    /// `None`: no refresh tokens (jwt mode with `refresh.enabled = false`).
    pub refresh: Option<RefreshPolicy>,
    pub revocation: RevocationCheck,
    /// How long a denylist copy may go without catching up before decisions that need it
    /// answer 503.
    pub max_staleness: std::time::Duration,
    /// `Cache-Control: max-age` of the JWKS, and so how long a new key is published before it
    /// signs: every verifier that cached the old document has the new key by then.
    pub jwks_max_age: Duration,
    /// Private keys are sealed at rest with this 32-byte key when set.
    pub seal_key: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// Absolute lifetime of a refresh family.
    pub ttl: Duration,
    /// A predecessor presented again within this gets the same successor; after it, the
    /// whole family is revoked.
    pub reuse_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct SessionPolicy {
    /// A session unused for this long ends (sliding).
    pub idle_timeout: Duration,
    /// A session ends this long after login, however busy.
    pub absolute_timeout: Duration,
    /// 0 = unlimited; otherwise a login beyond the limit revokes the oldest sessions.
    pub max_per_user: u32,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self { idle_timeout: Duration::days(7), absolute_timeout: Duration::days(30), max_per_user: 0 }
    }
}

impl SessionPolicy {
    /// How stale the stored `last_seen_at` may get before a request writes it again. Bounds the
    /// write rate of a busy session to one per interval; the idle timeout can come at most this
    /// much early, never late.
    pub fn touch_interval(&self) -> Duration {
        (self.idle_timeout / 20_i32).clamp(Duration::seconds(1), Duration::seconds(60))
    }

    /// When `session` ends if unused from now on: the sliding idle end, capped by the absolute end.
    pub fn idle_expires_at(&self, session: &Session) -> OffsetDateTime {
        (session.last_seen_at + self.idle_timeout).min(session.expires_at)
    }

    pub fn is_live(&self, session: &Session, now: OffsetDateTime) -> bool {
        now < self.idle_expires_at(session)
    }

    pub fn needs_touch(&self, session: &Session, now: OffsetDateTime) -> bool {
        now - session.last_seen_at >= self.touch_interval()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{SessionId, UserId};
    use crate::secret::TokenHash;
    use crate::username::Username;

    fn session_at(created: OffsetDateTime, absolute: Duration) -> Session {
        Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            username: Username::parse("alice").unwrap(),
            secret_hash: TokenHash::of(b"s"),
            csrf_hash: TokenHash::of(b"c"),
            created_at: created,
            last_seen_at: created,
            expires_at: created + absolute,
            user_agent: None,
            ip: None,
            refresh: None,
        }
    }

    #[test]
    fn idle_end_slides_with_use_but_never_passes_the_absolute_end() {
        let p =
            SessionPolicy { idle_timeout: Duration::hours(1), absolute_timeout: Duration::hours(3), max_per_user: 0 };
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut s = session_at(t0, p.absolute_timeout);
        assert!(p.is_live(&s, t0 + Duration::minutes(59)));
        assert!(!p.is_live(&s, t0 + Duration::hours(1)));
        s.last_seen_at = t0 + Duration::minutes(150);
        assert_eq!(p.idle_expires_at(&s), s.expires_at);
        assert!(!p.is_live(&s, t0 + Duration::hours(3)));
    }

    #[test]
    fn last_seen_is_written_at_a_bounded_rate() {
        let p = SessionPolicy::default();
        assert_eq!(p.touch_interval(), Duration::seconds(60));
        let short = SessionPolicy { idle_timeout: Duration::seconds(10), ..SessionPolicy::default() };
        assert_eq!(short.touch_interval(), Duration::seconds(1));
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let s = session_at(t0, p.absolute_timeout);
        assert!(!p.needs_touch(&s, t0 + Duration::seconds(59)));
        assert!(p.needs_touch(&s, t0 + Duration::seconds(60)));
    }
}
