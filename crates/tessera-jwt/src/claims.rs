//! The claims of a tessera access token (RFC 9068 §2.2, SPEC §2).
//!
//! Ids are written as their 22-character base64url form, not hex or UUID text: that keeps an
//! EdDSA token under 400 bytes. Deserialisation is strict — an unknown member, a duplicate
//! member, a float or string where a number belongs, an `aud` array, all fail — because a token
//! that does not look exactly like one tessera mints is not one tessera minted.

use serde::{Deserialize, Serialize};

use crate::id::{SessionId, TokenId, UserId};

/// What a verified access token says. Only [`super::verify`] produces these from a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessClaims {
    /// Who issued it (RFC 7519 §4.1.1): `jwt.issuer`.
    pub iss: String,
    /// The user (RFC 7519 §4.1.2).
    #[serde(deserialize_with = "ids::user")]
    pub sub: UserId,
    /// Who may accept it (RFC 7519 §4.1.3): `jwt.audience`, a single string.
    pub aud: String,
    /// Expiry, seconds since the epoch (RFC 7519 §4.1.4).
    pub exp: i64,
    /// Issue time, seconds since the epoch (RFC 7519 §4.1.6).
    pub iat: i64,
    /// This token's id (RFC 7519 §4.1.7), so one token can be denylisted.
    #[serde(deserialize_with = "ids::token")]
    pub jti: TokenId,
    /// The server session the token is bound to (RFC 9068 has no `sid`; OpenID Connect
    /// Front-Channel Logout §3 defines it). Absent in the jwt mode without sessions.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "ids::session")]
    pub sid: Option<SessionId>,
}

/// Deserialisers for the 128-bit ids: exactly 22 characters of canonical base64url.
mod ids {
    use serde::Deserialize;
    use serde::de::{Deserializer, Error};

    use crate::id::{SessionId, TokenId, UserId};

    fn parse<'de, D, T>(d: D, what: &'static str, parse: fn(&str) -> Option<T>) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
    {
        // Borrowed where the JSON has no escapes; an escaped id is still parsed, then refused
        // by the base64 check if it is not canonical.
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        parse(&s).ok_or_else(|| D::Error::custom(format!("{what} is not a 22-character base64url id")))
    }

    pub fn user<'de, D: Deserializer<'de>>(d: D) -> Result<UserId, D::Error> {
        parse(d, "sub", UserId::parse)
    }

    pub fn token<'de, D: Deserializer<'de>>(d: D) -> Result<TokenId, D::Error> {
        parse(d, "jti", TokenId::parse)
    }

    pub fn session<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SessionId>, D::Error> {
        // `"sid": null` is not a way to say "no session": the member is either absent or an id.
        parse(d, "sid", SessionId::parse).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sid: Option<SessionId>) -> AccessClaims {
        AccessClaims {
            iss: "http://127.0.0.1:8080".into(),
            sub: UserId::generate(),
            aud: "tessera".into(),
            exp: 1_700_000_300,
            iat: 1_700_000_000,
            jti: TokenId::generate(),
            sid,
        }
    }

    #[test]
    fn ids_are_written_as_22_characters() {
        let c = claims(Some(SessionId::generate()));
        let json: serde_json::Value = serde_json::to_value(&c).unwrap();
        for member in ["sub", "jti", "sid"] {
            assert_eq!(json[member].as_str().unwrap().len(), 22, "{member}");
        }
        assert_eq!(serde_json::from_value::<AccessClaims>(json).unwrap(), c);
    }

    #[test]
    fn sid_is_omitted_when_none() {
        let c = claims(None);
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("sid"));
        assert_eq!(serde_json::from_str::<AccessClaims>(&json).unwrap(), c);
    }

    fn with(member: &str, value: serde_json::Value) -> Result<AccessClaims, serde_json::Error> {
        let mut json = serde_json::to_value(claims(Some(SessionId::generate()))).unwrap();
        json[member] = value;
        serde_json::from_value(json)
    }

    #[test]
    fn strict_shapes_are_required() {
        assert!(with("nbf", 1.into()).is_err(), "unknown member");
        assert!(with("exp", 1.5.into()).is_err(), "float exp");
        assert!(with("exp", "1700000300".into()).is_err(), "string exp");
        assert!(with("aud", serde_json::json!(["tessera"])).is_err(), "aud array");
        assert!(with("sid", serde_json::Value::Null).is_err(), "null sid");
        assert!(with("sub", "not-an-id".into()).is_err(), "bad sub");
        assert!(with("jti", "AAAAAAAAAAAAAAAAAAAAAA==".into()).is_err(), "padded jti");
        assert!(with("sub", "AAAAAAAAAAAAAAAAAAAAAB".into()).is_err(), "non-canonical sub");
    }

    #[test]
    fn duplicate_members_are_rejected() {
        let c = claims(None);
        let json = serde_json::to_string(&c).unwrap();
        let dup = json.replacen('{', &format!("{{\"sub\":\"{}\",", UserId::generate()), 1);
        let err = serde_json::from_str::<AccessClaims>(&dup).unwrap_err();
        assert!(err.to_string().contains("duplicate field `sub`"), "{err}");
    }
}
