//! CSRF defence in depth: where browsers say a request comes from.
//!
//! The CSRF token is the defence; this is the second line, for the day a token leaks or a
//! check is missed. Browsers tell the origin of a page that makes a request in `Origin` and,
//! in current engines, whether it is another site in `Sec-Fetch-Site`. A cookie-authenticated
//! unsafe request is refused when `Sec-Fetch-Site` says `cross-site` or `Origin` names another
//! origin or `null` (an opaque origin: a sandboxed frame, a `data:` page). Login and sign-up
//! refuse the same, so no other site can log a browser into an attacker's account (login
//! CSRF). A missing `Origin` is allowed: non-browser clients send none.
//!
//! "Our" origin is `server.allowed_origins` when set. Otherwise it is what the request itself
//! names — its `Host`, or `X-Forwarded-Host`/`-Proto` (`Forwarded: host=;proto=`) from a
//! trusted proxy — with either scheme when no trusted proxy said which. A browser cannot set
//! `Host` for another site, so a cross-site page never passes that comparison.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, header};
use url::Url;

use super::forwarded::{TrustedProxies, forwarded_host_proto};

pub static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The origins allowed to send credentialed and login requests; empty = the request's own.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: Vec<url::Origin>,
}

impl OriginPolicy {
    /// From `server.allowed_origins`; the error names the entry that is not an origin.
    pub fn new(allowed: &[String]) -> Result<Self, String> {
        let allowed = allowed.iter().map(|s| parse_origin(s).ok_or_else(|| s.clone())).collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// Whether the request comes from another site, by what its browser headers say.
    pub fn is_cross_site(&self, headers: &HeaderMap, peer: Option<IpAddr>, proxies: &TrustedProxies) -> bool {
        if says_cross_site(headers) {
            return true;
        }
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (None, _) => return false,
            (Some(v), None) => v.to_str().ok().and_then(parse_origin),
            // Two Origin headers come from no browser.
            (Some(_), Some(_)) => None,
        };
        let Some(origin) = origin else { return true };
        if !self.allowed.is_empty() {
            return !self.allowed.contains(&origin);
        }
        let (forwarded_host, forwarded_proto) = forwarded_host_proto(peer, headers, proxies);
        let host = forwarded_host.or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()));
        !host.is_some_and(|host| same_origin(&origin, host, forwarded_proto))
    }
}

/// `Sec-Fetch-Site: cross-site` in any of the request's `Sec-Fetch-Site` headers.
pub fn says_cross_site(headers: &HeaderMap) -> bool {
    headers
        .get_all(&SEC_FETCH_SITE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.trim().eq_ignore_ascii_case("cross-site")))
}

/// An `Origin` value (RFC 6454 serialisation: `scheme://host[:port]`, nothing more) as a
/// comparable tuple, for http and https only; `None` for `null`, for other schemes and for
/// anything that is not exactly an origin.
pub fn parse_origin(value: &str) -> Option<url::Origin> {
    let value = value.trim();
    let url = Url::parse(value).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && !value.ends_with('/');
    plain.then(|| url.origin())
}

