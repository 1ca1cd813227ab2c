//! How a session is laid out in Redis: one string value of packed bytes per session.
//!
//! Memory per session is a SPEC target (under 400 bytes for a typical one), and a Redis hash
//! holding a value longer than 64 bytes (a user agent, say) leaves its compact encoding for a
//! real hash table that costs ~170 bytes more. A string costs what it holds. The parts that
//! change after creation sit at fixed offsets, so a touch or a refresh rotation is a
//! `SETRANGE` inside a Lua script, never a read-modify-write over the network.
//!
//! | offset | bytes | holds |
//! |---|---|---|
//! | 0 | 1 | [`VERSION`] in the high nibble; bit 0 set: a refresh family follows |
//! | 1 | 4 | `last_seen_at` |
//! | 5 | 4 | refresh generation (only with a family) |
//! | 9 | 32 | refresh hash (only with a family) |
//! | 41 | 8 | refresh `rotated_at`, in milliseconds (only with a family) |
//! | then | 32 · 32 · 8 · 4 | secret hash · CSRF hash · `created_at` (milliseconds) · `expires_at` |
//! | then | | username, user agent, IP: u16 length then UTF-8; length `0xFFFF` = none |
//!
//! Integers are big-endian; instants are unix seconds as u32 (good until 2106; a later expiry
//! is stored as 2106), except `created_at` and `rotated_at`: unix milliseconds as u64, because
//! their order within a second matters (eviction of the oldest session, a zero reuse grace).
//! The user id and session id are in the key, not repeated here.
//!
//! Layout version 1 (`0x10`) had those two in seconds (u32); it is still read, and a rotation
//! of a version-1 value writes the version-1 family bytes ([`encode_refresh_v1`]), so sessions
//! created before an upgrade live on.

use std::sync::Arc;

use tessera_core::clock::{from_unix, from_unix_ms, to_unix, to_unix_ms};
use tessera_core::id::{SessionId, UserId};
use tessera_core::secret::TokenHash;
use tessera_core::session::{RefreshState, Session};
use tessera_core::store::StoreError;
use tessera_core::username::Username;
use time::OffsetDateTime;

use super::corrupt;

const VERSION: u8 = 0x20;
const VERSION_1: u8 = 0x10;
const HAS_REFRESH: u8 = 0x01;
const NONE: u16 = u16::MAX;
/// Where `last_seen_at` sits (a touch rewrites it).
pub const LAST_SEEN_AT: usize = 1;
/// Where the refresh family sits (a rotation compares the generation and rewrites all three).
pub const REFRESH_AT: usize = 5;
/// The refresh family: generation, hash, `rotated_at` (milliseconds).
const REFRESH_LEN: usize = 4 + 32 + 8;
/// The refresh family in layout version 1 (`rotated_at` in seconds).
const REFRESH_LEN_V1: usize = 4 + 32 + 4;
/// Where `expires_at` sits in a session without a refresh family (a touch reads it, so the
/// key's TTL never passes the absolute end): after the secret hash, the CSRF hash and
/// `created_at` (milliseconds).
pub const EXPIRES_AT: usize = REFRESH_AT + 32 + 32 + 8;
/// Where `expires_at` sits in a session with a refresh family.
pub const EXPIRES_AT_WITH_REFRESH: usize = EXPIRES_AT + REFRESH_LEN;
/// Where `expires_at` sits in a layout-version-1 session without a refresh family
/// (`created_at` in seconds).
pub const EXPIRES_AT_V1: usize = REFRESH_AT + 32 + 32 + 4;
/// Where `expires_at` sits in a layout-version-1 session with a refresh family.
pub const EXPIRES_AT_V1_WITH_REFRESH: usize = EXPIRES_AT_V1 + REFRESH_LEN_V1;

pub fn encode(session: &Session) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(128 + session.user_agent.as_deref().map_or(0, str::len));
    out.push(VERSION | if session.refresh.is_some() { HAS_REFRESH } else { 0 });
    out.extend_from_slice(&instant(session.last_seen_at));
    if let Some(refresh) = &session.refresh {
        out.extend_from_slice(&encode_refresh(refresh));
    }
    out.extend_from_slice(session.secret_hash.as_bytes());
    out.extend_from_slice(session.csrf_hash.as_bytes());
    out.extend_from_slice(&instant_ms(session.created_at));
    out.extend_from_slice(&instant(session.expires_at));
    put_str(&mut out, Some(session.username.as_str()))?;
    put_str(&mut out, session.user_agent.as_deref())?;
    put_str(&mut out, session.ip.as_deref())?;
    Ok(out)
}

