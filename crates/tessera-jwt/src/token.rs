//! Signing and verifying access tokens: the checks, in the order they run, and why.
//!
//! See the crate documentation for the list; each step below names the
//! attack it stops. jsonwebtoken verifies the signature and the `iss`/`aud`/required-claim
//! rules, but everything it parses leniently (its header type ignores unknown members, its
//! claim checks read the system clock) is re-checked here strictly, and the time checks use the
//! `now` the caller passes — tessera's `Clock` — and nothing else.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::alg::Alg;
use super::claims::AccessClaims;
use super::error::JwtError;
use super::keyset::KeySet;
use super::public::PublicKeySet;

/// Tokens longer than this are refused before anything is decoded (SPEC §3). A tessera token
/// is under 400 bytes with EdDSA and under 700 with RS256.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The longest an access token can live (`exp - iat`): `jwt.access_ttl` is at most a day.
/// A token claiming longer was not issued by tessera, whoever signed it, and is refused
/// however far away its `exp` is.
pub const MAX_ACCESS_TTL: Duration = Duration::days(1);

/// The `typ` tessera writes (RFC 9068 §2.1).
const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// How access tokens are made and checked; from the `[jwt]` configuration section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// The one algorithm accepted; the token header never chooses (RFC 8725 §3.1).
    pub alg: Alg,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    /// Clock skew tolerated on `exp` and `iat` between instances (configuration caps it at 60 s).
    pub leeway: Duration,
}

/// The JOSE header, and the only members it may have. `deny_unknown_fields` turns away `crit`
/// (RFC 7515 §4.1.11: unknown critical extensions must be refused), `zip` (compressed
/// payloads: RFC 8725 §3.6), `cty` (nested tokens), and `jku`, `jwk`, `x5u`, `x5c` — the
/// members that would let a token name its own verification key (RFC 8725 §3.10). serde's
/// derived deserialiser also refuses a repeated member, so a parser that keeps the first of
/// two `alg`s and one that keeps the last can never disagree about this token.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header<S> {
    alg: S,
    typ: S,
    kid: S,
}

/// Signs `claims` with the key set's current signer. The header is exactly
/// `{"alg":…,"typ":"at+jwt","kid":…}`.
pub fn sign(keys: &KeySet, claims: &AccessClaims) -> Result<String, JwtError> {
    let key = keys.signer().ok_or(JwtError::NoSigningKey)?;
    let header = Header { alg: key.alg().as_str(), typ: ACCESS_TOKEN_TYPE, kid: key.kid() };
    let mut token = encode_part(&header)?;
    token.push('.');
    token.push_str(&encode_part(claims)?);
    let sign = || {
        jsonwebtoken::crypto::sign(token.as_bytes(), key.encoding(), key.alg().to_jsonwebtoken())
            .map_err(|e| JwtError::Sign(e.to_string()))
    };
    let mut signature = sign()?;
    if key.alg() == Alg::ES256 {
        // One valid form per token (RFC 8725 §3.2 spirit; BIP-62 for the idea): an ECDSA
        // signature (r, s) is equally valid as (r, n - s), so verification refuses the high
        // half and signing issues only the low one. ECDSA signing draws a fresh nonce each
        // time and s lands in the low half with probability 1/2: signing again until it does
        // needs no arithmetic on the signature. 128 draws all high: probability 2^-128.
        let mut draws = 1;
        while !is_low_s(&signature) {
            if draws == 128 {
                return Err(JwtError::Sign("no low-S ECDSA signature in 128 draws".into()));
            }
            signature = sign()?;
            draws += 1;
        }
    }
    token.push('.');
    token.push_str(&signature);
    if token.len() > MAX_TOKEN_LEN {
        // Never mint what verification would refuse (an absurdly long issuer, say).
        return Err(JwtError::Sign(format!("token of {} bytes exceeds {MAX_TOKEN_LEN}", token.len())));
    }
    Ok(token)
}

