//! The request a reverse proxy is asking about. In forward auth the proxy sends tessera a
//! copy of the original request's headers, and names the original method and URI in
//! `X-Forwarded-Method`/`X-Forwarded-Uri` (Caddy, Traefik) or `X-Original-Method`/
//! `X-Original-URI` (the nginx convention).
//!
//! Those two headers decide the CSRF rule, so they are believed only from
//! `server.trusted_proxies`: anyone else could send `X-Forwarded-Method: GET` with a
//! cross-site POST. From a trusted proxy, every value of both spellings must agree; a proxy
//! that overwrites one spelling but passes the client's copy of the other through must not
//! let the client pick its own method. Anything unclear counts as an unsafe method.

use std::net::IpAddr;

use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, HeaderName, Method};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::extract::TrustedProxies;

static FORWARDED_METHOD: [HeaderName; 2] =
    [HeaderName::from_static("x-forwarded-method"), HeaderName::from_static("x-original-method")];
static FORWARDED_URI: [HeaderName; 2] =
    [HeaderName::from_static("x-forwarded-uri"), HeaderName::from_static("x-original-uri")];
static SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");

/// Where forward auth sends a browser that must log in.
pub const LOGIN_PATH: &str = "/login";
/// A `return_to` longer than this is dropped rather than carried through a redirect.
const MAX_RETURN_TO: usize = 2048;
/// `return_to` is a query value: everything but unreserved characters and `/` is escaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

/// What forward auth knows about the original request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// The method the CSRF rule is applied to.
    pub method: Method,
    /// The original path and query, when a trusted proxy named one.
    pub uri: Option<String>,
}

impl Original {
    /// Reads the original method and URI from `headers` if `peer` is a trusted proxy;
    /// otherwise the request is taken as it is (`own_method`, no URI).
    pub fn from_headers(
        peer: Option<IpAddr>,
        own_method: &Method,
        headers: &HeaderMap,
        proxies: &TrustedProxies,
    ) -> Self {
        if !peer.is_some_and(|p| proxies.trusts(p)) {
            return Original { method: own_method.clone(), uri: None };
        }
        let method = agreed(headers, &FORWARDED_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            // A trusted proxy that names no method, two methods or garbage: the request is
            // treated like any unsafe one, so a cookie needs its CSRF token. Failing loudly
            // beats a misconfigured proxy that silently turns every POST into a GET.
            .unwrap_or(Method::POST);
        Original { method, uri: agreed(headers, &FORWARDED_URI).map(str::to_owned) }
    }

    /// A browser navigating (following a link, typing a URL), as opposed to a script's
    /// `fetch` or an API client: only a navigation is worth sending to the login page.
    ///
    /// Browsers since 2020 say so in `Sec-Fetch-Mode: navigate`; when that header is absent
    /// (an older browser, or a client that is not a browser) an `Accept` naming `text/html`
    /// decides. Only GET and HEAD: redirecting a form POST would lose its body.
    pub fn is_navigation(&self, headers: &HeaderMap) -> bool {
        if self.method != Method::GET && self.method != Method::HEAD {
            return false;
        }
        match headers.get(&SEC_FETCH_MODE) {
            Some(mode) => mode.as_bytes().eq_ignore_ascii_case(b"navigate"),
            None => headers
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.split(',').any(|r| r.trim().to_ascii_lowercase().starts_with("text/html"))),
        }
    }

    /// `/login?return_to=<original path>`, or `/login` when the original URI is unknown or
    /// is not a same-origin path (an open redirect through the login page is what this
    /// check prevents).
    pub fn login_location(&self) -> String {
        match self.uri.as_deref().filter(|u| is_same_origin_path(u)) {
            Some(uri) => format!("{LOGIN_PATH}?return_to={}", utf8_percent_encode(uri, QUERY_VALUE)),
            None => LOGIN_PATH.to_owned(),
        }
    }
}

/// The one value every copy of both spellings of a header carries, if they agree.
fn agreed<'h>(headers: &'h HeaderMap, names: &[HeaderName]) -> Option<&'h str> {
    let mut values = names.iter().flat_map(|n| headers.get_all(n)).map(|v| v.to_str().ok().map(str::trim));
    let first = values.next()??;
    values.all(|v| v == Some(first)).then_some(first).filter(|v| !v.is_empty())
}

