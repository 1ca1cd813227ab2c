//! `Authorization` (one header per input line), the bearer scheme, `Tessera-Transport` and
//! `X-CSRF-Token`: two Authorization headers are refused, a bearer token is never empty or
//! padded, and a header given twice is never read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::config::Transport;
use tessera_server::http::extract::{authorization, bearer_token, csrf_header_ok, requested_transport};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (auth, rest) = common::split2(data);
    let mut headers = common::headers("authorization", auth);
    let (transport, csrf) = common::split2(rest);
    common::append(&mut headers, "tessera-transport", transport);
    common::append(&mut headers, "x-csrf-token", csrf);

    let count = headers.get_all("authorization").iter().count();
    match authorization(&headers) {
        Ok(None) => assert_eq!(count, 0),
        Ok(Some(value)) => {
            assert_eq!(count, 1);
            if let Some(token) = bearer_token(value) {
                assert!(!token.is_empty() && token.trim() == token);
                assert!(value.len() > 7 && value[..6].eq_ignore_ascii_case("bearer"));
            }
        }
        Err(_) => assert!(count > 1),
    }
    for enabled in [&[Transport::Cookie, Transport::Bearer][..], &[Transport::Bearer], &[]] {
        if let Ok(t) = requested_transport(&headers, enabled) {
            assert!(enabled.contains(&t));
        }
    }
    let csrf_count = headers.get_all("x-csrf-token").iter().count();
    let mut seen = None;
    let ok = csrf_header_ok(&headers, |v| {
        seen = Some(v.to_owned());
        true
    });
    assert_eq!(ok, csrf_count == 1 && seen.is_some());
    if let Ok(text) = std::str::from_utf8(auth) {
        let _ = bearer_token(text);
    }
});
