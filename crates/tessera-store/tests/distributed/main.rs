//! The distributed store (PostgreSQL + Redis) against real servers, in process: what it does
//! when Redis may have lost writes. Needs the PostgreSQL of `tests/postgres` and the Redis of
//! `tests/redis` (same variables, same defaults); each test works in a schema and under a key
//! prefix of its own.
//!
//! A rollback is staged by hand here — the logged-out session written back, the denylist and
//! the replay marker deleted, as a Redis restored from an older snapshot would have them — and
//! a doubt raised as a dropped connection would raise it. (`tests/distributed` of
//! tessera-server restarts a real redis-server from a real snapshot.)

#[allow(dead_code, reason = "shared fixtures; this suite uses a few")]
#[path = "../postgres/helpers.rs"]
mod pg;
#[allow(dead_code, reason = "shared fixtures; this suite uses a few")]
#[path = "../redis/helpers.rs"]
mod rd;

use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use tessera_core::id::{SessionId, TokenId, UserId};
use tessera_core::store::{Denied, DenyEntry, DenylistStore, SessionStore, StoreError};
use tessera_store::{DistributedStore, RedisSettings, Revocation, Revoked};

struct Fixture {
    _schema: pg::TestSchema,
    prefix: String,
    store: DistributedStore,
}

async fn open() -> Fixture {
    let schema = pg::TestSchema::create().await;
    let prefix = rd::open_store().await.prefix;
    let settings =
        RedisSettings { url: rd::server_url(), cluster: false, prefix: prefix.clone(), tls: Default::default() };
    let store = DistributedStore::connect(&schema.url(), &settings).await.unwrap();
    Fixture { _schema: schema, prefix, store }
}

impl Fixture {
    /// What a Redis restored from a snapshot older than every revocation lacks: the denylist
    /// and the marker of the last replay. (Sessions it would still have are written back by
    /// the test.)
    async fn lose_the_last_writes(&self) {
        let mut conn = rd::raw().await;
        let mut keys: Vec<String> = conn.keys(format!("{}:{{deny}}:*", self.prefix)).await.unwrap();
        keys.push(format!("{}:replayed-run", self.prefix));
        let _: i64 = conn.del(keys).await.unwrap();
    }

    /// Waits until the store trusts Redis again; returns how long that took.
    async fn trusted_again(&self) -> Duration {
        let start = Instant::now();
        while !self.store.redis.is_trusted() {
            assert!(start.elapsed() < Duration::from_secs(60), "the replay did not finish within 60 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        start.elapsed()
    }

    async fn cleanup(self) {
        let mut conn = rd::raw().await;
        let keys: Vec<String> = conn.keys(format!("{}:*", self.prefix)).await.unwrap();
        if !keys.is_empty() {
            let _: i64 = conn.del(keys).await.unwrap();
        }
        self.store.close().await;
    }
}

#[tokio::test]
async fn a_session_written_back_by_a_rollback_is_refused_until_the_replay_deletes_it_again() {
    let f = open().await;
    let user = UserId::generate();
    let (gone, kept) = (rd::session(user, rd::now()), rd::session(user, rd::now()));
    f.store.insert_session(&gone).await.unwrap();
    f.store.insert_session(&kept).await.unwrap();
    let denied = DenyEntry { denied: Denied::Session(gone.id), expires_at: rd::now() + time::Duration::minutes(5) };
    f.store.deny(&[denied]).await.unwrap();
    assert!(f.store.delete_session(&user, &gone.id).await.unwrap());
    let recorded = f.store.postgres.live_revocations(rd::now()).await.unwrap();
    assert_eq!(recorded.len(), 2, "the deletion and the denylist entry are recorded: {recorded:?}");

    // Redis comes back from a snapshot taken before the logout.
    f.store.redis.insert_session(&gone).await.unwrap();
    f.lose_the_last_writes().await;
    f.store.redis.doubt();
    // Refused while the replay has not run (this runtime has one thread: it cannot have).
    assert!(matches!(f.store.session(&user, &gone.id).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(f.store.read_denylist(0, rd::now()).await, Err(StoreError::Unavailable(_))));

    f.trusted_again().await;
    assert_eq!(f.store.session(&user, &gone.id).await.unwrap(), None, "the replay ended it again");
    assert_eq!(f.store.session(&user, &kept.id).await.unwrap(), Some(kept.clone()), "nothing else ended");
    let read = f.store.read_denylist(0, rd::now()).await.unwrap();
    assert_eq!(read.entries.iter().map(|(_, e)| e.denied).collect::<Vec<_>>(), [denied.denied]);
    f.cleanup().await;
}

#[tokio::test]
async fn a_doubt_about_a_redis_that_lost_nothing_clears_without_a_replay() {
    let f = open().await;
    let user = UserId::generate();
    let s = rd::session(user, rd::now());
    f.store.insert_session(&s).await.unwrap();
    // A record the replay would act on, were it to run: it must not.
    let only_in_postgres = Revocation { revoked: Revoked::Session(user, s.id), until: s.expires_at };
    f.store.postgres.record_revocations(&[only_in_postgres]).await.unwrap();
    f.store.redis.doubt();
    f.trusted_again().await;
    assert_eq!(f.store.session(&user, &s.id).await.unwrap(), Some(s), "same Redis run: nothing replayed");
    f.cleanup().await;
}

/// How long a replay of many live records keeps an instance failing closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_ten_thousand_records() {
    const N: usize = 5_000;
    let f = open().await;
    let until = rd::now() + time::Duration::hours(1);
    let mut records = Vec::with_capacity(2 * N);
    for _ in 0..N {
        records.push(Revocation { revoked: Revoked::Session(UserId::generate(), SessionId::generate()), until });
        records.push(Revocation { revoked: Revoked::Denied(Denied::Token(TokenId::generate())), until });
    }
    f.store.postgres.record_revocations(&records).await.unwrap();
    f.lose_the_last_writes().await;
    f.store.redis.doubt();
    let took = f.trusted_again().await;
    eprintln!("replay of {N} session deletions and {N} denylist entries: failing closed for {took:?}");
    let read = f.store.read_denylist(0, rd::now()).await.unwrap();
    assert_eq!(read.entries.len(), N, "every denylist entry written again");
    f.cleanup().await;
}
