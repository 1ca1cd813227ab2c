//! Security-relevant events end up as stored audit records (read back through the store, as
//! an operator's tool would).

use serde_json::json;
use time::Duration;

use crate::helpers::{PASSWORD, WRONG_PASSWORD, WithCookies, spawn_app, spawn_app_with};

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

#[tokio::test]
async fn login_success_and_failure_are_audited() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.login_bearer("alice", PASSWORD).await;
    app.login("alice", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    app.login("nobody", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    let kinds = app.audit_kinds().await;
    assert_eq!(count(&kinds, "account_created"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "login_succeeded"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "login_failed"), 2, "{kinds:?}");
}

#[tokio::test]
async fn throttled_login_is_audited() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    for _ in 0..6 {
        app.login("alice", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    }
    app.login("alice", PASSWORD, Some("bearer")).await.assert_problem(429, "throttled");
    // The six identical failures are one record that counts them.
    assert_eq!(folded(&app, "login_failed").await, (1, 6));
    assert_eq!(folded(&app, "login_throttled").await, (1, 1));
}

/// How many records of `kind` there are, and how many events they count together.
async fn folded(app: &crate::helpers::TestApp, kind: &str) -> (usize, i64) {
    let records = app.recent_audit(1000).await;
    let of_kind: Vec<_> = records.iter().filter(|r| r.kind == kind).collect();
    (of_kind.len(), of_kind.iter().map(|r| r.count).sum())
}

/// Hardening #17: an attacker's loop must not add a record per attempt. 200 throttled logins,
/// from two instances at once, are a handful of records (one a minute) counting all 200.
#[tokio::test]
async fn an_attackers_login_loop_is_a_few_records_counting_every_attempt() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let sibling = app.sibling().await;
    let attempt = |url: String| {
        let client = app.client.clone();
        async move {
            let body = json!({"username": "alice", "password": WRONG_PASSWORD});
            let reply = client.post(url).header("tessera-transport", "bearer").json(&body).send().await.expect("send");
            reply.status().as_u16()
        }
    };
    let (mut failed, mut throttled) = (0, 0);
    for _ in 0..100 {
        let (a, b) = tokio::join!(attempt(app.url("/v1/login")), attempt(sibling.url("/v1/login")));
        for status in [a, b] {
            match status {
                401 => failed += 1,
                429 => throttled += 1,
                other => panic!("a wrong password answers 401 or 429, not {other}"),
            }
        }
    }
    sibling.stop().await;
    assert!(throttled >= 150, "the loop is throttled: {failed} failed, {throttled} throttled");
    let (rows, total) = folded(&app, "login_throttled").await;
    assert!(rows <= 2, "{rows} records for {throttled} throttled logins");
    assert_eq!(total, throttled, "every throttled login is counted");
    let (rows, total) = folded(&app, "login_failed").await;
    assert!(rows <= 2, "{rows} records for {failed} failed logins");
    assert_eq!(total, failed, "every failed login is counted");
}

/// The other loop of #17: revocations. Revoking the same token again is not an event at all;
/// revoking many tokens of one account is one record a minute with their count.
#[tokio::test]
async fn an_attackers_revocation_loop_is_a_few_records_counting_every_revocation() {
    let app = crate::token_helpers::spawn_hybrid().await;
    app.create_user("alice").await;
    let first = app.login_tokens("alice", PASSWORD).await;
    for _ in 0..200 {
        app.revoke(&first.access, None).await.assert_status(200);
    }
    assert_eq!(folded(&app, "token_revoked").await, (1, 1), "one token, revoked once");

    let mut current = app.refresh_ok(first.refresh()).await;
    let mut revoked = 1;
    for _ in 0..150 {
        let next = app.refresh_ok(current.refresh()).await;
        let reply = app.revoke(&current.access, None).await;
        match reply.status.as_u16() {
            200 => revoked += 1,
            429 => {}
            other => panic!("a revocation answers 200 or 429, not {other}: {}", reply.text),
        }
        current = next;
    }
    assert!(revoked >= 100, "the first 100 revocations of an account are free: {revoked}");
    let (rows, total) = folded(&app, "token_revoked").await;
    assert!(rows <= 3, "{rows} records for {revoked} revocations");
    assert_eq!(total, revoked, "every revocation is counted");
}

/// `audit.retention`: the server deletes records whose last event is older, by itself.
#[tokio::test]
async fn records_older_than_the_retention_are_pruned_in_the_background() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\n[audit]\nretention = \"10s\"\n").await;
    app.create_user("alice").await;
    app.login("alice", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
    assert_eq!(app.audit_kinds().await, ["login_failed", "account_created"]);
    app.advance(Duration::seconds(30));
    let bob = app.create_user("bob").await;
    let pruned = app
        .eventually(std::time::Duration::from_secs(10), || async { app.audit_kinds().await == ["account_created"] })
        .await;
    assert!(pruned, "only bob's record is left: {:?}", app.audit_kinds().await);
    let left = app.recent_audit(1).await[0].user_id.map(|u| u.to_string());
    assert_eq!(left.as_deref(), bob["id"].as_str());
}

