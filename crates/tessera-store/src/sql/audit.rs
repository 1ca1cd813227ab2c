//! [`AuditStore`](tessera_core::store::AuditStore) in SQL: a table numbered as records are
//! stored (SQLite's `AUTOINCREMENT`, PostgreSQL's identity column). Events of a folding kind
//! ([`tessera_core::audit::AuditKind::folds`]) add to the record of their fold key in one
//! `INSERT … ON CONFLICT` statement, atomic however many instances share the table; records
//! older than the retention are deleted in small batches.

use tessera_core::clock::from_unix;
use tessera_core::id::{SessionId, UserId};
use tessera_core::store::StoreError;
use time::OffsetDateTime;

use super::{session_id, user_id};

/// A stored audit event, as read back (for tests and operators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increases with every stored record (a folded repeat keeps the record's `seq`).
    pub seq: i64,
    /// When the (first) event happened.
    pub at: OffsetDateTime,
    /// When the last of the `count` events happened; `at` when `count` is 1.
    pub last_at: OffsetDateTime,
    /// How many identical events the record stands for.
    pub count: i64,
    /// [`tessera_core::audit::AuditKind::as_str`] of the event.
    pub kind: String,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub username: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

/// Which audit records to read: every filter that is set must match. Newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Events recorded under this (normalised) username, or about this account.
    pub username: Option<String>,
    pub user_id: Option<UserId>,
    /// [`tessera_core::audit::AuditKind::as_str`] of the events wanted.
    pub kind: Option<String>,
    /// Records with an event at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// Only events older than this `seq` (the cursor of the previous page).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

impl AuditQuery {
    /// The statement, with only the filters that are set (numbered `$1`, `$2`, … in the order
    /// [`impl_audit_store!`]'s `query_audit` binds them).
    pub(crate) fn sql(&self) -> String {
        let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE TRUE");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if self.username.is_some() || self.user_id.is_some() {
            let (a, b) = (next(), next());
            sql.push_str(&format!(" AND (username = ${a} OR user_id = ${b})"));
        }
        if self.kind.is_some() {
            sql.push_str(&format!(" AND kind = ${}", next()));
        }
        if self.since.is_some() {
            sql.push_str(&format!(" AND last_at >= ${}", next()));
        }
        if self.before_seq.is_some() {
            sql.push_str(&format!(" AND seq < ${}", next()));
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", next()));
        sql
    }
}

/// The columns an [`AuditRow`] reads.
pub(crate) const COLUMNS: &str = "seq, at, last_at, count, kind, user_id, session_id, username, ip, detail";

/// How many records one pruning statement deletes at most: short statements, so that pruning
/// a long backlog never holds the table (SQLite's one writer) for long.
pub const PRUNE_BATCH: i64 = 1000;

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    seq: i64,
    at: i64,
    last_at: i64,
    count: i64,
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
            last_at: from_unix(self.last_at),
            count: self.count,
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
            use $crate::sql::audit::{COLUMNS, PRUNE_BATCH};
            use $crate::sql::{AuditQuery, AuditRecord, AuditRow};

            #[async_trait]
            impl AuditStore for $store {
                async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
                    // A repeat within the window counts into the first event's record; `at`
                    // and `last_at` widen to take it in whatever order instances commit.
                    sqlx::query(
                        "INSERT INTO audit (at, last_at, count, fold_key, kind, user_id, session_id, username, ip, detail) \
                         VALUES ($1, $1, 1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (fold_key) DO UPDATE SET count = audit.count + 1, \
                         at = CASE WHEN excluded.at < audit.at THEN excluded.at ELSE audit.at END, \
                         last_at = CASE WHEN excluded.last_at > audit.last_at THEN excluded.last_at ELSE audit.last_at END",
                    )
                    .bind(to_unix(event.at))
                    .bind(event.fold_key())
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
                    let sql = format!("SELECT {COLUMNS} FROM audit ORDER BY seq DESC LIMIT $1");
                    let rows: Vec<AuditRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await
                    .map_err($db_err)?;
                    rows.into_iter().map(AuditRow::into_record).collect()
                }

                /// The records `q` selects, newest first.
                pub async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
                    // Built from fixed fragments only; every value is a bound parameter.
                    let sql = sqlx::AssertSqlSafe(q.sql());
                    let mut query = sqlx::query_as::<_, AuditRow>(sql);
                    if q.username.is_some() || q.user_id.is_some() {
                        query =
                            query.bind(q.username.as_deref()).bind(q.user_id.as_ref().map(|id| id.as_bytes().to_vec()));
                    }
                    if let Some(kind) = &q.kind {
                        query = query.bind(kind.as_str());
                    }
                    if let Some(since) = q.since {
                        query = query.bind(to_unix(since));
                    }
                    if let Some(seq) = q.before_seq {
                        query = query.bind(seq);
                    }
                    let rows: Vec<AuditRow> = query.bind(q.limit).fetch_all(self.pool()).await.map_err($db_err)?;
                    rows.into_iter().map(AuditRow::into_record).collect()
                }

                /// Deletes the records whose last event is older than `before`, a batch of
                /// [`PRUNE_BATCH`] per statement, and returns how many went.
                pub async fn prune_audit(&self, before: ::time::OffsetDateTime) -> Result<u64, StoreError> {
                    let mut total = 0;
                    loop {
                        let deleted = sqlx::query(
                            "DELETE FROM audit WHERE seq IN \
                             (SELECT seq FROM audit WHERE last_at < $1 ORDER BY last_at LIMIT $2)",
                        )
                        .bind(to_unix(before))
                        .bind(PRUNE_BATCH)
                        .execute(self.pool())
                        .await
                        .map_err($db_err)?
                        .rows_affected();
                        total += deleted;
                        if deleted < PRUNE_BATCH as u64 {
                            return Ok(total);
                        }
                        // Let waiting writers in between batches.
                        ::tokio::task::yield_now().await;
                    }
                }
            }
        };
    };
}
pub(crate) use impl_audit_store;
