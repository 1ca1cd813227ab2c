//! Signing-key rotation across instances (SPEC §4): "`tessera keys rotate` publishes the next
//! key in JWKS before it signs … every instance follows a rotation without a restart".
//!
//! Three running instances; `tessera keys rotate` runs as a separate process with the same
//! configuration, as an operator would run it. Within a bounded time all three publish the same
//! JWKS with the new key (they reload keys every 5 s), each starts signing with it once it is
//! active (`jwt.jwks_max_age`, 1 s here, after the rotation), every instance accepts what every
//! other signs with it, and tokens signed by the old key stay valid everywhere. Started at the
//! same moment on an empty store, the instances create exactly one first key between them.

use std::time::{Duration, Instant};

use crate::harness::postgres::Schema;
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{Api, Backend, Deployment, Instance, TokenPair, kid_of};
use crate::harness::{eventually, unique_name};

/// Key reload interval (5 s), twice, and the activation delay: the furthest an instance may be
/// from following a rotation, with room for a loaded machine.
const ROTATION_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_is_followed_by_every_instance_without_a_restart() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let redis = RedisServer::start().await;
    let backend = Backend::standalone(schema.url(), redis.url(), name);
    let deployment = Deployment::new(&backend, "hybrid").with("JWT__JWKS_MAX_AGE", "1s");
    let fleet = deployment.start_many(&["A", "B", "C"]).await;
    fleet[0].signup_ok("alice").await;
    // Started together on an empty store, they agreed on one signing key at once: there is
    // nothing to wait for.
    let mut first_keys = Vec::new();
    for instance in &fleet {
        first_keys.push(instance.jwks_kids().await);
    }
    assert!(
        first_keys[0].len() == 1 && first_keys.iter().all(|k| *k == first_keys[0]),
        "one shared key: {first_keys:?}"
    );
    let before = same_jwks(&fleet, "before the rotation", |_| true).await;
    let old = fleet[0].login_tokens("alice").await;
    let old_kid = kid_of(&old.access);
    assert!(before.contains(&old_kid), "the signing key {old_kid} is published: {before:?}");

    let rotated_at = Instant::now();
    let output = deployment.cli_ok(&["keys", "rotate"]).await;
    let new_kid = published_kid(&String::from_utf8_lossy(&output.stdout));
    assert!(!before.contains(&new_kid), "keys rotate made a new key: {new_kid} in {before:?}");

    let published =
        same_jwks(&fleet, "after the rotation", |kids| kids.contains(&new_kid) && kids.contains(&old_kid)).await;
    eprintln!("key rotation: all three instances publish {published:?} {:?} after `keys rotate`", rotated_at.elapsed());

    for signer in &fleet {
        let login = signer.login_tokens("alice").await;
        let pair = refresh_until_signed_by(signer, login, &new_kid, rotated_at + ROTATION_BOUND).await;
        for verifier in &fleet {
            verifier
                .me(&pair.access)
                .await
                .assert_status(200, &format!("a token {} signed with the new key", signer.name));
        }
    }
    eprintln!("key rotation: every instance signs with the new key {:?} after `keys rotate`", rotated_at.elapsed());
    for verifier in &fleet {
        verifier.me(&old.access).await.assert_status(200, "a token signed with the old key, still within its lifetime");
    }
}

/// Waits until every instance publishes the same key ids, and `accept` accepts them.
async fn same_jwks(fleet: &[Instance], when: &str, accept: impl Fn(&[String]) -> bool) -> Vec<String> {
    let what = format!("all instances publish the same JWKS {when}");
    let accept = &accept;
    let (kids, _) = eventually(&what, ROTATION_BOUND, Duration::from_millis(100), || async move {
        let mut sets = Vec::new();
        for app in fleet {
            sets.push(app.jwks_kids().await);
        }
        (sets.iter().all(|s| *s == sets[0]) && accept(&sets[0])).then(|| sets[0].clone())
    })
    .await;
    kids
}

/// The kid in `tessera keys rotate`'s "published KID (ALG); it signs from …".
fn published_kid(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("published "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("keys rotate names the new key: {stdout:?}"))
        .to_owned()
}

/// Refreshes on `app` until the access token is signed with `kid`.
async fn refresh_until_signed_by(app: &Api, mut pair: TokenPair, kid: &str, deadline: Instant) -> TokenPair {
    while kid_of(&pair.access) != kid {
        assert!(Instant::now() < deadline, "{} still signs with {} instead of {kid}", app.name, kid_of(&pair.access));
        tokio::time::sleep(Duration::from_millis(200)).await;
        pair = app.refresh_ok(&pair.refresh).await;
    }
    pair
}
