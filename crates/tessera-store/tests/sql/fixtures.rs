//! Fixtures independent of the backend: instants and accounts.

use tessera_core::account::Account;
use tessera_core::clock::from_unix;
use tessera_core::id::UserId;
use tessera_core::password::PasswordHash;
use tessera_core::store::AccountStore;
use tessera_core::username::Username;
use time::OffsetDateTime;

/// A fixed instant, so stored timestamps can be compared exactly.
pub fn t(offset_secs: i64) -> OffsetDateTime {
    from_unix(1_700_000_000 + offset_secs)
}

pub fn account(name: &str) -> Account {
    Account {
        id: UserId::generate(),
        username: Username::parse(name).unwrap(),
        password_hash: PasswordHash::from_stored(format!("hash-of-{name}")),
        created_at: t(0),
        disabled: false,
    }
}

/// Inserts an account named `name` and returns it.
pub async fn given_account(store: &impl AccountStore, name: &str) -> Account {
    let account = account(name);
    store.insert_account(&account).await.unwrap();
    account
}
