//! The Redis half of the distributed backend: sessions and their refresh families, the
//! access-token denylist and the brute-force counters — everything that is hot, short-lived
//! and shared by every instance. Standalone Redis or Redis Cluster.
//!
//! - Keys. Everything of one user sits under one hash tag, `<prefix>:{u:<user id>}:…`, so
//!   every per-user operation (logout-all, listing sessions, a refresh rotation) is one
//!   atomic Lua script on one Cluster slot. The denylist lives under `<prefix>:{deny}:…`.
//! - Expiry. A session key expires at the session's idle end (moved forward by every touch, in
//!   the touch's own script) and never after its absolute end; a throttle counter
//!   when it would be forgotten anyway, a denylist entry is pruned once the tokens it covers
//!   have expired: nothing expired lingers.
//! - Atomicity. Every read-modify-write is a Lua script, so it is atomic across any number of
//!   instances: of N concurrent rotations of one refresh family exactly one matches.
//! - Propagation. Every denylist write publishes on `<prefix>:deny`; each instance keeps a
//!   subscription and wakes its denylist sync on every message and after every reconnect
//!   (see [`DenylistStore::denylist_changes`]).
//! - Transport. `redis://` is plain TCP; `rediss://` is TLS with the server's certificate and
//!   host name verified (see `tls.rs`), for commands and the subscription alike.
//! - Failure. Connections reconnect by themselves; a command that cannot be answered within
//!   [`RESPONSE_TIMEOUT`] fails as [`StoreError::Unavailable`], which callers turn into 503.
//! - Doubt. A Redis that restarts may come back without its last writes (an older snapshot, a
//!   replica that had not caught up), and a reconnect is invisible to callers. Every sign that
//!   it may have happened — the subscription connection lost, a command that failed as
//!   unavailable — raises a doubt ([`RedisStore::doubt`]) that only the distributed store's
//!   check clears (see `distributed.rs`), comparing the server's `run_id` with the one it
//!   last replayed the durable revocations into ([`RedisStore::replayed_run`]).

mod codec;
mod denylist;
mod sessions;
mod throttle;
mod tls;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::memo::Memo;
use futures_util::StreamExt as _;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RetryMethod, TlsCertificates, Value};
use tessera_core::id::{SessionId, UserId};
use tessera_core::session::Session;
use tessera_core::store::StoreError;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use self::tls::RedisTls;

/// A command (or a reconnection attempt) that takes longer than this counts as an outage.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Sessions whose key and decoded form each memo keeps: about 2 MB in all at most.
const SESSIONS_KEPT: usize = 4096;
/// Between attempts to restore a lost subscription: doubling from the first to the second.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX_DELAY: Duration = Duration::from_secs(1);

/// Where to find Redis and how to name things in it.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// One URL (`redis://host:6379`), or with `cluster` a comma-separated list of seed nodes.
    pub url: String,
    pub cluster: bool,
    /// Prepended to every key and channel.
    pub prefix: String,
    /// CA and client certificate for `rediss://` URLs.
    pub tls: RedisTls,
}

/// The Redis store. Cheap to clone: clones share connections and the subscription task.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Conn,
    keys: Keys,
    /// Read on every request of session mode (and of the allowlist): each session's key, and
    /// the session decoded from the bytes last read (see [`crate::memo`]), so that a session
    /// read again unchanged is not formatted, allocated and converted again.
    session_keys: Memo<(UserId, SessionId), (), Arc<str>>,
    decoded: Memo<(UserId, SessionId), Vec<u8>, Session>,
    /// The sessions' idle timeout in milliseconds (0: not set, keys expire at the absolute
    /// end only). See [`RedisStore::set_session_idle_timeout`].
    idle_ms: AtomicI64,
    changes: Arc<Notify>,
    subscriber: Mutex<Option<JoinHandle<()>>>,
    /// The cursor of this process's last denylist read and the member at it: how the next
    /// read notices a log rolled back and written past that position (see `denylist.rs`).
    deny_anchor: Mutex<Option<(u64, String)>>,
    doubts: Arc<Doubts>,
}

