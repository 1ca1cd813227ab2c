//! [`KeyStore`] on PostgreSQL: the JWT signing keys, and the server secrets created on first
//! start. Every instance (and `tessera keys rotate`) writes here, so every change is a single
//! statement that is right whichever process runs it, and in whatever order.

use async_trait::async_trait;
use tessera_core::clock::{from_unix, to_unix};
use tessera_core::store::{KeyStore, StoreError, StoredKey};
use time::OffsetDateTime;

use super::{PgStore, corrupt, db_err};

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    private: Vec<u8>,
    sealed: bool,
    created_at: i64,
    activates_at: i64,
    retires_at: Option<i64>,
}

impl KeyRow {
    fn into_key(self) -> StoredKey {
        StoredKey {
            kid: self.kid,
            alg: self.alg,
            private: self.private,
            sealed: self.sealed,
            created_at: from_unix(self.created_at),
            activates_at: from_unix(self.activates_at),
            retires_at: self.retires_at.map(from_unix),
        }
    }
}

#[async_trait]
impl KeyStore for PgStore {
    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, alg, private, sealed, created_at, activates_at, retires_at \
             FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(rows.into_iter().map(KeyRow::into_key).collect())
    }

    /// Fails with [`StoreError::Conflict`] when the `kid` is taken.
    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private, sealed, created_at, activates_at, retires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.kid.as_str())
        .bind(key.alg.as_str())
        .bind(key.private.as_slice())
        .bind(key.sealed)
        .bind(to_unix(key.created_at))
        .bind(to_unix(key.activates_at))
        .bind(key.retires_at.map(to_unix))
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn insert_key_if_none_usable(&self, key: &StoredKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        // Under READ COMMITTED two instances could both see no usable key and both insert;
        // a self-conflicting table lock makes the check and the insert one step. Readers are
        // not blocked (SHARE ROW EXCLUSIVE conflicts with writers only), and the lock ends
        // with the transaction.
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await.map_err(db_err)?;
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private, sealed, created_at, activates_at, retires_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS \
                 (SELECT 1 FROM signing_keys WHERE alg = $2 AND (retires_at IS NULL OR retires_at > $8))",
        )
        .bind(key.kid.as_str())
        .bind(key.alg.as_str())
        .bind(key.private.as_slice())
        .bind(key.sealed)
        .bind(to_unix(key.created_at))
        .bind(to_unix(key.activates_at))
        .bind(key.retires_at.map(to_unix))
        .bind(to_unix(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        tx.commit().await.map_err(db_err)?;
        Ok(inserted == 1)
    }

    async fn retire_keys(&self, except: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        // A key retired earlier keeps its date: the tokens it signed expire relative to it.
        sqlx::query("UPDATE signing_keys SET retires_at = $2 WHERE retires_at IS NULL AND kid <> $1")
            .bind(except)
            .bind(to_unix(at))
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_key(&self, kid: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(kid).execute(self.pool()).await.map_err(db_err)?;
        Ok(())
    }

    async fn secret_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        // Instances starting at once all try to insert. An insert that meets another's
        // uncommitted row waits for it to commit, then does nothing; the SELECT, a separate
        // statement with a fresh snapshot, then reads the one value that won. (A single
        // statement could not: its snapshot predates the other insert's commit.)
        sqlx::query("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        // Nothing deletes secrets; only a hand-edited database gets here.
        stored.ok_or_else(|| corrupt("server secret (deleted while being read)"))
    }
}