fn encode_part<T: Serialize>(value: &T) -> Result<String, JwtError> {
    let json = serde_json::to_vec(value).map_err(|e| JwtError::Sign(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// Decides whether `token` is an access token tessera issued that is valid at `now`.
pub fn verify(
    keys: &KeySet,
    settings: &JwtSettings,
    token: &str,
    now: OffsetDateTime,
) -> Result<AccessClaims, JwtError> {
    verify_with(|kid| keys.verifier_at(kid, now).map(|k| (k.alg(), k.decoding())), settings, token, now)
}

/// [`verify`] for a service that holds only the public keys of tessera's JWKS: the same checks,
/// in the same order; only the key lookup differs.
pub fn verify_public(
    keys: &PublicKeySet,
    settings: &JwtSettings,
    token: &str,
    now: OffsetDateTime,
) -> Result<AccessClaims, JwtError> {
    verify_with(|kid| keys.verifier(kid).map(|k| (k.alg(), k.decoding())), settings, token, now)
}

/// The one verification path. `lookup` finds a trusted key by `kid` and says its algorithm.
fn verify_with<'k>(
    lookup: impl FnOnce(&str) -> Option<(Alg, &'k DecodingKey)>,
    settings: &JwtSettings,
    token: &str,
    now: OffsetDateTime,
) -> Result<AccessClaims, JwtError> {
    // 1. Size first: nothing below runs on an attacker's megabyte.
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLarge { max: MAX_TOKEN_LEN });
    }
    // 2. Compact serialisation (RFC 7515 §7.1): three non-empty parts, each canonical base64url
    //    without padding (RFC 7515 §2, RFC 4648 §3.5). One spelling per token means the string
    //    is an identity: caches and denylists keyed on it cannot be sidestepped by re-encoding.
    let parts = Parts::decode(token)?;
    // 3. Our own strict header type (see `Header`).
    let header: Header<String> =
        serde_json::from_slice(&parts.header).map_err(|e| JwtError::Header(describe(&e.to_string())))?;
    // 4. The algorithm comes from configuration, compared exactly and case-sensitively: this is
    //    what stops `none` (RFC 7519 §6.1, RFC 8725 §2.1) and HS256-with-our-public-key
    //    (algorithm confusion, RFC 8725 §3.1) before any key is touched.
    if header.alg != settings.alg.as_str() {
        return Err(JwtError::AlgorithmNotAllowed);
    }
    // 5. Explicit typing (RFC 8725 §3.11, RFC 9068 §4): a refresh token, an ID token or any other
    //    JWT signed by the same key cannot pass as an access token.
    if !is_access_token_type(&header.typ) {
        return Err(JwtError::WrongType);
    }
    // 6. `kid` only selects among our own keys (RFC 7515 §4.1.4 leaves its meaning to us); it is
    //    never a path, a URL or a query (RFC 8725 §2.9). A key of another algorithm is not one this configuration
    //    trusts, even if the set holds it.
    let (_, key) = lookup(&header.kid).filter(|(alg, _)| *alg == settings.alg).ok_or(JwtError::UnknownKey)?;
    // 6b. ECDSA: only the low-S form (see `sign`), so a token has one valid spelling and a
    //     signature cannot be turned into a second valid one without the key.
    if settings.alg == Alg::ES256 && !is_low_s(token.rsplit('.').next().unwrap_or_default()) {
        return Err(JwtError::BadSignature);
    }
    // 7. Signature, then jsonwebtoken's claim rules: `exp`, `iss`, `aud`, `sub` present, `iss`
    //    and `aud` ours. Its time checks are off — they read the system clock; ours (step 9)
    //    read `now`.
    jsonwebtoken::decode::<IgnoredAny>(token, key, &validation(settings)).map_err(from_jsonwebtoken)?;
    // 8. Our strict claims type: no unknown or repeated members, ids in their one spelling.
    //    serde_json refuses nesting deeper than 127 levels for the types that recurse, so a
    //    deeply nested payload is an error, not a stack overflow.
    let claims: AccessClaims =
        serde_json::from_slice(&parts.payload).map_err(|e| JwtError::Claims(describe(&e.to_string())))?;
    if claims.iss != settings.issuer {
        return Err(JwtError::WrongIssuer);
    }
    if claims.aud != settings.audience {
        return Err(JwtError::WrongAudience);
    }
    // 9. Time, against `now` (RFC 7519 §4.1.4: reject at or after `exp`). `exp` is a lifetime
    //    tessera decided, so the leeway never lengthens it; it only tolerates a signer's clock
    //    running ahead: a token issued further in the future was not issued by a sane clock.
    let now = now.unix_timestamp();
    let leeway = settings.leeway.whole_seconds().max(0);
    if now >= claims.exp {
        return Err(JwtError::Expired);
    }
    if claims.iat > now.saturating_add(leeway) {
        return Err(JwtError::NotYetValid);
    }
    if claims.exp.saturating_sub(claims.iat) > MAX_ACCESS_TTL.whole_seconds() {
        return Err(JwtError::Claims("exp is more than a day after iat".into()));
    }
    Ok(claims)
}

/// Half the order of the P-256 group, rounded down: `s` is "low" when it is at most this.
const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d,
    0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Whether a base64url ES256 signature (`r ‖ s`, 32 bytes each, RFC 7518 §3.4) has its `s`
/// in the low half of the group order. Big-endian bytes of equal length compare as numbers.
/// Anything that is not 64 bytes is not low-S (and would fail verification anyway).
fn is_low_s(signature: &str) -> bool {
    match URL_SAFE_NO_PAD.decode(signature) {
        Ok(raw) if raw.len() == 64 => raw[32..] <= P256_HALF_ORDER[..],
        _ => false,
    }
}

/// The `kid` of a token whose header is well-formed; for the verified-token cache.
pub(super) fn header_kid(token: &str) -> Option<String> {
    let encoded = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    serde_json::from_slice::<Header<String>>(&bytes).ok().map(|h| h.kid)
}

/// RFC 9068 §4 names both spellings; RFC 7515 §4.1.9 says media type names are compared
/// case-insensitively. tessera writes the short one.
fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) || typ.eq_ignore_ascii_case("application/at+jwt")
}