/// Whether Redis may have restarted or lost writes since someone last made sure it holds every
/// durable revocation: `raised` counts the signs of it, `cleared` is the count a check that
/// started after them cleared. Starts doubted: nothing has checked yet.
struct Doubts {
    raised: AtomicU64,
    cleared: AtomicU64,
    wake: Arc<Notify>,
}

impl Doubts {
    fn raise(&self) {
        self.raised.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let task = self.subscriber.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

impl RedisStore {
    /// Connects (failing with [`StoreError::Unavailable`] if Redis does not answer) and starts
    /// the denylist subscription. Must be called inside a tokio runtime.
    pub async fn connect(settings: &RedisSettings) -> Result<Self, StoreError> {
        let urls: Vec<&str> = settings.url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        if urls.is_empty() {
            return Err(StoreError::Other("store.redis_url is empty".into()));
        }
        if urls.len() > 1 && !settings.cluster {
            return Err(StoreError::Other(
                "store.redis_url lists several servers: set store.redis_cluster = true for a cluster".into(),
            ));
        }
        let tls = urls.iter().any(|u| tls::is_tls(u));
        if tls && !urls.iter().all(|u| tls::is_tls(u)) {
            return Err(StoreError::Other("store.redis_url mixes redis:// and rediss:// URLs: use one".into()));
        }
        if !tls && !settings.tls.is_empty() {
            return Err(StoreError::Other(
                "store.redis_ca_file and the client certificate need a rediss:// URL (TLS) in store.redis_url".into(),
            ));
        }
        let certs = settings.tls.load()?;
        if tls {
            tls::install_crypto_provider();
        }
        let conn = Self::open(&urls, settings.cluster, certs.as_ref()).await.map_err(|e| connect_err(e, tls))?;
        // The scripts use EXPIRETIME/PEXPIRETIME (Redis 7.0): refuse an older server at start
        // rather than fail every login with "unknown command" later.
        let probe: Result<i64, RedisError> = redis::cmd("EXPIRETIME")
            .arg(format!("{}:version-probe", settings.prefix))
            .query_async(&mut conn.clone())
            .await;
        if let Err(e) = probe {
            return Err(match redis_err(e) {
                StoreError::Other(m) => StoreError::Other(format!("tessera needs Redis 7.0 or newer: {m}")),
                unavailable => unavailable,
            });
        }
        let keys = Keys { prefix: settings.prefix.clone() };
        let changes = Arc::new(Notify::new());
        let doubts =
            Arc::new(Doubts { raised: AtomicU64::new(1), cleared: AtomicU64::new(0), wake: Arc::new(Notify::new()) });
        let subscriber = tokio::spawn(subscribe(
            urls.iter().map(|u| (*u).to_owned()).collect(),
            certs,
            keys.deny_channel(),
            Arc::clone(&changes),
            Arc::clone(&doubts),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                keys,
                session_keys: Memo::new(SESSIONS_KEPT),
                decoded: Memo::new(SESSIONS_KEPT),
                idle_ms: AtomicI64::new(0),
                changes,
                subscriber: Mutex::new(Some(subscriber)),
                deny_anchor: Mutex::new(None),
                doubts,
            }),
        })
    }

