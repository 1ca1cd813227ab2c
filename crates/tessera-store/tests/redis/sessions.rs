//! Sessions and refresh families in Redis: every field round-trips, keys expire with the
//! session, per-user operations see only that user, and a rotation is a compare-and-set
//! that exactly one of many concurrent callers, on several instances, wins.

use redis::AsyncCommands as _;
use tessera_core::id::{SessionId, UserId};
use tessera_core::store::SessionStore;

use crate::helpers::{now, open_store, raw, refresh_state, session};

#[tokio::test]
async fn inserted_session_is_returned_with_every_field() {
    let f = open_store().await;
    let user = UserId::generate();
    let mut with_refresh = session(user, now());
    with_refresh.refresh = Some(refresh_state(3, now()));
    let mut bare = session(user, now());
    bare.user_agent = None;
    bare.ip = None;
    for s in [&with_refresh, &bare] {
        f.store.insert_session(s).await.unwrap();
        assert_eq!(f.store.session(&user, &s.id).await.unwrap().as_ref(), Some(s));
    }
    // Another instance reads the same thing: nothing is cached in-process.
    let other = f.another_instance().await;
    assert_eq!(other.session(&user, &bare.id).await.unwrap(), Some(bare));
    f.flush().await;
}

#[tokio::test]
async fn a_session_is_found_only_under_its_own_user() {
    let f = open_store().await;
    let (alice, mallory) = (UserId::generate(), UserId::generate());
    let s = session(alice, now());
    f.store.insert_session(&s).await.unwrap();
    assert_eq!(f.store.session(&mallory, &s.id).await.unwrap(), None);
    assert!(!f.store.delete_session(&mallory, &s.id).await.unwrap());
    assert!(f.store.delete_sessions_of(&mallory, None).await.unwrap().is_empty());
    assert!(f.store.session(&alice, &s.id).await.unwrap().is_some());
    f.flush().await;
}

#[tokio::test]
async fn keys_expire_with_the_session_and_share_the_users_hash_tag() {
    let f = open_store().await;
    let user = UserId::generate();
    let s = session(user, now());
    f.store.insert_session(&s).await.unwrap();
    let keys = f.keys().await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let tag = format!("{{u:{user}}}");
    let mut conn = raw().await;
    for key in &keys {
        assert!(key.contains(&tag), "{key} carries the user's hash tag");
        let expires: i64 = redis::cmd("EXPIRETIME").arg(key).query_async(&mut conn).await.unwrap();
        assert_eq!(expires, s.expires_at.unix_timestamp(), "{key} expires with the session");
    }
    f.flush().await;
}

#[tokio::test]
async fn an_already_expired_session_is_not_kept() {
    let f = open_store().await;
    let user = UserId::generate();
    let mut s = session(user, now() - time::Duration::days(31));
    s.expires_at = now() - time::Duration::days(1);
    f.store.insert_session(&s).await.unwrap();
    assert_eq!(f.store.session(&user, &s.id).await.unwrap(), None);
    f.flush().await;
}

#[tokio::test]
async fn sessions_are_listed_oldest_first_and_expired_ones_leave_the_index() {
    let f = open_store().await;
    let user = UserId::generate();
    let t = now();
    let newer = session(user, t);
    let older = session(user, t - time::Duration::hours(1));
    let gone = session(user, t - time::Duration::hours(2));
    for s in [&newer, &older, &gone] {
        f.store.insert_session(s).await.unwrap();
    }
    // A session whose key expired (or was removed behind our back) is not listed.
    let mut conn = raw().await;
    let _: i64 = conn.del(format!("{}:{{u:{user}}}:s:{}", f.prefix, gone.id)).await.unwrap();
    let listed = f.store.sessions_of(&user).await.unwrap();
    assert_eq!(listed, vec![older.clone(), newer.clone()]);
    let index: Vec<String> = conn.zrange(format!("{}:{{u:{user}}}:ss", f.prefix), 0, -1).await.unwrap();
    assert_eq!(index, vec![older.id.to_string(), newer.id.to_string()], "the index is pruned");
    f.flush().await;
}

#[tokio::test]
async fn deleting_sessions_reports_what_existed() {
    let f = open_store().await;
    let user = UserId::generate();
    let sessions: Vec<_> = (0..4).map(|i| session(user, now() + time::Duration::seconds(i))).collect();
    for s in &sessions {
        f.store.insert_session(s).await.unwrap();
    }
    assert!(f.store.delete_session(&user, &sessions[0].id).await.unwrap());
    assert!(!f.store.delete_session(&user, &sessions[0].id).await.unwrap(), "already gone");

    let mut deleted = f.store.delete_sessions_of(&user, Some(&sessions[3].id)).await.unwrap();
    deleted.sort();
    let mut expected = vec![sessions[1].id, sessions[2].id];
    expected.sort();
    assert_eq!(deleted, expected);
    assert_eq!(f.store.sessions_of(&user).await.unwrap(), vec![sessions[3].clone()]);
    assert_eq!(f.store.delete_sessions_of(&user, None).await.unwrap(), vec![sessions[3].id]);
    assert!(f.keys().await.is_empty(), "nothing of the user is left: {:?}", f.keys().await);
}

