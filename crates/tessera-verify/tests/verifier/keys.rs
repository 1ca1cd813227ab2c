//! tessera's keys: fetched, followed through a rotation without a restart, and kept when the
//! JWKS endpoint is down, slow or answers junk.

use std::time::Duration;

use tessera_verify::{Refusal, Verifier};

use crate::jwks_source::{JwksSource, Mode};
use crate::tessera::{Tessera, eventually, kid_of};

#[tokio::test]
async fn a_key_rotation_at_tessera_is_followed_without_a_restart() {
    let tessera = Tessera::start("").await;
    let before = tessera.sign_up_and_login("ada").await;
    let verifier = Verifier::start(tessera.verify_settings_without_feed()).await.unwrap();
    assert!(verifier.verify(&before.access_token).await.is_ok());

    let new_kid = tessera.rotate_keys().await;
    // The server re-reads its keys every few seconds; the new key signs 1 s after publication.
    let after = eventually("a token signed by the new key", Duration::from_secs(30), || async {
        let login = tessera.login("ada").await;
        (kid_of(&login.access_token) == new_kid).then_some(login)
    })
    .await;
    let verified = verifier.verify(&after.access_token).await.expect("the new key's token is accepted");
    assert_eq!(verified.user_id().to_string(), after.user_id);
    // Tokens of the retired key stay valid until they expire.
    assert!(verifier.verify(&before.access_token).await.is_ok());
}

#[tokio::test]
async fn keys_are_kept_when_the_jwks_endpoint_is_down_slow_or_junk() {
    let tessera = Tessera::start("").await;
    let login = tessera.sign_up_and_login("ada").await;
    let source = JwksSource::start(tessera.url("/.well-known/jwks.json")).await;
    let mut settings = tessera.verify_settings_without_feed();
    settings.jwks_url = source.url();
    settings.jwks_refresh = Duration::from_millis(100);
    settings.jwks_min_refetch = Duration::from_millis(100);
    settings.request_timeout = Duration::from_millis(500);
    let verifier = Verifier::start(settings).await.unwrap();
    assert!(verifier.verify(&login.access_token).await.is_ok());

    // A token of a key tessera never published: refused, whatever the JWKS endpoint does.
    let other = Tessera::start("").await;
    let unknown = other.sign_up_and_login("eve").await;

    for mode in [
        Mode::Status(500),
        Mode::Status(404),
        Mode::Body("<html>maintenance</html>"),
        Mode::Body("{\"keys\":[]}"),
        Mode::Body("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\",\"kid\":\"x\",\"alg\":\"EdDSA\"}]}"),
        Mode::Slow,
    ] {
        source.set(mode.clone());
        // Two refreshes in this mode have happened (or are in flight, for the slow one).
        let seen = source.hits();
        eventually("refreshes in this mode", Duration::from_secs(10), || async {
            (source.hits() >= seen + 2).then_some(())
        })
        .await;
        assert!(verifier.verify(&login.access_token).await.is_ok(), "{mode:?}: the known key was dropped");
        let refusal = verifier.verify(&unknown.access_token).await.expect_err("unknown kid");
        assert!(matches!(refusal, Refusal::Invalid(_)), "{mode:?}: {refusal:?}");
    }
    source.set(Mode::PassThrough);
    assert!(verifier.verify(&login.access_token).await.is_ok());
}

#[tokio::test]
async fn without_any_key_yet_tokens_cannot_be_checked_503_until_the_jwks_answers() {
    let tessera = Tessera::start("").await;
    let login = tessera.sign_up_and_login("ada").await;
    let source = JwksSource::start(tessera.url("/.well-known/jwks.json")).await;
    source.set(Mode::Status(503));
    let mut settings = tessera.verify_settings_without_feed();
    settings.jwks_url = source.url();
    settings.jwks_min_refetch = Duration::from_millis(100);
    let verifier = Verifier::start(settings).await.unwrap();
    assert!(!verifier.is_ready());
    let refusal = verifier.verify(&login.access_token).await.expect_err("no keys");
    assert!(matches!(refusal, Refusal::Unavailable(_)), "{refusal:?}");

    source.set(Mode::PassThrough);
    // The unknown kid refetches (rate limited to once per 100 ms here).
    eventually("the token is accepted", Duration::from_secs(10), || async {
        verifier.verify(&login.access_token).await.ok()
    })
    .await;
    assert!(verifier.is_ready());
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_per_interval() {
    let tessera = Tessera::start("").await;
    let login = tessera.sign_up_and_login("ada").await;
    let source = JwksSource::start(tessera.url("/.well-known/jwks.json")).await;
    let mut settings = tessera.verify_settings_without_feed();
    settings.jwks_url = source.url();
    settings.jwks_min_refetch = Duration::from_secs(3600);
    let verifier = Verifier::start(settings).await.unwrap();
    assert_eq!(source.hits(), 1);
    let other = Tessera::start("").await;
    let unknown = other.sign_up_and_login("eve").await;
    for _ in 0..50 {
        assert!(verifier.verify(&unknown.access_token).await.is_err());
    }
    // The first unknown kid within the hour was the start-up fetch's interval: none at all.
    assert_eq!(source.hits(), 1);
    assert!(verifier.verify(&login.access_token).await.is_ok());
}
