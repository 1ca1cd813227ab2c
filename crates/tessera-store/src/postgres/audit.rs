//! [`AuditStore`] on PostgreSQL: an append-only table, numbered by a sequence as events are
//! stored. Records read back are [`AuditRecord`]s, the same type the SQLite store returns.

use async_trait::async_trait;
use tessera_core::audit::AuditEvent;
use tessera_core::clock::{from_unix, to_unix};
use tessera_core::store::{AuditStore, StoreError};

use super::{PgStore, db_err, session_id, user_id};
use crate::sqlite::AuditRecord;

#[derive(sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    at: i64,
    kind: String,
    user_id: Option<Vec<u8>>,
    session_id: Option<Vec<u8>>,
    username: Option<String>,
    ip: Option<String>,
    detail: Option<String>,
}

impl AuditRow {
    fn into_record(self) -> Result<AuditRecord, StoreError> {
        Ok(AuditRecord {
            seq: self.seq,
            at: from_unix(self.at),
            kind: self.kind,
            user_id: self.user_id.as_deref().map(user_id).transpose()?,
            session_id: self.session_id.as_deref().map(session_id).transpose()?,
            username: self.username,
            ip: self.ip,
            detail: self.detail,
        })
    }
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, kind, user_id, session_id, username, ip, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(to_unix(event.at))
        .bind(event.kind.as_str())
        .bind(event.user_id.as_ref().map(|id| id.as_bytes().as_slice()))
        .bind(event.session_id.as_ref().map(|id| id.as_bytes().as_slice()))
        .bind(event.username.as_deref())
        .bind(event.ip.as_deref())
        .bind(event.detail.as_deref())
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

impl PgStore {
    /// The `limit` most recently stored audit records, newest first.
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT seq, at, kind, user_id, session_id, username, ip, detail FROM audit ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.into_iter().map(AuditRow::into_record).collect()
    }
}
