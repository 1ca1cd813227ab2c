//! The web pages and `/tessera.js` (what a browser is served; their behaviour in a real
//! browser is tests/browser): headers a strict page needs, `/` redirecting by sign-in state,
//! `return_to` limited to this origin, the settings that title and turn off the pages, and
//! the client module's ETag.

use reqwest::StatusCode;

use crate::helpers::*;

const PAGES: [&str; 3] = ["/login", "/signup", "/account"];

#[tokio::test]
async fn pages_are_html_with_a_strict_policy() {
    let app = spawn_app().await;
    for path in PAGES {
        let r = app.send(app.get(path)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"), "{path}");
        let csp = r.header("content-security-policy").expect("a CSP");
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains('*'), "{csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert!(r.text.contains("<script type=\"module\" src=\"/tessera/pages.js\">"), "{path}");
    }
}

#[tokio::test]
async fn root_sends_a_visitor_to_login_and_a_signed_in_user_to_account() {
    let app = spawn_app().await;
    let r = app.send(app.get("/")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/login"));

    app.create_user("alice").await;
    let login = app.login_cookie("alice", PASSWORD).await;
    let r = app.send(app.get("/").cookies(&login.cookies)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/account"));
}

#[tokio::test]
async fn login_keeps_a_same_origin_return_to_and_drops_any_other() {
    let app = spawn_app().await;
    let app = &app;
    let page = |q: &'static str| async move { app.send(app.get(&format!("/login?return_to={q}"))).await.text };
    assert!(page("%2Fapp%2Finbox%3Ftab%3D2").await.contains("data-return-to=\"/app/inbox?tab=2\""));
    for evil in ["https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example", "%2F%5Cevil.example", "javascript%3Aalert(1)"] {
        let html = page(evil).await;
        assert!(html.contains("data-return-to=\"\""), "{evil}");
        assert!(!html.contains("evil.example") && !html.contains("javascript:"), "{evil}");
    }
    // Attribute context: quotes cannot break out.
    assert!(page("%2Fa%22%3E%3Cscript%3E").await.contains("data-return-to=\"/a&quot;&gt;&lt;script&gt;\""));
}

#[tokio::test]
async fn pages_carry_the_configured_title_and_hide_sign_up_when_it_is_closed() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\nsignup = false\n[pages]\ntitle = \"Acme <Login>\"\n").await;
    let r = app.send(app.get("/login")).await;
    assert!(r.text.contains("<title>Log in · Acme &lt;Login&gt;</title>"), "{}", r.text);
    assert!(r.text.contains("data-signup=\"false\""));
    assert_eq!(app.send(app.get("/signup")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_can_be_turned_off_and_the_client_module_stays() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\n[pages]\nenabled = false\n").await;
    for path in ["/", "/login", "/signup", "/account", "/tessera/pages.js"] {
        assert_eq!(app.send(app.get(path)).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(app.send(app.get("/tessera.js")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn pages_need_the_cookie_transport() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\ntransports = [\"bearer\"]\n").await;
    assert_eq!(app.send(app.get("/login")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_client_module_has_an_etag_and_answers_304_to_it() {
    let app = spawn_app().await;
    let r = app.send(app.get("/tessera.js")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.text.contains("tessera.js") && r.text.contains("/v1/refresh"));
    assert!(r.text.len() < 8 * 1024, "{} bytes", r.text.len());
    let etag = r.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");

    let again = app.send(app.get("/tessera.js").header("if-none-match", &etag)).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.text.is_empty());
    let other = app.send(app.get("/tessera.js").header("if-none-match", "\"something-else\"")).await;
    assert_eq!(other.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_title_settings_are_refused_naming_the_key() {
    for toml in ["[pages]\ntitle = \"\"", "[pages]\ntitle = \"a\\nb\"", "[pages]\nenabeld = true"] {
        let e = tessera_server::config::Config::from_toml(toml).unwrap_err().to_string();
        assert!(e.contains("pages") || e.contains("enabeld"), "{toml}: {e}");
    }
}