/// `/path?query`: one leading slash (`//host` and `/\host` are other origins to a browser),
/// printable ASCII only, and not absurdly long.
fn is_same_origin_path(uri: &str) -> bool {
    let b = uri.as_bytes();
    b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && uri.len() <= MAX_RETURN_TO
        && b.iter().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusted() -> TrustedProxies {
        TrustedProxies { nets: vec!["127.0.0.1/32".parse().unwrap()], ..TrustedProxies::default() }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn from(peer: &str, pairs: &[(&'static str, &str)]) -> Original {
        Original::from_headers(Some(peer.parse().unwrap()), &Method::GET, &headers(pairs), &trusted())
    }

    #[test]
    fn original_method_and_uri_are_ignored_from_untrusted_peers() {
        let o = from("198.51.100.1", &[("x-forwarded-method", "DELETE"), ("x-forwarded-uri", "/x")]);
        assert_eq!(o, Original { method: Method::GET, uri: None });
    }

    #[test]
    fn either_spelling_is_read_from_a_trusted_proxy() {
        let o = from("127.0.0.1", &[("x-forwarded-method", "PUT"), ("x-forwarded-uri", "/a?b=c")]);
        assert_eq!(o, Original { method: Method::PUT, uri: Some("/a?b=c".into()) });
        let o = from("127.0.0.1", &[("x-original-method", "GET"), ("x-original-uri", "/d")]);
        assert_eq!(o, Original { method: Method::GET, uri: Some("/d".into()) });
    }

    #[test]
    fn disagreeing_missing_or_garbage_methods_count_as_unsafe() {
        let both = from("127.0.0.1", &[("x-forwarded-method", "POST"), ("x-original-method", "GET")]);
        assert!(!both.method.is_safe());
        let twice = from("127.0.0.1", &[("x-forwarded-method", "GET"), ("x-forwarded-method", "POST")]);
        assert!(!twice.method.is_safe());
        assert!(!from("127.0.0.1", &[]).method.is_safe());
        assert!(!from("127.0.0.1", &[("x-forwarded-method", "G(E)T")]).method.is_safe());
        assert!(!from("127.0.0.1", &[("x-forwarded-method", "PROPFIND")]).method.is_safe());
        let agreeing = from("127.0.0.1", &[("x-forwarded-method", "GET"), ("x-original-method", "GET")]);
        assert_eq!(agreeing.method, Method::GET);
    }

    #[test]
    fn navigation_is_sec_fetch_mode_navigate_or_else_an_html_accept() {
        let get = Original { method: Method::GET, uri: None };
        assert!(get.is_navigation(&headers(&[("sec-fetch-mode", "navigate")])));
        assert!(!get.is_navigation(&headers(&[("sec-fetch-mode", "cors"), ("accept", "text/html")])));
        assert!(get.is_navigation(&headers(&[("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")])));
        assert!(!get.is_navigation(&headers(&[("accept", "application/json")])));
        assert!(!get.is_navigation(&headers(&[])));
        let post = Original { method: Method::POST, uri: None };
        assert!(!post.is_navigation(&headers(&[("sec-fetch-mode", "navigate")])));
    }

    #[test]
    fn login_location_carries_only_same_origin_paths() {
        let at = |uri: &str| Original { method: Method::GET, uri: Some(uri.into()) }.login_location();
        assert_eq!(at("/app/page?x=1&y=2"), "/login?return_to=/app/page%3Fx%3D1%26y%3D2");
        assert_eq!(at("//evil.example/"), "/login");
        assert_eq!(at("/\\evil.example/"), "/login");
        assert_eq!(at("https://evil.example/"), "/login");
        assert_eq!(at("/a b"), "/login");
        assert_eq!(at(&format!("/{}", "a".repeat(MAX_RETURN_TO))), "/login");
        assert_eq!(Original { method: Method::GET, uri: None }.login_location(), "/login");
    }
}
