//! Redis Cluster (SPEC §4: "standalone or Redis Cluster — all keys of one user share a hash
//! tag so per-user operations work on a cluster").
//!
//! A real three-master cluster (`redis-server --cluster-enabled yes` ×3 joined with
//! `redis-cli --cluster create`) carries the session mode and the hybrid mode end to end. The
//! per-user operations are the ones a cluster breaks when keys are spread badly: listing a
//! user's sessions, logout-all (one script over every session of the user) and a refresh
//! rotation with reuse detection (one script over the family). A dozen users make their keys
//! land on several masters; the tests check that they did, and that each user's keys stayed on
//! one node. In hybrid mode two instances share the cluster, so a revocation also travels
//! through the cluster's pub/sub (published on one node, received on another).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::harness::postgres::Schema;
use crate::harness::redis::RedisCluster;
use crate::harness::tessera::{Backend, Deployment};
use crate::harness::unique_name;

/// Enough users that their keys land on several masters (all on one: 3 × 3⁻¹² ≈ 6·10⁻⁶).
const USERS: usize = 12;
/// `revocation.max_staleness`: the most a revocation may take to reach another instance.
const PROPAGATION: Duration = Duration::from_secs(1);

struct Setup {
    name: String,
    cluster: RedisCluster,
    // Declared last: dropped after the instances that use it.
    schema: Schema,
}

async fn setup() -> Setup {
    let name = unique_name();
    let schema = Schema::create(&name).await;
    let cluster = RedisCluster::start().await;
    Setup { name, cluster, schema }
}

impl Setup {
    fn deployment(&self, mode: &str) -> Deployment {
        let backend = Backend {
            postgres_url: self.schema.url(),
            redis_url: self.cluster.url(),
            redis_cluster: true,
            redis_prefix: self.name.clone(),
        };
        Deployment::new(&backend, mode)
    }

    /// The users' keys are spread over several masters, and each user's keys are on one node.
    async fn assert_users_spread_over_the_masters(&self) {
        let nodes = self.cluster.keys_per_node(&format!("{}:{{u:*", self.name)).await;
        let mut node_of_user: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for (node, keys) in nodes.iter().enumerate() {
            for key in keys {
                let tag = key.split('}').next().expect("a hash tag").to_owned();
                node_of_user.entry(tag).or_default().insert(node);
            }
        }
        assert_eq!(node_of_user.len(), USERS, "every user has keys: {nodes:?}");
        for (user, on) in &node_of_user {
            assert_eq!(on.len(), 1, "all keys of {user}}} are on one node (one slot): on nodes {on:?}");
        }
        let used: BTreeSet<usize> = node_of_user.values().flatten().copied().collect();
        assert!(used.len() >= 2, "the users' keys landed on several masters: {nodes:?}");
    }
}

fn users() -> Vec<String> {
    (0..USERS).map(|i| format!("user{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_runs_on_a_three_master_cluster() {
    let setup = setup().await;
    let app = setup.deployment("session").start("S").await;
    let users = users();
    let mut sessions = Vec::new();
    for user in &users {
        app.signup_ok(user).await;
        let tokens = [app.login_session(user).await, app.login_session(user).await, app.login_session(user).await];
        sessions.push(tokens);
    }
    setup.assert_users_spread_over_the_masters().await;

    for (user, [first, second, third]) in users.iter().zip(&sessions) {
        let me = app.me(first).await;
        me.assert_status(200, &format!("{user}'s session"));
        assert_eq!(me.json()["user"]["username"], user.as_str());
        let listed = app.get("/v1/sessions", Some(second)).await;
        listed.assert_status(200, "GET /v1/sessions");
        assert_eq!(listed.json()["sessions"].as_array().map(Vec::len), Some(3), "{user}'s sessions: {}", listed.text);

        app.logout(first).await.assert_status(204, "logout");
        app.me(first).await.assert_status(401, "a logged-out session");
        app.me(second).await.assert_status(200, "another session of the same user, after one logout");

        app.logout_all(second).await.assert_status(204, "logout-all");
        app.me(second).await.assert_status(401, "the session that logged out everywhere");
        app.me(third).await.assert_status(401, "another session, after logout-all");
    }
    let left = setup.cluster.keys_per_node(&format!("{}:{{u:*:s:*", setup.name)).await;
    assert!(left.iter().all(Vec::is_empty), "no session is left in the cluster: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_mode_runs_on_a_three_master_cluster() {
    let setup = setup().await;
    // The default refresh.reuse_grace (10 s) covers the retry below; the theft is a token two
    // rotations old, which no grace excuses (a real process has no clock to move past it).
    let deployment = setup.deployment("hybrid").with("REVOCATION__CHECK", "denylist");
    let fleet = deployment.start_many(&["A", "B"]).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    let users = users();
    let mut logins = Vec::new();
    for user in &users {
        a.signup_ok(user).await;
        logins.push((a.login_tokens(user).await, b.login_tokens(user).await));
    }
    setup.assert_users_spread_over_the_masters().await;

    for (user, (on_a, on_b)) in users.iter().zip(&logins) {
        for app in [a, b] {
            app.me(&on_a.access).await.assert_status(200, &format!("{user}'s access token"));
        }
        // Rotate on B; a retry of the same token on A inside the grace gets the same successor.
        let first = b.refresh_ok(&on_a.refresh).await;
        let retry = a.refresh_ok(&on_a.refresh).await;
        assert_eq!(retry.refresh, first.refresh, "a retry inside refresh.reuse_grace gets the same successor");
        let second = a.refresh_ok(&first.refresh).await;
        b.me(&second.access).await.assert_status(200, "the twice-refreshed access token");
        // A token two rotations old comes back: theft, whatever the grace. The family ends.
        b.refresh(&on_a.refresh).await.assert_status(401, "reuse of a refresh token two rotations old");
        a.refresh(&second.refresh).await.assert_status(401, "the current refresh token, once its family is revoked");
        for app in [a, b] {
            app.refused_within(&second.access, PROPAGATION, "an access token of the revoked family").await;
            app.me(&on_b.access).await.assert_status(200, "another session of the user, after reuse detection");
        }

        // Logout everywhere, from B: a third session opened on A ends too.
        let third = a.login_tokens(user).await;
        b.logout_all(&on_b.access).await.assert_status(204, "logout-all");
        for app in [a, b] {
            app.refused_within(&on_b.access, PROPAGATION, "the token that logged out everywhere").await;
            app.refused_within(&third.access, PROPAGATION, "another session's token, after logout-all").await;
        }
        for refresh in [&on_b.refresh, &third.refresh] {
            a.refresh(refresh).await.assert_status(401, "a refresh token, after logout-all");
        }
    }
}
