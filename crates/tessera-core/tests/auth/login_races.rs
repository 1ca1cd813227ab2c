//! A login checks the password, then stores a new session. A password change or a disable
//! writes the account, then ends every session. When the second lands between the two steps
//! of the first, the login's session must not outlive the change: it would be a 30-day
//! session (in the token modes, a refresh family) for someone who knew only the old password,
//! or for an account an operator just shut.

use std::sync::{Arc, Mutex};

use tessera_core::audit::AuditKind;
use tessera_core::store::Denied;
use tessera_core::{AuthError, ClientInfo, SessionId};

use crate::support::{App, NEW_PASSWORD, PASSWORD, hybrid_with_denylist, session_mode};

/// Where the racing login's session id is put when its insert begins.
type Seen = Arc<Mutex<Option<SessionId>>>;

fn seen(slot: &Seen) -> SessionId {
    slot.lock().unwrap().expect("the login got as far as storing its session")
}

/// Puts a password change by `alice`'s other session inside the next session insert.
async fn change_password_during_next_insert(app: &App) -> Seen {
    let owner = app.logged_in("alice").await;
    let slot = Seen::default();
    let racing = Arc::clone(&slot);
    app.during_next_session_insert(move |auth, session| async move {
        *racing.lock().unwrap() = Some(session.id);
        auth.change_password(&owner, PASSWORD.into(), NEW_PASSWORD.into(), &ClientInfo::default())
            .await
            .expect("the password change goes through");
    });
    slot
}

fn assert_refused(answer: Result<tessera_core::IssuedSession, AuthError>, what: &str) {
    assert!(matches!(answer, Err(AuthError::InvalidCredentials)), "{what}: {answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_with_nothing_in_between_keeps_its_session() {
    let app = session_mode().await;
    let alice = app.account("alice").await;
    app.during_next_session_insert(|_, _| async {});
    let issued = app.login("alice", PASSWORD).await.expect("login");
    let sid = issued.session.expect("a session").id;
    assert_eq!(app.session_ids(&alice).await, [sid]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_that_checked_the_old_password_loses_to_a_concurrent_password_change() {
    let app = session_mode().await;
    let alice = app.account("alice").await;
    let racing = change_password_during_next_insert(&app).await;

    assert_refused(app.login("alice", PASSWORD).await, "a login that checked the old password");

    let left = app.session_ids(&alice).await;
    assert_eq!(left.len(), 1, "only the session the password change issued is left: {left:?}");
    assert!(!left.contains(&seen(&racing)), "the racing login's session is gone");
    let failed = app.store.audit().into_iter().filter(|e| e.kind == AuditKind::LoginFailed).collect::<Vec<_>>();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].detail.as_deref(), Some("account changed during login"));
    app.login("alice", NEW_PASSWORD).await.expect("the new password works");
    assert_refused(app.login("alice", PASSWORD).await, "the old password afterwards");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_that_checked_the_password_loses_to_a_concurrent_disable() {
    let app = session_mode().await;
    let alice = app.account("alice").await;
    let id = alice.id;
    app.during_next_session_insert(move |auth, _| async move {
        auth.disable_account(&id).await.expect("the disable goes through");
    });

    assert_refused(app.login("alice", PASSWORD).await, "a login racing a disable");

    assert_eq!(app.session_ids(&alice).await, [], "a disabled account has no session");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_hybrid_mode_the_losing_login_leaves_no_refresh_family_and_its_sid_is_denied() {
    let app = hybrid_with_denylist().await;
    let alice = app.account("alice").await;
    let racing = change_password_during_next_insert(&app).await;

    assert_refused(app.login("alice", PASSWORD).await, "a login that checked the old password");

    let racing = seen(&racing);
    let left = app.session_ids(&alice).await;
    assert_eq!(left.len(), 1, "only the family the password change issued is left: {left:?}");
    assert!(!left.contains(&racing), "the racing login's family is gone");
    assert!(app.denied().await.contains(&Denied::Session(racing)), "access tokens of its sid are denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_racing_a_disable_leaves_no_session() {
    let app = session_mode().await;
    let alice = app.account("alice").await;
    let owner = app.logged_in("alice").await;
    let id = alice.id;
    // The password change's own new session is the insert the disable lands before.
    app.during_next_session_insert(move |auth, _| async move {
        auth.disable_account(&id).await.expect("the disable goes through");
    });

    let answer = app.auth.change_password(&owner, PASSWORD.into(), NEW_PASSWORD.into(), &ClientInfo::default()).await;

    assert!(matches!(answer, Err(AuthError::Unauthenticated)), "{answer:?}");
    assert_eq!(app.session_ids(&alice).await, [], "a disabled account has no session");
}
