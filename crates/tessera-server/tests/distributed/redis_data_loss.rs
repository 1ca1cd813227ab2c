//! Redis losing its data (a restart without persistence, a flush, an eviction) while access
//! tokens it issued are still within their lifetime (SPEC §2: logout answers 204 only when it
//! took effect; §4: in hybrid mode with the denylist a logout is enforced on every instance
//! within the propagation bound).
//!
//! After the loss the session record behind a live access token is gone, but the token itself
//! is self-contained and still verifies. A logout with it must still revoke it — the `sid` it
//! carries is all the denylist needs — rather than answer 204 and leave the token valid until
//! it expires.

use std::time::Duration;

use crate::harness::postgres::Schema;
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{Backend, Deployment};
use crate::harness::{eventually, unique_name};

/// `revocation.max_staleness`.
const MAX_STALENESS: Duration = Duration::from_secs(1);
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_after_redis_lost_the_session_still_revokes_the_access_token() {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let mut redis = RedisServer::start().await;
    let backend = Backend::standalone(schema.url(), redis.url(), name);
    let deployment = Deployment::new(&backend, "hybrid")
        .with("REVOCATION__CHECK", "denylist")
        .with("REVOCATION__MAX_STALENESS", "1s");
    let fleet = deployment.start_many(&["A", "B"]).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    a.signup_ok("alice").await;
    let login = a.login_tokens("alice").await;

    redis.kill();
    redis.restart().await;
    for app in [a, b] {
        eventually(
            &format!("{} is ready after Redis came back empty", app.name),
            RECOVERY_BOUND,
            Duration::from_millis(20),
            || async { (app.readyz().await.status == 200).then_some(()) },
        )
        .await;
        app.me(&login.access).await.assert_status(200, "a live token after Redis came back empty");
    }

    b.logout(&login.access).await.assert_status(204, "logout after Redis lost the session");
    for app in [b, a] {
        app.refused_within(&login.access, MAX_STALENESS, "an access token logged out after Redis lost its session")
            .await;
    }
    a.refresh(&login.refresh).await.assert_status(401, "the refresh token of a session Redis lost");
}
