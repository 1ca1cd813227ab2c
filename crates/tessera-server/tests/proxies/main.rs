//! Forward auth behind the real proxies: nginx (`auth_request`) and Caddy (`forward_auth`),
//! configured from the files in `deploy/`, in front of the real tessera and an application
//! that echoes what it received. Each flow runs behind each proxy; each test starts its own
//! tessera, application and proxy, and stops them when it ends.
//!
//! Needs `nginx` and `caddy` (Debian packages of the same names; `scripts/test` installs
//! them). A missing proxy fails the tests, saying what to install: nothing is skipped.
//!
//! What differs from a real deployment: plain http on loopback instead of TLS (tessera's
//! `Secure` cookies are sent back by hand, as a browser would over https), and a main
//! configuration of the test's own around the deploy files (ports, temporary paths).

#[allow(dead_code)]
#[path = "../distributed/harness/process.rs"]
mod process;

mod flows;
mod proxy;
mod stack;
mod upstream;

use stack::{HYBRID, SESSION};

/// The same flows, once behind each proxy: `nginx::…` and `caddy::…`.
macro_rules! behind_each_proxy {
    ($($name:ident => |$kind:ident| $flow:expr;)*) => {
        mod nginx {
            use super::*;
            $(#[tokio::test] async fn $name() { let $kind = proxy::Kind::Nginx; $flow.await })*
        }
        mod caddy {
            use super::*;
            $(#[tokio::test] async fn $name() { let $kind = proxy::Kind::Caddy; $flow.await })*
        }
    };
}

behind_each_proxy! {
    logged_out_requests_are_refused_and_navigations_go_to_login => |k| flows::logged_out_requests_are_refused_and_navigations_go_to_login(k);
    tessera_paths_reach_tessera_without_the_check => |k| flows::tessera_paths_reach_tessera_without_the_check(k);
    session_mode_browser_reaches_the_application_as_itself => |k| flows::a_logged_in_browser_reaches_the_application_as_itself(k, SESSION);
    hybrid_mode_browser_reaches_the_application_as_itself => |k| flows::a_logged_in_browser_reaches_the_application_as_itself(k, HYBRID);
    client_sent_identity_headers_never_reach_the_application => |k| flows::client_sent_identity_headers_never_reach_the_application(k);
    session_mode_logout_is_refused_at_once => |k| flows::logout_is_refused_at_once(k, SESSION);
    hybrid_mode_logout_is_refused_at_once => |k| flows::logout_is_refused_at_once(k, HYBRID);
    an_unsafe_cookie_request_needs_the_csrf_token => |k| flows::an_unsafe_cookie_request_needs_the_csrf_token(k);
    a_bearer_client_needs_no_csrf_token => |k| flows::a_bearer_client_needs_no_csrf_token(k);
    original_request_claims_from_an_untrusted_peer_are_ignored => |k| flows::original_request_claims_from_an_untrusted_peer_are_ignored(k);
}
