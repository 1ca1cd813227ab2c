//! tessera's revocations, followed through its feed: a logout at tessera is refused here; a
//! gone feed makes every request fail closed (503) after `max_staleness`, and the verifier
//! recovers by itself when tessera is back.

use std::time::Duration;

use tessera_verify::{FeedKey, Refusal, Verifier};

use crate::tessera::{Tessera, eventually, feed_toml};

const LIMIT: Duration = Duration::from_secs(15);

async fn accepted(verifier: &Verifier, token: &str) {
    eventually("the token is accepted", LIMIT, || async { verifier.verify(token).await.ok() }).await;
}

#[tokio::test]
async fn a_logout_at_tessera_is_refused_by_the_verifier() {
    let tessera = Tessera::start(&feed_toml()).await;
    let login = tessera.sign_up_and_login("ada").await;
    let verifier = Verifier::start(tessera.verify_settings()).await.unwrap();
    accepted(&verifier, &login.access_token).await;
    tessera.logout(&login).await;
    let refusal = eventually("the logout reaches the verifier", LIMIT, || async {
        verifier.verify(&login.access_token).await.err()
    })
    .await;
    assert!(matches!(refusal, Refusal::Revoked), "{refusal:?}");
    // A verifier started after the logout learns it from the first `reset`.
    let late = Verifier::start(tessera.verify_settings()).await.unwrap();
    eventually("the late verifier is ready", LIMIT, || async { late.is_ready().then_some(()) }).await;
    assert!(matches!(late.verify(&login.access_token).await, Err(Refusal::Revoked)));
}

#[tokio::test]
async fn a_stopped_tessera_fails_closed_after_the_staleness_and_recovers_by_itself() {
    let mut tessera = Tessera::start(&feed_toml()).await;
    let login = tessera.sign_up_and_login("ada").await;
    let mut settings = tessera.verify_settings();
    settings.max_staleness = Duration::from_secs(1);
    let verifier = Verifier::start(settings).await.unwrap();
    accepted(&verifier, &login.access_token).await;

    tessera.stop().await;
    let refusal =
        eventually("503 once stale", LIMIT, || async { verifier.verify(&login.access_token).await.err() }).await;
    assert!(matches!(refusal, Refusal::Unavailable(_)), "{refusal:?}");
    assert!(!verifier.is_ready());

    tessera.restart().await;
    accepted(&verifier, &login.access_token).await;
    // And it follows revocations again.
    tessera.logout(&login).await;
    eventually("the logout after the restart is followed", LIMIT, || async {
        matches!(verifier.verify(&login.access_token).await, Err(Refusal::Revoked)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_wrong_feed_key_never_makes_the_copy_fresh() {
    let tessera = Tessera::start(&feed_toml()).await;
    let login = tessera.sign_up_and_login("ada").await;
    let mut settings = tessera.verify_settings();
    settings.feed_key = Some(FeedKey::new("not-the-key"));
    let verifier = Verifier::start(settings).await.unwrap();
    // Several reconnect attempts fit in this wait (backoff starts at 100 ms).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refusal = verifier.verify(&login.access_token).await.expect_err("fails closed");
    assert!(matches!(refusal, Refusal::Unavailable(_)), "{refusal:?}");
}
