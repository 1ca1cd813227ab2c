//! JWT access tokens (RFC 7519, RFC 9068): signing keys, their rotation and sealing, and the
//! one verification path — shared as code by the tessera server (through `tessera-core`, which
//! re-exports this crate as `tessera_core::jwt`) and by services that verify tessera's tokens
//! themselves (`tessera-verify`), so both apply exactly the same rules.
//!
//! Pure: no store, no HTTP, no async. The caller loads keys (tessera-core's `auth/tokens.rs`),
//! passes the current time, and maps every [`JwtError`] from [`verify`] to one answer —
//! "invalid token". The ids the tokens carry ([`id`]) and their base64url encoding ([`secret`])
//! live here too, so both sides read them the same way.
//!
//! # What verification checks, and why
//!
//! In this order ([`verify`]):
//!
//! 1. **Size** — over [`MAX_TOKEN_LEN`] (8 KiB) is refused before any decoding (SPEC §3).
//! 2. **Shape** — exactly three parts, each canonical unpadded base64url (RFC 7515 §7.1,
//!    RFC 4648 §3.5). One spelling per token: the string can key a cache or a denylist.
//! 3. **Header** — parsed into our own struct with exactly `alg`, `typ`, `kid`. Any other member
//!    fails: `crit` (RFC 7515 §4.1.11 says unknown critical extensions must be refused), `zip`
//!    (a JWE member, RFC 7516 §4.1.3; compression, RFC 8725 §3.6), `cty` (nested JWTs), and
//!    `jku`, `jwk`, `x5u`, `x5c` — a token must never choose its own verification key or make us
//!    fetch one (RFC 8725 §2.9, §3.10). A repeated member fails too: RFC 7515 §4 allows
//!    "reject, or keep the last", and rejecting means no two JSON parsers can read two
//!    different headers out of one token.
//! 4. **Algorithm** — must equal the configured one, case-sensitively. The header never picks
//!    the algorithm: `none`/`None`/`NONE` (RFC 8725 §2.1) and HS256 keyed with our public key
//!    (algorithm confusion, RFC 8725 §2.1 and §3.1) fail here, before a key is looked up.
//! 5. **Type** — `typ` must be `at+jwt` (or `application/at+jwt`, both named by RFC 9068 §4;
//!    compared case-insensitively as RFC 7515 §4.1.9 says of media types). Explicit typing
//!    (RFC 8725 §3.11) keeps any other JWT — a refresh token, an ID token — from passing as an
//!    access token.
//! 6. **Key** — `kid` is looked up among our own trusted keys and nowhere else: not a file path,
//!    not a query, not a URL (RFC 8725 §2.9, §3.10). Unknown → refused; no key is ever fetched.
//! 7. **Signature and claim rules** — jsonwebtoken verifies the signature with that key (and the
//!    configured algorithm) and requires `exp`, `iss`, `aud`, `sub`, with our issuer and
//!    audience (RFC 8725 §3.8, §3.9). Its time checks, which read the system clock, are off.
//! 8. **Claims** — parsed into [`AccessClaims`]: no unknown or repeated members (RFC 7519 §4),
//!    integer times, ids in their 22-character form, `aud` a single string. serde_json refuses
//!    nesting deeper than 127 levels, so hostile nesting is an error, not a stack overflow.
//! 9. **Time** — against the `now` argument (tessera's clock, which tests move): refused at or
//!    after `exp` (RFC 7519 §4.1.4; the leeway never extends a lifetime tessera decided), when
//!    `iat` is more than `leeway` ahead, and when
//!    `exp` is more than [`MAX_ACCESS_TTL`] (a day, the longest `jwt.access_ttl`) after `iat`:
//!    a holder of the signing key still cannot mint a token that outlives any tessera issues.
//!
//! Revocation (denylist, allowlist) is not a property of the token and is decided by the caller,
//! as is the per-request `exp` check of a token served from the [`VerifiedCache`].
//!
//! # Files
//!
//! - `alg.rs` — the four algorithms; `key.rs` — one key, its JWK; `seal.rs` — keys at rest;
//! - `import.rs` — a private key made elsewhere, from PEM or JWK (`tessera keys import`);
//! - `keyset.rs` — who signs and who verifies at an instant, swapped lock-free on rotation;
//! - `public.rs` — the public keys read from a JWKS, for services that only verify;
//! - `claims.rs` — the claims; `token.rs` — `sign` and `verify`; `cache.rs` — verified tokens;
//! - `error.rs` — why a token or key was refused;
//! - `id.rs` — the 128-bit ids in tokens; `secret.rs` — randomness, base64url, token hashes.
#![forbid(unsafe_code)]

pub mod id;
pub mod secret;

mod alg;
mod cache;
mod claims;
mod error;
mod import;
mod key;
mod keyset;
mod public;
mod seal;
mod token;

pub use alg::Alg;
pub use cache::VerifiedCache;
pub use claims::AccessClaims;
pub use error::JwtError;
pub use import::{ImportedKey, MAX_IMPORT_LEN, import_private_key};
pub use key::SigningKey;
pub use keyset::{KeySet, Keys};
pub use public::{PublicKey, PublicKeySet};
pub use seal::Sealer;
pub use token::{JwtSettings, MAX_ACCESS_TTL, MAX_TOKEN_LEN, sign, verify, verify_public};
