//! An [`Auth`] over a [`MemoryStore`] in session mode or in hybrid mode with the denylist, and
//! the few steps the tests repeat.

use std::future::Future;
use std::sync::Arc;

use tessera_core::auth::Tokens;
use tessera_core::jwt::{Alg, JwtSettings};
use tessera_core::policy::{Mode, Policy, RefreshPolicy, TokenPolicy};
use tessera_core::revocation::RevocationCheck;
use tessera_core::store::{Denied, DenylistStore, SessionStore};
use tessera_core::{Account, Auth, Authenticated, ClientInfo, IssuedSession, ManualClock, PasswordHasher, Session};
use time::Duration;

use crate::memory_store::MemoryStore;

pub const PASSWORD: &str = "correct horse battery staple";
pub const NEW_PASSWORD: &str = "a different horse entirely";

pub struct App {
    pub auth: Arc<Auth>,
    pub store: Arc<MemoryStore>,
}

pub async fn session_mode() -> App {
    App::new(Policy::default(), false).await
}

pub async fn hybrid_with_denylist() -> App {
    let tokens = TokenPolicy {
        jwt: JwtSettings {
            alg: Alg::EdDSA,
            issuer: "http://127.0.0.1:8080".into(),
            audience: "tessera".into(),
            access_ttl: Duration::minutes(5),
            leeway: Duration::seconds(30),
        },
        refresh: Some(RefreshPolicy { ttl: Duration::days(30), reuse_grace: Duration::seconds(10) }),
        revocation: RevocationCheck::Denylist,
        // Real time, not the test clock: generous, so the copy never goes stale mid-test.
        max_staleness: std::time::Duration::from_secs(3600),
        jwks_max_age: Duration::minutes(5),
        seal_key: None,
    };
    App::new(Policy { mode: Mode::Hybrid, tokens: Some(tokens), ..Policy::default() }, true).await
}

impl App {
    async fn new(policy: Policy, with_tokens: bool) -> App {
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(ManualClock::starting_now());
        let tokens = match (&policy.tokens, with_tokens) {
            (Some(p), true) => {
                let tokens = Tokens::load(store.as_ref(), tessera_core::Clock::now(clock.as_ref()), p.clone())
                    .await
                    .expect("token machinery loads");
                tokens.sync_denylist(store.as_ref(), tessera_core::Clock::now(clock.as_ref())).await.expect("sync");
                Some(tokens)
            }
            _ => None,
        };
        let hasher = PasswordHasher::new(2, std::time::Duration::from_secs(30)).expect("hasher");
        let auth = Arc::new(Auth::new(store.clone(), clock, hasher, policy, tokens));
        App { auth, store }
    }

    pub async fn account(&self, name: &str) -> Account {
        self.auth.create_account(name, PASSWORD.into()).await.expect("account created")
    }

    pub async fn login(&self, name: &str, password: &str) -> Result<IssuedSession, tessera_core::AuthError> {
        self.auth.login(name, password.into(), &ClientInfo::default()).await
    }

    /// Logs in and returns the credential as a request would present it.
    pub async fn logged_in(&self, name: &str) -> Authenticated {
        let issued = self.login(name, PASSWORD).await.expect("login");
        match (&issued.session_token, &issued.access) {
            (Some(t), _) => self.auth.authenticate(t).await.expect("session token works"),
            (None, Some(a)) => self.auth.authenticate_access(&a.token).await.expect("access token works"),
            (None, None) => panic!("a login hands out a credential"),
        }
    }

    /// Runs `request` inside the next session insert, before that session is stored: at the
    /// moment a login has checked the password and not yet stored what it issues. The
    /// request's own inserts, if any, run normally.
    pub fn during_next_session_insert<F, Fut>(&self, request: F)
    where
        F: FnOnce(Arc<Auth>, Session) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let auth = Arc::clone(&self.auth);
        self.store.before_next_session_insert(Box::new(move |session| Box::pin(request(auth, session))));
    }

    pub async fn session_ids(&self, account: &Account) -> Vec<tessera_core::SessionId> {
        self.store.sessions_of(&account.id).await.expect("sessions").iter().map(|s| s.id).collect()
    }

    /// Everything the denylist holds now.
    pub async fn denied(&self) -> Vec<Denied> {
        let now = self.auth.now();
        let (entries, _) = self.store.denied_since(0, now).await.expect("denylist");
        entries.into_iter().map(|e| e.denied).collect()
    }
}
