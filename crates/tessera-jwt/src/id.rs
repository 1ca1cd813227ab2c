//! Identifiers: 128-bit values written as 22 characters of base64url (compact in tokens and
//! cookies, where hex would cost 10 more bytes each).

use std::fmt;

use serde::{Serialize, Serializer};

use crate::secret::{b64_decode_exact, b64_into, random_bytes};

macro_rules! id128 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            /// The 22-character base64url form, written into `out`: what `Display` writes,
            /// without a `String`.
            pub fn encode_into<'a>(&self, out: &'a mut [u8; 22]) -> &'a str {
                b64_into(&self.0, out).unwrap_or_default()
            }

            /// Parses the 22-character base64url form; anything else is `None`.
            pub fn parse(s: &str) -> Option<Self> {
                b64_decode_exact::<16>(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.encode_into(&mut [0u8; 22]))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(b64_into(&self.0, &mut [0u8; 22]).unwrap_or_default())
            }
        }
    };
}

id128!(
    /// An account's id: a UUIDv7, so ids sort by creation time and index well.
    UserId
);
id128!(
    /// A session's public id: random, shown to its owner and used as the JWT `sid`. It is not a
    /// credential; the secret half of a session token (`tessera_core::SessionToken`) is.
    SessionId
);

id128!(
    /// A JWT's `jti`: random, so one access token can be denylisted on its own.
    TokenId
);

impl TokenId {
    pub fn generate() -> Self {
        Self(random_bytes())
    }
}

impl UserId {
    pub fn generate() -> Self {
        Self(*uuid::Uuid::now_v7().as_bytes())
    }
}

impl SessionId {
    pub fn generate() -> Self {
        Self(random_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_as_22_characters_and_parse_back() {
        let id = UserId::generate();
        let s = id.to_string();
        assert_eq!(s.len(), 22);
        assert_eq!(UserId::parse(&s), Some(id));
        assert_eq!(UserId::parse(&s[1..]), None);
        assert_eq!(SessionId::parse("../../etc/passwd"), None);
    }
}
