//! [`KeyStore`](tessera_core::store::KeyStore) in SQL: the JWT signing keys, and the server
//! secrets created on first start. Keys are written by every instance and by
//! `tessera keys rotate`, so every change is a single statement that is right whichever process
//! runs it, and in whatever order. The one exception, inserting a first key, is each backend's
//! own (`insert_first_key`).

use tessera_core::clock::from_unix;
use tessera_core::store::StoredKey;

/// Inserts a key (bound with [`bind_key!`], then `$8` = now) unless a key of its algorithm is
/// still usable at `$8`.
pub(crate) const INSERT_KEY_IF_NONE_USABLE: &str = "\
    INSERT INTO signing_keys (kid, alg, private, sealed, created_at, activates_at, retires_at) \
    SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS \
        (SELECT 1 FROM signing_keys WHERE alg = $2 AND (retires_at IS NULL OR retires_at > $8))";

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    alg: String,
    private: Vec<u8>,
    sealed: bool,
    created_at: i64,
    activates_at: i64,
    retires_at: Option<i64>,
}

impl KeyRow {
    pub(crate) fn into_key(self) -> StoredKey {
        StoredKey {
            kid: self.kid,
            alg: self.alg,
            private: self.private.into(),
            sealed: self.sealed,
            created_at: from_unix(self.created_at),
            activates_at: from_unix(self.activates_at),
            retires_at: self.retires_at.map(from_unix),
        }
    }
}

/// Binds the columns of `$key` (a `&StoredKey`) to `$1`…`$7` of `$query`, in
/// `signing_keys` column order.
macro_rules! bind_key {
    ($query:expr, $key:expr) => {{
        let key: &::tessera_core::store::StoredKey = $key;
        $query
            .bind(key.kid.as_str())
            .bind(key.alg.as_str())
            .bind(key.private.as_slice())
            .bind(key.sealed)
            .bind(::tessera_core::clock::to_unix(key.created_at))
            .bind(::tessera_core::clock::to_unix(key.activates_at))
            .bind(key.retires_at.map(::tessera_core::clock::to_unix))
    }};
}
pub(crate) use bind_key;

/// `impl KeyStore for $store`, for a store with a `pool()` whose sqlx errors `$db_err` maps.
/// `insert_key_if_none_usable` calls the store's own `insert_first_key`: the check and the
/// insert must be one step, which each backend ensures its own way. (The anonymous `const`
/// gives the `use`s below a scope of their own.)
macro_rules! impl_key_store {
    ($store:ty, $db_err:path) => {
        const _: () = {
            use ::async_trait::async_trait;
            use ::tessera_core::clock::to_unix;
            use ::tessera_core::store::{KeyStore, StoreError, StoredKey};
            use ::time::OffsetDateTime;
            use $crate::sql::{KeyRow, bind_key, corrupt};

            #[async_trait]
            impl KeyStore for $store {
                async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
                    let rows: Vec<KeyRow> = sqlx::query_as(
                        "SELECT kid, alg, private, sealed, created_at, activates_at, retires_at \
                         FROM signing_keys ORDER BY created_at, kid",
                    )
                    .fetch_all(self.pool())
                    .await
                    .map_err($db_err)?;
                    Ok(rows.into_iter().map(KeyRow::into_key).collect())
                }

                /// Fails with [`StoreError::Conflict`] when the `kid` is taken.
                async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
                    let insert = sqlx::query(
                        "INSERT INTO signing_keys (kid, alg, private, sealed, created_at, activates_at, retires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    );
                    bind_key!(insert, key).execute(self.pool()).await.map_err($db_err)?;
                    Ok(())
                }

                async fn retire_keys(&self, except: &str, at: OffsetDateTime) -> Result<(), StoreError> {
                    // A key retired earlier keeps its date: the tokens it signed expire relative to it.
                    sqlx::query("UPDATE signing_keys SET retires_at = $2 WHERE retires_at IS NULL AND kid <> $1")
                        .bind(except)
                        .bind(to_unix(at))
                        .execute(self.pool())
                        .await
                        .map_err($db_err)?;
                    Ok(())
                }

                async fn delete_key(&self, kid: &str) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                        .bind(kid)
                        .execute(self.pool())
                        .await
                        .map_err($db_err)?;
                    Ok(())
                }

                async fn secret_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
                    // Instances starting at once all try to insert; all but one insert nothing,
                    // and every one then reads the value that won. Two statements, not one: on
                    // PostgreSQL an insert that meets another's uncommitted row waits for it to
                    // commit, and only a later statement's snapshot sees that row (SQLite runs
                    // writes one at a time, so either way works there).
                    sqlx::query("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                        .bind(name)
                        .bind(value)
                        .execute(self.pool())
                        .await
                        .map_err($db_err)?;
                    let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
                        .bind(name)
                        .fetch_optional(self.pool())
                        .await
                        .map_err($db_err)?;
                    // Nothing deletes secrets; only a hand-edited database gets here.
                    stored.ok_or_else(|| corrupt("server secret (deleted while being read)"))
                }

                async fn insert_key_if_none_usable(
                    &self,
                    key: &StoredKey,
                    now: OffsetDateTime,
                ) -> Result<bool, StoreError> {
                    self.insert_first_key(key, now).await
                }
            }
        };
    };
}
pub(crate) use impl_key_store;
