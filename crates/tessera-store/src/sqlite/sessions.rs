//! [`SessionStore`] on SQLite. Lookups by id are served from the session cache when they can
//! be (see `cache.rs`); everything else goes to the database.
//!
//! Instants are unix seconds, except `created_at` and `refresh_rotated_at`: unix milliseconds
//! (migration 0005), whose order within one second matters.
//!
//! A refresh family is three nullable columns of the session row (all NULL: no family), and
//! rotating it is one conditional `UPDATE`: SQLite runs writes one at a time, so of any number
//! of rotations from the same generation, in any number of processes, exactly one matches.

use async_trait::async_trait;
use tessera_core::clock::{from_unix, from_unix_ms, to_unix, to_unix_ms};
use tessera_core::id::{SessionId, UserId};
use tessera_core::session::{RefreshState, Session};
use tessera_core::store::{SessionStore, StoreError};
use tessera_core::username::Username;
use time::OffsetDateTime;

use super::cache::Revocation;
use super::{SqliteStore, corrupt, db_err, session_id, token_hash, user_id};

/// The columns [`SessionRow`] reads, as a macro so queries stay `&'static str`.
macro_rules! session_columns {
    () => {
        "id, user_id, username, secret_hash, csrf_hash, created_at, last_seen_at, expires_at, user_agent, ip, \
         refresh_generation, refresh_hash, refresh_rotated_at"
    };
}