#[tokio::test]
async fn touching_updates_last_seen_but_never_recreates_a_deleted_session() {
    let f = open_store().await;
    let user = UserId::generate();
    let s = session(user, now());
    f.store.insert_session(&s).await.unwrap();
    let later = s.created_at + time::Duration::minutes(5);
    f.store.touch_session(&user, &s.id, later).await.unwrap();
    assert_eq!(f.store.session(&user, &s.id).await.unwrap().unwrap().last_seen_at, later);

    f.store.delete_session(&user, &s.id).await.unwrap();
    f.store.touch_session(&user, &s.id, later).await.unwrap();
    assert_eq!(f.store.session(&user, &s.id).await.unwrap(), None);
    assert!(f.keys().await.is_empty(), "{:?}", f.keys().await);
}

#[tokio::test]
async fn rotation_is_a_compare_and_set_on_the_generation() {
    let f = open_store().await;
    let user = UserId::generate();
    let mut s = session(user, now());
    s.refresh = Some(refresh_state(0, now()));
    f.store.insert_session(&s).await.unwrap();

    let next = refresh_state(1, now() + time::Duration::seconds(5));
    assert!(f.store.rotate_refresh(&user, &s.id, 0, &next).await.unwrap());
    assert!(!f.store.rotate_refresh(&user, &s.id, 0, &refresh_state(1, now())).await.unwrap(), "stale generation");
    let stored = f.store.session(&user, &s.id).await.unwrap().unwrap();
    assert_eq!(stored.refresh, Some(next));
    assert_eq!(stored.last_seen_at, next.rotated_at);

    // No family, or no session: nothing to rotate, and nothing is created.
    let plain = session(user, now());
    f.store.insert_session(&plain).await.unwrap();
    assert!(!f.store.rotate_refresh(&user, &plain.id, 0, &next).await.unwrap());
    assert_eq!(f.store.session(&user, &plain.id).await.unwrap().unwrap().refresh, None);
    let missing = SessionId::generate();
    assert!(!f.store.rotate_refresh(&user, &missing, 0, &next).await.unwrap());
    assert_eq!(f.store.session(&user, &missing).await.unwrap(), None);
    f.flush().await;
}

