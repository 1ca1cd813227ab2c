//! [`AuditStore`](tessera_core::store::AuditStore) in SQL: an append-only table, numbered as
//! events are stored (SQLite's `AUTOINCREMENT`, PostgreSQL's identity column).

use tessera_core::clock::from_unix;
use tessera_core::id::{SessionId, UserId};
use tessera_core::store::StoreError;
use time::OffsetDateTime;

use super::{session_id, user_id};

/// A stored audit event, as read back (for tests and operators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increases with every stored event.
    pub seq: i64,
    pub at: OffsetDateTime,
    /// [`tessera_core::audit::AuditKind::as_str`] of the event.
    pub kind: String,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub username: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
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
    pub(crate) fn into_record(self) -> Result<AuditRecord, StoreError> {
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

/// `impl AuditStore for $store` and its `recent_audit`, for a store with a `pool()` whose sqlx
/// errors `$db_err` maps. (The anonymous `const` gives the `use`s below a scope of their own.)
macro_rules! impl_audit_store {
    ($store:ty, $db_err:path) => {
        const _: () = {
            use ::async_trait::async_trait;
            use ::tessera_core::audit::AuditEvent;
            use ::tessera_core::clock::to_unix;
            use ::tessera_core::store::{AuditStore, StoreError};
            use $crate::sql::{AuditRecord, AuditRow};

            #[async_trait]
            impl AuditStore for $store {
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
                    .map_err($db_err)?;
                    Ok(())
                }
            }

            impl $store {
                /// The `limit` most recently stored audit records, newest first.
                pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
                    let rows: Vec<AuditRow> = sqlx::query_as(
                        "SELECT seq, at, kind, user_id, session_id, username, ip, detail \
                         FROM audit ORDER BY seq DESC LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await
                    .map_err($db_err)?;
                    rows.into_iter().map(AuditRow::into_record).collect()
                }
            }
        };
    };
}
pub(crate) use impl_audit_store;
