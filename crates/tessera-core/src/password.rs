//! Password hashing: argon2id with OWASP's minimum parameters (m = 19 MiB, t = 2, p = 1).
//!
//! A hash takes ~20 ms of CPU, so it never runs on an async worker (that would stall every
//! other request on the thread) and never runs unbounded (a login flood would otherwise queue
//! thousands of 19 MiB allocations). [`PasswordHasher`] runs each hash on the blocking pool
//! under a semaphore sized to the cores.
//!
//! Each slot of that semaphore owns one 19 MiB argon2 working buffer, allocated (and touched)
//! once when the hasher is built and reused by every hash after that. Letting argon2 allocate
//! its own buffer per hash looked harmless — the semaphore bounds how many exist at once — but
//! glibc's malloc serves a freed 19 MiB block's successors from per-thread arenas (its mmap
//! threshold rises to the size of the first block freed), and the blocking pool runs hashes on
//! many threads: each arena kept its own 19–38 MiB after a burst and nothing gave it back, so a
//! login flood left hundreds of MiB resident. With the pool, hashing allocates nothing large
//! after start-up and memory stays at `slots × 19 MiB` for good.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::phc;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;
use zeroize::{Zeroize, Zeroizing};

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

/// Runs argon2id off the async workers, at most `concurrency` at a time, each in a working
/// buffer of its own from a pool of exactly `concurrency` buffers.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    concurrency: usize,
    buffers: Arc<BlockPool>,
    /// Hashes waiting for a slot right now (for the metrics).
    waiting: Arc<AtomicUsize>,
    wait: Duration,
    /// Verified against when the username is unknown, so that answer costs the same ~20 ms as
    /// a wrong password and timing does not reveal which usernames exist.
    dummy: Arc<PasswordHash>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize, wait: Duration) -> Result<Self, HashError> {
        let concurrency = concurrency.max(1);
        let buffers = Arc::new(BlockPool::new(concurrency, Params::DEFAULT.block_count()));
        let dummy = {
            let mut blocks = buffers.take();
            hash_now(&Password::presented(crate::secret::b64(&random_bytes::<16>())), blocks.as_mut())?
        };
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            buffers,
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

    /// Working buffers allocated over the hasher's life: `concurrency` unless a hash panicked
    /// while holding one.
    #[doc(hidden)]
    pub fn buffers_allocated(&self) -> usize {
        self.buffers.allocated.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let password = password.clone();
        self.run(move |blocks| hash_now(&password, blocks)).await?
    }

    /// `true` when `password` matches `hash`. A malformed stored hash counts as no match.
    pub async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, HashError> {
        let (password, hash) = (password.clone(), hash.clone());
        self.run(move |blocks| verify_now(&password, &hash, blocks)).await
    }

    /// Spends the time of a real verification and always answers `false`.
    pub async fn verify_dummy(&self, password: &Password) -> Result<bool, HashError> {
        let (password, dummy) = (password.clone(), Arc::clone(&self.dummy));
        self.run(move |blocks| {
            let _ = verify_now(&password, &dummy, blocks);
            false
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let acquired = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let permit = acquired.map_err(|_| HashError::Busy)?.map_err(|_| HashError::Busy)?;
        let buffers = Arc::clone(&self.buffers);
        tokio::task::spawn_blocking(move || {
            // Taken under the permit, so one is always free; back in the pool (wiped) before
            // the permit is.
            let mut blocks = buffers.take();
            let out = job(blocks.as_mut());
            drop(blocks);
            drop(permit);
            out
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }
}

/// The argon2 working buffers, one per hashing slot.
struct BlockPool {
    free: Mutex<Vec<Box<[Block]>>>,
    blocks: usize,
    allocated: AtomicUsize,
}

impl BlockPool {
    /// `count` buffers of `blocks` 1 KiB blocks, written once so that their pages are resident
    /// from the start: memory use does not move when the first flood arrives.
    fn new(count: usize, blocks: usize) -> Self {
        let free = (0..count).map(|_| vec![Block::new(); blocks].into_boxed_slice()).collect();
        Self { free: Mutex::new(free), blocks, allocated: AtomicUsize::new(count) }
    }

    /// A buffer, returned to the pool when the guard drops. The semaphore guarantees one is
    /// free; should one have been lost (a hash that panicked), a new one replaces it.
    fn take(self: &Arc<Self>) -> PooledBlocks {
        let buffer = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_else(|| {
            self.allocated.fetch_add(1, Ordering::Relaxed);
            vec![Block::new(); self.blocks].into_boxed_slice()
        });
        PooledBlocks { buffer: Some(buffer), pool: Arc::clone(self) }
    }
}

struct PooledBlocks {
    buffer: Option<Box<[Block]>>,
    pool: Arc<BlockPool>,
}

impl PooledBlocks {
    fn as_mut(&mut self) -> &mut [Block] {
        self.buffer.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for PooledBlocks {
    /// Wiped before it goes back: the blocks are derived from the last password hashed in them.
    fn drop(&mut self) {
        if let Some(mut buffer) = self.buffer.take() {
            buffer.iter_mut().for_each(Zeroize::zeroize);
            self.pool.free.lock().unwrap_or_else(PoisonError::into_inner).push(buffer);
        }
    }
}

/// Hashes `password` with a fresh salt and the default parameters, in `blocks`.
fn hash_now(password: &Password, blocks: &mut [Block]) -> Result<PasswordHash, HashError> {
    hash_with_salt(password, &random_bytes::<16>(), blocks)
}

fn hash_with_salt(password: &Password, salt: &[u8], blocks: &mut [Block]) -> Result<PasswordHash, HashError> {
    let failed = |e: &dyn fmt::Display| HashError::Failed(e.to_string());
    let params = Params::DEFAULT;
    let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.bytes(), salt, out.as_mut_slice(), blocks)
        .map_err(|e| failed(&e))?;
    let phc = phc::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: phc::ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(phc::Salt::new(salt).map_err(|e| failed(&e))?),
        hash: Some(phc::Output::new(out.as_slice()).map_err(|e| failed(&e))?),
    };
    Ok(PasswordHash(phc.to_string()))
}

/// Recomputes the stored hash's output with the parameters it names and compares in constant
/// time. Hashes whose memory cost exceeds the pooled buffer (none that this server wrote) are
/// computed in a buffer of their own.
fn verify_now(password: &Password, hash: &PasswordHash, blocks: &mut [Block]) -> bool {
    // Over-long input is refused without hashing it; the dummy path above keeps the timing.
    if !password.is_presentable() {
        return false;
    }
    let Ok(phc) = phc::PasswordHash::new(hash.as_str()) else { return false };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else { return false };
    let Ok(algorithm) = Algorithm::new(phc.algorithm.as_str()) else { return false };
    let Ok(version) = phc.version.map_or(Ok(Version::default()), Version::try_from) else { return false };
    let Ok(params) = Params::try_from(&phc) else { return false };
    let fits = params.block_count() <= blocks.len();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    let computed = if fits {
        argon2.hash_password_into_with_memory(password.bytes(), salt.as_ref(), &mut out, blocks)
    } else {
        argon2.hash_password_into(password.bytes(), salt.as_ref(), &mut out)
    };
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
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

    /// Hashes as the argon2 crate's own `PasswordHasher` would, in a pooled buffer.
    fn pooled<T>(f: impl FnOnce(&mut [Block]) -> T) -> T {
        let pool = Arc::new(BlockPool::new(1, Params::DEFAULT.block_count()));
        let mut blocks = pool.take();
        f(blocks.as_mut())
    }

    #[test]
    fn pooled_hash_equals_the_argon2_crates_phc_string() {
        use argon2::PasswordHasher as _;
        let pw = Password::presented("correct horse battery".into());
        for salt in [[7u8; 16], *b"0123456789abcdef"] {
            let plain = Argon2::default().hash_password_with_salt(pw.bytes(), &salt).unwrap().to_string();
            let ours = pooled(|b| hash_with_salt(&pw, &salt, b)).unwrap();
            assert_eq!(ours.as_str(), plain);
        }
    }

    #[test]
    fn pooled_verify_accepts_what_the_argon2_crate_wrote_and_nothing_else() {
        use argon2::password_hash::CustomizedPasswordHasher as _;
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let pw = Password::presented("correct horse battery".into());
        let wrong = Password::presented("correct horse battery!".into());
        let salt = b"saltsaltsaltsalt";
        let custom = |alg: &str, version: u32, m, t, p| {
            let params = Params::new(m, t, p, None).unwrap();
            Argon2::default().hash_password_customized(pw.bytes(), salt, Some(alg), Some(version), params).unwrap()
        };
        let stored = [
            Argon2::default().hash_password_with_salt(pw.bytes(), salt).unwrap(),
            // Other parameters than ours: argon2i and argon2d, version 0x10, two lanes, and a
            // memory cost above the pooled buffer's (computed in a buffer of its own).
            custom("argon2i", 0x13, 4096, 3, 1),
            custom("argon2d", 0x10, 8192, 1, 2),
            custom("argon2id", 0x13, Params::DEFAULT_M_COST * 2, 1, 1),
        ];
        for phc in stored {
            let hash = PasswordHash::from_stored(phc.to_string());
            assert!(Argon2::default().verify_password(pw.bytes(), hash.as_str()).is_ok());
            assert!(pooled(|b| verify_now(&pw, &hash, b)), "{}", hash.as_str());
            assert!(!pooled(|b| verify_now(&wrong, &hash, b)), "{}", hash.as_str());
        }
        let good = Argon2::default().hash_password_with_salt(pw.bytes(), salt).unwrap().to_string();
        let malformed = [
            String::new(),
            "plaintext".into(),
            good.replace("$argon2id$", "$scrypt$"),
            good.replace("v=19", "v=18"),
            good.replace("m=19456", "m=1"),
            good[..good.rfind('$').unwrap()].to_owned(),
            format!("{good}A"),
        ];
        for s in malformed {
            assert!(!pooled(|b| verify_now(&pw, &PasswordHash::from_stored(s.clone()), b)), "{s}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_pool_hands_out_at_most_one_buffer_per_slot() {
        let hasher = PasswordHasher::new(3, Duration::from_secs(60)).unwrap();
        let pw = Password::new_choice("correct horse".into()).unwrap();
        let hash = hasher.hash(&pw).await.unwrap();
        let jobs: Vec<_> = (0..12)
            .map(|i| {
                let (hasher, pw, hash) = (hasher.clone(), pw.clone(), hash.clone());
                tokio::spawn(async move {
                    match i % 3 {
                        0 => hasher.verify(&pw, &hash).await.unwrap(),
                        1 => !hasher.verify_dummy(&pw).await.unwrap(),
                        _ => hasher.verify(&pw, &hasher.hash(&pw).await.unwrap()).await.unwrap(),
                    }
                })
            })
            .collect();
        for job in jobs {
            assert!(job.await.unwrap());
        }
        assert_eq!(hasher.buffers_allocated(), 3);
        assert_eq!(hasher.buffers.free.lock().unwrap().len(), 3);
    }

    #[test]
    fn pooled_buffers_are_wiped_when_returned() {
        let pool = Arc::new(BlockPool::new(1, Params::DEFAULT.block_count()));
        let pw = Password::presented("correct horse battery".into());
        let mut blocks = pool.take();
        hash_now(&pw, blocks.as_mut()).unwrap();
        drop(blocks);
        let free = pool.free.lock().unwrap();
        let zero = Block::new();
        assert!(free[0].iter().all(|b| b.as_ref() == zero.as_ref()));
    }

    /// What wiping costs beside a hash (run with `--release -- --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn wiping_a_buffer_costs_little_beside_a_hash() {
        let pool = Arc::new(BlockPool::new(1, Params::DEFAULT.block_count()));
        let pw = Password::presented("correct horse battery".into());
        let mut blocks = pool.take();
        let rounds = 20;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            hash_now(&pw, blocks.as_mut()).unwrap();
        }
        let hash = start.elapsed() / rounds;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            blocks.as_mut().iter_mut().for_each(Zeroize::zeroize);
        }
        let wipe = start.elapsed() / rounds;
        println!("argon2id hash: {hash:?}; wiping its 19 MiB buffer: {wipe:?}");
    }
}
