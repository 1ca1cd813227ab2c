//! Usernames are compared after NFKC normalisation and Unicode case folding, so `Alice`,
//! `ALICE` and `Ａｌｉｃｅ` (fullwidth) are one account and cannot be registered twice to
//! impersonate each other.

use std::fmt;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

/// Characters a username may have after normalisation.
pub const MIN_CHARS: usize = 3;
pub const MAX_CHARS: usize = 64;

#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("a username must have {MIN_CHARS} to {MAX_CHARS} characters")]
    Length,
    #[error("a username may not contain spaces or control characters")]
    Forbidden,
}

impl Username {
    /// Normalises (NFKC, case fold, NFKC again as UAX #15 advises for caseless matching) and
    /// checks the result. The only way to make a `Username`.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        // Bound the work before normalising: the input may be up to the body limit.
        if raw.len() > MAX_CHARS * 4 * 3 {
            return Err(UsernameError::Length);
        }
        let folded: String = caseless::default_case_fold_str(&raw.nfkc().collect::<String>()).nfkc().collect();
        let chars = folded.chars().count();
        if !(MIN_CHARS..=MAX_CHARS).contains(&chars) {
            return Err(UsernameError::Length);
        }
        if folded.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UsernameError::Forbidden);
        }
        Ok(Self(folded))
    }

    /// Rebuilds a username that a store already normalised.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_compatibility_forms_are_one_username() {
        let a = Username::parse("Alice").unwrap();
        assert_eq!(a.as_str(), "alice");
        assert_eq!(Username::parse("ＡＬＩＣＥ").unwrap(), a);
        assert_eq!(Username::parse("STRASSE").unwrap(), Username::parse("straße").unwrap());
    }

    #[test]
    fn bad_usernames_are_refused() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"x".repeat(65)), Err(UsernameError::Length));
        assert_eq!(Username::parse("al ice"), Err(UsernameError::Forbidden));
        assert_eq!(Username::parse("al\u{0}ice"), Err(UsernameError::Forbidden));
        assert_eq!(Username::parse(&"x".repeat(100_000)), Err(UsernameError::Length));
    }
}
