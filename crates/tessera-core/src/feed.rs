//! The revocation feed's hub: what `GET /v1/revocations` streams to services that verify
//! tokens themselves.
//!
//! Every instance already follows the store's denylist log (its sync reads what follows its
//! cursor); each batch it reads is also published here, so a revocation made on any instance
//! reaches the consumers of every instance. Event ids are the store's own cursors, so they mean
//! the same on every instance: a consumer may resume on another one.
//!
//! Memory is bounded twice: the hub keeps the last `retain` events for resumption (older
//! cursors get a full reset instead), and each connection has a buffer of `buffer` events; a
//! connection whose buffer is full is dropped (it reconnects and resumes).

use std::collections::VecDeque;
use std::sync::Mutex;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::store::DenyEntry;

/// Events kept for resumption by default.
pub const RETAIN: usize = 16_384;
/// Events buffered per connection by default.
pub const BUFFER: usize = 1_024;

/// One revocation as it entered the store's log; `cursor` is the position just after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedEvent {
    pub cursor: u64,
    pub entry: DenyEntry,
}

/// How a new connection starts.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// The whole live denylist, as of `cursor`: the consumer replaces its copy.
    Reset { entries: Vec<DenyEntry>, cursor: u64 },
    /// Only what followed the consumer's cursor; it ends at `cursor`.
    Replay { events: Vec<FeedEvent>, cursor: u64 },
}

pub struct Subscription {
    pub start: Start,
    /// Revocations from now on. Ends (`None`) when the connection fell too far behind or the
    /// server is shutting down: the consumer reconnects and resumes.
    pub events: mpsc::Receiver<FeedEvent>,
}

pub struct Feed {
    state: Mutex<State>,
    retain: usize,
    buffer: usize,
}

#[derive(Default)]
struct State {
    /// The cursor after the last event published.
    head: u64,
    /// Resuming from a cursor in `base..=head` replays `ring`; `None` before the first batch.
    base: Option<u64>,
    ring: VecDeque<FeedEvent>,
    subscribers: Vec<mpsc::Sender<FeedEvent>>,
    closed: bool,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new(RETAIN, BUFFER)
    }
}

impl Feed {
    pub fn new(retain: usize, buffer: usize) -> Self {
        Self { state: Mutex::default(), retain: retain.max(1), buffer: buffer.max(1) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a batch the sync read from the store. `next` is the store's cursor after it;
    /// `restarted` says the store did not continue from the previous cursor (it lost or rolled
    /// back its log): cursors from before cannot be resumed, and the batch is the whole log.
    pub fn publish(&self, events: &[FeedEvent], next: u64, restarted: bool) {
        let mut s = self.state();
        if s.base.is_none() || restarted {
            // The first batch is the state the instance started from (every connection gets
            // it in its reset); after a restart of the log, old cursors mean nothing.
            s.ring.clear();
            s.base = Some(next);
        } else {
            for ev in events {
                s.ring.push_back(*ev);
            }
            while s.ring.len() > self.retain {
                if let Some(old) = s.ring.pop_front() {
                    s.base = Some(old.cursor);
                }
            }
        }
        s.head = next;
        if s.base.is_some_and(|b| b > next) {
            s.base = Some(next);
        }
        // A subscriber that cannot take the whole batch is dropped: its receiver drains what
        // it has and ends, and its consumer resumes from its last id.
        s.subscribers.retain(|tx| events.iter().all(|ev| tx.try_send(*ev).is_ok()));
    }

    /// A new connection. `resume` is the consumer's `Last-Event-ID`, parsed; `live` is the
    /// instance's current copy of the denylist (called under the hub's lock, so no event
    /// falls between the copy and the subscription).
    pub fn subscribe(
        &self,
        resume: Option<u64>,
        now: OffsetDateTime,
        live: impl FnOnce() -> Vec<DenyEntry>,
    ) -> Subscription {
        let (tx, rx) = mpsc::channel(self.buffer);
        let mut s = self.state();
        let head = s.head;
        let start = match (resume, s.base) {
            (Some(c), Some(base)) if base <= c && c <= head => Start::Replay {
                events: s.ring.iter().filter(|e| e.cursor > c && now < e.entry.expires_at).copied().collect(),
                cursor: head,
            },
            _ => Start::Reset { entries: live(), cursor: head },
        };
        if !s.closed {
            s.subscribers.push(tx);
        }
        Subscription { start, events: rx }
    }

    /// Ends every connection and refuses to keep new ones (the server is stopping).
    pub fn close(&self) {
        let mut s = self.state();
        s.closed = true;
        s.subscribers.clear();
    }

    /// Connections currently following the feed.
    pub fn subscribers(&self) -> usize {
        let mut s = self.state();
        s.subscribers.retain(|tx| !tx.is_closed());
        s.subscribers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SessionId;
    use crate::store::Denied;

    fn entry() -> DenyEntry {
        DenyEntry {
            denied: Denied::Session(SessionId::generate()),
            expires_at: OffsetDateTime::UNIX_EPOCH + time::Duration::days(30_000),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
    }

    #[test]
    fn resumes_within_what_it_retains_and_resets_otherwise() {
        let feed = Feed::new(2, 8);
        feed.publish(&[], 10, false);
        let (a, b, c) = (entry(), entry(), entry());
        feed.publish(&[FeedEvent { cursor: 11, entry: a }, FeedEvent { cursor: 12, entry: b }], 12, false);
        let sub = feed.subscribe(Some(11), now(), Vec::new);
        assert_eq!(sub.start, Start::Replay { events: vec![FeedEvent { cursor: 12, entry: b }], cursor: 12 });
        feed.publish(&[FeedEvent { cursor: 13, entry: c }], 13, false);
        // 11 fell out of the two retained events: only a reset is safe.
        let sub = feed.subscribe(Some(10), now(), || vec![a, b, c]);
        assert_eq!(sub.start, Start::Reset { entries: vec![a, b, c], cursor: 13 });
        let sub = feed.subscribe(Some(11), now(), Vec::new);
        assert!(matches!(sub.start, Start::Replay { ref events, .. } if events.len() == 2));
        // A cursor from the future (another store) resets too.
        assert!(matches!(feed.subscribe(Some(99), now(), Vec::new).start, Start::Reset { .. }));
        feed.publish(&[], 3, true);
        assert!(matches!(feed.subscribe(Some(13), now(), Vec::new).start, Start::Reset { cursor: 3, .. }));
    }

    #[test]
    fn a_subscriber_that_falls_behind_is_dropped_and_its_stream_ends() {
        let feed = Feed::new(100, 2);
        feed.publish(&[], 0, false);
        let mut sub = feed.subscribe(None, now(), Vec::new);
        for i in 1..=3 {
            feed.publish(&[FeedEvent { cursor: i, entry: entry() }], i, false);
        }
        assert_eq!(feed.subscribers(), 0);
        assert_eq!(sub.events.try_recv().map(|e| e.cursor), Ok(1));
        assert_eq!(sub.events.try_recv().map(|e| e.cursor), Ok(2));
        assert_eq!(sub.events.try_recv(), Err(mpsc::error::TryRecvError::Disconnected));
    }

    #[test]
    fn closing_ends_every_stream() {
        let feed = Feed::default();
        feed.publish(&[], 0, false);
        let mut sub = feed.subscribe(None, now(), Vec::new);
        feed.close();
        assert_eq!(sub.events.try_recv(), Err(mpsc::error::TryRecvError::Disconnected));
        let mut late = feed.subscribe(None, now(), Vec::new);
        assert_eq!(late.events.try_recv(), Err(mpsc::error::TryRecvError::Disconnected));
    }
}
