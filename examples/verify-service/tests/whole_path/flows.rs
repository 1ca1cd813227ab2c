//! The flows, on the embedded store and across instances on PostgreSQL + Redis.

use std::time::Duration;

use tessera_server::config::Config;

use crate::forge::forgeries;
use crate::service::Service;
use crate::store::Distributed;
use crate::tessera::{Tessera, base_toml, eventually, feed_toml, kid_of};

const LIMIT: Duration = Duration::from_secs(20);

async fn embedded() -> Tessera {
    Tessera::start(&feed_toml()).await
}

/// Two instances on one fresh PostgreSQL schema and Redis prefix, denylist policy.
/// The store comes first so that it is dropped last, after both instances.
pub async fn two_instances() -> (Distributed, Tessera, Tessera) {
    let store = Distributed::create().await;
    let toml = format!("{}{}[revocation]\ncheck = \"denylist\"\n", base_toml(), feed_toml());
    let mut config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    store.configure(&mut config);
    let a = Tessera::start_with(config.clone(), None).await;
    let c = Tessera::start_with(config, None).await;
    (store, a, c)
}

async fn until_status(service: &Service, token: &str, status: u16, what: &str) {
    eventually(what, LIMIT, || async { (service.status("/whoami", token).await == status).then_some(()) }).await;
}

#[tokio::test]
async fn embedded_login_reaches_the_service_and_logout_is_refused() {
    let tessera = embedded().await;
    let service = Service::start(&tessera, "5s").await;
    let login = tessera.sign_up_and_login("ada").await;
    until_status(&service, &login.access_token, 200, "the service accepts the login").await;
    let (_, body, _) = service.get("/whoami", &login.access_token).await;
    assert_eq!(body["user_id"], login.user_id.as_str());
    assert_eq!(body["session_id"], login.session_id.as_str());
    assert_eq!(service.status("/api/ping", &login.access_token).await, 200, "behind the layer");

    let (status, problem, content_type) = service.get("/whoami", "").await;
    assert_eq!((status.as_u16(), content_type.as_deref()), (401, Some("application/problem+json")));
    assert_eq!(problem["status"], 401);
    assert_eq!(service.status("/api/ping", "").await, 401);

    tessera.logout(&login).await;
    until_status(&service, &login.access_token, 401, "the service refuses after the logout").await;
    assert_eq!(service.status("/api/ping", &login.access_token).await, 401);
}

#[tokio::test]
async fn distributed_logout_on_one_instance_is_refused_by_a_service_following_another() {
    let (_store, a, c) = two_instances().await;
    // The service follows instance A; the user logs in and out at instance C.
    let service = Service::start(&a, "5s").await;
    let login = c.sign_up_and_login("ada").await;
    until_status(&service, &login.access_token, 200, "the service accepts the login").await;
    c.logout(&login).await;
    until_status(&service, &login.access_token, 401, "the service refuses after the logout at C").await;
}

#[tokio::test]
async fn embedded_key_rotation_is_followed_without_a_restart() {
    let tessera = embedded().await;
    let service = Service::start(&tessera, "5s").await;
    let before = tessera.sign_up_and_login("ada").await;
    until_status(&service, &before.access_token, 200, "the first key's token").await;
    let new_kid = tessera.rotate_keys().await;
    let after = eventually("a token signed by the new key", Duration::from_secs(30), || async {
        let login = tessera.login("ada").await;
        (kid_of(&login.access_token) == new_kid).then_some(login)
    })
    .await;
    assert_eq!(service.status("/whoami", &after.access_token).await, 200);
    assert_eq!(service.status("/whoami", &before.access_token).await, 200);
}

#[tokio::test]
async fn distributed_key_rotation_is_followed_without_a_restart() {
    let (_store, a, c) = two_instances().await;
    let service = Service::start(&a, "5s").await;
    let before = c.sign_up_and_login("ada").await;
    until_status(&service, &before.access_token, 200, "the first key's token").await;
    let new_kid = a.rotate_keys().await;
    let after = eventually("instance C signs with the new key", Duration::from_secs(30), || async {
        let login = c.login("ada").await;
        (kid_of(&login.access_token) == new_kid).then_some(login)
    })
    .await;
    assert_eq!(service.status("/whoami", &after.access_token).await, 200);
}

#[tokio::test]
async fn a_stopped_tessera_makes_the_service_fail_closed_and_it_recovers_by_itself() {
    let mut tessera = embedded().await;
    let service = Service::start(&tessera, "1s").await;
    let login = tessera.sign_up_and_login("ada").await;
    until_status(&service, &login.access_token, 200, "the service accepts the login").await;

    tessera.stop().await;
    until_status(&service, &login.access_token, 503, "503 once the copy is stale").await;
    let (_, problem, content_type) = service.get("/whoami", &login.access_token).await;
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(problem["status"], 503);

    tessera.restart().await;
    until_status(&service, &login.access_token, 200, "the service recovers by itself").await;
    tessera.logout(&login).await;
    until_status(&service, &login.access_token, 401, "and follows logouts again").await;
}

#[tokio::test]
async fn forged_and_altered_tokens_are_refused_by_the_service_exactly_as_by_tessera() {
    let tessera = embedded().await;
    let other = Tessera::start("").await;
    let service = Service::start(&tessera, "5s").await;
    let login = tessera.sign_up_and_login("ada").await;
    let foreign = other.sign_up_and_login("eve").await;
    until_status(&service, &login.access_token, 200, "the genuine token").await;
    for (what, forged) in forgeries(&login.access_token, &foreign.access_token, &foreign.user_id) {
        assert_eq!(tessera.me_status(&forged).await, 401, "tessera accepts {what}");
        let (status, _, content_type) = service.get("/whoami", &forged).await;
        assert_eq!(status.as_u16(), 401, "the service: {what}");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{what}");
    }
    assert_eq!(service.status("/whoami", &login.access_token).await, 200);
}
