//! [`AccountStore`](tessera_core::store::AccountStore) in SQL. Usernames arrive normalised
//! (`Username::parse`), so the `UNIQUE` constraint on the column is the uniqueness rule,
//! race-free across processes and instances.

use tessera_core::account::Account;
use tessera_core::clock::from_unix;
use tessera_core::password::PasswordHash;
use tessera_core::store::StoreError;
use tessera_core::username::Username;

use super::user_id;

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    id: Vec<u8>,
    username: String,
    password_hash: String,
    created_at: i64,
    disabled: bool,
}

impl AccountRow {
    pub(crate) fn into_account(self) -> Result<Account, StoreError> {
        Ok(Account {
            id: user_id(&self.id)?,
            username: Username::from_stored(self.username),
            password_hash: PasswordHash::from_stored(self.password_hash),
            created_at: from_unix(self.created_at),
            disabled: self.disabled,
        })
    }
}

/// `impl AccountStore for $store`, for a store with a `pool()` whose sqlx errors `$db_err` maps.
/// (The anonymous `const` gives the `use`s below a scope of their own.)
macro_rules! impl_account_store {
    ($store:ty, $db_err:path) => {
        const _: () = {
            use ::async_trait::async_trait;
            use ::tessera_core::account::Account;
            use ::tessera_core::clock::to_unix;
            use ::tessera_core::id::UserId;
            use ::tessera_core::password::PasswordHash;
            use ::tessera_core::store::{AccountStore, StoreError};
            use ::tessera_core::username::Username;
            use $crate::sql::AccountRow;

            #[async_trait]
            impl AccountStore for $store {
                async fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO accounts (id, username, password_hash, created_at, disabled) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(account.id.as_bytes().as_slice())
                    .bind(account.username.as_str())
                    .bind(account.password_hash.as_str())
                    .bind(to_unix(account.created_at))
                    .bind(account.disabled)
                    .execute(self.pool())
                    .await
                    .map_err($db_err)?;
                    Ok(())
                }

                async fn account_by_username(&self, username: &Username) -> Result<Option<Account>, StoreError> {
                    let row: Option<AccountRow> = sqlx::query_as(
                        "SELECT id, username, password_hash, created_at, disabled FROM accounts WHERE username = $1",
                    )
                    .bind(username.as_str())
                    .fetch_optional(self.pool())
                    .await
                    .map_err($db_err)?;
                    row.map(AccountRow::into_account).transpose()
                }

                async fn account_by_id(&self, id: &UserId) -> Result<Option<Account>, StoreError> {
                    let row: Option<AccountRow> = sqlx::query_as(
                        "SELECT id, username, password_hash, created_at, disabled FROM accounts WHERE id = $1",
                    )
                    .bind(id.as_bytes().as_slice())
                    .fetch_optional(self.pool())
                    .await
                    .map_err($db_err)?;
                    row.map(AccountRow::into_account).transpose()
                }

                async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
                    let rows: Vec<AccountRow> = sqlx::query_as(
                        "SELECT id, username, password_hash, created_at, disabled FROM accounts ORDER BY created_at, id",
                    )
                    .fetch_all(self.pool())
                    .await
                    .map_err($db_err)?;
                    rows.into_iter().map(AccountRow::into_account).collect()
                }

                async fn set_password_hash(
                    &self,
                    id: &UserId,
                    current: &PasswordHash,
                    new: &PasswordHash,
                ) -> Result<bool, StoreError> {
                    let updated =
                        sqlx::query("UPDATE accounts SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
                            .bind(id.as_bytes().as_slice())
                            .bind(current.as_str())
                            .bind(new.as_str())
                            .execute(self.pool())
                            .await
                            .map_err($db_err)?
                            .rows_affected();
                    Ok(updated > 0)
                }

                async fn set_disabled(&self, id: &UserId, disabled: bool) -> Result<bool, StoreError> {
                    let updated = sqlx::query("UPDATE accounts SET disabled = $2 WHERE id = $1")
                        .bind(id.as_bytes().as_slice())
                        .bind(disabled)
                        .execute(self.pool())
                        .await
                        .map_err($db_err)?
                        .rows_affected();
                    Ok(updated > 0)
                }
            }
        };
    };
}
pub(crate) use impl_account_store;