struct Parts {
    header: Vec<u8>,
    payload: Vec<u8>,
}

impl Parts {
    fn decode(token: &str) -> Result<Self, JwtError> {
        let mut split = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (split.next(), split.next(), split.next(), split.next())
        else {
            return Err(JwtError::Malformed("a JWS has exactly three parts"));
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(JwtError::Malformed("empty part"));
        }
        let decode = |part: &str| {
            // base64 0.22's URL_SAFE_NO_PAD refuses padding, the `+`/`/` alphabet and set
            // trailing bits.
            URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed("not canonical base64url"))
        };
        let parts = Parts { header: decode(header)?, payload: decode(payload)? };
        decode(signature)?;
        Ok(parts)
    }
}

fn validation(settings: &JwtSettings) -> Validation {
    let mut v = Validation::new(settings.alg.to_jsonwebtoken());
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.set_issuer(&[&settings.issuer]);
    v.set_audience(&[&settings.audience]);
    v.leeway = u64::try_from(settings.leeway.whole_seconds()).unwrap_or(0);
    // jsonwebtoken compares `exp` and `nbf` with `SystemTime::now()`. tessera decides time with
    // its clock (step 9); tessera never issues `nbf`, and `AccessClaims` refuses it.
    v.validate_exp = false;
    v.validate_nbf = false;
    v
}

fn from_jsonwebtoken(e: jsonwebtoken::errors::Error) -> JwtError {
    match e.kind() {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => JwtError::AlgorithmNotAllowed,
        ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
        ErrorKind::InvalidAudience => JwtError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => JwtError::MissingClaim(claim.clone()),
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::Json(e) => JwtError::Claims(describe(&e.to_string())),
        _ => JwtError::Rejected(describe(&e.to_string())),
    }
}

/// A parser message fit for a log line: it may quote attacker text (an unknown member's name),
/// so it is cut short and stripped of anything but printable ASCII.
fn describe(message: &str) -> String {
    let clean: Cow<'_, str> = if message.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        Cow::Borrowed(message)
    } else {
        Cow::Owned(message.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect())
    };
    clean.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_the_access_token_type_are_accepted() {
        for ok in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            assert!(is_access_token_type(ok), "{ok}");
        }
        for bad in ["JWT", "jwt", "", "at+jwt ", "application/jwt", "refresh+jwt", "at+jwt\0", "application/at+jwt+x"] {
            assert!(!is_access_token_type(bad), "{bad:?}");
        }
    }

    #[test]
    fn log_descriptions_are_short_and_printable() {
        assert_eq!(describe("unknown field `x`"), "unknown field `x`");
        assert_eq!(describe("a\nb\u{1b}[31mc"), "a?b?[31mc");
        assert_eq!(describe(&"y".repeat(1000)).len(), 120);
    }

    #[test]
    fn headers_are_written_in_a_fixed_order() {
        let json = serde_json::to_string(&Header { alg: "EdDSA", typ: "at+jwt", kid: "abc" }).unwrap();
        assert_eq!(json, r#"{"alg":"EdDSA","typ":"at+jwt","kid":"abc"}"#);
    }

    #[test]
    fn serde_json_refuses_repeated_header_members() {
        let json = br#"{"alg":"EdDSA","typ":"at+jwt","kid":"abc","alg":"none"}"#;
        let err = serde_json::from_slice::<Header<String>>(json).err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.starts_with("duplicate field `alg`")), "{err:?}");
        // The same member spelled with a JSON escape is the same member.
        let escaped = br#"{"alg":"EdDSA","typ":"at+jwt","kid":"abc","\u0061lg":"none"}"#;
        assert!(serde_json::from_slice::<Header<String>>(escaped).is_err());
    }

    #[test]
    fn serde_json_refuses_nesting_deeper_than_127() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(serde_json::from_str::<serde_json::Value>(&nested(127)).is_ok());
        let err = serde_json::from_str::<serde_json::Value>(&nested(128)).unwrap_err();
        assert!(err.to_string().starts_with("recursion limit exceeded"), "{err}");
        // 10 000 levels: an error, not a stack overflow, for every type verification parses into.
        let deep = nested(10_000);
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
        assert!(serde_json::from_str::<AccessClaims>(&deep).is_err());
        assert!(serde_json::from_str::<Header<String>>(&deep).is_err());
        let in_member = format!(r#"{{"iss":{deep}}}"#);
        assert!(serde_json::from_str::<AccessClaims>(&in_member).is_err());
        // `IgnoredAny` (what jsonwebtoken's signature step decodes into here, and how it skips
        // members it does not know) is skipped by an iterative scanner: no limit, and no
        // recursion either — depth costs one byte of heap per level, bounded by the 8 KiB cap.
        assert!(serde_json::from_str::<IgnoredAny>(&deep).is_ok());
        assert!(serde_json::from_str::<IgnoredAny>(&in_member).is_ok());
    }
}
