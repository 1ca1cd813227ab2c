//! Password hashing: argon2id with OWASP's minimum parameters (m = 19 MiB, t = 2, p = 1).
//!
//! A hash takes ~20 ms of CPU, so it never runs on an async worker (that would stall every
//! other request on the thread) and never runs unbounded (a login flood would otherwise queue
//! thousands of 19 MiB allocations). [`PasswordHasher`] runs each hash on the blocking pool
//! under a semaphore sized to the cores.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::secret::random_bytes;

pub const MIN_BYTES: usize = 8;
pub const MAX_BYTES: usize = 1024;

/// A plaintext password, NFKC-normalised (NIST SP 800-63B §5.1.1.2), so the same passphrase
/// typed on keyboards or input methods that produce different code points (a composed `é` or
/// `e` + combining accent, fullwidth letters, ligatures) is one password. Nothing else is
/// changed: no trimming, no case folding, no truncation. `Debug` never prints it and it is
/// wiped from memory on drop.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password must have {MIN_BYTES} to {MAX_BYTES} bytes")]
    Length,
}

impl Password {
    /// Wraps a password someone presents to log in: only the upper bound applies, so an old
    /// password that predates a rule can still be checked.
    pub fn presented(s: String) -> Self {
        Self(normalise(s))
    }

    /// Checks a password someone chooses: 8 to 1024 bytes after normalisation, per the SPEC
    /// (NIST SP 800-63B asks for at least 8 and a generous maximum).
    pub fn new_choice(s: String) -> Result<Self, PasswordError> {
        let s = normalise(s);
        if (MIN_BYTES..=MAX_BYTES).contains(&s.len()) { Ok(Self(s)) } else { Err(PasswordError::Length) }
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    fn is_presentable(&self) -> bool {
        self.0.len() <= MAX_BYTES
    }
}

/// NFKC, into a buffer sized up front so no reallocation leaves a copy of the password in
/// freed memory; the input is wiped too. Input far over the limit is left as it is (it is
/// refused anyway) so normalising cannot be made to cost more than a bounded amount.
fn normalise(s: String) -> Zeroizing<String> {
    let s = Zeroizing::new(s);
    if s.len() > MAX_BYTES * 4 {
        return s;
    }
    let len = s.nfkc().map(char::len_utf8).sum();
    let mut out = Zeroizing::new(String::with_capacity(len));
    out.extend(s.nfkc());
    out
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// An argon2id hash in PHC string form (`$argon2id$v=19$m=19456,t=2,p=1$…`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed busy for the whole wait: the server is overloaded.
    #[error("password hashing is overloaded")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// A snapshot of the hashing queue, see [`PasswordHasher::queue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashQueue {
    pub running: usize,
    pub waiting: usize,
    pub slots: usize,
}

/// Runs argon2id off the async workers, at most `concurrency` at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    concurrency: usize,
    /// Hashes waiting for a slot right now (for the metrics).
    waiting: Arc<AtomicUsize>,
    wait: Duration,
    /// Verified against when the username is unknown, so that answer costs the same ~20 ms as
    /// a wrong password and timing does not reveal which usernames exist.
    dummy: Arc<PasswordHash>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize, wait: Duration) -> Result<Self, HashError> {
        let dummy = hash_now(&Password::presented(crate::secret::b64(&random_bytes::<16>())))?;
        let concurrency = concurrency.max(1);
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            waiting: Arc::default(),
            wait,
            dummy: Arc::new(dummy),
        })
    }

    /// How busy hashing is now: hashes running and hashes waiting for a slot.
    pub fn queue(&self) -> HashQueue {
        HashQueue {
            running: self.concurrency.saturating_sub(self.permits.available_permits()),
            waiting: self.waiting.load(Ordering::Relaxed),
            slots: self.concurrency,
        }
    }

    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let password = password.clone();
        self.run(move || hash_now(&password)).await?
    }

    /// `true` when `password` matches `hash`. A malformed stored hash counts as no match.
    pub async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, HashError> {
        let (password, hash) = (password.clone(), hash.clone());
        self.run(move || verify_now(&password, &hash)).await
    }

    /// Spends the time of a real verification and always answers `false`.
    pub async fn verify_dummy(&self, password: &Password) -> Result<bool, HashError> {
        let (password, dummy) = (password.clone(), Arc::clone(&self.dummy));
        self.run(move || {
            let _ = verify_now(&password, &dummy);
            false
        })
        .await
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let acquired = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let permit = acquired.map_err(|_| HashError::Busy)?.map_err(|_| HashError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let out = job();
            drop(permit);
            out
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }
}

fn hash_now(password: &Password) -> Result<PasswordHash, HashError> {
    let salt: [u8; 16] = random_bytes();
    Argon2::default()
        .hash_password_with_salt(password.bytes(), &salt)
        .map(|h| PasswordHash(h.to_string()))
        .map_err(|e| HashError::Failed(e.to_string()))
}

fn verify_now(password: &Password, hash: &PasswordHash) -> bool {
    // Over-long input is refused without hashing it; the dummy path above keeps the timing.
    password.is_presentable() && Argon2::default().verify_password(password.bytes(), hash.as_str()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_passwords_are_length_checked() {
        assert!(Password::new_choice("short".into()).is_err());
        assert!(Password::new_choice("x".repeat(1025)).is_err());
        assert!(Password::new_choice("exactly8".into()).is_ok());
        assert!(Password::new_choice("x".repeat(1024)).is_ok());
    }

    #[test]
    fn passwords_are_nfkc_normalised_and_otherwise_untouched() {
        let composed = Password::new_choice("caf\u{e9} au lait".into()).unwrap();
        let decomposed = Password::presented("cafe\u{301} au lait".into());
        assert_eq!(composed.bytes(), decomposed.bytes());
        let fullwidth = Password::presented("ｐａｓｓｗｏｒｄ１２３".into());
        assert_eq!(fullwidth.bytes(), b"password123");
        // No trimming, no case folding, no truncation.
        assert_eq!(Password::presented("  Pass Word  ".into()).bytes(), b"  Pass Word  ");
        let long = "p".repeat(MAX_BYTES);
        assert_eq!(Password::new_choice(long.clone()).unwrap().bytes(), long.as_bytes());
        // The length rule counts the normalised bytes: "ﬃ" (3 bytes) is "ffi" (3 bytes), but
        // U+FDFA (3 bytes) expands to 33.
        assert!(Password::new_choice("\u{FDFA}".into()).is_ok());
        assert!(Password::new_choice("\u{FDFA}".repeat(32)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn normalising_is_idempotent_and_never_panics(raw in ".{0,64}") {
            let once = Password::presented(raw);
            let twice = Password::presented(once.0.to_string());
            proptest::prop_assert_eq!(once.bytes(), twice.bytes());
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn hashes_use_owasp_parameters_and_verify() {
        let hasher = PasswordHasher::new(2, Duration::from_secs(30)).unwrap();
        let pw = Password::new_choice("correct horse".into()).unwrap();
        let hash = hasher.hash(&pw).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash.as_str());
        assert!(hasher.verify(&pw, &hash).await.unwrap());
        assert!(!hasher.verify(&Password::presented("wrong horse".into()), &hash).await.unwrap());
        assert!(!hasher.verify_dummy(&pw).await.unwrap());
        assert_eq!(format!("{pw:?}"), "Password([redacted])");
    }
}
