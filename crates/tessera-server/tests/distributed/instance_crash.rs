//! An instance crashing (SPEC §4: instances "share nothing but" PostgreSQL and Redis).
//!
//! Three instances serve sessions created through all of them. While clients keep calling the
//! two that will survive, the third is killed with SIGKILL — no graceful shutdown, requests cut
//! mid-flight. The survivors keep answering (every request a 200), and every session created
//! before the kill — also those created through the dead instance — still works on both
//! survivors: nothing lived only in the killed process. In session mode that is the session
//! token; in hybrid mode the access token and the refresh token.

use std::time::Duration;

use crate::harness::postgres::Schema;
use crate::harness::redis::RedisServer;
use crate::harness::tessera::{Backend, Deployment, Instance, TokenPair};
use crate::harness::traffic::Traffic;
use crate::harness::unique_name;

const USERS: usize = 3;

struct Setup {
    redis: RedisServer,
    prefix: String,
    schema: Schema,
}

async fn setup() -> Setup {
    let prefix = unique_name();
    let schema = Schema::create(&prefix).await;
    Setup { redis: RedisServer::start().await, prefix, schema }
}

impl Setup {
    fn deployment(&self, mode: &str) -> Deployment {
        let backend = Backend::standalone(self.schema.url(), self.redis.url(), self.prefix.clone());
        Deployment::new(&backend, mode)
    }
}

fn users() -> Vec<String> {
    (0..USERS).map(|i| format!("user{i}")).collect()
}

/// Starts traffic on the survivors with `tokens`, kills the first instance and lets the
/// traffic run a little longer; fails if a survivor answered anything but 200.
async fn kill_first_under_traffic(fleet: &mut [Instance], tokens: &[String]) {
    let mut traffic = Traffic::new();
    for survivor in &fleet[1..] {
        traffic.me(survivor, tokens.to_vec());
    }
    traffic.me(&fleet[0], tokens.to_vec());
    tokio::time::sleep(Duration::from_millis(300)).await;
    fleet[0].kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = traffic.finish().await;
    eprintln!("instance crash: /v1/me answers around the kill: {seen:?}");
    for survivor in &fleet[1..] {
        let tally = &seen[&survivor.name];
        assert_eq!(tally.keys().collect::<Vec<_>>(), ["200"], "{} answered every request: {tally:?}", survivor.name);
    }
    assert!(seen[&fleet[0].name].contains_key("no answer"), "the killed instance is gone: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_session_mode_instances_loses_no_session() {
    let setup = setup().await;
    let mut fleet = setup.deployment("session").start_many(&["A", "B", "C"]).await;
    let users = users();
    fleet[0].signup_ok(&users[0]).await;
    for user in &users[1..] {
        fleet[1].signup_ok(user).await;
    }
    let mut sessions = Vec::new();
    for app in &fleet {
        for user in &users {
            sessions.push((app.name.clone(), app.login_session(user).await));
        }
    }
    let tokens: Vec<String> = sessions.iter().map(|(_, t)| t.clone()).collect();
    kill_first_under_traffic(&mut fleet, &tokens).await;

    for survivor in &fleet[1..] {
        for (made_on, token) in &sessions {
            survivor.me(token).await.assert_status(200, &format!("a session made on {made_on}, after A was killed"));
        }
    }
    fleet[1].login_session(&users[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_hybrid_instances_loses_no_session() {
    let setup = setup().await;
    let mut fleet = setup.deployment("hybrid").start_many(&["A", "B", "C"]).await;
    let users = users();
    for user in &users {
        fleet[0].signup_ok(user).await;
    }
    let mut logins: Vec<(String, TokenPair)> = Vec::new();
    for app in &fleet {
        for user in &users {
            logins.push((app.name.clone(), app.login_tokens(user).await));
        }
    }
    let tokens: Vec<String> = logins.iter().map(|(_, p)| p.access.clone()).collect();
    kill_first_under_traffic(&mut fleet, &tokens).await;

    for (i, (made_on, pair)) in logins.iter().enumerate() {
        // Refresh on alternating survivors: the family lives in Redis, not in any process.
        let refresher = &fleet[1 + i % 2];
        let next = refresher.refresh_ok(&pair.refresh).await;
        for survivor in &fleet[1..] {
            survivor.me(&pair.access).await.assert_status(200, &format!("an access token made on {made_on}"));
            survivor.me(&next.access).await.assert_status(200, &format!("a session made on {made_on}, refreshed"));
        }
    }
}
