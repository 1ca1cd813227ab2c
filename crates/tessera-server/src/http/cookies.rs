//! The cookies tessera sets and reads.
//!
//! Names carry the `__Host-` prefix, which browsers honour only for cookies that are `Secure`,
//! have `Path=/` and no `Domain`: a sibling subdomain or a network attacker cannot plant or
//! shadow them. With `cookie.secure = false` (plain-HTTP development on a non-localhost name)
//! a browser would drop prefixed cookies, so the prefix is left off there.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::{CookieConfig, SameSite};

pub const SESSION: &str = "tessera-session";
pub const ACCESS: &str = "tessera-access";
pub const CSRF: &str = "tessera-csrf";
pub const REFRESH: &str = "tessera-refresh";

#[derive(Debug, Clone)]
pub struct CookiePolicy {
    secure: bool,
    same_site: &'static str,
    session_name: String,
    access_name: String,
    csrf_name: String,
    refresh_name: String,
    /// jwt and hybrid modes carry access and refresh cookies instead of a session cookie.
    token_mode: bool,
}

impl CookiePolicy {
    pub fn new(config: &CookieConfig, token_mode: bool) -> Self {
        let prefix = if config.secure { "__Host-" } else { "" };
        Self {
            secure: config.secure,
            same_site: match config.same_site {
                SameSite::Lax => "Lax",
                SameSite::Strict => "Strict",
            },
            session_name: format!("{prefix}{SESSION}"),
            access_name: format!("{prefix}{ACCESS}"),
            csrf_name: format!("{prefix}{CSRF}"),
            refresh_name: format!("{prefix}{REFRESH}"),
            token_mode,
        }
    }

    pub fn session_name(&self) -> &str {
        &self.session_name
    }

    pub fn access_name(&self) -> &str {
        &self.access_name
    }

    pub fn refresh_name(&self) -> &str {
        &self.refresh_name
    }

    pub fn csrf_name(&self) -> &str {
        &self.csrf_name
    }

    /// The access-token cookie: HttpOnly, like the session cookie.
    pub fn access(&self, value: &str, max_age: i64) -> HeaderValue {
        self.build(&self.access_name, value, max_age, true, self.same_site)
    }

    /// The refresh cookie: HttpOnly and `SameSite=Strict` whatever `cookie.same_site` says, so
    /// no request another site starts carries it, not even a top-level navigation. `__Host-`
    /// with `Path=/` rather than a narrow path: a `__Secure-` cookie with a narrow path can be
    /// planted or shadowed from a sibling subdomain, a `__Host-` one cannot. It is sent to
    /// `/v1/refresh` and to `/v1/logout`, which ends the session by it once the access cookie
    /// is gone.
    pub fn refresh(&self, value: &str, max_age: i64) -> HeaderValue {
        self.build(&self.refresh_name, value, max_age, true, "Strict")
    }

    /// The session cookie: HttpOnly, so a script (an XSS payload) cannot read it.
    pub fn session(&self, value: &str, max_age: i64) -> HeaderValue {
        self.build(&self.session_name, value, max_age, true, self.same_site)
    }

    /// The CSRF cookie is readable by the page's scripts: that is how the page learns the value
    /// to echo in `X-CSRF-Token`.
    pub fn csrf(&self, value: &str, max_age: i64) -> HeaderValue {
        self.build(&self.csrf_name, value, max_age, false, self.same_site)
    }

    /// Expires every cookie the mode sets.
    pub fn clear(&self) -> Vec<HeaderValue> {
        let mut all = vec![self.csrf("", 0)];
        if self.token_mode {
            all.push(self.access("", 0));
            all.push(self.refresh("", 0));
        } else {
            all.push(self.session("", 0));
        }
        all
    }

    fn build(&self, name: &str, value: &str, max_age: i64, http_only: bool, same_site: &str) -> HeaderValue {
        let mut s = format!("{name}={value}; Path=/; Max-Age={}", max_age.max(0));
        if http_only {
            s.push_str("; HttpOnly");
        }
        if self.secure {
            s.push_str("; Secure");
        }
        s.push_str("; SameSite=");
        s.push_str(same_site);
        // Values are base64url and names are ours, so the header is always valid.
        HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Our cookies as one request carries them. Each is `None` when absent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OurCookies<'h> {
    pub session: Option<&'h str>,
    pub access: Option<&'h str>,
    pub refresh: Option<&'h str>,
    pub csrf: Option<&'h str>,
}

/// One of our cookies arrived more than once. Browsers send every cookie whose domain and path
/// match, so two values mean someone planted a second one (from a sibling subdomain, over
/// plain HTTP): which one is "the" credential is ambiguous, and guessing is how session
/// fixation and cookie tossing work. The request is refused and nothing is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmbiguousCookie(pub String);

impl CookiePolicy {
    /// Reads our four cookies from the request, refusing any that is repeated.
    pub fn read<'h>(&self, headers: &'h HeaderMap) -> Result<OurCookies<'h>, AmbiguousCookie> {
        let mut ours = OurCookies::default();
        for (name, value) in pairs(headers) {
            let slot = if name == self.session_name.as_bytes() {
                &mut ours.session
            } else if name == self.access_name.as_bytes() {
                &mut ours.access
            } else if name == self.refresh_name.as_bytes() {
                &mut ours.refresh
            } else if name == self.csrf_name.as_bytes() {
                &mut ours.csrf
            } else {
                continue;
            };
            if slot.replace(value).is_some() {
                return Err(AmbiguousCookie(String::from_utf8_lossy(name).into_owned()));
            }
        }
        Ok(ours)
    }
}

