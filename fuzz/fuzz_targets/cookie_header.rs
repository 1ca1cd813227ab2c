//! `Cookie` headers (one per input line): `cookies::pairs` and `CookiePolicy::read` under each
//! cookie naming (secure `__Host-` names or plain) and mode. A cookie of ours found by `read`
//! is exactly the one pair of that name, and a repeated one of ours is refused, never guessed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::config::{CookieConfig, SameSite};
use tessera_server::http::cookies::{CookiePolicy, pairs};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let headers = common::headers("cookie", data);
    let all: Vec<(&[u8], &str)> = pairs(&headers).collect();
    for (name, value) in &all {
        assert!(!name.contains(&b';') && !value.contains(';'), "a pair spans a separator");
    }
    for secure in [true, false] {
        for token_mode in [true, false] {
            let policy = CookiePolicy::new(&CookieConfig { secure, same_site: SameSite::Lax }, token_mode);
            let names = [policy.session_name(), policy.access_name(), policy.refresh_name(), policy.csrf_name()];
            let count = |n: &str| all.iter().filter(|(name, _)| *name == n.as_bytes()).count();
            match policy.read(&headers) {
                Ok(ours) => {
                    let found = [ours.session, ours.access, ours.refresh, ours.csrf];
                    for (name, value) in names.iter().zip(found) {
                        match value {
                            Some(v) => {
                                assert_eq!(count(name), 1);
                                assert!(all.contains(&(name.as_bytes(), v)));
                            }
                            None => assert_eq!(count(name), 0),
                        }
                    }
                }
                Err(ambiguous) => assert!(count(&ambiguous.0) > 1, "{} refused but not repeated", ambiguous.0),
            }
        }
    }
});
