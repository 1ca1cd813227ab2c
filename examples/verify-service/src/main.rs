//! A service that trusts tessera's logins and nothing else. Configure it with `VERIFY_*`
//! variables (at least `VERIFY_URL`, and `VERIFY_FEED_KEY` to follow logouts) and
//! `LISTEN` (default `127.0.0.1:3000`). It prints `listening on <addr>` once it serves.

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tessera_verify::{Settings, Verified, Verifier, VerifyLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())).init();
    let verifier = Verifier::start(Settings::from_env()?).await?;
    // Or guard a whole group of routes with the layer; handlers there need no extractor.
    let api =
        Router::new().route("/api/ping", get(|| async { "pong\n" })).route_layer(VerifyLayer::new(verifier.clone()));
    let app = Router::new()
        .route("/", get(|| async { "public: no login needed\n" }))
        // The extractor is the whole integration: the handler runs only for a valid token.
        .route("/whoami", get(whoami))
        .merge(api)
        .with_state(verifier);
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn whoami(who: Verified) -> Json<Value> {
    Json(json!({
        "user_id": who.user_id().to_string(),
        "session_id": who.session_id().map(|s| s.to_string()),
        "expires_at": who.expires_at().unix_timestamp(),
    }))
}
