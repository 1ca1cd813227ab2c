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
/// The refresh cookie goes only where it is needed: a stolen page request elsewhere never
/// carries it. One cookie per path, since a cookie has one `Path`.
pub const REFRESH_PATHS: [&str; 2] = ["/v1/refresh", "/v1/logout"];

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
            // `__Host-` requires `Path=/`; the refresh cookie's narrower path allows only `__Secure-`.
            refresh_name: format!("{}{REFRESH}", if config.secure { "__Secure-" } else { "" }),
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

    /// The access-token cookie: HttpOnly, like the session cookie.
    pub fn access(&self, value: &str, max_age: i64) -> HeaderValue {
        self.build(&self.access_name, value, max_age, true)
    }

    /// The refresh cookies, one per path in [`REFRESH_PATHS`].
    pub fn refresh(&self, value: &str, max_age: i64) -> [HeaderValue; 2] {
        REFRESH_PATHS.map(|path| self.build_at(&self.refresh_name, value, path, max_age, true))
    }

    /// The session cookie: HttpOnly, so a script (an XSS payload) cannot read it.
    pub fn session(&self, value: &str, max_age: i64) -> HeaderValue {
        self.build(&self.session_name, value, max_age, true)
    }

    /// The CSRF cookie is readable by the page's scripts: that is how the page learns the value
    /// to echo in `X-CSRF-Token`.
    pub fn csrf(&self, value: &str, max_age: i64) -> HeaderValue {
        self.build(&self.csrf_name, value, max_age, false)
    }

    /// Expires every cookie the mode sets.
    pub fn clear(&self) -> Vec<HeaderValue> {
        let mut all = vec![self.build(&self.csrf_name, "", 0, false)];
        if self.token_mode {
            all.push(self.build(&self.access_name, "", 0, true));
            all.extend(self.refresh("", 0));
        } else {
            all.push(self.build(&self.session_name, "", 0, true));
        }
        all
    }

    fn build(&self, name: &str, value: &str, max_age: i64, http_only: bool) -> HeaderValue {
        self.build_at(name, value, "/", max_age, http_only)
    }

    fn build_at(&self, name: &str, value: &str, path: &str, max_age: i64, http_only: bool) -> HeaderValue {
        let mut s = format!("{name}={value}; Path={path}; Max-Age={}", max_age.max(0));
        if http_only {
            s.push_str("; HttpOnly");
        }
        if self.secure {
            s.push_str("; Secure");
        }
        s.push_str("; SameSite=");
        s.push_str(self.same_site);
        // Values are base64url and names are ours, so the header is always valid.
        HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Finds the value of cookie `name` in the request's `Cookie` headers (RFC 6265 §5.4 syntax:
/// `a=b; c=d`). Malformed pairs are skipped; the first match wins.
pub fn find<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
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

    #[test]
    fn finds_a_cookie_among_others() {
        let h = headers("a=1; __Host-tessera-session=tok; b=2");
        assert_eq!(find(&h, "__Host-tessera-session"), Some("tok"));
        assert_eq!(find(&h, "tessera-session"), None);
    }

    #[test]
    fn secure_cookies_carry_every_attribute() {
        let p = CookiePolicy::new(&CookieConfig::default(), false);
        let c = p.session("v", 60);
        assert_eq!(c, "__Host-tessera-session=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax");
        assert_eq!(p.csrf("c", 60), "__Host-tessera-csrf=c; Path=/; Max-Age=60; Secure; SameSite=Lax");
    }

    proptest! {
        #[test]
        fn cookie_parser_never_panics(s in "[ -~]{0,300}") {
            let _ = find(&headers(&s), "__Host-tessera-session");
        }

        #[test]
        fn cookie_parser_finds_what_was_set(v in "[A-Za-z0-9_-]{1,100}", junk in "[a-z]{1,10}=[a-z0-9]{0,10}") {
            let h = headers(&format!("{junk}; __Host-tessera-session={v}; {junk}"));
            prop_assert_eq!(find(&h, "__Host-tessera-session"), Some(v.as_str()));
        }
    }
}
