//! [`DenylistStore`] on SQLite: revoked access tokens, appended with increasing sequence
//! numbers and read incrementally by every process that checks tokens against a local copy.

use async_trait::async_trait;
use tessera_core::clock::{from_unix, to_unix};
use tessera_core::id::{SessionId, TokenId};
use tessera_core::store::{Denied, DenyEntry, DenylistRead, DenylistStore, StoreError};
use time::OffsetDateTime;

use super::{SqliteStore, corrupt, db_err, user_id};

// `denylist.kind`, and what `denylist.id` then holds (see migrations/sqlite/0002_jwt.sql).
const SESSION: &str = "session";
const TOKEN: &str = "token";
const ISSUED_BEFORE: &str = "issued_before";

/// The row form of an entry: (kind, id, issued_before).
fn encode(denied: &Denied) -> (&'static str, &[u8; 16], Option<i64>) {
    match denied {
        Denied::Session(sid) => (SESSION, sid.as_bytes(), None),
        Denied::Token(jti) => (TOKEN, jti.as_bytes(), None),
        Denied::IssuedBefore(user, before) => (ISSUED_BEFORE, user.as_bytes(), Some(to_unix(*before))),
    }
}

#[derive(sqlx::FromRow)]
struct DenyRow {
    seq: i64,
    kind: String,
    id: Vec<u8>,
    issued_before: Option<i64>,
    expires_at: i64,
}

impl DenyRow {
    fn into_entry(self) -> Result<DenyEntry, StoreError> {
        let id = || <[u8; 16]>::try_from(self.id.as_slice()).map_err(|_| corrupt("denylist id"));
        let denied = match (self.kind.as_str(), self.issued_before) {
            (SESSION, None) => Denied::Session(SessionId::from_bytes(id()?)),
            (TOKEN, None) => Denied::Token(TokenId::from_bytes(id()?)),
            (ISSUED_BEFORE, Some(before)) => Denied::IssuedBefore(user_id(&self.id)?, from_unix(before)),
            _ => return Err(corrupt("denylist entry")),
        };
        Ok(DenyEntry { denied, expires_at: from_unix(self.expires_at) })
    }
}

#[async_trait]
impl DenylistStore for SqliteStore {
    async fn deny(&self, entries: &[DenyEntry]) -> Result<(), StoreError> {
        // One transaction: a reader sees all of a revocation (a user's sessions and their
        // issued-before mark) or none of it, and they get consecutive sequence numbers.
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        for entry in entries {
            let (kind, id, issued_before) = encode(&entry.denied);
            // Already denied: the row there covers every token this one would (see
            // migrations/sqlite/0004_denylist_once.sql), and a repeat must not add a row.
            sqlx::query(
                "INSERT INTO denylist (kind, id, issued_before, expires_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (kind, id, IFNULL(issued_before, 0)) DO NOTHING",
            )
            .bind(kind)
            .bind(id.as_slice())
            .bind(issued_before)
            .bind(to_unix(entry.expires_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn denied_since(&self, cursor: u64, now: OffsetDateTime) -> Result<(Vec<DenyEntry>, u64), StoreError> {
        let read = self.read_denylist(cursor, now).await?;
        Ok((read.entries.into_iter().map(|(_, e)| e).collect(), read.next))
    }

    async fn read_denylist(&self, cursor: u64, now: OffsetDateTime) -> Result<DenylistRead, StoreError> {
        let after = i64::try_from(cursor).unwrap_or(i64::MAX);
        // Both reads in one transaction, so they see the same snapshot: every entry numbered up
        // to `last` was either returned now or had expired, and the next call can start after
        // `last` even when nothing qualified — it never rescans rows that only wait for pruning.
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        // `sqlite_sequence` remembers numbers whose rows were pruned; the table's own maximum
        // covers a hand-edited `sqlite_sequence`, which must not make us skip live rows.
        let last: i64 = sqlx::query_scalar(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'denylist'), 0), \
                        COALESCE((SELECT MAX(seq) FROM denylist), 0))",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let rows: Vec<DenyRow> = sqlx::query_as(
            "SELECT seq, kind, id, issued_before, expires_at FROM denylist WHERE seq > ?1 AND expires_at > ?2 ORDER BY seq",
        )
        .bind(after)
        .bind(to_unix(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let entries = rows
            .into_iter()
            .map(|r| Ok((u64::try_from(r.seq).unwrap_or(0), r.into_entry()?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Never backwards: a cursor from before the table was emptied by hand, say, stays put.
        let next = cursor.max(u64::try_from(last).unwrap_or(0));
        Ok(DenylistRead { entries, next, restarted: false })
    }
}
