//! [`ThrottleStore`] on SQLite: one row per key, counted in a single upsert so concurrent
//! failures (a password-spraying burst) are each counted once.

use async_trait::async_trait;
use tessera_core::clock::{from_unix, to_unix};
use tessera_core::store::{StoreError, ThrottleStore};
use tessera_core::throttle::{Failures, ThrottleKey};
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

    async fn clear_failures(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM throttle WHERE key = ?1")
            .bind(key.as_store_key())
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
