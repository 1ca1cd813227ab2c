//! How a session is laid out in its Redis hash. Memory per session is a SPEC target, so the
//! fixed part is packed bytes rather than one hash field per column:
//!
//! | field | holds |
//! |---|---|
//! | `d` | version 1 · secret hash (32) · CSRF hash (32) · created_at · expires_at (i64 BE each) · username, user agent, IP (u16 BE length, then UTF-8; length `0xFFFF` = none) |
//! | `l` | `last_seen_at`, unix seconds, decimal — written alone by every touch |
//! | `g` | the refresh family's generation, decimal — what a rotation compares and sets |
//! | `r` | the refresh family's current hash (32) · rotated_at (i64 BE) |
//!
//! The user id and session id are in the key, not repeated in the value.

use tessera_core::clock::{from_unix, to_unix};
use tessera_core::id::{SessionId, UserId};
use tessera_core::secret::TokenHash;
use tessera_core::session::{RefreshState, Session};
use tessera_core::store::StoreError;
use tessera_core::username::Username;

use super::corrupt;

const VERSION: u8 = 1;
const NONE: u16 = u16::MAX;

/// The `d` field.
pub fn encode_data(session: &Session) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(81 + 6 + session.username.as_str().len() + 64);
    out.push(VERSION);
    out.extend_from_slice(session.secret_hash.as_bytes());
    out.extend_from_slice(session.csrf_hash.as_bytes());
    out.extend_from_slice(&to_unix(session.created_at).to_be_bytes());
    out.extend_from_slice(&to_unix(session.expires_at).to_be_bytes());
    put_str(&mut out, Some(session.username.as_str()))?;
    put_str(&mut out, session.user_agent.as_deref())?;
    put_str(&mut out, session.ip.as_deref())?;
    Ok(out)
}

/// The `r` field.
pub fn encode_refresh(refresh: &RefreshState) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(refresh.hash.as_bytes());
    out.extend_from_slice(&to_unix(refresh.rotated_at).to_be_bytes());
    out
}

/// The four fields as read (`HMGET d l g r`); `None` when the session does not exist.
pub fn decode(user_id: UserId, id: SessionId, fields: [Option<Vec<u8>>; 4]) -> Result<Option<Session>, StoreError> {
    let [data, last_seen, generation, refresh] = fields;
    let Some(data) = data else { return Ok(None) };
    let mut r = Reader(&data);
    if r.take(1)?[0] != VERSION {
        return Err(corrupt("session (unknown layout version)"));
    }
    let secret_hash = r.hash()?;
    let csrf_hash = r.hash()?;
    let created_at = from_unix(r.i64()?);
    let expires_at = from_unix(r.i64()?);
    let username = r.string()?.ok_or_else(|| corrupt("session username"))?;
    let user_agent = r.string()?;
    let ip = r.string()?;
    if !r.0.is_empty() {
        return Err(corrupt("session (trailing bytes)"));
    }
    let last_seen_at = from_unix(decimal(last_seen.as_deref(), "session last_seen_at")?);
    let refresh = match (generation, refresh) {
        (None, None) => None,
        (Some(generation), Some(refresh)) => {
            let generation = u32::try_from(decimal(Some(&generation), "refresh generation")?)
                .map_err(|_| corrupt("refresh generation"))?;
            let mut r = Reader(&refresh);
            let hash = r.hash()?;
            let rotated_at = from_unix(r.i64()?);
            Some(RefreshState { generation, hash, rotated_at })
        }
        _ => return Err(corrupt("refresh family (half written)")),
    };
    Ok(Some(Session {
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
    }))
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

fn decimal(bytes: Option<&[u8]>, what: &str) -> Result<i64, StoreError> {
    bytes.and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok()).ok_or_else(|| corrupt(what))
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

    fn hash(&mut self) -> Result<TokenHash, StoreError> {
        let bytes: [u8; 32] = self.take(32)?.try_into().map_err(|_| corrupt("hash"))?;
        Ok(TokenHash::from_bytes(bytes))
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| corrupt("timestamp"))?;
        Ok(i64::from_be_bytes(bytes))
    }

    fn string(&mut self) -> Result<Option<String>, StoreError> {
        let len: [u8; 2] = self.take(2)?.try_into().map_err(|_| corrupt("length"))?;
        let len = u16::from_be_bytes(len);
        if len == NONE {
            return Ok(None);
        }
        let bytes = self.take(usize::from(len))?;
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| corrupt("session text (not UTF-8)"))
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
            user_agent: ua.map(str::to_owned),
            ip: Some("2001:db8::1".into()),
            refresh,
        }
    }

    fn round_trip(s: &Session) -> Session {
        let fields = [
            Some(encode_data(s).unwrap()),
            Some(to_unix(s.last_seen_at).to_string().into_bytes()),
            s.refresh.map(|r| r.generation.to_string().into_bytes()),
            s.refresh.as_ref().map(encode_refresh),
        ];
        decode(s.user_id, s.id, fields).unwrap().unwrap()
    }

    #[test]
    fn sessions_round_trip_with_and_without_optional_parts() {
        let refresh = RefreshState { generation: 7, hash: TokenHash::of(b"r"), rotated_at: from_unix(1_800_000_050) };
        for s in [session(Some("curl/8"), Some(refresh)), session(None, None), session(Some(""), None)] {
            assert_eq!(round_trip(&s), s);
        }
    }

    #[test]
    fn a_missing_session_decodes_to_none() {
        assert_eq!(decode(UserId::generate(), SessionId::generate(), [None, None, None, None]).unwrap(), None);
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let s = session(Some("ua"), None);
        let data = encode_data(&s).unwrap();
        let l = Some(b"1800000100".to_vec());
        for cut in 0..data.len() {
            let fields = [Some(data[..cut].to_vec()), l.clone(), None, None];
            assert!(decode(s.user_id, s.id, fields).is_err(), "truncated at {cut}");
        }
        let half = [Some(data.clone()), l.clone(), Some(b"1".to_vec()), None];
        assert!(decode(s.user_id, s.id, half).is_err());
        let bad_l = [Some(data), Some(b"soon".to_vec()), None, None];
        assert!(decode(s.user_id, s.id, bad_l).is_err());
    }

    #[test]
    fn oversized_text_is_refused_on_write() {
        let s = session(Some(&"x".repeat(70_000)), None);
        assert!(encode_data(&s).is_err());
    }
}