#[tokio::test]
async fn logout_revocation_and_logout_all_are_audited() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let one = app.login_bearer("alice", PASSWORD).await;
    let two = app.login_bearer("alice", PASSWORD).await;
    let three = app.login_bearer("alice", PASSWORD).await;
    app.send(app.delete(&format!("/v1/sessions/{}", two.session_id)).bearer(&one.token)).await.assert_status(204);
    app.send(app.post("/v1/logout").bearer(&one.token)).await.assert_status(204);
    app.send(app.post("/v1/logout-all").bearer(&three.token)).await.assert_status(204);
    let kinds = app.audit_kinds().await;
    assert_eq!(count(&kinds, "session_revoked"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "logout"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "all_sessions_revoked"), 1, "{kinds:?}");
}

#[tokio::test]
async fn password_change_is_audited() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    app.send(
        app.post("/v1/password")
            .bearer(&login.token)
            .json(&json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"})),
    )
    .await
    .assert_status(200);
    let kinds = app.audit_kinds().await;
    assert_eq!(count(&kinds, "password_changed"), 1, "{kinds:?}");
}

/// Reading the trail back: `GET /v1/admin/audit` and `tessera audit`.
mod on_query {
    use serde_json::Value;
    use time::Duration;

    use crate::helpers::{PASSWORD, TestApp, WRONG_PASSWORD, spawn_app_with};

    const ADMIN_KEY: &str = "audit-suite-admin-key-0123456789abcdef";

    async fn spawn() -> TestApp {
        spawn_app_with(&format!("[auth]\nmode = \"session\"\n[admin]\napi_key = \"{ADMIN_KEY}\"\n")).await
    }

    async fn audit(app: &TestApp, query: &str) -> Value {
        let reply = app.send(app.get(&format!("/v1/admin/audit{query}")).bearer_auth(ADMIN_KEY)).await;
        reply.assert_status(200);
        reply.json()
    }

    fn events(page: &Value) -> Vec<&str> {
        page["events"].as_array().expect("events").iter().map(|e| e["event"].as_str().expect("event")).collect()
    }

