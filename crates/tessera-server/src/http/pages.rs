//! tessera's own web pages — `/login`, `/signup`, `/account`, and `/` redirecting to one of
//! them — and the browser client module at `/tessera.js`.
//!
//! Everything is embedded in the binary: the HTML, CSS and page script from `assets/`, and the
//! client built from `clients/js/` (its built file is committed, so `cargo build` needs no
//! node). The pages are plain HTML driven by the client over the JSON API; they hold no
//! credential of their own. Their headers allow nothing the pages do not need: scripts, styles
//! and requests from this origin only, no framing, no referrer.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use tessera_core::secret::{TokenHash, b64};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Required, Type};
use utoipa_axum::router::OpenApiRouter;

use super::extract::Caller;
use super::state::AppState;

/// The client module, built by `clients/js` (`npm run build`) and committed.
pub const CLIENT_JS: &str = include_str!("../../../../clients/js/dist/tessera.js");
const PAGES_JS: &str = include_str!("../../assets/pages.js");
const PAGES_CSS: &str = include_str!("../../assets/pages.css");
const ICON_SVG: &str = include_str!("../../assets/icon.svg");
const LAYOUT: &str = include_str!("../../assets/layout.html");
const LOGIN: &str = include_str!("../../assets/login.html");
const SIGNUP: &str = include_str!("../../assets/signup.html");
const ACCOUNT: &str = include_str!("../../assets/account.html");

/// Scripts, styles, images and requests from this origin only; no plugins, no `<base>`, no
/// form posting elsewhere, and no framing (clickjacking).
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

static COOP: HeaderName = HeaderName::from_static("cross-origin-opener-policy");

/// What the pages show, from `[pages]` and `[auth]`.
#[derive(Debug, Clone)]
pub struct Pages {
    login: String,
    signup: Option<String>,
    account: String,
}

impl Pages {
    /// The pages with `title` in their header; the sign-up page only when sign-up is open;
    /// `refresh` tells the page script whether the server issues refresh tokens.
    pub fn new(title: &str, signup: bool, refresh: bool) -> Self {
        let page = |name: &str, heading: &str, content: &str| {
            LAYOUT
                .replace("{content}", content)
                .replace("{page}", name)
                .replace("{heading}", heading)
                .replace("{signup}", if signup { "true" } else { "false" })
                .replace("{refresh}", if refresh { "true" } else { "false" })
                .replace("{title}", &escape(title))
        };
        Self {
            login: page("login", "Log in", LOGIN),
            signup: signup.then(|| page("signup", "Create an account", SIGNUP)),
            account: page("account", "Your account", ACCOUNT),
        }
    }
}

/// The routes, each with its description in the OpenAPI document: `/tessera.js` always; the
/// pages and their assets when `pages` is given.
pub fn routes(pages: Option<Pages>) -> OpenApiRouter<AppState> {
    let client = get(|h: HeaderMap| async move { CLIENT.serve(&h) });
    let router =
        Documented(OpenApiRouter::new()).asset("/tessera.js", client, "The browser client module", "text/javascript");
    let Some(pages) = pages else { return router.0 };
    let login = pages.login.clone();
    let account = pages.account.clone();
    let mut router = router
        .page("/login", get(move |q: ReturnQuery| async move { html(&login, return_to(q)) }), "The login page", true)
        .page("/account", get(move || async move { html(&account, None) }), "The account page", false)
        .asset(
            "/tessera/pages.js",
            get(|h: HeaderMap| async move { PAGES_SCRIPT.serve(&h) }),
            "The pages' script",
            "text/javascript",
        )
        .asset(
            "/tessera/pages.css",
            get(|h: HeaderMap| async move { STYLES.serve(&h) }),
            "The pages' styles",
            "text/css",
        )
        .asset("/tessera/icon.svg", get(|h: HeaderMap| async move { ICON.serve(&h) }), "The icon", "image/svg+xml");
    router.0 = router.0.route("/", get(root));
    router.0.get_openapi_mut().paths.add_path_operation("/", vec![HttpMethod::Get], root_doc());
    if let Some(signup) = pages.signup {
        let signup_page = get(move |q: ReturnQuery| async move { html(&signup, return_to(q)) });
        router = router.page("/signup", signup_page, "The sign-up page (only while sign-up is open)", true);
    }
    router.0
}

/// Routes whose handlers are closures over the rendered pages, described here as they are
/// routed (`#[utoipa::path]` describes named functions only).
struct Documented(OpenApiRouter<AppState>);

impl Documented {
    fn page(mut self, path: &str, handler: MethodRouter<AppState>, summary: &str, return_to: bool) -> Self {
        let mut op = OperationBuilder::new()
            .operation_id(Some(operation_id(path)))
            .tag("pages")
            .summary(Some(summary))
            .response("200", content_response("The page", "text/html"));
        if return_to {
            op = op.parameter(
                ParameterBuilder::new()
                    .name("return_to")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some("Where to go after success: a path on this origin; anything else is ignored."))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        self.0 = self.0.route(path, handler);
        self.0.get_openapi_mut().paths.add_path_operation(path, vec![HttpMethod::Get], op.build());
        self
    }

    fn asset(mut self, path: &str, handler: MethodRouter<AppState>, summary: &str, media: &str) -> Self {
        let op = OperationBuilder::new()
            .operation_id(Some(operation_id(path)))
            .tag("pages")
            .summary(Some(summary))
            .description(Some("Cacheable with an `ETag`; `If-None-Match` with it answers 304."))
            .parameter(
                ParameterBuilder::new()
                    .name("If-None-Match")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            )
            .response("200", content_response("The file", media))
            .response("304", ResponseBuilder::new().description("Not modified").build());
        self.0 = self.0.route(path, handler);
        self.0.get_openapi_mut().paths.add_path_operation(path, vec![HttpMethod::Get], op.build());
        self
    }
}

/// `/tessera/pages.js` → `page_tessera_pages_js`.
fn operation_id(path: &str) -> String {
    format!("page_{}", path.trim_start_matches('/').replace(['/', '.'], "_"))
}

fn content_response(description: &str, media: &str) -> utoipa::openapi::Response {
    let text = ObjectBuilder::new().schema_type(Type::String);
    ResponseBuilder::new()
        .description(description)
        .content(media, ContentBuilder::new().schema(Some(text)).build())
        .build()
}

fn root_doc() -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .operation_id(Some("page_root"))
        .tag("pages")
        .summary(Some("To the account page when signed in, else to the login page"))
        .response("303", ResponseBuilder::new().description("`Location`: `/account` or `/login`").build())
        .build()
}

