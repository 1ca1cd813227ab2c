//! What tessera-verify costs an axum handler: the same handler with no authentication, behind
//! the `Verified` extractor, and behind `VerifyLayer` — EdDSA, default settings, the feed
//! followed (a local feed that sends an empty denylist and a heartbeat every second), one
//! token repeated as a client does. In-process (`tower::ServiceExt::oneshot` on the router), so
//! the figure is the verification's share, not the network's.
//!
//! `cargo bench -p tessera-verify --bench verify` — on a quiet machine. The ratio of
//! `verified` (or `layer`) to `bare` is what the README reports.

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, header};
use axum::response::Response;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use tessera_jwt::id::{SessionId, TokenId, UserId};
use tessera_jwt::{AccessClaims, Alg, KeySet, SigningKey, sign};
use tessera_verify::{FeedKey, Settings, Verified, Verifier, VerifyLayer};
use tower::ServiceExt as _;

const ISSUER: &str = "http://tessera.bench";

/// tessera's two endpoints as far as a verifier sees them: the JWKS and a quiet feed.
async fn fake_tessera(jwks: String) -> SocketAddr {
    const START: &str = "event: reset\nid: 1\ndata: {\"revocations\":[]}\n\nevent: ready\ndata: {}\n\n";
    let feed = || async {
        let stream = futures_util::stream::unfold(true, |first| async move {
            if !first {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let chunk = if first { START.to_owned() } else { "event: heartbeat\ndata: {\"at\":0}\n\n".to_owned() };
            Some((Ok::<_, Infallible>(Bytes::from(chunk)), false))
        });
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(stream))
            .expect("response")
    };
    let app = Router::new()
        .route("/.well-known/jwks.json", get(move || async move { jwks.clone() }))
        .route("/v1/revocations", get(feed));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let now = time::OffsetDateTime::now_utc();
    let (key, _) = SigningKey::generate(Alg::EdDSA).expect("key");
    let keys = KeySet::new(vec![(key, now, None)], now, time::Duration::minutes(6)).expect("key set");
    let claims = AccessClaims {
        iss: ISSUER.into(),
        sub: UserId::generate(),
        aud: "tessera".into(),
        exp: (now + time::Duration::minutes(5)).unix_timestamp(),
        iat: now.unix_timestamp(),
        jti: TokenId::generate(),
        sid: Some(SessionId::generate()),
    };
    let token = sign(&keys, &claims).expect("sign");
    let addr = rt.block_on(fake_tessera(keys.jwks().to_string()));
    let verifier = rt.block_on(async {
        let mut settings = Settings::new(format!("http://{addr}"));
        settings.issuer = ISSUER.into();
        settings.feed_key = Some(FeedKey::new("bench"));
        let verifier = Verifier::start(settings).await.expect("verifier");
        while !verifier.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        verifier
    });

    let bare: Router = Router::new().route("/", get(|| async { "hello" }));
    let verified: Router = Router::new()
        .route(
            "/",
            get(|who: Verified| async move {
                black_box(who.user_id());
                "hello"
            }),
        )
        .with_state(verifier.clone());
    let layered: Router = Router::new().route("/", get(|| async { "hello" })).route_layer(VerifyLayer::new(verifier));
    let request = |token: &str| {
        Request::get("/").header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).expect("request")
    };
    let mut group = c.benchmark_group("axum handler");
    for (name, router) in [("bare", bare), ("verified", verified), ("layer", layered)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let response = rt.block_on(router.clone().oneshot(request(&token))).expect("infallible");
                assert_eq!(response.status(), 200);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