#[tokio::test]
async fn of_many_concurrent_rotations_on_two_instances_exactly_one_wins() {
    let f = open_store().await;
    let a = f.store.clone();
    let b = f.another_instance().await;
    for round in 0..20u32 {
        let user = UserId::generate();
        let mut s = session(user, now());
        s.refresh = Some(refresh_state(round, now()));
        a.insert_session(&s).await.unwrap();
        let attempts: Vec<_> = (0..16)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let id = s.id;
                tokio::spawn(async move {
                    let next = refresh_state(round + 1, now() + time::Duration::seconds(i));
                    store.rotate_refresh(&user, &id, round, &next).await.unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for attempt in attempts {
            wins += usize::from(attempt.await.unwrap());
        }
        assert_eq!(wins, 1, "round {round}");
        assert_eq!(a.session(&user, &s.id).await.unwrap().unwrap().refresh.unwrap().generation, round + 1);
    }
    f.flush().await;
}

/// `PEXPIRETIME` of a key, in unix ms.
async fn expiry_ms(key: &str) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query_async(&mut raw().await).await.unwrap()
}

fn ms(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp() * 1000
}

#[tokio::test]
async fn with_an_idle_timeout_keys_expire_at_the_idle_end_and_each_touch_moves_it_in_the_same_script() {
    let f = open_store().await;
    let idle = time::Duration::hours(1);
    f.store.set_session_idle_timeout(std::time::Duration::from_secs(3600));
    let user = UserId::generate();
    let s = session(user, now());
    f.store.insert_session(&s).await.unwrap();
    let key = format!("{}:{{u:{user}}}:s:{}", f.prefix, s.id);
    let index = format!("{}:{{u:{user}}}:ss", f.prefix);
    assert_eq!(expiry_ms(&key).await, ms(s.last_seen_at + idle), "an unused session leaves at its idle end");
    // The index outlives every session in it, so logout-all always finds them.
    assert_eq!(expiry_ms(&index).await, ms(s.expires_at));

    let later = s.created_at + time::Duration::minutes(5);
    f.store.touch_session(&user, &s.id, later).await.unwrap();
    assert_eq!(expiry_ms(&key).await, ms(later + idle), "a touch moves the expiry with last_seen_at");
    assert_eq!(f.store.session(&user, &s.id).await.unwrap().unwrap().last_seen_at, later);

    // Near the absolute end the key never outlives it.
    let near_end = s.expires_at - time::Duration::minutes(10);
    f.store.touch_session(&user, &s.id, near_end).await.unwrap();
    assert_eq!(expiry_ms(&key).await, ms(s.expires_at));
    assert_eq!(expiry_ms(&index).await, ms(s.expires_at));

    // A deleted session is not recreated by a touch carrying an expiry.
    f.store.delete_session(&user, &s.id).await.unwrap();
    f.store.touch_session(&user, &s.id, later).await.unwrap();
    assert_eq!(f.store.session(&user, &s.id).await.unwrap(), None);
    assert!(f.keys().await.is_empty(), "{:?}", f.keys().await);
}

#[tokio::test]
async fn with_an_idle_timeout_a_refresh_rotation_moves_the_expiry_too() {
    let f = open_store().await;
    let idle = time::Duration::hours(1);
    f.store.set_session_idle_timeout(std::time::Duration::from_secs(3600));
    let user = UserId::generate();
    let mut s = session(user, now());
    s.refresh = Some(refresh_state(0, now()));
    f.store.insert_session(&s).await.unwrap();
    let key = format!("{}:{{u:{user}}}:s:{}", f.prefix, s.id);
    assert_eq!(expiry_ms(&key).await, ms(s.last_seen_at + idle));
    let rotated = now() + time::Duration::minutes(20);
    assert!(f.store.rotate_refresh(&user, &s.id, 0, &refresh_state(1, rotated)).await.unwrap());
    assert_eq!(expiry_ms(&key).await, ms(rotated + idle));
    // A lost compare-and-set changes nothing, the expiry included.
    assert!(!f.store.rotate_refresh(&user, &s.id, 0, &refresh_state(1, rotated + idle)).await.unwrap());
    assert_eq!(expiry_ms(&key).await, ms(rotated + idle));
    let near_end = s.expires_at - time::Duration::minutes(1);
    assert!(f.store.rotate_refresh(&user, &s.id, 1, &refresh_state(2, near_end)).await.unwrap());
    assert_eq!(expiry_ms(&key).await, ms(s.expires_at));
    f.flush().await;
}

/// A session as layout version 1 wrote it (before `created_at` and `rotated_at` became
/// milliseconds): `0x10` | family bit, last_seen_at, [generation, hash, rotated_at (u32 s)],
/// secret hash, CSRF hash, created_at (u32 s), expires_at, then the strings.
fn layout_v1(s: &tessera_core::session::Session) -> Vec<u8> {
    fn secs(t: time::OffsetDateTime) -> [u8; 4] {
        u32::try_from(t.unix_timestamp()).unwrap().to_be_bytes()
    }
    fn text(out: &mut Vec<u8>, v: Option<&str>) {
        match v {
            Some(v) => {
                out.extend_from_slice(&u16::try_from(v.len()).unwrap().to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
            None => out.extend_from_slice(&u16::MAX.to_be_bytes()),
        }
    }
    let mut out = vec![0x10 | u8::from(s.refresh.is_some())];
    out.extend_from_slice(&secs(s.last_seen_at));
    if let Some(r) = &s.refresh {
        out.extend_from_slice(&r.generation.to_be_bytes());
        out.extend_from_slice(r.hash.as_bytes());
        out.extend_from_slice(&secs(r.rotated_at));
    }
    out.extend_from_slice(s.secret_hash.as_bytes());
    out.extend_from_slice(s.csrf_hash.as_bytes());
    out.extend_from_slice(&secs(s.created_at));
    out.extend_from_slice(&secs(s.expires_at));
    text(&mut out, Some(s.username.as_str()));
    text(&mut out, s.user_agent.as_deref());
    text(&mut out, s.ip.as_deref());
    out
}

/// Sessions written before the layout-2 upgrade live on: a touch and a rotation read their
/// absolute end where layout 1 put it (with and without a refresh family), so the key's
/// expiry follows the idle end and stops at that end.
#[tokio::test]
async fn with_an_idle_timeout_layout_1_values_are_touched_and_rotated_at_their_own_offsets() {
    let f = open_store().await;
    f.store.set_session_idle_timeout(std::time::Duration::from_secs(3600));
    let user = UserId::generate();
    let start = now();
    let mut plain = session(user, start);
    plain.expires_at = start + time::Duration::minutes(30);
    let mut family = session(user, start);
    family.expires_at = start + time::Duration::minutes(40);
    family.refresh = Some(refresh_state(0, start));
    let mut conn = raw().await;
    for s in [&plain, &family] {
        let key = format!("{}:{{u:{user}}}:s:{}", f.prefix, s.id);
        // A short expiry, so the touch below must move it: to the absolute end, read at the
        // layout-1 offset (another offset reads other bytes and lands elsewhere).
        let _: () = conn.set_ex(&key, layout_v1(s), 60).await.unwrap();
        assert_eq!(f.store.session(&user, &s.id).await.unwrap().as_ref(), Some(s), "layout 1 is read");
    }
    let plain_key = format!("{}:{{u:{user}}}:s:{}", f.prefix, plain.id);
    let family_key = format!("{}:{{u:{user}}}:s:{}", f.prefix, family.id);

    // Idle end past the absolute end: the key stops at the absolute end read at its offset.
    let later = start + time::Duration::minutes(5);
    f.store.touch_session(&user, &plain.id, later).await.unwrap();
    assert_eq!(expiry_ms(&plain_key).await, ms(plain.expires_at));
    assert_eq!(f.store.session(&user, &plain.id).await.unwrap().unwrap().last_seen_at, later);
    f.store.touch_session(&user, &family.id, later).await.unwrap();
    assert_eq!(expiry_ms(&family_key).await, ms(family.expires_at));

    // A rotation of a layout-1 family writes layout-1 bytes and reads the same offsets.
    let rotated = start + time::Duration::minutes(7);
    assert!(f.store.rotate_refresh(&user, &family.id, 0, &refresh_state(1, rotated)).await.unwrap());
    assert_eq!(expiry_ms(&family_key).await, ms(family.expires_at));
    let read = f.store.session(&user, &family.id).await.unwrap().unwrap();
    assert_eq!(read.refresh, Some(refresh_state(1, rotated)));
    assert_eq!(read.last_seen_at, rotated);
    assert_eq!(read.expires_at, family.expires_at, "the rotation did not overwrite the layout");
    f.flush().await;
}

/// Two instances touch at once, or one's clock runs behind: the later `last_seen_at` and
/// the later expiry stand, whichever lands last.
#[tokio::test]
async fn a_late_touch_with_an_earlier_instant_moves_nothing_back() {
    let f = open_store().await;
    let idle = time::Duration::hours(1);
    f.store.set_session_idle_timeout(std::time::Duration::from_secs(3600));
    let user = UserId::generate();
    let s = session(user, now());
    f.store.insert_session(&s).await.unwrap();
    let key = format!("{}:{{u:{user}}}:s:{}", f.prefix, s.id);
    let later = s.created_at + time::Duration::minutes(10);
    f.store.touch_session(&user, &s.id, later).await.unwrap();
    f.store.touch_session(&user, &s.id, s.created_at + time::Duration::minutes(2)).await.unwrap();
    assert_eq!(f.store.session(&user, &s.id).await.unwrap().unwrap().last_seen_at, later);
    assert_eq!(expiry_ms(&key).await, ms(later + idle));
    f.flush().await;
}

#[tokio::test]
async fn ending_sessions_answers_when_each_key_was_to_expire() {
    let f = open_store().await;
    let user = UserId::generate();
    let idle = time::Duration::seconds(600);
    let (a, b, c) = (session(user, now()), session(user, now()), session(user, now()));
    let d = session(user, now());
    f.store.insert_session(&d).await.unwrap();
    // With an idle timeout a key expires at the session's idle end, which a touch moves later.
    f.store.set_session_idle_timeout(idle.unsigned_abs());
    for s in [&a, &b, &c] {
        f.store.insert_session(s).await.unwrap();
    }
    let at = now() + time::Duration::seconds(5);
    f.store.touch_session(&user, &a.id, at).await.unwrap();

    assert_eq!(
        f.store.end_session(&user, &a.id).await.unwrap(),
        Some(at + idle),
        "a: its idle end, moved by the touch"
    );
    assert_eq!(f.store.end_session(&user, &a.id).await.unwrap(), None, "nothing left to end");

    let mut all = f.store.end_sessions_of(&user, Some(&c.id)).await.unwrap();
    all.sort();
    let mut expected = vec![(b.id, b.last_seen_at + idle), (d.id, d.expires_at)];
    expected.sort();
    assert_eq!(all, expected, "b at its idle end, d (written without one) at its absolute end; c kept");
    assert!(f.store.session(&user, &c.id).await.unwrap().is_some());
    f.flush().await;
}