type ReturnQuery = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The query's `return_to` when it is a path on this origin; anything else is dropped.
fn return_to(query: ReturnQuery) -> Option<String> {
    query.ok()?.0.get("return_to").and_then(|r| safe_return_to(r)).map(str::to_owned)
}

/// A page; `return_to` goes into a data attribute the page script reads.
fn html(template: &str, return_to: Option<String>) -> Response {
    let body = template.replace("{return_to}", &escape(return_to.as_deref().unwrap_or_default()));
    let mut headers = security_headers();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // The pages are tiny and rendered per request; a shared cache has no business keeping them.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (StatusCode::OK, headers, body).into_response()
}

fn security_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(COOP.clone(), HeaderValue::from_static("same-origin"));
    h
}

/// `GET /`: to `/account` for a caller with a valid credential, else to `/login`.
async fn root(State(state): State<AppState>, mut parts: Parts) -> Response {
    let signed_in = Caller::from_request_parts(&mut parts, &state).await.is_ok();
    let to = if signed_in { "/account" } else { "/login" };
    (StatusCode::SEE_OTHER, [(LOCATION, to), (CACHE_CONTROL, "no-store")]).into_response()
}

/// `raw` if it is a path on this origin, else `None`: an open redirect after login would let
/// a phishing link send a freshly logged-in user anywhere. Browsers read `//host` and `/\host`
/// as another host, drop tabs and newlines before parsing, and resolve `..`; so a single
/// leading `/`, no backslash, no control character, no empty or dot segment.
pub fn safe_return_to(raw: &str) -> Option<&str> {
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    let dots = |seg: &str| matches!(seg.to_ascii_lowercase().replace("%2e", ".").as_str(), "." | "..");
    let ok = raw.len() <= 2048
        && path.starts_with('/')
        && !path.contains("//")
        && !raw.chars().any(|c| c == '\\' || c.is_control())
        && !path.split('/').any(dots);
    ok.then_some(raw)
}

/// HTML-escapes text for element content and quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A static file with a strong ETag (a hash of its content). `no-cache` makes browsers ask
/// each time, and the answer is a bodiless 304 until a new tessera ships a new file: a page
/// never runs a stale client against a newer server.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let hash = TokenHash::of(body.as_bytes());
        let etag = format!("\"{}\"", &b64(hash.as_bytes())[..22]);
        Self { body, content_type, etag }
    }

    fn serve(&self, request: &HeaderMap) -> Response {
        let mut h = HeaderMap::new();
        h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // A public file, fetched without credentials: other origins may import the module.
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(ETAG, v);
        }
        let matches = request
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == self.etag || t.trim() == "*");
        if matches {
            return (StatusCode::NOT_MODIFIED, h).into_response();
        }
        h.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        (StatusCode::OK, h, self.body).into_response()
    }
}

static CLIENT: LazyLock<Asset> = LazyLock::new(|| Asset::new(CLIENT_JS, "text/javascript; charset=utf-8"));
static PAGES_SCRIPT: LazyLock<Asset> = LazyLock::new(|| Asset::new(PAGES_JS, "text/javascript; charset=utf-8"));
static STYLES: LazyLock<Asset> = LazyLock::new(|| Asset::new(PAGES_CSS, "text/css; charset=utf-8"));
static ICON: LazyLock<Asset> = LazyLock::new(|| Asset::new(ICON_SVG, "image/svg+xml"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_accepts_paths_on_this_origin() {
        for ok in ["/", "/account", "/app/x?y=1#z", "/a/b.c/d", "/%2F%2Fevil.example"] {
            assert_eq!(safe_return_to(ok), Some(ok), "{ok}");
        }
    }

    #[test]
    fn return_to_refuses_other_origins_and_tricks() {
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/\n/evil.example",
            "/..//evil.example",
            "/./",
            "/a//b",
            "evil.example",
            "",
            " /account",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_title_is_escaped() {
        let pages = Pages::new("<b>\"Acme\"</b>", true, false);
        assert!(pages.login.contains("&lt;b&gt;&quot;Acme&quot;&lt;/b&gt;"));
        assert!(!pages.login.contains("<b>"));
    }

    #[test]
    fn templates_have_no_inline_script_or_style() {
        for page in [LAYOUT, LOGIN, SIGNUP, ACCOUNT] {
            assert!(!page.contains(" style="), "inline style attribute");
            assert!(!page.contains("<style"), "inline style element");
            let handler = page.match_indices(" on").any(|(i, _)| {
                let rest = &page[i + 3..];
                let name_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
                name_len > 0 && rest[name_len..].starts_with('=')
            });
            assert!(!handler, "inline event handler");
            assert!(page.matches("<script").count() == page.matches("<script type=\"module\" src=").count());
        }
    }
}