/// The bytes at [`REFRESH_AT`]: generation, hash, rotated_at (milliseconds).
pub fn encode_refresh(refresh: &RefreshState) -> Vec<u8> {
    let mut out = Vec::with_capacity(REFRESH_LEN);
    out.extend_from_slice(&refresh.generation.to_be_bytes());
    out.extend_from_slice(refresh.hash.as_bytes());
    out.extend_from_slice(&instant_ms(refresh.rotated_at));
    out
}

/// The same family in layout version 1 (`rotated_at` in seconds), for a rotation of a value
/// written before the upgrade.
pub fn encode_refresh_v1(refresh: &RefreshState) -> Vec<u8> {
    let mut out = Vec::with_capacity(REFRESH_LEN_V1);
    out.extend_from_slice(&refresh.generation.to_be_bytes());
    out.extend_from_slice(refresh.hash.as_bytes());
    out.extend_from_slice(&instant(refresh.rotated_at));
    out
}

/// Unix seconds as stored: clamped into u32.
pub fn instant(t: OffsetDateTime) -> [u8; 4] {
    u32::try_from(to_unix(t).max(0)).unwrap_or(u32::MAX).to_be_bytes()
}

/// Unix milliseconds as stored: clamped into u64.
pub fn instant_ms(t: OffsetDateTime) -> [u8; 8] {
    u64::try_from(to_unix_ms(t).max(0)).unwrap_or(u64::MAX).to_be_bytes()
}

pub fn decode(user_id: UserId, id: SessionId, value: &[u8]) -> Result<Session, StoreError> {
    let mut r = Reader(value);
    let flags = r.take(1)?[0];
    let precise = match flags & 0xF0 {
        VERSION => true,
        VERSION_1 => false,
        _ => return Err(corrupt("session (unknown layout version)")),
    };
    let last_seen_at = r.instant()?;
    let refresh = if flags & HAS_REFRESH != 0 {
        let generation = u32::from_be_bytes(r.array()?);
        let hash = TokenHash::from_bytes(r.array()?);
        let rotated_at = if precise { r.instant_ms()? } else { r.instant()? };
        Some(RefreshState { generation, hash, rotated_at })
    } else {
        None
    };
    let secret_hash = TokenHash::from_bytes(r.array()?);
    let csrf_hash = TokenHash::from_bytes(r.array()?);
    let created_at = if precise { r.instant_ms()? } else { r.instant()? };
    let expires_at = r.instant()?;
    let username = r.string()?.ok_or_else(|| corrupt("session username"))?;
    let user_agent = r.string()?;
    let ip = r.string()?;
    if !r.0.is_empty() {
        return Err(corrupt("session (trailing bytes)"));
    }
    Ok(Session {
        id,
        user_id,
        username: Username::from_stored(username),
        secret_hash,
        csrf_hash,
        created_at,
        last_seen_at,
        expires_at,
        user_agent,
        ip,
        refresh,
    })
}

