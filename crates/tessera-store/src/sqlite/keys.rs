//! [`KeyStore`](tessera_core::store::KeyStore) on SQLite: the statements of
//! [`crate::sql::impl_key_store!`], whose first key needs no lock of its own.

use tessera_core::clock::to_unix;
use tessera_core::store::{StoreError, StoredKey};
use time::OffsetDateTime;

use super::{SqliteStore, db_err};
use crate::sql::{INSERT_KEY_IF_NONE_USABLE, bind_key, impl_key_store};

impl_key_store!(SqliteStore, db_err);

impl SqliteStore {
    /// `KeyStore::insert_key_if_none_usable`.
    async fn insert_first_key(&self, key: &StoredKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        // One statement: SQLite runs writes one at a time, so the check and the insert cannot
        // be split by another process's insert.
        let inserted = bind_key!(sqlx::query(INSERT_KEY_IF_NONE_USABLE), key)
            .bind(to_unix(now))
            .execute(self.pool())
            .await
            .map_err(db_err)?
            .rows_affected();
        Ok(inserted == 1)
    }
}
