//! The revocation matrix of SPEC §1: for each revocation setting and each way of ending a
//! session, which credential stops working, and when.
//!
//! - The refresh token always stops at once: it is checked against the store on every use.
//! - `revocation.check = "none"`: an access token is self-contained and lives to `exp` (the
//!   leeway tolerates skew on `iat` only, never lengthens a token); nothing the server does
//!   can stop it earlier.
//! - `denylist` and `allowlist`: the access token stops at once when the revocation happened on
//!   this server, and within the store sync interval when another process (the CLI) made it.
//!
//! Every cell starts with two sessions of one user: the *victim*, whose credentials the action
//! targets, and the *other*, which shows whether the action was per session or per user (and
//! which performs the actions one session takes against another: `DELETE /v1/sessions/{id}`,
//! password change).

use serde_json::json;
use time::Duration;

use crate::helpers::{PASSWORD, TestApp, WithCookies, spawn_token_app};
use crate::token_helpers::{
    ADMIN_KEY, CROSS_PROCESS, TokenLogin, assert_access_refused, assert_access_works, assert_refresh_refused,
    token_toml,
};

const NEW_PASSWORD: &str = "a brand new passphrase, 2024";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// jwt mode's default revocation check (none), refresh on.
    JwtNone,
    JwtDenylist,
    /// hybrid mode's default revocation check (denylist).
    HybridDenylist,
    HybridAllowlist,
    HybridNone,
}