    /// The command connection: a cluster client over the seed nodes, or a reconnecting
    /// connection to the one server.
    async fn open(urls: &[&str], cluster: bool, certs: Option<&TlsCertificates>) -> Result<Conn, RedisError> {
        if cluster {
            let mut builder = redis::cluster::ClusterClientBuilder::new(urls.to_vec())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                // Retries (slot moves, a fail-over) within one overall bound, then 503.
                .overall_response_timeout(Some(2 * RESPONSE_TIMEOUT))
                .retries(2)
                .min_retry_wait(50)
                .max_retry_wait(500);
            if let Some(certs) = certs {
                builder = builder.certs(certs.clone());
            }
            let client = builder.build()?;
            Ok(Conn::Cluster(Box::new(client.get_async_connection().await?)))
        } else {
            let client = tls::client(urls[0], certs)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(200));
            Ok(Conn::Single(ConnectionManager::new_with_config(client, config).await?))
        }
    }

    /// Records a sign that Redis may have restarted or lost writes (see the module docs).
    pub fn doubt(&self) {
        self.inner.doubts.raise();
    }

    /// How many doubts were raised so far: a check passes this to [`RedisStore::clear_doubts`]
    /// when it succeeds, clearing only the doubts raised before it started.
    pub fn doubts_raised(&self) -> u64 {
        self.inner.doubts.raised.load(Ordering::SeqCst)
    }

    /// Clears the doubts up to `raised` (a value of [`RedisStore::doubts_raised`] read before
    /// the check that makes sure of Redis started).
    pub fn clear_doubts(&self, raised: u64) {
        self.inner.doubts.cleared.fetch_max(raised, Ordering::SeqCst);
    }

    /// Whether no doubt is pending: Redis was made sure of after every sign of a restart.
    pub fn is_trusted(&self) -> bool {
        self.inner.doubts.cleared.load(Ordering::SeqCst) >= self.inner.doubts.raised.load(Ordering::SeqCst)
    }

    /// Signalled whenever a doubt is raised (one waiter: the distributed store's check).
    pub fn doubt_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.doubts.wake)
    }

    /// The `run_id` of the Redis server (from `INFO server`): random, chosen at every start of
    /// the process, so no data set — however old the snapshot it was loaded from — can name the
    /// run it is loaded into. `None` for a Cluster, whose nodes each have their own.
    pub async fn run_id(&self) -> Result<Option<String>, StoreError> {
        if matches!(self.inner.conn, Conn::Cluster(_)) {
            return Ok(None);
        }
        let info: String = redis::cmd("INFO").arg("server").query_async(&mut self.conn()).await.map_err(redis_err)?;
        let run_id = info
            .lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(|id| id.trim().to_owned())
            .ok_or_else(|| StoreError::Other("INFO server names no run_id".into()))?;
        Ok(Some(run_id))
    }

    /// The `run_id` of the server the durable revocations were last replayed into, as recorded
    /// in Redis itself by [`RedisStore::set_replayed_run`].
    pub async fn replayed_run(&self) -> Result<Option<String>, StoreError> {
        redis::cmd("GET").arg(self.keys().replayed_run()).query_async(&mut self.conn()).await.map_err(redis_err)
    }

    pub async fn set_replayed_run(&self, run_id: &str) -> Result<(), StoreError> {
        let _: () = redis::cmd("SET")
            .arg(self.keys().replayed_run())
            .arg(run_id)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    /// Lets session keys expire at the session's idle end rather than only at its absolute
    /// end: an abandoned session then leaves Redis once it can no longer be used, not weeks
    /// later. Every touch (and refresh rotation) moves the key's expiry to the new idle end in
    /// the same script, so this costs no round trip. Call it once, at start-up, with the
    /// configured idle timeout; the domain still decides expiry itself.
    pub fn set_session_idle_timeout(&self, idle: std::time::Duration) {
        let ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        self.inner.idle_ms.store(ms, Ordering::Relaxed);
    }

    /// When a session last seen at `last_seen` ends if unused (unix ms), when an idle timeout
    /// is set. From the whole second, as stored.
    fn idle_end_ms(&self, last_seen: time::OffsetDateTime) -> Option<i64> {
        let idle = self.inner.idle_ms.load(Ordering::Relaxed);
        (idle > 0).then(|| last_seen.unix_timestamp().saturating_mul(1000).saturating_add(idle))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await.map_err(redis_err)?;
        Ok(())
    }

    /// Stops the subscription. Connections close when the last clone drops.
    pub async fn close(&self) {
        let task = self.inner.subscriber.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// `MEMORY USAGE` of every key of `user` (session hashes and the session index), for
    /// benchmarks: what the user's sessions cost in Redis.
    pub async fn memory_of_user(&self, user: &UserId) -> Result<u64, StoreError> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys().session_index(user))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let mut keys: Vec<String> = ids.iter().map(|id| format!("{}{id}", self.keys().sessions_of(user))).collect();
        keys.push(self.keys().session_index(user));
        let mut total = 0;
        for key in keys {
            total += self.memory_usage(key).await?;
        }
        Ok(total)
    }

    /// `MEMORY USAGE` of one session's hash.
    pub async fn memory_of_session(&self, user: &UserId, id: &tessera_core::id::SessionId) -> Result<u64, StoreError> {
        self.memory_usage(self.keys().session(user, id)).await
    }

    async fn memory_usage(&self, key: String) -> Result<u64, StoreError> {
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(bytes.unwrap_or(0))
    }

    fn conn(&self) -> Conn {
        self.inner.conn.clone()
    }

    fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// Drops what the memos keep of a session that ended here (one that expires in Redis is
    /// pushed out in time, and never given back: its `GET` answers nothing first).
    fn forget_session(&self, user: &UserId, id: &SessionId) {
        self.inner.session_keys.forget(&(*user, *id));
        self.inner.decoded.forget(&(*user, *id));
    }

    /// [`Keys::session`], kept: a session's key is read on every request that uses it.
    fn session_key(&self, user: &UserId, id: &SessionId) -> Arc<str> {
        let made = self.inner.session_keys.get_or_render((*user, *id), (), |()| {
            Ok::<_, std::convert::Infallible>(self.keys().session(user, id).into())
        });
        made.unwrap_or_else(|never| match never {})
    }
}

