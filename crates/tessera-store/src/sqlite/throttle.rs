//! [`ThrottleStore`] on SQLite: one row per key, counted in a single upsert so concurrent
//! failures (a password-spraying burst) are each counted once; an attempt is reserved (judged
//! against the lock and counted) inside one write transaction.

use async_trait::async_trait;
use tessera_core::clock::{from_unix, to_unix};
use tessera_core::store::{StoreError, ThrottleStore};
use tessera_core::throttle::{Failures, LockRule, Reservation, Reserved, ThrottleKey, unix_ms};
use time::{Duration, OffsetDateTime};

use super::{SqliteStore, db_err};

fn failures((count, last_at): (i64, i64)) -> Failures {
    Failures { count: u32::try_from(count.max(0)).unwrap_or(u32::MAX), last_at: from_unix(last_at) }
}

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn failures(&self, key: &ThrottleKey) -> Result<Option<Failures>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as("SELECT count, last_at FROM throttle WHERE key = ?1")
            .bind(key.as_store_key())
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        Ok(row.map(failures))
    }

    async fn record_failure(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
        forget_after: Duration,
    ) -> Result<Failures, StoreError> {
        // "Idle for forget_after" matches `ThrottlePolicy::retry_after`, which ignores a counter
        // once `now - last_at >= forget_after`.
        let forgotten_before = to_unix(now - forget_after);
        let row: (i64, i64) = sqlx::query_as(
            "INSERT INTO throttle (key, count, last_at) VALUES (?1, 1, ?2) \
             ON CONFLICT (key) DO UPDATE SET \
                 count = CASE WHEN throttle.last_at <= ?3 THEN 1 ELSE throttle.count + 1 END, \
                 last_at = ?2 \
             RETURNING count, last_at",
        )
        .bind(key.as_store_key())
        .bind(to_unix(now))
        .bind(forgotten_before)
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        Ok(failures(row))
    }

    async fn reserve_attempt(
        &self,
        key: &ThrottleKey,
        rule: &LockRule,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        // One write transaction (writers queue for it, across processes too): the read, the
        // decision and the count cannot be separated by another attempt.
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let current: Option<(i64, i64)> = sqlx::query_as("SELECT count, last_at FROM throttle WHERE key = ?1")
            .bind(key.as_store_key())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let current = current.map(failures);
        let now_ms = unix_ms(now);
        let (count, last_at) = current.map_or((0, 0), |f| (f.count, to_unix(f.last_at)));
        if rule.is_locked(count, last_at, now_ms) {
            tx.rollback().await.map_err(db_err)?;
            return Ok(Reservation::Locked(current));
        }
        let live = rule.live_count(count, last_at, now_ms);
        let reserved = Failures { count: live.saturating_add(1), last_at: from_unix(to_unix(now)) };
        sqlx::query("INSERT OR REPLACE INTO throttle (key, count, last_at) VALUES (?1, ?2, ?3)")
            .bind(key.as_store_key())
            .bind(i64::from(reserved.count))
            .bind(to_unix(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let previous_last_at = current.filter(|_| live > 0).map(|f| f.last_at);
        Ok(Reservation::Reserved(Reserved { failures: reserved, previous_last_at }))
    }

    async fn release_attempt(&self, key: &ThrottleKey, reserved: &Reserved) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        sqlx::query("DELETE FROM throttle WHERE key = ?1 AND count <= 1")
            .bind(key.as_store_key())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "UPDATE throttle SET count = count - 1, \
                 last_at = CASE WHEN last_at = ?2 AND ?3 IS NOT NULL THEN ?3 ELSE last_at END \
             WHERE key = ?1",
        )
        .bind(key.as_store_key())
        .bind(to_unix(reserved.failures.last_at))
        .bind(reserved.previous_last_at.map(to_unix))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn clear_failures(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM throttle WHERE key = ?1")
            .bind(key.as_store_key())
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