impl Check {
    fn toml(self) -> String {
        match self {
            Check::JwtNone => token_toml("jwt", ""),
            Check::JwtDenylist => token_toml("jwt", "[revocation]\ncheck = \"denylist\"\n"),
            Check::HybridDenylist => token_toml("hybrid", ""),
            Check::HybridAllowlist => token_toml("hybrid", "[revocation]\ncheck = \"allowlist\"\n"),
            Check::HybridNone => token_toml("hybrid", "[revocation]\ncheck = \"none\"\n"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// `POST /v1/logout` with the victim's access token.
    Logout,
    /// `POST /v1/logout-all` with the victim's access token.
    LogoutAll,
    /// `DELETE /v1/sessions/{victim}` by the other session.
    DeleteSession,
    /// `POST /v1/password` by the other session.
    PasswordChange,
    /// `POST /v1/admin/users/{id}/revoke-sessions`.
    AdminRevoke,
    /// `POST /v1/revoke` with the victim's refresh token.
    RevokeRefresh,
    /// `tessera user disable` in another process.
    UserDisable,
}

impl Action {
    /// Whether the action ends every session of the user, or the victim's alone.
    fn ends_every_session(self) -> bool {
        matches!(self, Action::LogoutAll | Action::PasswordChange | Action::AdminRevoke | Action::UserDisable)
    }

    fn is_cross_process(self) -> bool {
        self == Action::UserDisable
    }
}

struct Scene {
    app: TestApp,
    victim: TokenLogin,
    other: TokenLogin,
}

impl Scene {
    async fn new(check: Check) -> Scene {
        let app = spawn_token_app(&check.toml()).await;
        app.create_user("alice").await;
        let victim = app.login_tokens("alice", PASSWORD).await;
        let other = app.login_tokens("alice", PASSWORD).await;
        assert_access_works(&app, &victim.access, "the victim before the action").await;
        assert_access_works(&app, &other.access, "the other session before the action").await;
        Scene { app, victim, other }
    }

    /// Performs `action`; returns the credentials a password change hands its caller.
    async fn act(&self, action: Action) -> Option<TokenLogin> {
        let app = &self.app;
        match action {
            Action::Logout => {
                app.send(app.post("/v1/logout").bearer(&self.victim.access)).await.assert_status(204);
            }
            Action::LogoutAll => {
                app.send(app.post("/v1/logout-all").bearer(&self.victim.access)).await.assert_status(204);
            }
            Action::DeleteSession => {
                let path = format!("/v1/sessions/{}", self.victim.sid());
                app.send(app.delete(&path).bearer(&self.other.access)).await.assert_status(204);
            }
            Action::PasswordChange => {
                let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
                let reply = app.send(app.post("/v1/password").bearer(&self.other.access).json(&body)).await;
                assert_eq!(reply.header("cache-control"), Some("no-store"), "new credentials are never cached");
                return Some(TokenLogin::from_reply(&reply));
            }
            Action::AdminRevoke => {
                let path = format!("/v1/admin/users/{}/revoke-sessions", self.victim.user_id);
                app.send(app.post(&path).bearer(ADMIN_KEY)).await.assert_status(204);
            }
            Action::RevokeRefresh => {
                app.revoke(self.victim.refresh(), None).await.assert_status(200);
            }
            Action::UserDisable => {
                app.cli_ok(&["user", "disable", "alice"]).await;
            }
        }
        None
    }

    /// Waits (bounded) until the server has seen a revocation another process stored: the
    /// refresh token no longer introspects as active. Reading, not refreshing, so the wait
    /// itself rotates nothing.
    async fn wait_for_sync(&self, action: Action) {
        if !action.is_cross_process() {
            return;
        }
        let app = &self.app;
        let refresh = self.victim.refresh();
        let seen =
            app.eventually(CROSS_PROCESS, || async { app.introspection(refresh).await["active"] == false }).await;
        assert!(seen, "the server sees the revocation within {CROSS_PROCESS:?}");
    }
}

/// denylist / allowlist: both of the victim's credentials stop at once (within the sync
/// interval when another process made the revocation).
async fn at_once(check: Check, action: Action) {
    let s = Scene::new(check).await;
    let issued = s.act(action).await;
    let app = &s.app;
    if action.is_cross_process() {
        assert!(
            app.me_becomes(&s.victim.access, 401, CROSS_PROCESS).await,
            "{check:?}/{action:?}: the access token is refused within {CROSS_PROCESS:?}"
        );
        s.wait_for_sync(action).await;
    }
    assert_access_refused(app, &s.victim.access, &format!("{check:?}/{action:?}: the victim's access token")).await;
    assert_refresh_refused(app, s.victim.refresh(), &format!("{check:?}/{action:?}: the victim's refresh token")).await;
    if action.ends_every_session() {
        assert_access_refused(app, &s.other.access, &format!("{check:?}/{action:?}: the other session's access token"))
            .await;
        assert_refresh_refused(app, s.other.refresh(), &format!("{check:?}/{action:?}: the other session's refresh"))
            .await;
    } else {
        assert_access_works(app, &s.other.access, &format!("{check:?}/{action:?}: the other session")).await;
        app.refresh_ok(s.other.refresh()).await;
    }
    after_the_action(&s, action, issued).await;
}

/// none: the refresh token stops at once; the access token lives to `exp`.
async fn until_expiry(check: Check, action: Action) {
    let s = Scene::new(check).await;
    let issued = s.act(action).await;
    let app = &s.app;
    s.wait_for_sync(action).await;
    assert_refresh_refused(app, s.victim.refresh(), &format!("{check:?}/{action:?}: the victim's refresh token")).await;
    assert_access_works(app, &s.victim.access, &format!("{check:?}/{action:?}: no check, the token lives on")).await;
    assert_access_works(app, &s.other.access, &format!("{check:?}/{action:?}: the other session's token")).await;
    if action.ends_every_session() {
        assert_refresh_refused(app, s.other.refresh(), &format!("{check:?}/{action:?}: the other session's refresh"))
            .await;
    } else {
        app.refresh_ok(s.other.refresh()).await;
    }
    after_the_action(&s, action, issued).await;
    let last_second = s.victim.exp() - 1 - app.now().unix_timestamp();
    app.advance(Duration::seconds(last_second));
    assert_access_works(app, &s.victim.access, &format!("{check:?}/{action:?}: one second before exp")).await;
    app.advance(Duration::seconds(1));
    assert_access_refused(app, &s.victim.access, &format!("{check:?}/{action:?}: at exp")).await;
}

/// What must hold after an action whatever the check: a password change's caller carries on
/// with new credentials; a disabled user cannot log in again.
async fn after_the_action(s: &Scene, action: Action, issued: Option<TokenLogin>) {
    let app = &s.app;
    match action {
        Action::PasswordChange => {
            let new = issued.expect("a password change hands out new credentials");
            assert_ne!(new.session_id, s.other.session_id, "a new session id at password change");
            assert_access_works(app, &new.access, "the new access token after a password change").await;
            app.refresh_ok(new.refresh()).await;
            app.login("alice", PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
        }
        Action::UserDisable => {
            app.login("alice", PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
        }
        _ => {}
    }
}

/// `/v1/revoke` with an access token, denylist: that `jti` alone is denied; the session and
/// its later access tokens carry on.
async fn refuses_only_that_access_token(check: Check) {
    let s = Scene::new(check).await;
    let app = &s.app;
    app.revoke(&s.victim.access, None).await.assert_status(200);
    assert_access_refused(app, &s.victim.access, &format!("{check:?}: the revoked access token")).await;
    let refreshed = app.refresh_ok(s.victim.refresh()).await;
    assert_eq!(refreshed.session_id, s.victim.session_id);
    assert_access_works(app, &refreshed.access, &format!("{check:?}: a later access token of the same session")).await;
    assert_access_works(app, &s.other.access, &format!("{check:?}: the other session")).await;
}

/// `/v1/revoke` with an access token, allowlist: the token is refused at once (the allowlist
/// has no per-token state, so that can only mean its session ended).
async fn revoke_access_refuses_it_at_once(check: Check) {
    let s = Scene::new(check).await;
    let app = &s.app;
    app.revoke(&s.victim.access, None).await.assert_status(200);
    assert_access_refused(app, &s.victim.access, &format!("{check:?}: the revoked access token")).await;
    assert_access_works(app, &s.other.access, &format!("{check:?}: the other session")).await;
}

/// `/v1/revoke` with an access token, no check: nothing can stop it before `exp`; the session
/// itself is not ended by revoking one access token.
async fn revoke_access_keeps_it_until_expiry(check: Check) {
    let s = Scene::new(check).await;
    let app = &s.app;
    app.revoke(&s.victim.access, None).await.assert_status(200);
    assert_access_works(app, &s.victim.access, &format!("{check:?}: no check")).await;
    app.refresh_ok(s.victim.refresh()).await;
    let last_second = s.victim.exp() - 1 - app.now().unix_timestamp();
    app.advance(Duration::seconds(last_second));
    assert_access_works(app, &s.victim.access, &format!("{check:?}: one second before exp")).await;
    app.advance(Duration::seconds(1));
    assert_access_refused(app, &s.victim.access, &format!("{check:?}: at exp")).await;
}

macro_rules! cells {
    ($($name:ident => $driver:ident($check:ident, $action:ident);)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                $driver(Check::$check, Action::$action).await;
            }
        )*
    };
}

cells! {
    jwt_none_logout_keeps_access_token_until_expiry =>
        until_expiry(JwtNone, Logout);
    jwt_none_logout_all_keeps_access_token_until_expiry =>
        until_expiry(JwtNone, LogoutAll);
    jwt_none_delete_session_keeps_access_token_until_expiry =>
        until_expiry(JwtNone, DeleteSession);
    jwt_none_password_change_keeps_access_token_until_expiry =>
        until_expiry(JwtNone, PasswordChange);
    jwt_none_admin_revoke_sessions_keeps_access_token_until_expiry =>
        until_expiry(JwtNone, AdminRevoke);
    jwt_none_revoke_refresh_token_keeps_access_token_until_expiry =>
        until_expiry(JwtNone, RevokeRefresh);
    jwt_none_user_disable_keeps_access_token_until_expiry =>
        until_expiry(JwtNone, UserDisable);

    jwt_denylist_logout_refuses_access_token_at_once =>
        at_once(JwtDenylist, Logout);
    jwt_denylist_logout_all_refuses_access_token_at_once =>
        at_once(JwtDenylist, LogoutAll);
    jwt_denylist_delete_session_refuses_access_token_at_once =>
        at_once(JwtDenylist, DeleteSession);
    jwt_denylist_password_change_refuses_access_token_at_once =>
        at_once(JwtDenylist, PasswordChange);
    jwt_denylist_admin_revoke_sessions_refuses_access_token_at_once =>
        at_once(JwtDenylist, AdminRevoke);
    jwt_denylist_revoke_refresh_token_refuses_access_token_at_once =>
        at_once(JwtDenylist, RevokeRefresh);
    jwt_denylist_user_disable_refuses_access_token_within_the_sync_interval =>
        at_once(JwtDenylist, UserDisable);

    hybrid_denylist_logout_refuses_access_token_at_once =>
        at_once(HybridDenylist, Logout);
    hybrid_denylist_logout_all_refuses_access_token_at_once =>
        at_once(HybridDenylist, LogoutAll);
    hybrid_denylist_delete_session_refuses_access_token_at_once =>
        at_once(HybridDenylist, DeleteSession);
    hybrid_denylist_password_change_refuses_access_token_at_once =>
        at_once(HybridDenylist, PasswordChange);
    hybrid_denylist_admin_revoke_sessions_refuses_access_token_at_once =>
        at_once(HybridDenylist, AdminRevoke);
    hybrid_denylist_revoke_refresh_token_refuses_access_token_at_once =>
        at_once(HybridDenylist, RevokeRefresh);
    hybrid_denylist_user_disable_refuses_access_token_within_the_sync_interval =>
        at_once(HybridDenylist, UserDisable);

    hybrid_allowlist_logout_refuses_access_token_at_once =>
        at_once(HybridAllowlist, Logout);
    hybrid_allowlist_logout_all_refuses_access_token_at_once =>
        at_once(HybridAllowlist, LogoutAll);
    hybrid_allowlist_delete_session_refuses_access_token_at_once =>
        at_once(HybridAllowlist, DeleteSession);
    hybrid_allowlist_password_change_refuses_access_token_at_once =>
        at_once(HybridAllowlist, PasswordChange);
    hybrid_allowlist_admin_revoke_sessions_refuses_access_token_at_once =>
        at_once(HybridAllowlist, AdminRevoke);
    hybrid_allowlist_revoke_refresh_token_refuses_access_token_at_once =>
        at_once(HybridAllowlist, RevokeRefresh);
    hybrid_allowlist_user_disable_refuses_access_token_within_the_sync_interval =>
        at_once(HybridAllowlist, UserDisable);

    hybrid_none_logout_keeps_access_token_until_expiry =>
        until_expiry(HybridNone, Logout);
    hybrid_none_logout_all_keeps_access_token_until_expiry =>
        until_expiry(HybridNone, LogoutAll);
    hybrid_none_delete_session_keeps_access_token_until_expiry =>
        until_expiry(HybridNone, DeleteSession);
    hybrid_none_password_change_keeps_access_token_until_expiry =>
        until_expiry(HybridNone, PasswordChange);
    hybrid_none_admin_revoke_sessions_keeps_access_token_until_expiry =>
        until_expiry(HybridNone, AdminRevoke);
    hybrid_none_revoke_refresh_token_keeps_access_token_until_expiry =>
        until_expiry(HybridNone, RevokeRefresh);
    hybrid_none_user_disable_keeps_access_token_until_expiry =>
        until_expiry(HybridNone, UserDisable);
}

#[tokio::test]
async fn jwt_none_revoke_access_token_keeps_it_until_expiry() {
    revoke_access_keeps_it_until_expiry(Check::JwtNone).await;
}

#[tokio::test]
async fn jwt_denylist_revoke_access_token_refuses_only_that_token() {
    refuses_only_that_access_token(Check::JwtDenylist).await;
}

#[tokio::test]
async fn hybrid_denylist_revoke_access_token_refuses_only_that_token() {
    refuses_only_that_access_token(Check::HybridDenylist).await;
}

#[tokio::test]
async fn hybrid_allowlist_revoke_access_token_refuses_it_at_once() {
    revoke_access_refuses_it_at_once(Check::HybridAllowlist).await;
}

#[tokio::test]
async fn hybrid_none_revoke_access_token_keeps_it_until_expiry() {
    revoke_access_keeps_it_until_expiry(Check::HybridNone).await;
}

// jwt mode without refresh: no server session exists, so the denylist works on `jti` (one
// token) and on issue time (every token of the user up to one second before the call).

fn jwt_without_refresh(check: &str) -> String {
    token_toml("jwt", &format!("[refresh]\nenabled = false\n[revocation]\ncheck = \"{check}\"\n"))
}

async fn two_lone_tokens(check: &str) -> (TestApp, TokenLogin, TokenLogin) {
    let app = spawn_token_app(&jwt_without_refresh(check)).await;
    app.create_user("alice").await;
    let first = app.login_tokens("alice", PASSWORD).await;
    let second = app.login_tokens("alice", PASSWORD).await;
    assert!(first.refresh.is_none() && first.session_id.is_none(), "{}", first.body);
    (app, first, second)
}

#[tokio::test]
async fn jwt_without_refresh_denylist_logout_refuses_that_token_only() {
    let (app, first, second) = two_lone_tokens("denylist").await;
    app.send(app.post("/v1/logout").bearer(&first.access)).await.assert_status(204);
    assert_access_refused(&app, &first.access, "the logged-out token").await;
    assert_access_works(&app, &second.access, "another token of the user").await;
}

#[tokio::test]
async fn jwt_without_refresh_denylist_logout_all_refuses_every_token_issued_before() {
    let (app, first, second) = two_lone_tokens("denylist").await;
    app.advance(Duration::seconds(2));
    app.send(app.post("/v1/logout-all").bearer(&first.access)).await.assert_status(204);
    assert_access_refused(&app, &first.access, "the caller's token").await;
    assert_access_refused(&app, &second.access, "every older token of the user").await;
    let later = app.login_tokens("alice", PASSWORD).await;
    assert_access_works(&app, &later.access, "a login after logout-all").await;
}

#[tokio::test]
async fn jwt_without_refresh_denylist_password_change_refuses_older_tokens_and_keeps_the_new_one() {
    let (app, first, second) = two_lone_tokens("denylist").await;
    app.advance(Duration::seconds(2));
    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let reply = app.send(app.post("/v1/password").bearer(&first.access).json(&body)).await;
    let issued = TokenLogin::from_reply(&reply);
    assert_access_refused(&app, &first.access, "the caller's old token").await;
    assert_access_refused(&app, &second.access, "another old token").await;
    assert_access_works(&app, &issued.access, "the token the password change handed out").await;
    app.login_tokens("alice", NEW_PASSWORD).await;
}

#[tokio::test]
async fn jwt_without_refresh_denylist_admin_revoke_sessions_refuses_every_token_issued_before() {
    let (app, first, second) = two_lone_tokens("denylist").await;
    app.advance(Duration::seconds(2));
    let path = format!("/v1/admin/users/{}/revoke-sessions", first.user_id);
    app.send(app.post(&path).bearer(ADMIN_KEY)).await.assert_status(204);
    assert_access_refused(&app, &first.access, "an older token").await;
    assert_access_refused(&app, &second.access, "another older token").await;
}

#[tokio::test]
async fn jwt_without_refresh_none_logout_keeps_the_token_until_expiry() {
    let (app, first, _) = two_lone_tokens("none").await;
    app.send(app.post("/v1/logout").bearer(&first.access)).await.assert_status(204);
    assert_access_works(&app, &first.access, "no check: the token lives on").await;
    app.advance(Duration::seconds(first.exp() - app.now().unix_timestamp()));
    assert_access_refused(&app, &first.access, "at exp").await;
}
