//! [`KeyStore`](tessera_core::store::KeyStore) on PostgreSQL: the statements of
//! [`crate::sql::impl_key_store!`], and a first key inserted under a table lock.

use tessera_core::clock::to_unix;
use tessera_core::store::{StoreError, StoredKey};
use time::OffsetDateTime;

use super::{PgStore, db_err};
use crate::sql::{INSERT_KEY_IF_NONE_USABLE, bind_key, impl_key_store};

impl_key_store!(PgStore, db_err);

impl PgStore {
    /// `KeyStore::insert_key_if_none_usable`.
    async fn insert_first_key(&self, key: &StoredKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        // Under READ COMMITTED two instances could both see no usable key and both insert;
        // a self-conflicting table lock makes the check and the insert one step. Readers are
        // not blocked (SHARE ROW EXCLUSIVE conflicts with writers only), and the lock ends
        // with the transaction.
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await.map_err(db_err)?;
        let inserted = bind_key!(sqlx::query(INSERT_KEY_IF_NONE_USABLE), key)
            .bind(to_unix(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        tx.commit().await.map_err(db_err)?;
        Ok(inserted == 1)
    }
}
