//! The accept loop. axum's `serve` has no header-read timeout, so tessera drives hyper
//! directly: a header timeout against slow-loris clients, a bounded read buffer, the peer
//! address for the throttle, and graceful shutdown that lets in-flight requests finish.
//!
//! The header timeout is kept per connection, not per request. hyper's own
//! (`header_read_timeout`) arms a timer before every request head and drops it after —
//! a clock read, an allocation and two trips through the timer wheel's lock per request, a
//! few percent of a `GET /v1/me`. Here each connection counts the requests it has started and
//! finished, and a watchdog that wakes four times per timeout closes it once it has been
//! without a request in flight, and without a new one, for the whole timeout: a client
//! trickling a request head, idling between requests or not reading its answer is cut off
//! after 1 to 1.25 times `server.header_timeout`. A request that has started is bounded by
//! the request timeout instead (see `http::edge`), and a streamed answer (the revocation
//! feed) keeps its request in flight until the stream ends.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use futures_util::FutureExt as _;
use hyper::Response;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;
use tower::Service as _;

use crate::http::App;

/// hyper's read buffer: large enough for our 16 KiB header limit to answer with a problem.
const READ_BUFFER: usize = 64 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(
    listener: TcpListener,
    app: App,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    // No timer: hyper would time every request head itself (see the module comment).
    builder.max_buf_size(READ_BUFFER);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let activity = Arc::new(Activity::default());
        let counted = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let in_flight = InFlight::start(&counted);
            // The app is always ready (its router is), so it is called at once; and the answer
            // is mapped, not awaited in an `async` block, which would hold the app's future
            // twice over in the slot hyper copies it into.
            let answer = app.clone().call(req);
            answer.map(move |answered| {
                let response = answered.unwrap_or_else(|never| match never {});
                Ok::<_, Infallible>(InFlight::until_sent(in_flight, response))
            })
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        // The watchdog learns that the connection ended when this sender is dropped (the
        // task finished or was aborted), and ends too instead of outliving it.
        let (ended, watched) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let _ended = ended;
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
        // Its own task: woken four times per timeout, rather than polled on every wake-up of
        // the connection's.
        let served = served.abort_handle();
        tokio::spawn(async move {
            if activity.idle_for(header_timeout, watched).await {
                tracing::debug!(%peer, "connection closed: idle for the header timeout (no request, or an answer not read)");
                served.abort();
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections did not finish within the drain timeout");
    }
    Ok(())
}

/// Requests a connection has started and finished, for its header-timeout watchdog.
#[derive(Default)]
struct Activity {
    started: AtomicU64,
    finished: AtomicU64,
}

impl Activity {
    /// The watchdog's ticks per timeout.
    const TICKS: u32 = 4;

    /// Resolves to `true` once the connection has had no request in flight, and neither
    /// started nor finished one, for `TICKS` ticks in a row after the tick that last saw it
    /// busy or changed: at least `timeout` (ticks are never early) and at most 1.25 ×
    /// `timeout` (plus any lateness of the ticks). Resolves to `false` when the connection's
    /// task has ended first (`ended` closed).
    async fn idle_for(&self, timeout: Duration, mut ended: oneshot::Receiver<()>) -> bool {
        let mut ticks = tokio::time::interval((timeout / Self::TICKS).max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut seen, mut quiet) = (None, 0);
        loop {
            tokio::select! {
                biased;
                _ = &mut ended => return false,
                _ = ticks.tick() => {}
            }
            let now = (self.started.load(Ordering::Acquire), self.finished.load(Ordering::Acquire));
            if now.0 != now.1 || seen != Some(now) {
                (seen, quiet) = (Some(now), 0);
            } else {
                quiet += 1;
                if quiet == Self::TICKS {
                    return true;
                }
            }
        }
    }
}

/// One request in flight on a connection, from its head being read to its answer.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.started.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(activity))
    }

    /// Ends the request with its answer. An answer of known length is written straight
    /// away; a stream (the revocation feed) keeps the request in flight until it ends, or the
    /// watchdog would take the connection for an idle one.
    fn until_sent(self, response: Response<Body>) -> Response<Body> {
        if response.body().size_hint().exact().is_some() {
            return response;
        }
        response.map(|body| Body::new(Streaming { body, _in_flight: self }))
    }
}

/// A streamed answer's body, holding its request in flight until it is dropped.
struct Streaming {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Streaming {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    fn watch(activity: &Arc<Activity>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<bool>) {
        let (ended, watched) = oneshot::channel();
        let activity = Arc::clone(activity);
        (ended, tokio::spawn(async move { activity.idle_for(TIMEOUT, watched).await }))
    }

    /// Idle is counted from the end of the last request, never from a tick that saw it busy:
    /// a request that ends just after a tick must not shorten the timeout.
    #[tokio::test(start_paused = true)]
    async fn idle_is_called_between_one_and_one_and_a_quarter_timeouts_after_the_last_request() {
        for (begins, lasts) in [(500, 240), (510, 250), (0, 1), (990, 3000)] {
            let activity = Arc::new(Activity::default());
            let (_ended, watchdog) = watch(&activity);
            tokio::time::sleep(Duration::from_millis(begins)).await;
            let request = InFlight::start(&activity);
            tokio::time::sleep(Duration::from_millis(lasts)).await;
            drop(request);
            let idle_from = tokio::time::Instant::now();
            assert!(watchdog.await.unwrap(), "idle");
            let idle = idle_from.elapsed();
            assert!(idle >= TIMEOUT && idle <= TIMEOUT * 5 / 4, "request {begins}+{lasts} ms: idle after {idle:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_sends_a_request_is_idle_after_the_timeout() {
        let activity = Arc::new(Activity::default());
        let started = tokio::time::Instant::now();
        let (_ended, watchdog) = watch(&activity);
        assert!(watchdog.await.unwrap());
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_ends_with_its_connection() {
        let activity = Arc::new(Activity::default());
        let (ended, watchdog) = watch(&activity);
        tokio::time::sleep(TIMEOUT / 10).await;
        drop(ended);
        let started = tokio::time::Instant::now();
        assert!(!watchdog.await.unwrap(), "not idle: gone");
        assert_eq!(started.elapsed(), Duration::ZERO, "at once, not at its next tick");
    }
}