/// Whether `origin` is `host` (a `Host` header value, `name[:port]`) reached with `scheme`, or
/// with http or https when the scheme is not known.
fn same_origin(origin: &url::Origin, host: &str, scheme: Option<&str>) -> bool {
    if host.is_empty() || host.contains(['/', '\\', '@', '?', '#']) {
        return false;
    }
    let schemes: &[&str] = match scheme {
        Some(s) if s.eq_ignore_ascii_case("https") => &["https"],
        Some(s) if s.eq_ignore_ascii_case("http") => &["http"],
        Some(_) => return false,
        None => &["https", "http"],
    };
    schemes.iter().any(|s| Url::parse(&format!("{s}://{host}")).is_ok_and(|u| u.origin() == *origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use crate::config::ProxyHeader;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn derived(pairs: &[(&'static str, &str)]) -> bool {
        OriginPolicy::default().is_cross_site(&headers(pairs), None, &TrustedProxies::default())
    }

    #[test]
    fn origins_parse_only_in_their_exact_serialisation() {
        assert!(parse_origin("https://auth.example.com").is_some());
        assert_eq!(parse_origin("https://Auth.Example.com:443"), parse_origin("https://auth.example.com"));
        for bad in [
            "null",
            "",
            "https://a.com/",
            "https://a.com/x",
            "https://u@a.com",
            "ftp://a.com",
            "a.com",
            "https://a.com?x",
        ] {
            assert_eq!(parse_origin(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn without_configured_origins_the_host_header_is_ours() {
        assert!(!derived(&[("host", "auth.example.com"), ("origin", "https://auth.example.com")]));
        assert!(!derived(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")]));
        assert!(!derived(&[("host", "a.example:443"), ("origin", "https://a.example")]));
        assert!(derived(&[("host", "auth.example.com"), ("origin", "https://evil.example")]));
        assert!(derived(&[("host", "auth.example.com"), ("origin", "https://auth.example.com:8443")]));
        assert!(derived(&[("host", "auth.example.com"), ("origin", "null")]));
        assert!(derived(&[("origin", "https://auth.example.com")]), "no Host: nothing to compare with");
        assert!(!derived(&[("host", "auth.example.com")]), "no Origin: allowed");
    }

    #[test]
    fn sec_fetch_site_cross_site_is_refused_whatever_the_origin_says() {
        assert!(derived(&[("host", "a.example"), ("origin", "https://a.example"), ("sec-fetch-site", "cross-site")]));
        assert!(derived(&[("sec-fetch-site", "Cross-Site")]));
        assert!(!derived(&[("sec-fetch-site", "same-origin")]));
        assert!(!derived(&[("sec-fetch-site", "same-site")]));
        assert!(!derived(&[("sec-fetch-site", "none")]));
    }

    #[test]
    fn two_origin_headers_are_foreign() {
        assert!(derived(&[("host", "a.example"), ("origin", "https://a.example"), ("origin", "https://a.example")]));
    }

    #[test]
    fn configured_origins_replace_the_host_header() {
        let policy = OriginPolicy::new(&["https://auth.example.com".into()]).unwrap();
        let none = TrustedProxies::default();
        let h = headers(&[("host", "evil.example"), ("origin", "https://auth.example.com")]);
        assert!(!policy.is_cross_site(&h, None, &none));
        let h = headers(&[("host", "auth.example.com"), ("origin", "http://auth.example.com")]);
        assert!(policy.is_cross_site(&h, None, &none), "the scheme is pinned");
        assert_eq!(OriginPolicy::new(&["https://a.com/path".into()]).unwrap_err(), "https://a.com/path");
    }

    #[test]
    fn a_trusted_proxy_names_host_and_scheme() {
        let proxies = TrustedProxies { nets: vec!["10.0.0.0/8".parse().unwrap()], header: ProxyHeader::XForwardedFor };
        let h = headers(&[
            ("host", "tessera:8080"),
            ("x-forwarded-host", "auth.example.com"),
            ("x-forwarded-proto", "https"),
            ("origin", "https://auth.example.com"),
        ]);
        let policy = OriginPolicy::default();
        assert!(!policy.is_cross_site(&h, Some("10.0.0.2".parse().unwrap()), &proxies));
        assert!(policy.is_cross_site(&h, Some("192.0.2.1".parse().unwrap()), &proxies), "untrusted peer: Host counts");
        let h = headers(&[
            ("x-forwarded-host", "auth.example.com"),
            ("x-forwarded-proto", "https"),
            ("origin", "http://auth.example.com"),
        ]);
        assert!(policy.is_cross_site(&h, Some("10.0.0.2".parse().unwrap()), &proxies), "the proxy pinned https");
    }

    proptest! {
        #[test]
        fn origin_checks_never_panic(origin in ".{0,80}", host in ".{0,60}", site in ".{0,20}", fwd in ".{0,60}") {
            let mut h = HeaderMap::new();
            for (k, v) in [("origin", &origin), ("host", &host), ("sec-fetch-site", &site), ("x-forwarded-host", &fwd), ("forwarded", &fwd)] {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.append(k, v);
                }
            }
            let proxies = TrustedProxies { nets: vec!["0.0.0.0/0".parse().unwrap()], header: ProxyHeader::Forwarded };
            let _ = OriginPolicy::default().is_cross_site(&h, Some("10.0.0.1".parse().unwrap()), &proxies);
            let _ = OriginPolicy::default().is_cross_site(&h, None, &TrustedProxies::default());
        }

        #[test]
        fn a_request_from_its_own_host_is_never_cross_site(host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,6}){0,2}", port in proptest::option::of(1u16..)) {
            let authority = match port { Some(p) => format!("{host}:{p}"), None => host.clone() };
            for scheme in ["http", "https"] {
                let origin = format!("{scheme}://{authority}");
                prop_assert!(!derived(&[("host", authority.as_str()), ("origin", origin.as_str())]), "{origin}");
            }
        }
    }
}
