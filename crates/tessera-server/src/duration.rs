//! Durations in configuration are written `"500ms"`, `"30s"`, `"5m"`, `"12h"` or `"7d"`.

use std::fmt;

use serde::{Deserialize, Deserializer, de};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(std::time::Duration);

impl Duration {
    pub const fn secs(s: u64) -> Self {
        Self(std::time::Duration::from_secs(s))
    }

    pub const fn days(d: u64) -> Self {
        Self::secs(d * 86_400)
    }

    pub fn as_std(self) -> std::time::Duration {
        self.0
    }

    pub fn as_time(self) -> time::Duration {
        time::Duration::try_from(self.0).unwrap_or(time::Duration::MAX)
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits.parse().ok()?;
        let ms = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        Some(Self(std::time::Duration::from_millis(n.checked_mul(ms)?)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).ok_or_else(|| {
            de::Error::invalid_value(
                de::Unexpected::Str(&s),
                &"a duration such as \"500ms\", \"30s\", \"5m\", \"12h\" or \"7d\"",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn duration_parser_never_panics(s in ".{0,40}|[0-9]{0,25}(ms|s|m|h|d|)") {
            let _ = Duration::parse(&s);
        }

        #[test]
        fn durations_round_trip_through_their_display(ms in 0u64..u64::MAX / 86_400_000) {
            let d = Duration(std::time::Duration::from_millis(ms));
            prop_assert_eq!(Duration::parse(&d.to_string()), Some(d));
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(Duration::parse("30s"), Some(Duration::secs(30)));
        assert_eq!(Duration::parse("5m"), Some(Duration::secs(300)));
        assert_eq!(Duration::parse("7d"), Some(Duration::days(7)));
        assert_eq!(Duration::parse("250ms").map(|d| d.as_std().as_millis()), Some(250));
        for bad in ["", "s", "5", "5 parsecs", "-5s", "99999999999999999999d", "1.5h"] {
            assert_eq!(Duration::parse(bad), None, "{bad}");
        }
    }
}
