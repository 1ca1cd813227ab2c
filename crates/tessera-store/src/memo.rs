//! Results kept for work repeated on every request with the same inputs: the server's
//! `GET /v1/me` document, serialised (about a fifth of tessera's own instructions for a
//! session's request), and a session read from Redis, decoded (its text fields allocated, its
//! times converted, on every request of session mode).
//!
//! Sound by construction: an entry holds the inputs its output was made from, the caller makes
//! the output from the inputs alone, and the kept output is only given back when the inputs
//! given are equal to the kept ones — a different expiry, a touched `last_seen_at`, other
//! stored bytes make it anew. A memo never decides who is let in; it only saves making the
//! same output twice.
//!
//! Bounded: a fixed number of entries over [`SHARDS`] locks; a full shard drops an arbitrary
//! entry. Nothing is made while a lock is held. Keys are ids — of callers whose credential
//! passed, of sessions a presented token names (which anyone can make up: a flood of made-up
//! ones only pushes other entries out) — hashed with a fast hash seeded per memo, so no one
//! can aim many keys at one shard's lookups.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

use foldhash::fast::RandomState;

/// Locks the entries are spread over, so that requests on other cores rarely wait.
pub const SHARDS: usize = 16;

/// One lock's entries: each key's inputs and the output made from them.
type Shard<K, V, O> = Mutex<HashMap<K, (V, O), RandomState>>;

/// Outputs `O` made from inputs `V`, one per key `K`.
pub struct Memo<K, V, O> {
    shards: Box<[Shard<K, V, O>]>,
    per_shard: usize,
    hasher: RandomState,
}

impl<K: Hash + Eq + Clone, V: PartialEq, O: Clone> Memo<K, V, O> {
    /// A memo of at most `capacity` entries (rounded up to a multiple of [`SHARDS`]).
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::default())).collect(),
            per_shard,
            hasher: RandomState::default(),
        }
    }

    /// The output made from `inputs`: the kept one when `key`'s entry was made from equal
    /// inputs, otherwise `render(&inputs)`'s, which is then kept (a render that fails keeps
    /// nothing).
    pub fn get_or_render<E>(&self, key: K, inputs: V, render: impl FnOnce(&V) -> Result<O, E>) -> Result<O, E> {
        let shard = &self.shards[self.hasher.hash_one(&key) as usize % self.shards.len()];
        {
            // A poisoned lock only means a panic elsewhere while it was held; the map is
            // still whole (nothing here panics half-way through an update).
            let kept = shard.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((kept_inputs, output)) = kept.get(&key)
                && *kept_inputs == inputs
            {
                return Ok(output.clone());
            }
        }
        let output = render(&inputs)?;
        let mut kept = shard.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= self.per_shard && !kept.contains_key(&key) {
            let evicted = kept.keys().next().cloned();
            if let Some(evicted) = evicted {
                kept.remove(&evicted);
            }
        }
        kept.insert(key, (inputs, output.clone()));
        Ok(output)
    }

    /// Drops `key`'s entry, if any: for outputs that should not outlive what they were made
    /// from (a session that ended).
    pub fn forget(&self, key: &K) {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % self.shards.len()];
        shard.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// Entries kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::convert::Infallible;

    use super::*;

    fn render(calls: &Cell<u32>) -> impl FnOnce(&u32) -> Result<String, Infallible> + '_ {
        move |v| {
            calls.set(calls.get() + 1);
            Ok(v.to_string())
        }
    }

    #[test]
    fn equal_inputs_are_answered_from_the_memo_and_changed_ones_render_anew() {
        let memo = Memo::new(64);
        let calls = Cell::new(0);
        assert_eq!(memo.get_or_render("a", 1, render(&calls)).unwrap(), "1");
        assert_eq!(memo.get_or_render("a", 1, render(&calls)).unwrap(), "1");
        assert_eq!(calls.get(), 1, "the second ask with equal inputs renders nothing");
        assert_eq!(memo.get_or_render("a", 2, render(&calls)).unwrap(), "2", "changed inputs are never answered stale");
        assert_eq!(memo.get_or_render("b", 2, render(&calls)).unwrap(), "2");
        assert_eq!(calls.get(), 3, "another key renders its own");
        assert_eq!(
            memo.get_or_render("a", 1, render(&calls)).unwrap(),
            "1",
            "back to the first inputs: rendered again"
        );
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn a_forgotten_entry_is_made_anew() {
        let memo = Memo::new(64);
        let calls = Cell::new(0);
        memo.get_or_render("a", 1, render(&calls)).unwrap();
        memo.forget(&"a");
        memo.forget(&"never kept");
        assert_eq!(memo.len(), 0);
        memo.get_or_render("a", 1, render(&calls)).unwrap();
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn a_failed_render_keeps_nothing() {
        let memo: Memo<&str, u32, String> = Memo::new(64);
        assert_eq!(memo.get_or_render("a", 1, |_| Err("no")), Err("no"));
        assert_eq!(memo.len(), 0);
        let calls = Cell::new(0);
        memo.get_or_render("a", 1, render(&calls)).unwrap();
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let memo = Memo::new(SHARDS * 4);
        let calls = Cell::new(0);
        for key in 0..10_000u32 {
            assert_eq!(memo.get_or_render(key, key, render(&calls)).unwrap(), key.to_string());
        }
        // Ten thousand keys fill every shard; a full one evicts one entry, not all of them.
        assert_eq!(memo.len(), SHARDS * 4);
    }
}