/// The naming scheme, in one place.
struct Keys {
    prefix: String,
}

impl Keys {
    /// `<prefix>:{u:<user>}:s:` — followed by a session id, a session's hash.
    fn sessions_of(&self, user: &UserId) -> String {
        format!("{}:{{u:{user}}}:s:", self.prefix)
    }

    /// One allocation of the right size (`format!` starts small and grows, twice for this
    /// key): this runs on every request of session mode and the allowlist.
    fn session(&self, user: &UserId, id: &tessera_core::id::SessionId) -> String {
        // Read on every request of session mode: pieces pushed, not formatted. An id is 16
        // bytes, 22 characters of base64url.
        let mut key = String::with_capacity(self.prefix.len() + ":{u:}:s:".len() + 2 * 22);
        key.push_str(&self.prefix);
        key.push_str(":{u:");
        key.push_str(user.encode_into(&mut [0; 22]));
        key.push_str("}:s:");
        key.push_str(id.encode_into(&mut [0; 22]));
        key
    }

    /// A sorted set of the user's session ids, scored by creation time.
    fn session_index(&self, user: &UserId) -> String {
        format!("{}:{{u:{user}}}:ss", self.prefix)
    }

    fn throttle(&self, key: &str) -> String {
        format!("{}:t:{key}", self.prefix)
    }

    fn deny(&self, part: &str) -> String {
        format!("{}:{{deny}}:{part}", self.prefix)
    }

    fn deny_channel(&self) -> String {
        format!("{}:deny", self.prefix)
    }

    fn replayed_run(&self) -> String {
        format!("{}:replayed-run", self.prefix)
    }
}

