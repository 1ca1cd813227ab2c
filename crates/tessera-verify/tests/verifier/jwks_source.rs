//! A JWKS endpoint between the verifier and tessera that the test can make misbehave: pass
//! tessera's JWKS through, answer junk, an error status, or nothing for a long time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

#[derive(Clone, Debug)]
pub enum Mode {
    /// tessera's JWKS, fetched from it at each request.
    PassThrough,
    Body(&'static str),
    Status(u16),
    /// Answers after a minute.
    Slow,
}

pub struct JwksSource {
    pub addr: SocketAddr,
    state: Arc<Shared>,
}

struct Shared {
    mode: Mutex<Mode>,
    hits: AtomicUsize,
    upstream: String,
    client: reqwest::Client,
}

impl JwksSource {
    /// Serves `/jwks`, passing `upstream` (tessera's JWKS URL) through at first.
    pub async fn start(upstream: String) -> JwksSource {
        let state = Arc::new(Shared {
            mode: Mutex::new(Mode::PassThrough),
            hits: AtomicUsize::new(0),
            upstream,
            client: reqwest::Client::new(),
        });
        let app = Router::new().route("/jwks", get(serve)).with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        JwksSource { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

async fn serve(State(state): State<Arc<Shared>>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::PassThrough => {
            let r = state.client.get(&state.upstream).send().await.expect("tessera's JWKS");
            r.text().await.expect("body").into_response()
        }
        Mode::Body(body) => body.into_response(),
        Mode::Status(code) => StatusCode::from_u16(code).expect("status").into_response(),
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "{}".into_response()
        }
    }
}
