//! The verifier decides as tessera does: what tessera accepts at `/v1/me` it accepts, what
//! tessera refuses it refuses.

use tessera_verify::{Refusal, Verifier};

use crate::forge::forgeries;
use crate::tessera::Tessera;

#[tokio::test]
async fn a_token_tessera_issued_is_accepted_with_its_user_and_session() {
    let tessera = Tessera::start("").await;
    let login = tessera.sign_up_and_login("ada").await;
    let verifier = Verifier::start(tessera.verify_settings_without_feed()).await.unwrap();
    let verified = verifier.verify(&login.access_token).await.expect("accepted");
    assert_eq!(verified.user_id().to_string(), login.user_id);
    assert_eq!(verified.session_id().map(|s| s.to_string()), Some(login.session_id));
    // Again, from the verified-token cache.
    assert!(verifier.verify(&login.access_token).await.is_ok());
}

#[tokio::test]
async fn forged_and_altered_tokens_are_refused_exactly_as_tessera_refuses_them() {
    let tessera = Tessera::start("").await;
    let other = Tessera::start("").await;
    let login = tessera.sign_up_and_login("ada").await;
    let foreign = other.sign_up_and_login("ada").await;
    let verifier = Verifier::start(tessera.verify_settings_without_feed()).await.unwrap();
    for (what, forged) in forgeries(&login.access_token, &foreign.access_token, &foreign.user_id) {
        assert_eq!(tessera.me_status(&forged).await, 401, "tessera accepts {what}");
        let refusal = verifier.verify(&forged).await.err().unwrap_or_else(|| panic!("the verifier accepts {what}"));
        assert!(matches!(refusal, Refusal::Invalid(_)), "{what}: {refusal:?}");
    }
    // The genuine token still passes both, after all that.
    assert_eq!(tessera.me_status(&login.access_token).await, 200);
    assert!(verifier.verify(&login.access_token).await.is_ok());
}