    #[tokio::test]
    async fn the_admin_reads_the_trail_newest_first_with_filters() {
        let app = spawn().await;
        app.create_user("alice").await;
        app.create_user("bob").await;
        app.login_bearer("alice", PASSWORD).await;
        app.advance(Duration::hours(2));
        app.login("alice", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
        app.login_bearer("bob", PASSWORD).await;

        let all = audit(&app, "").await;
        assert_eq!(
            events(&all),
            ["login_succeeded", "login_failed", "login_succeeded", "account_created", "account_created"],
            "{all}"
        );
        assert!(all["next_cursor"].is_null(), "{all}");
        let alice = audit(&app, "?user=alice").await;
        assert_eq!(events(&alice), ["login_failed", "login_succeeded", "account_created"], "{alice}");
        assert_eq!(alice["events"][0]["username"], "alice", "{alice}");
        assert_eq!(alice["events"][0]["ip"], "127.0.0.1", "{alice}");
        let failed = audit(&app, "?event=login_failed").await;
        assert_eq!(events(&failed), ["login_failed"], "{failed}");
        let recent = audit(&app, "?since=1h").await;
        assert_eq!(events(&recent), ["login_succeeded", "login_failed"], "{recent}");
        let since = (app.now() - Duration::minutes(1)).format(&time::format_description::well_known::Rfc3339).unwrap();
        let recent = audit(&app, &format!("?since={}&user=bob", since.replace('+', "%2B"))).await;
        assert_eq!(events(&recent), ["login_succeeded"], "{recent}");
    }

    #[tokio::test]
    async fn counted_repeats_show_their_count_in_the_api_and_the_cli() {
        let app = spawn().await;
        app.create_user("alice").await;
        // At the start of a minute, so that the second below stays in the same one.
        app.advance(Duration::seconds(60 - app.now().unix_timestamp() % 60));
        for _ in 0..3 {
            app.login("mallory", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
        }
        app.advance(Duration::seconds(1));
        app.login("mallory", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
        let page = audit(&app, "?event=login_failed").await;
        let events = page["events"].as_array().expect("events");
        assert_eq!(events.len(), 1, "{page}");
        assert_eq!((events[0]["count"].as_i64(), events[0]["username"].as_str()), (Some(4), Some("mallory")), "{page}");
        let (at, last) = (crate::helpers::parse_ts(&events[0]["at"]), crate::helpers::parse_ts(&events[0]["last_at"]));
        assert_eq!(last - at, Duration::seconds(1), "{page}");
        let created = audit(&app, "?event=account_created").await;
        assert_eq!(created["events"][0]["count"], 1, "{created}");
        assert_eq!(created["events"][0]["last_at"], created["events"][0]["at"], "{created}");

        let cwd = tempfile::tempdir().expect("temp dir");
        let mut cmd = app.tessera_cmd(cwd.path());
        cmd.args(["audit", "--event", "login_failed", "--json"]);
        let out = crate::helpers::run_cmd(cmd, None, std::time::Duration::from_secs(30)).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
        assert_eq!(line["count"], 4, "{line}");
        let mut cmd = app.tessera_cmd(cwd.path());
        cmd.args(["audit", "--event", "login_failed"]);
        let out = crate::helpers::run_cmd(cmd, None, std::time::Duration::from_secs(30)).await;
        let text = String::from_utf8_lossy(&out.stdout);
        let last_column = text.trim_end().rsplit('\t').next().unwrap_or_default();
        assert!(last_column.starts_with("×4 until "), "{text}");
    }

    #[tokio::test]
    async fn tessera_audit_prune_deletes_what_is_older_than_before_or_the_retention() {
        let app = spawn().await;
        app.create_user("alice").await;
        app.advance(Duration::hours(2));
        let bob = app.create_user("bob").await;
        let cwd = tempfile::tempdir().expect("temp dir");
        let run = |args: &[&str]| {
            let mut cmd = app.tessera_cmd(cwd.path());
            cmd.arg("audit").args(args);
            crate::helpers::run_cmd(cmd, None, std::time::Duration::from_secs(30))
        };
        // The default is audit.retention (90 days) before now: nothing that old.
        let out = run(&["prune"]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("deleted 0 "));
        let hour_ago = (app.now() - Duration::hours(1)).format(&time::format_description::well_known::Rfc3339).unwrap();
        let out = run(&["prune", "--before", &hour_ago]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("deleted 1 audit record(s)"), "{text}");
        let all = audit(&app, "").await;
        assert_eq!(events(&all), ["account_created"], "{all}");
        assert_eq!(all["events"][0]["user_id"], bob["id"], "{all}");
        let out = run(&["prune", "--before", "last tuesday"]).await;
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--before"));
    }

    #[tokio::test]
    async fn pages_follow_the_cursor_to_the_end() {
        let app = spawn().await;
        for name in ["user1", "user2", "user3", "user4", "user5"] {
            app.create_user(name).await;
        }
        let mut seen = Vec::new();
        let mut query = "?limit=2".to_owned();
        for _ in 0..5 {
            let page = audit(&app, &query).await;
            for e in page["events"].as_array().expect("events") {
                seen.push(e["seq"].as_i64().expect("seq"));
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5, "every record once: {seen:?}");
        assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats: {seen:?}");
    }

    #[tokio::test]
    async fn bad_filters_are_400_naming_the_filter_and_the_key_is_required() {
        let app = spawn().await;
        for (query, name) in [
            ("?event=nonsense", "event"),
            ("?since=yesterday", "since"),
            ("?limit=0", "limit"),
            ("?limit=abc", "limit"),
            ("?cursor=-3", "cursor"),
            ("?user=", "user"),
            ("?colour=red", "colour"),
            ("?event=logout&event=logout", "event"),
        ] {
            let reply = app.send(app.get(&format!("/v1/admin/audit{query}")).bearer_auth(ADMIN_KEY)).await;
            let problem = reply.assert_problem(400, "invalid-request");
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(detail.contains(name), "{query}: the detail names {name}: {problem}");
        }
        app.send(app.get("/v1/admin/audit")).await.assert_status(401);
        app.send(app.get("/v1/admin/audit").bearer_auth("not-the-admin-key-0123456789abcdef")).await.assert_status(401);
    }

    #[tokio::test]
    async fn tessera_audit_prints_the_trail_with_filters_and_as_json() {
        let app = spawn().await;
        app.create_user("alice").await;
        app.login("alice", WRONG_PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
        app.login_bearer("alice", PASSWORD).await;
        let cwd = tempfile::tempdir().expect("temp dir");
        let run = |args: &[&str]| {
            let mut cmd = app.tessera_cmd(cwd.path());
            cmd.arg("audit").args(args);
            crate::helpers::run_cmd(cmd, None, std::time::Duration::from_secs(30))
        };
        let out = run(&["--user", "alice"]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
        let kinds: Vec<&str> = text.lines().map(|l| l.split('\t').nth(1).unwrap_or_default()).collect();
        assert_eq!(kinds, ["login_succeeded", "login_failed", "account_created"], "{text}");

        let out = run(&["--event", "login_failed", "--json"]).await;
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["event"], "login_failed");
        assert_eq!(lines[0]["username"], "alice");

        let out = run(&["--since", "last tuesday"]).await;
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--since"), "{stderr}");
    }
}
