//! What an access token costs per algorithm: signing, a full verification (signature and
//! claims), and a hit in the verified-token cache that spares the signature on repeat
//! requests. `cargo bench -p tessera-jwt --bench jwt`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_jwt::id::{SessionId, TokenId, UserId};
use tessera_jwt::{AccessClaims, Alg, JwtSettings, KeySet, SigningKey, VerifiedCache, sign, verify};
use time::{Duration, OffsetDateTime};

fn jwt(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256] {
        let (key, _private) = SigningKey::generate(alg).expect("key generation");
        let ttl = Duration::minutes(5);
        let keys = KeySet::new(vec![(key, now - Duration::hours(1), None)], now, ttl).expect("key set");
        let settings = JwtSettings {
            alg,
            issuer: "http://127.0.0.1:8080".into(),
            audience: "tessera".into(),
            access_ttl: ttl,
            leeway: Duration::seconds(30),
        };
        let claims = AccessClaims {
            iss: settings.issuer.clone(),
            sub: UserId::generate(),
            aud: settings.audience.clone(),
            exp: (now + ttl).unix_timestamp(),
            iat: now.unix_timestamp(),
            jti: TokenId::generate(),
            sid: Some(SessionId::generate()),
        };
        let token = sign(&keys, &claims).expect("sign");
        let cache = VerifiedCache::new(10_000);
        cache.insert(&token, &keys, Arc::new(verify(&keys, &settings, &token, now).expect("verify")));

        let mut group = c.benchmark_group(alg.as_str());
        group.bench_function("sign", |b| b.iter(|| sign(black_box(&keys), black_box(&claims))));
        group.bench_function("verify", |b| b.iter(|| verify(&keys, &settings, black_box(&token), now)));
        group.bench_function("cache hit", |b| b.iter(|| cache.get(black_box(&token))));
        group.finish();
    }
}

criterion_group!(benches, jwt);
criterion_main!(benches);