/// A standalone connection (reconnecting by itself) or a cluster connection (routing by slot).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Keeps one subscription to the denylist channel, on whichever seed node answers (a Cluster
/// forwards `PUBLISH` to every node), and signals `changes` on every message and after every
/// (re)subscription — a reconnect may have missed messages, so the reader resynchronises.
///
/// Losing the subscription, or failing to get one, raises a doubt: the server may be restarting.
async fn subscribe(
    urls: Vec<String>,
    certs: Option<TlsCertificates>,
    channel: String,
    changes: Arc<Notify>,
    doubts: Arc<Doubts>,
) {
    let mut next = 0;
    let mut delay = RESUBSCRIBE_DELAY;
    let mut failing = false;
    loop {
        let url = &urls[next % urls.len()];
        let server = redacted(url);
        next += 1;
        match open_subscription(url, certs.as_ref(), &channel).await {
            Ok(mut pubsub) => {
                tracing::info!(%server, "denylist subscription established");
                changes.notify_one();
                (delay, failing) = (RESUBSCRIBE_DELAY, false);
                let mut messages = pubsub.on_message();
                while messages.next().await.is_some() {
                    changes.notify_one();
                }
                doubts.raise();
                tracing::warn!(%server, "denylist subscription lost; resubscribing");
            }
            // Once per outage at warn level: the denylist poll reports the rest.
            Err(e) if !failing => {
                doubts.raise();
                tracing::warn!(%server, error = %e, "cannot subscribe to denylist changes; retrying");
                failing = true;
            }
            Err(e) => {
                doubts.raise();
                tracing::debug!(%server, error = %e, "cannot subscribe to denylist changes");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RESUBSCRIBE_MAX_DELAY);
    }
}

/// `host:port` of a Redis URL, for logs: never the password a URL may carry.
fn redacted(url: &str) -> String {
    use redis::IntoConnectionInfo as _;
    url.into_connection_info().map_or_else(|_| "(unparsable URL)".to_owned(), |info| info.addr().to_string())
}

async fn open_subscription(
    url: &str,
    certs: Option<&TlsCertificates>,
    channel: &str,
) -> Result<redis::aio::PubSub, RedisError> {
    let client = tls::client(url, certs)?;
    let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| RedisError::from((redis::ErrorKind::Io, "subscription connect timed out")))??;
    tokio::time::timeout(RESPONSE_TIMEOUT, pubsub.subscribe(channel))
        .await
        .map_err(|_| RedisError::from((redis::ErrorKind::Io, "subscribe timed out")))??;
    Ok(pubsub)
}

/// Server error codes that mean "cannot answer now": out of memory under `noeviction`, a
/// failed snapshot refusing writes, a busy script, loading, a fail-over in progress.
const UNAVAILABLE_CODES: [&str; 8] =
    ["OOM", "MISCONF", "BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY"];

/// Redis errors that may pass by themselves (no connection, a timeout, a cluster failing over
/// or still loading) are unavailability; callers fail closed. The rest are bugs to log.
fn redis_err(e: RedisError) -> StoreError {
    let transient = e.code().is_some_and(|code| UNAVAILABLE_CODES.contains(&code))
        || e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
        || !matches!(e.retry_method(), RetryMethod::NoRetry);
    if transient { StoreError::Unavailable(e.to_string()) } else { StoreError::Other(e.to_string()) }
}

/// [`redis_err`] for the start-up connection, saying what an operator would check when the
/// connection fails other than by refusal: the certificates when it is TLS (a failed
/// verification is an I/O error), and a forgotten `rediss://` when it is not (a TLS-only port
/// cuts a plain client's first command).
fn connect_err(e: RedisError, tls: bool) -> StoreError {
    let cut = !e.is_connection_refusal() && (e.is_io_error() || e.is_connection_dropped() || e.is_timeout());
    let hint = if cut && tls {
        Some(
            "TLS (rediss://) connection failed — check the server's certificate, store.redis_ca_file and the client certificate",
        )
    } else if cut && !e.is_timeout() {
        Some("the connection was cut (if this Redis only accepts TLS, use a rediss:// URL)")
    } else {
        None
    };
    match (redis_err(e), hint) {
        (StoreError::Unavailable(m), Some(hint)) => StoreError::Unavailable(format!("{hint}: {m}")),
        (StoreError::Other(m), Some(hint)) => StoreError::Other(format!("{hint}: {m}")),
        (other, _) => other,
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Other(format!("corrupt {what} in Redis"))
}

#[cfg(test)]
mod tests {
    use tessera_core::id::{SessionId, UserId};

    use super::Keys;

    #[test]
    fn a_session_key_is_made_in_one_allocation_of_its_exact_size() {
        let keys = Keys { prefix: "tessera".into() };
        let (user, id) = (UserId::generate(), SessionId::generate());
        let key = keys.session(&user, &id);
        assert_eq!(key, format!("tessera:{{u:{user}}}:s:{id}"));
        assert_eq!(key.capacity(), key.len());
    }
}
