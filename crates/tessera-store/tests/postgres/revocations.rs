//! The durable record of revocations: what is recorded comes back while it can matter, a
//! repeat keeps one row, and pruning removes exactly the records nothing can use any more.

use tessera_core::id::{SessionId, TokenId, UserId};
use tessera_core::store::Denied;
use tessera_store::{Revocation, Revoked};
use time::{Duration, OffsetDateTime};

use crate::helpers::{TestSchema, open_store};

fn now() -> OffsetDateTime {
    // Whole seconds: the table keeps unix seconds.
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

async fn rows(schema: &TestSchema) -> i64 {
    let mut conn = schema.connection().await;
    sqlx::query_scalar("SELECT count(*) FROM revocations").fetch_one(&mut conn).await.unwrap()
}

fn sorted(mut v: Vec<Revocation>) -> Vec<Revocation> {
    v.sort_by_key(|r| format!("{:?}", r.revoked));
    v
}

#[tokio::test]
async fn every_kind_of_revocation_round_trips_and_a_repeat_keeps_one_row() {
    let (schema, store) = open_store().await;
    let t = now();
    let user = UserId::generate();
    let all = vec![
        Revocation { revoked: Revoked::Session(user, SessionId::generate()), until: t + Duration::days(30) },
        Revocation {
            revoked: Revoked::Denied(Denied::Session(SessionId::generate())),
            until: t + Duration::minutes(5),
        },
        Revocation { revoked: Revoked::Denied(Denied::Token(TokenId::generate())), until: t + Duration::minutes(6) },
        Revocation {
            revoked: Revoked::Denied(Denied::IssuedBefore(user, t - Duration::seconds(1))),
            until: t + Duration::minutes(7),
        },
    ];
    store.record_revocations(&all).await.unwrap();
    assert_eq!(sorted(store.live_revocations(t).await.unwrap()), sorted(all.clone()));

    // The same revocations again, one with a later end and one twice in one batch.
    let mut again = all.clone();
    again[1].until = t + Duration::minutes(50);
    again.push(all[2]);
    store.record_revocations(&again).await.unwrap();
    assert_eq!(rows(&schema).await, 4, "one row per thing revoked");
    let mut expected = all.clone();
    expected[1].until = t + Duration::minutes(50);
    assert_eq!(sorted(store.live_revocations(t).await.unwrap()), sorted(expected.clone()));

    // An earlier end never shortens a record.
    let mut earlier = all.clone();
    earlier[0].until = t + Duration::minutes(1);
    store.record_revocations(&earlier[..1]).await.unwrap();
    assert_eq!(sorted(store.live_revocations(t).await.unwrap()), sorted(expected));
}

#[tokio::test]
async fn pruning_removes_the_expired_records_only() {
    let (schema, store) = open_store().await;
    let t = now();
    let user = UserId::generate();
    let expired = Revocation { revoked: Revoked::Session(user, SessionId::generate()), until: t - Duration::hours(1) };
    let live = Revocation { revoked: Revoked::Session(user, SessionId::generate()), until: t + Duration::hours(1) };
    let denied =
        Revocation { revoked: Revoked::Denied(Denied::Token(TokenId::generate())), until: t - Duration::seconds(10) };
    store.record_revocations(&[expired, live, denied]).await.unwrap();
    assert_eq!(store.live_revocations(t).await.unwrap(), vec![live], "expired records are not replayed");
    assert_eq!(rows(&schema).await, 3);

    assert_eq!(store.prune_revocations(t).await.unwrap(), 2);
    assert_eq!(rows(&schema).await, 1);
    assert_eq!(store.live_revocations(t - Duration::days(1)).await.unwrap(), vec![live]);
    assert_eq!(store.prune_revocations(t).await.unwrap(), 0, "nothing left to prune");
}
