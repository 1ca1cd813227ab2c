//! The service `scripts/bench-verify` measures: one handler, served three ways on one router —
//! `/bare` with no authentication, `/extractor` behind the `Verified` extractor, `/layer` behind
//! `VerifyLayer` — so one run compares them on the same process, runtime and socket path.
//! Configured like any tessera-verify service (`VERIFY_*`, `LISTEN`); prints
//! `listening on <addr>` once the verifier is ready and the socket is bound.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tessera_verify::{Settings, Verified, Verifier, VerifyLayer};

/// The handler every route runs: what an application's cheapest endpoint does.
async fn hello() -> &'static str {
    "hello\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verifier = Verifier::start(Settings::from_env()?).await?;
    while !verifier.is_ready() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let layered = Router::new().route("/layer", get(hello)).route_layer(VerifyLayer::new(verifier.clone()));
    let app = Router::new()
        .route("/bare", get(hello))
        .route("/extractor", get(|_: Verified| hello()))
        .merge(layered)
        .with_state(verifier);
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
