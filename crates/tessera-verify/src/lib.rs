//! Protect a Rust service with tessera's access tokens: checked here, by the same rules as
//! tessera itself, with tessera's logouts followed through its revocation feed.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use tessera_verify::{Settings, Verified, Verifier};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::start(Settings::from_env()?).await?;
//! let app: Router = Router::new()
//!     .route("/hello", get(|who: Verified| async move { format!("hello {}", who.user_id()) }))
//!     .with_state(verifier);
//! # Ok(()) }
//! ```
//!
//! How it decides, per request:
//!
//! 1. one `Authorization: Bearer` header, the token at most `max_token_size` bytes;
//! 2. the token checked by `tessera-jwt`, the code tessera itself verifies with: pinned
//!    algorithm, `typ`, `kid` among tessera's published keys, signature, `iss`, `aud`, `exp`,
//!    `iat`, no unknown members — then remembered, so the signature is checked once per token;
//! 3. `exp` again, on every request;
//! 4. tessera's revocations (sessions, tokens, "every token of this user before…"), from the
//!    feed; once the copy is older than `max_staleness`, every request gets 503 until the feed
//!    is back — fail closed, never open.
//!
//! Refusals are problem+json: 401 for a missing, invalid, expired or revoked token (one answer
//! for all), 503 when tokens cannot be checked (no keys yet, stale revocations).
//!
//! # Files
//!
//! - `settings.rs` — what to configure, from code or `VERIFY_*` variables;
//! - `verifier.rs` — the [`Verifier`] and its decision; `jwks.rs` — tessera's keys, kept;
//! - `feed.rs` — following the revocation feed; `sse.rs` — its framing; `denylist.rs` — the copy;
//! - `http.rs` — the axum extractor, the tower layer, the problem+json answers.
#![forbid(unsafe_code)]

mod denylist;
mod feed;
mod http;
mod jwks;
mod log_once;
mod settings;
mod sse;
mod verifier;

pub use http::{VerifyLayer, VerifyService, bearer_token};
pub use settings::{FeedKey, Settings, SettingsError};
pub use tessera_jwt::Alg;
pub use tessera_jwt::id::{SessionId, TokenId, UserId};
pub use verifier::{Refusal, Verified, Verifier};
