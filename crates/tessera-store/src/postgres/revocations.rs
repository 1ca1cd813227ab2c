//! The durable record of acknowledged revocations (`revocations`, see
//! `migrations/postgres/0003_revocations.sql`): what the distributed store replays into Redis
//! when Redis may have come back without its last writes.

use std::collections::HashMap;

use sqlx::Row as _;
use tessera_core::clock::{from_unix, to_unix};
use tessera_core::id::{SessionId, TokenId, UserId};
use tessera_core::store::{Denied, DenyEntry, StoreError};
use time::OffsetDateTime;

use super::{PgStore, db_err};
use crate::sql::{corrupt, session_id, user_id};

/// What a revocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Revoked {
    /// The session record (and with it its refresh family) was deleted.
    Session(UserId, SessionId),
    /// A denylist entry was written.
    Denied(Denied),
}

/// One acknowledged revocation and the last moment what it ended could still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub revoked: Revoked,
    pub until: OffsetDateTime,
}

impl Revocation {
    /// The denylist entry this revocation is, if it is one.
    pub fn deny_entry(&self) -> Option<DenyEntry> {
        match self.revoked {
            Revoked::Denied(denied) => Some(DenyEntry { denied, expires_at: self.until }),
            Revoked::Session(..) => None,
        }
    }

    /// The row's primary key: one row per thing ended.
    fn ident(&self) -> String {
        match self.revoked {
            Revoked::Session(user, sid) => format!("session|{user}|{sid}"),
            Revoked::Denied(Denied::Session(sid)) => format!("deny_session|{sid}"),
            Revoked::Denied(Denied::Token(jti)) => format!("deny_token|{jti}"),
            Revoked::Denied(Denied::IssuedBefore(user, cutoff)) => {
                format!("deny_issued_before|{user}|{}", to_unix(cutoff))
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self.revoked {
            Revoked::Session(..) => "session",
            Revoked::Denied(Denied::Session(_)) => "deny_session",
            Revoked::Denied(Denied::Token(_)) => "deny_token",
            Revoked::Denied(Denied::IssuedBefore(..)) => "deny_issued_before",
        }
    }

    /// user_id, target, cutoff.
    fn columns(&self) -> (Option<Vec<u8>>, Option<Vec<u8>>, Option<i64>) {
        match self.revoked {
            Revoked::Session(user, sid) => (Some(user.as_bytes().to_vec()), Some(sid.as_bytes().to_vec()), None),
            Revoked::Denied(Denied::Session(sid)) => (None, Some(sid.as_bytes().to_vec()), None),
            Revoked::Denied(Denied::Token(jti)) => (None, Some(jti.as_bytes().to_vec()), None),
            Revoked::Denied(Denied::IssuedBefore(user, cutoff)) => {
                (Some(user.as_bytes().to_vec()), None, Some(to_unix(cutoff)))
            }
        }
    }
}

/// One statement for a whole batch; a repeat keeps one row with the later `until`.
const RECORD: &str = "
    INSERT INTO revocations (ident, kind, user_id, target, cutoff, until)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::bigint[], $6::bigint[])
    ON CONFLICT (ident) DO UPDATE SET until = GREATEST(revocations.until, EXCLUDED.until)";

impl PgStore {
    /// Records revocations (idempotent: recording one again only extends its `until`).
    pub async fn record_revocations(&self, revocations: &[Revocation]) -> Result<(), StoreError> {
        if revocations.is_empty() {
            return Ok(());
        }
        // One row per ident in the statement: ON CONFLICT cannot touch a row twice.
        let mut rows: HashMap<String, &Revocation> = HashMap::with_capacity(revocations.len());
        for r in revocations {
            let slot = rows.entry(r.ident()).or_insert(r);
            if r.until > slot.until {
                *slot = r;
            }
        }
        let (mut idents, mut kinds, mut users, mut targets, mut cutoffs, mut untils) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (ident, r) in rows {
            let (user, target, cutoff) = r.columns();
            idents.push(ident);
            kinds.push(r.kind());
            users.push(user);
            targets.push(target);
            cutoffs.push(cutoff);
            untils.push(to_unix(r.until));
        }
        sqlx::query(RECORD)
            .bind(idents)
            .bind(kinds)
            .bind(users)
            .bind(targets)
            .bind(cutoffs)
            .bind(untils)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Every revocation whose target could still be used at `now`.
    pub async fn live_revocations(&self, now: OffsetDateTime) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query("SELECT kind, user_id, target, cutoff, until FROM revocations WHERE until > $1")
            .bind(to_unix(now))
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind").map_err(db_err)?;
                let user: Option<Vec<u8>> = row.try_get("user_id").map_err(db_err)?;
                let target: Option<Vec<u8>> = row.try_get("target").map_err(db_err)?;
                let cutoff: Option<i64> = row.try_get("cutoff").map_err(db_err)?;
                let until: i64 = row.try_get("until").map_err(db_err)?;
                let bad = || corrupt("revocation");
                let revoked = match kind.as_str() {
                    "session" => Revoked::Session(
                        user_id(user.as_deref().ok_or_else(bad)?)?,
                        session_id(target.as_deref().ok_or_else(bad)?)?,
                    ),
                    "deny_session" => Revoked::Denied(Denied::Session(session_id(target.as_deref().ok_or_else(bad)?)?)),
                    "deny_token" => {
                        let bytes: [u8; 16] = target.as_deref().ok_or_else(bad)?.try_into().map_err(|_| bad())?;
                        Revoked::Denied(Denied::Token(TokenId::from_bytes(bytes)))
                    }
                    "deny_issued_before" => Revoked::Denied(Denied::IssuedBefore(
                        user_id(user.as_deref().ok_or_else(bad)?)?,
                        from_unix(cutoff.ok_or_else(bad)?),
                    )),
                    _ => return Err(bad()),
                };
                Ok(Revocation { revoked, until: from_unix(until) })
            })
            .collect()
    }

    /// Deletes the revocations nothing can use any more (`until` before `before`); returns how
    /// many. Cheap: one range delete on an index.
    pub async fn prune_revocations(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM revocations WHERE until < $1")
            .bind(to_unix(before))
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }
}