fn put_str(out: &mut Vec<u8>, s: Option<&str>) -> Result<(), StoreError> {
    match s {
        None => out.extend_from_slice(&NONE.to_be_bytes()),
        Some(s) => {
            let len = u16::try_from(s.len()).ok().filter(|&n| n != NONE).ok_or_else(|| {
                StoreError::Other(format!("session text field of {} bytes is too long to store", s.len()))
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt("session (truncated)"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        self.take(N)?.try_into().map_err(|_| corrupt("session (truncated)"))
    }

    fn instant(&mut self) -> Result<OffsetDateTime, StoreError> {
        Ok(from_unix(i64::from(u32::from_be_bytes(self.array()?))))
    }

    fn instant_ms(&mut self) -> Result<OffsetDateTime, StoreError> {
        Ok(from_unix_ms(i64::try_from(u64::from_be_bytes(self.array()?)).unwrap_or(i64::MAX)))
    }

    fn string(&mut self) -> Result<Option<Arc<str>>, StoreError> {
        let len = u16::from_be_bytes(self.array()?);
        if len == NONE {
            return Ok(None);
        }
        let bytes = self.take(usize::from(len))?;
        std::str::from_utf8(bytes).map(|s| Some(s.into())).map_err(|_| corrupt("session text (not UTF-8)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(ua: Option<&str>, refresh: Option<RefreshState>) -> Session {
        Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            username: Username::parse("álice").unwrap(),
            secret_hash: TokenHash::of(b"s"),
            csrf_hash: TokenHash::of(b"c"),
            created_at: from_unix(1_800_000_000),
            last_seen_at: from_unix(1_800_000_100),
            expires_at: from_unix(1_802_592_000),
            user_agent: ua.map(Into::into),
            ip: Some("2001:db8::1".into()),
            refresh,
        }
    }

    fn round_trip(s: &Session) -> Session {
        decode(s.user_id, s.id, &encode(s).unwrap()).unwrap()
    }

    #[test]
    fn sessions_round_trip_with_and_without_optional_parts() {
        let refresh = RefreshState { generation: 7, hash: TokenHash::of(b"r"), rotated_at: from_unix(1_800_000_050) };
        for s in [session(Some("curl/8"), Some(refresh)), session(None, None), session(Some(""), None)] {
            assert_eq!(round_trip(&s), s);
        }
    }

    #[test]
    fn the_mutable_parts_sit_where_the_scripts_write_them() {
        let refresh = RefreshState { generation: 7, hash: TokenHash::of(b"r"), rotated_at: from_unix(1_800_000_050) };
        let s = session(Some("ua"), Some(refresh));
        let bytes = encode(&s).unwrap();
        assert_eq!(bytes[LAST_SEEN_AT..LAST_SEEN_AT + 4], instant(s.last_seen_at));
        assert_eq!(bytes[REFRESH_AT..REFRESH_AT + REFRESH_LEN], encode_refresh(&refresh)[..]);
        assert_eq!(bytes[EXPIRES_AT_WITH_REFRESH..EXPIRES_AT_WITH_REFRESH + 4], instant(s.expires_at));
        let without = session(Some("ua"), None);
        let bytes = encode(&without).unwrap();
        assert_eq!(bytes[EXPIRES_AT..EXPIRES_AT + 4], instant(without.expires_at));
    }

    #[test]
    fn creation_and_rotation_keep_their_milliseconds() {
        let ms = time::Duration::milliseconds(123);
        let refresh =
            RefreshState { generation: 7, hash: TokenHash::of(b"r"), rotated_at: from_unix(1_800_000_050) + ms };
        let mut s = session(Some("ua"), Some(refresh));
        s.created_at += ms;
        assert_eq!(round_trip(&s), s);
    }

    /// A value written before the upgrade (layout 1: seconds) is still read, field by field.
    #[test]
    fn layout_version_1_is_still_read() {
        let refresh = RefreshState { generation: 7, hash: TokenHash::of(b"r"), rotated_at: from_unix(1_800_000_050) };
        let s = session(Some("ua"), Some(refresh));
        let mut v1 = vec![VERSION_1 | HAS_REFRESH];
        v1.extend_from_slice(&instant(s.last_seen_at));
        v1.extend_from_slice(&encode_refresh_v1(&refresh));
        v1.extend_from_slice(s.secret_hash.as_bytes());
        v1.extend_from_slice(s.csrf_hash.as_bytes());
        v1.extend_from_slice(&instant(s.created_at));
        v1.extend_from_slice(&instant(s.expires_at));
        put_str(&mut v1, Some(s.username.as_str())).unwrap();
        put_str(&mut v1, s.user_agent.as_deref()).unwrap();
        put_str(&mut v1, s.ip.as_deref()).unwrap();
        assert_eq!(v1[EXPIRES_AT_V1_WITH_REFRESH..EXPIRES_AT_V1_WITH_REFRESH + 4], instant(s.expires_at));
        assert_eq!(decode(s.user_id, s.id, &v1).unwrap(), s);
    }

    #[test]
    fn instants_beyond_the_u32_range_are_clamped_not_wrapped() {
        let mut s = session(None, None);
        s.expires_at = from_unix(5_000_000_000);
        assert_eq!(round_trip(&s).expires_at, from_unix(i64::from(u32::MAX)));
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let refresh = RefreshState { generation: 1, hash: TokenHash::of(b"r"), rotated_at: from_unix(1_800_000_050) };
        for s in [session(Some("ua"), None), session(Some("ua"), Some(refresh))] {
            let bytes = encode(&s).unwrap();
            for cut in 0..bytes.len() {
                assert!(decode(s.user_id, s.id, &bytes[..cut]).is_err(), "truncated at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode(s.user_id, s.id, &longer).is_err(), "trailing byte");
            let mut other_version = bytes;
            other_version[0] = 0x30;
            assert!(decode(s.user_id, s.id, &other_version).is_err(), "unknown version");
        }
    }

    #[test]
    fn oversized_text_is_refused_on_write() {
        let s = session(Some(&"x".repeat(70_000)), None);
        assert!(encode(&s).is_err());
    }
}
