//! Which request bodies are read: `application/json` everywhere, and
//! `application/x-www-form-urlencoded` on the two RFC endpoints — with no parameter but
//! `charset=utf-8`. Everything else is a 415. A lenient reading (any `+json` suffix, `text/json`,
//! `charset=utf-16`) would let a body mean something else to tessera than to a proxy or WAF in
//! front of it, and `text/plain` bodies are what cross-site forms can send without a preflight.

use axum::http::{HeaderMap, header};

pub const JSON: &str = "application/json";
pub const FORM: &str = "application/x-www-form-urlencoded";

/// Whether the request has exactly one `Content-Type`, naming `expected` (case-insensitively)
/// with at most a `charset=utf-8` parameter.
pub fn is(headers: &HeaderMap, expected: &str) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().is_ok_and(|v| names(v, expected)),
        _ => false,
    }
}

/// Whether one `Content-Type` value (RFC 9110 §8.3.1: `type/subtype *(; name=value)`) names
/// `expected` with nothing but a UTF-8 charset.
pub fn names(value: &str, expected: &str) -> bool {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(expected) {
        return false;
    }
    parts.map(str::trim).filter(|p| !p.is_empty()).all(|param| {
        param.split_once('=').is_some_and(|(name, v)| {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            name.trim().eq_ignore_ascii_case("charset") && v.eq_ignore_ascii_case("utf-8")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn json_with_or_without_a_utf8_charset_is_json() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(names(ok, JSON), "{ok}");
        }
        for bad in [
            "application/json; charset=utf-16",
            "application/json; charset=latin1",
            "application/json; boundary=x",
            "text/json",
            "application/x-json",
            "application/vnd.api+json",
            "application/jsonx",
            "text/plain",
            "",
        ] {
            assert!(!names(bad, JSON), "{bad}");
        }
        assert!(names("application/x-www-form-urlencoded; charset=utf-8", FORM));
        assert!(!names("multipart/form-data", FORM));
    }

    proptest! {
        #[test]
        fn the_content_type_check_never_panics(value in ".{0,100}") {
            let _ = names(&value, JSON);
        }

        #[test]
        fn only_a_utf8_charset_passes(charset in "[A-Za-z0-9-]{1,12}") {
            let value = format!("application/json; charset={charset}");
            prop_assert_eq!(names(&value, JSON), charset.eq_ignore_ascii_case("utf-8"));
        }
    }
}
