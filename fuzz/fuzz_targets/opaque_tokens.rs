//! Session, refresh and CSRF tokens, and the ids inside them. Each parser accepts only the
//! canonical encoding: what parses re-encodes to exactly the input (so a denylist or cache
//! keyed on the string cannot be sidestepped by re-encoding), and a session token is never a
//! refresh token or the reverse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::SessionToken;
use tessera_core::id::{SessionId, UserId};
use tessera_core::refresh::RefreshToken;
use tessera_core::secret::{TokenHash, b64, b64_decode_exact};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let session = SessionToken::parse(s);
    let refresh = RefreshToken::parse(s);
    assert!(session.is_none() || refresh.is_none(), "one string parsed as both token kinds");
    if let Some(t) = session {
        assert_eq!(t.encode(), s, "session tokens have one encoding");
    }
    if let Some(t) = refresh {
        assert_eq!(t.encode(), s, "refresh tokens have one encoding");
    }
    // A CSRF token is 32 bytes of base64url, compared by hash.
    if let Some(raw) = b64_decode_exact::<32>(s) {
        assert_eq!(b64(&raw), s, "CSRF tokens have one encoding");
        let _ = TokenHash::of(&raw);
    }
    if let Some(id) = UserId::parse(s) {
        assert_eq!(id.to_string(), s, "user ids have one encoding");
    }
    if let Some(id) = SessionId::parse(s) {
        assert_eq!(id.to_string(), s, "session ids have one encoding");
    }
});