/// The `INSERT` of one session, bound and ready to run on a pool or inside a transaction.
macro_rules! insert_session_query {
    ($session:expr) => {{
        let session: &Session = $session;
        sqlx::query(
            "INSERT INTO sessions \
             (id, user_id, username, secret_hash, csrf_hash, created_at, last_seen_at, expires_at, user_agent, ip, \
              refresh_generation, refresh_hash, refresh_rotated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .bind(session.id.as_bytes().as_slice())
        .bind(session.user_id.as_bytes().as_slice())
        .bind(session.username.as_str())
        .bind(session.secret_hash.as_bytes().as_slice())
        .bind(session.csrf_hash.as_bytes().as_slice())
        .bind(to_unix_ms(session.created_at))
        .bind(to_unix(session.last_seen_at))
        .bind(to_unix(session.expires_at))
        .bind(session.user_agent.as_deref())
        .bind(session.ip.as_deref())
        .bind(session.refresh.map(|r| i64::from(r.generation)))
        .bind(session.refresh.as_ref().map(|r| r.hash.as_bytes().as_slice()))
        .bind(session.refresh.map(|r| to_unix_ms(r.rotated_at)))
    }};
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Vec<u8>,
    user_id: Vec<u8>,
    username: String,
    secret_hash: Vec<u8>,
    csrf_hash: Vec<u8>,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    user_agent: Option<String>,
    ip: Option<String>,
    refresh_generation: Option<i64>,
    refresh_hash: Option<Vec<u8>>,
    refresh_rotated_at: Option<i64>,
}

impl SessionRow {
    fn into_session(self) -> Result<Session, StoreError> {
        Ok(Session {
            id: session_id(&self.id)?,
            user_id: user_id(&self.user_id)?,
            username: Username::from_stored(self.username),
            secret_hash: token_hash(&self.secret_hash)?,
            csrf_hash: token_hash(&self.csrf_hash)?,
            created_at: from_unix_ms(self.created_at),
            last_seen_at: from_unix(self.last_seen_at),
            expires_at: from_unix(self.expires_at),
            user_agent: self.user_agent.map(Into::into),
            ip: self.ip.map(Into::into),
            refresh: refresh_state(self.refresh_generation, self.refresh_hash.as_deref(), self.refresh_rotated_at)?,
        })
    }
}

/// All three columns or none; anything in between is a corrupt row (the schema refuses it).
fn refresh_state(
    generation: Option<i64>,
    hash: Option<&[u8]>,
    rotated_at: Option<i64>,
) -> Result<Option<RefreshState>, StoreError> {
    match (generation, hash, rotated_at) {
        (None, None, None) => Ok(None),
        (Some(generation), Some(hash), Some(rotated_at)) => Ok(Some(RefreshState {
            generation: u32::try_from(generation).map_err(|_| corrupt("refresh generation"))?,
            hash: token_hash(hash)?,
            rotated_at: from_unix_ms(rotated_at),
        })),
        _ => Err(corrupt("refresh family")),
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        // Read before the write, for the same reason a lookup does: a concurrent
        // `delete_sessions_of` may remove this row and evict before we get to cache it.
        let generation = self.cache().generation();
        insert_session_query!(session).execute(self.pool()).await.map_err(db_err)?;
        self.cache().insert_if_current(generation, session.clone());
        Ok(())
    }

    async fn insert_session_capped(&self, session: &Session, max: u32) -> Result<Vec<SessionId>, StoreError> {
        if max == 0 {
            self.insert_session(session).await?;
            return Ok(Vec::new());
        }
        let generation = self.cache().generation();
        // One write transaction (SQLite runs them one at a time, across processes too): the
        // count and the eviction see exactly the sessions there are, whatever logins race.
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        insert_session_query!(session).execute(&mut *tx).await.map_err(db_err)?;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id = ?1")
            .bind(session.user_id.as_bytes().as_slice())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let excess = count.saturating_sub(i64::from(max)).max(0);
        let rows: Vec<Vec<u8>> = if excess > 0 {
            sqlx::query_scalar(
                "DELETE FROM sessions WHERE rowid IN \
                 (SELECT rowid FROM sessions WHERE user_id = ?1 AND id != ?2 ORDER BY created_at, rowid LIMIT ?3) \
                 RETURNING id",
            )
            .bind(session.user_id.as_bytes().as_slice())
            .bind(session.id.as_bytes().as_slice())
            .bind(excess)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?
        } else {
            Vec::new()
        };
        tx.commit().await.map_err(db_err)?;
        let ids: Result<Vec<SessionId>, StoreError> = rows.iter().map(|id| session_id(id)).collect();
        let revocations: Vec<Revocation> = match &ids {
            Ok(ids) => ids.iter().map(|id| Revocation::Session(*id)).collect(),
            Err(_) => vec![Revocation::AllOf(session.user_id)],
        };
        if !revocations.is_empty() {
            self.cache().evict(&revocations);
        }
        self.cache().insert_if_current(generation, session.clone());
        ids
    }

    async fn session(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        if let Some(hit) = self.cache().get(user, id) {
            return Ok(Some(hit));
        }
        self.session_fresh(user, id).await
    }

    async fn session_fresh(&self, user: &UserId, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let generation = self.cache().generation();
        let row: Option<SessionRow> =
            sqlx::query_as(concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = ?1 AND user_id = ?2"))
                .bind(id.as_bytes().as_slice())
                .bind(user.as_bytes().as_slice())
                .fetch_optional(self.pool())
                .await
                .map_err(db_err)?;
        // A miss is not cached: the session may be created a moment later.
        let Some(row) = row else {
            return Ok(None);
        };
        let session = row.into_session()?;
        self.cache().insert_if_current(generation, session.clone());
        Ok(Some(session))
    }

    async fn touch_session(&self, user: &UserId, id: &SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        // MAX: of two concurrent touches, the older one landing last must not move time back.
        sqlx::query("UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?3) WHERE id = ?1 AND user_id = ?2")
            .bind(id.as_bytes().as_slice())
            .bind(user.as_bytes().as_slice())
            .bind(to_unix(at))
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        // A read-through racing this touch may still cache the older `last_seen_at`. That is
        // harmless: the session then looks due for a touch, and the next request touches again.
        self.cache().touch(user, id, at);
        Ok(())
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError> {
        let rows: Vec<SessionRow> = sqlx::query_as(concat!(
            "SELECT ",
            session_columns!(),
            // Creation in milliseconds, then insertion order (rowid): oldest first, exactly, so
            // `session.max_per_user` evicts the truly oldest.
            " FROM sessions WHERE user_id = ?1 ORDER BY created_at, rowid"
        ))
        .bind(user.as_bytes().as_slice())
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.into_iter().map(SessionRow::into_session).collect()
    }

    // Deletions log themselves in `session_revocations` through a trigger, inside the same
    // statement, for other processes' caches. This process evicts once the delete has
    // committed, so a lookup that misses afterwards cannot find the row again.

    async fn delete_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE id = ?1 AND user_id = ?2")
            .bind(id.as_bytes().as_slice())
            .bind(user.as_bytes().as_slice())
            .execute(self.pool())
            .await
            .map_err(db_err)?
            .rows_affected();
        if deleted > 0 {
            self.cache().evict(&[Revocation::Session(*id)]);
        }
        Ok(deleted > 0)
    }

    async fn delete_sessions_of(&self, user: &UserId, keep: Option<&SessionId>) -> Result<Vec<SessionId>, StoreError> {
        // An explicit transaction so the commit has certainly happened before the eviction
        // (an implicit one may end later than the last row of a RETURNING statement).
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2 RETURNING id")
                .bind(user.as_bytes().as_slice())
                .bind(keep.map(|k| k.as_bytes().as_slice()))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let ids: Result<Vec<SessionId>, StoreError> = rows.iter().map(|id| session_id(id)).collect();
        // An unreadable id was still deleted: evict the whole user rather than miss it.
        let revocations: Vec<Revocation> = match &ids {
            Ok(ids) => ids.iter().map(|id| Revocation::Session(*id)).collect(),
            Err(_) => vec![Revocation::AllOf(*user)],
        };
        if !revocations.is_empty() {
            self.cache().evict(&revocations);
        }
        ids
    }

    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        from_generation: u32,
        next: &RefreshState,
    ) -> Result<bool, StoreError> {
        // The compare-and-set: the generation in the WHERE clause is the "compare". A session
        // without a family has a NULL generation, which equals nothing, so it never rotates.
        // The statement is its own transaction, committed when `execute` returns.
        let rotated = sqlx::query(
            "UPDATE sessions SET refresh_generation = ?4, refresh_hash = ?5, refresh_rotated_at = ?6, \
                 last_seen_at = MAX(last_seen_at, ?7) \
             WHERE id = ?1 AND user_id = ?2 AND refresh_generation = ?3",
        )
        .bind(id.as_bytes().as_slice())
        .bind(user.as_bytes().as_slice())
        .bind(i64::from(from_generation))
        .bind(i64::from(next.generation))
        .bind(next.hash.as_bytes().as_slice())
        .bind(to_unix_ms(next.rotated_at))
        .bind(to_unix(next.rotated_at))
        .execute(self.pool())
        .await
        .map_err(db_err)?
        .rows_affected()
            > 0;
        if rotated {
            self.cache().rotate_refresh(user, id, from_generation, next);
        } else {
            // The caller judged the token against a generation that is no longer stored. If
            // that came from our cache (another process rotated, and its log entry is not
            // applied yet), the caller's re-read must not be served the same stale copy.
            self.cache().forget(user, id);
        }
        Ok(rotated)
    }
}