/// Every `name=value` pair of the request's `Cookie` headers, in order (RFC 6265 §5.4:
/// `a=b; c=d`, possibly split over several headers). Names are compared as bytes, exactly; a
/// pair without `=` is skipped; a value in double quotes loses them. A value that is not UTF-8
/// comes back empty: it cannot be one of our credentials, but it still counts as present.
pub fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &str)> {
    headers.get_all(header::COOKIE).iter().flat_map(|v| v.as_bytes().split(|b| *b == b';')).filter_map(|pair| {
        let eq = pair.iter().position(|b| *b == b'=')?;
        let name = pair[..eq].trim_ascii();
        let value = pair[eq + 1..].trim_ascii();
        let value = value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(value);
        Some((name, std::str::from_utf8(value).unwrap_or("")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(cookie) {
            h.insert(header::COOKIE, v);
        }
        h
    }

    fn policy() -> CookiePolicy {
        CookiePolicy::new(&CookieConfig::default(), false)
    }

    #[test]
    fn finds_our_cookies_among_others() {
        let h = headers("a=1; __Host-tessera-session=tok; b=2; tessera-csrf=not-ours");
        let ours = policy().read(&h).unwrap();
        assert_eq!(ours.session, Some("tok"));
        assert_eq!(ours.csrf, None, "an unprefixed twin is not our cookie");
    }

    #[test]
    fn a_repeated_cookie_is_ambiguous_even_across_headers_and_with_equal_values() {
        let h = headers("__Host-tessera-session=a; __Host-tessera-session=b");
        assert_eq!(policy().read(&h), Err(AmbiguousCookie("__Host-tessera-session".into())));
        let h = headers("__Host-tessera-csrf=a; x=1; __Host-tessera-csrf=a");
        assert!(policy().read(&h).is_err());
        let mut h = headers("__Host-tessera-access=a");
        h.append(header::COOKIE, HeaderValue::from_static("__Host-tessera-access=a"));
        assert!(policy().read(&h).is_err());
    }

    #[test]
    fn a_non_utf8_value_is_present_and_empty() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_bytes(b"__Host-tessera-session=\xff\xfe").unwrap());
        assert_eq!(policy().read(&h).unwrap().session, Some(""));
    }

    #[test]
    fn secure_cookies_carry_every_attribute() {
        let p = policy();
        let c = p.session("v", 60);
        assert_eq!(c, "__Host-tessera-session=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax");
        assert_eq!(p.csrf("c", 60), "__Host-tessera-csrf=c; Path=/; Max-Age=60; Secure; SameSite=Lax");
        let r = p.refresh("r", 60);
        assert_eq!(r, "__Host-tessera-refresh=r; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Strict");
    }

    proptest! {
        #[test]
        fn cookie_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                h.insert(header::COOKIE, v);
            }
            let _ = policy().read(&h);
        }

        #[test]
        fn cookie_parser_finds_what_was_set(v in "[A-Za-z0-9_-]{1,100}", junk in "[a-z]{1,10}=[a-z0-9]{0,10}") {
            let h = headers(&format!("{junk}; __Host-tessera-session={v}; {junk}"));
            prop_assert_eq!(policy().read(&h).unwrap().session, Some(v.as_str()));
        }

        #[test]
        fn any_cookie_of_ours_given_twice_is_ambiguous(
            which in 0usize..4, a in "[A-Za-z0-9_-]{0,20}", b in "[A-Za-z0-9_-]{0,20}", junk in "[a-z]{1,10}=[a-z0-9]{0,10}"
        ) {
            let p = policy();
            let name = [p.session_name(), p.access_name(), p.refresh_name(), p.csrf_name()][which];
            let h = headers(&format!("{name}={a}; {junk}; {name}={b}"));
            prop_assert!(p.read(&h).is_err());
        }
    }
}
