//! The one source of randomness, the one token hash, the one constant-time comparison.
//!
//! Every opaque credential (session, refresh, CSRF) is at least 256 bits from the OS CSPRNG
//! (through aws-lc-rs). Stores keep only [`TokenHash`] — SHA-256 of the secret — so a leaked
//! database does not hand out live sessions. SHA-256 without a salt is enough here: the input is
//! uniformly random, so there is nothing to brute-force.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// Fills `N` bytes from the OS CSPRNG.
///
/// # Panics
/// Only if the operating system cannot supply randomness, in which case no credential can be
/// made safely and stopping is the right answer.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut out).expect("the OS CSPRNG failed");
    out
}

/// base64url without padding (RFC 4648 §5), the encoding of every id and token tessera issues.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The longest value [`b64_decode_exact`] decodes.
pub const MAX_EXACT: usize = 126;

/// Decodes base64url without padding into exactly `N` bytes. Rejects padding, the standard
/// alphabet and non-canonical trailing bits, so each value has one spelling only.
pub fn b64_decode_exact<const N: usize>(s: &str) -> Option<[u8; N]> {
    // Cheap length check first: the input may be attacker-sized.
    if s.len() != (N * 4).div_ceil(3) {
        return None;
    }
    // Into a buffer on the stack (no allocation on the per-request path): base64's decoder
    // wants room for its estimate, up to two bytes more than `N`. Every value tessera decodes
    // this way is far shorter (the longest, a session token, is 65 bytes); a test holds it.
    let mut buf = [0u8; MAX_EXACT + 2];
    let room = buf.get_mut(..N + 2)?;
    let n = URL_SAFE_NO_PAD.decode_slice(s, room).ok()?;
    buf.get(..n)?.try_into().ok()
}

/// Writes the base64url form of `bytes` into `out`, returning it as text: the per-request
/// forms (ids in answers) need no allocation. `None` if `out` is too small.
pub fn b64_into<'a>(bytes: &[u8], out: &'a mut [u8]) -> Option<&'a str> {
    let n = URL_SAFE_NO_PAD.encode_slice(bytes, out).ok()?;
    std::str::from_utf8(out.get(..n)?).ok()
}

/// Decodes canonical base64url without padding, of any length (a public RSA modulus, say).
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// SHA-256 of a secret: the only form in which stores keep opaque tokens.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(secret: &[u8]) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality: how long a comparison takes says nothing about where two hashes
    /// differ.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        // Four 64-bit words rather than 32 bytes: subtle's slice comparison puts each byte
        // through its optimisation barrier, a few hundred instructions on every session
        // check; its word comparison is as constant-time.
        let words = |h: &[u8; 32]| -> [u64; 4] {
            std::array::from_fn(|i| u64::from_ne_bytes(h[8 * i..8 * i + 8].try_into().unwrap_or_default()))
        };
        let (a, b) = (words(&self.0), words(&other.0));
        (a[0].ct_eq(&b[0]) & a[1].ct_eq(&b[1]) & a[2].ct_eq(&b[2]) & a[3].ct_eq(&b[3])).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64_round_trips_and_rejects_other_spellings() {
        let bytes: [u8; 16] = random_bytes();
        let s = b64(&bytes);
        assert_eq!(s.len(), 22);
        assert_eq!(b64_decode_exact::<16>(&s), Some(bytes));
        assert_eq!(b64_decode_exact::<16>(&format!("{s}==")), None);
        assert_eq!(b64_decode_exact::<16>(&s.replace('-', "+").replace('_', "/")), {
            if s.contains(['-', '_']) { None } else { Some(bytes) }
        });
        // A non-canonical final character (unused low bits set) is rejected.
        let last = s.chars().last().unwrap_or('A');
        let alt = if last == 'A' { 'B' } else { 'A' };
        let mut other = s[..s.len() - 1].to_string();
        other.push(alt);
        let decoded = b64_decode_exact::<16>(&other);
        assert!(decoded.is_none() || decoded != Some(bytes));
    }

    #[test]
    fn the_stack_decoder_takes_every_length_up_to_its_bound() {
        fn round_trip<const N: usize>() {
            let bytes: [u8; N] = random_bytes();
            assert_eq!(b64_decode_exact::<N>(&b64(&bytes)), Some(bytes), "{N} bytes");
            let mut out = [0u8; 200];
            assert_eq!(b64_into(&bytes, &mut out), Some(b64(&bytes).as_str()));
        }
        // Ids, CSRF and secrets, session tokens, refresh tokens, and the bound itself.
        round_trip::<16>();
        round_trip::<32>();
        round_trip::<65>();
        round_trip::<69>();
        round_trip::<MAX_EXACT>();
        assert_eq!(b64_into(&[1, 2, 3], &mut [0u8; 3]), None, "too small an output");
    }

    proptest::proptest! {
        /// Every id, session, refresh and CSRF token goes through this decoder: any string
        /// decodes to at most one value, and only its one canonical spelling does.
        #[test]
        fn b64_decoding_accepts_only_the_canonical_spelling(s in "[A-Za-z0-9_+/=-]{0,50}|.{0,50}") {
            if let Some(bytes) = b64_decode_exact::<16>(&s) {
                proptest::prop_assert_eq!(b64(&bytes), s.as_str());
            }
            if let Some(bytes) = b64_decode_exact::<32>(&s) {
                proptest::prop_assert_eq!(b64(&bytes), s.as_str());
            }
        }

        #[test]
        fn b64_round_trips(bytes in proptest::array::uniform32(proptest::num::u8::ANY)) {
            proptest::prop_assert_eq!(b64_decode_exact::<32>(&b64(&bytes)), Some(bytes));
        }
    }

    #[test]
    fn token_hash_compares_in_constant_time_correctly() {
        let a = TokenHash::of(b"one");
        assert!(a.ct_eq(&TokenHash::of(b"one")));
        assert!(!a.ct_eq(&TokenHash::of(b"two")));
        // A difference in any one bit of any byte is seen.
        for byte in 0..32 {
            for bit in 0..8 {
                let mut bytes = *a.as_bytes();
                bytes[byte] ^= 1 << bit;
                assert!(!a.ct_eq(&TokenHash::from_bytes(bytes)), "byte {byte} bit {bit}");
            }
        }
    }
}
