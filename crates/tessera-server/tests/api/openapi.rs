//! `GET /openapi.json`: an OpenAPI 3.1 document that covers every route the server has, every
//! method on it, and describes each error as problem+json. The routed paths come from the
//! router itself (its `Debug` form lists them) and the methods from asking the running server,
//! so a route added without a description fails here. What the server answers is checked
//! against the document by Schemathesis (`tests/schemathesis.rs`).

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;
use tessera_server::http::pages::Pages;

use crate::helpers::{TestApp, spawn_app_with};

const ADMIN_KEY: &str = "an-admin-key-of-decent-length-0123456789";

/// Session mode with the admin endpoints on, sign-up open and the pages served: every route.
fn every_route_toml() -> String {
    format!(
        "[auth]\nmode = \"session\"\nsignup = true\n[admin]\napi_key = \"{ADMIN_KEY}\"\n[metrics]\naccess = \"open\"\n"
    )
}

/// The paths the router routes, read from its `Debug` form (axum has no other way to list
/// them): `RouteId(3): "/v1/me"`, one per route.
fn routed_paths() -> BTreeSet<String> {
    let (router, _) = tessera_server::http::api(Some(Pages::new("tessera", true, false)), true);
    let debug = format!("{router:?}");
    let mut paths = BTreeSet::new();
    let mut rest = debug.as_str();
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at..];
        let Some(open) = rest.find(": \"") else { break };
        let after = &rest[open + 3..];
        let Some(close) = after.find('"') else { break };
        // Only `RouteId(n): "path"` pairs; `RouteId(n): Endpoint…` are the handlers.
        // The catch-all of axum's fallback is no route of ours.
        if rest[..open].ends_with(')') && !rest[..open].contains(' ') && !after[..close].contains("__private__axum") {
            paths.insert(after[..close].to_owned());
        }
        rest = &rest["RouteId(".len()..];
    }
    assert!(
        paths.contains("/v1/login") && paths.contains("/openapi.json"),
        "could not read the routes from the router's Debug form (did axum change it?): {paths:?}"
    );
    paths
}

async fn document(app: &TestApp) -> Value {
    let reply = app.send(app.get("/openapi.json")).await;
    reply.assert_status(200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    reply.json()
}

/// `{id}` and the like, filled in so the request reaches the route.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "AAAAAAAAAAAAAAAAAAAAAA" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn every_routed_path_and_method_is_documented() {
    let app = spawn_app_with(&every_route_toml()).await;
    let doc = document(&app).await;
    let documented = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for path in routed_paths() {
        for method in METHODS {
            let reply = app
                .send(app.req(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), &concrete(&path)))
                .await;
            let fallback = reply.status == 404 && reply.json()["detail"] == "no such path";
            assert!(!fallback, "{path} is in the router but the server does not route it");
            let routed = reply.status != 405;
            let described = documented.get(&path).is_some_and(|item| item.get(method).is_some());
            if routed != described {
                missing.push(format!("{} {path}: routed {routed}, documented {described}", method.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "the router and /openapi.json disagree:\n{}", missing.join("\n"));
    let routed = routed_paths();
    let extra: Vec<_> = documented.keys().filter(|p| !routed.contains(*p)).collect();
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_problems_and_security_schemes() {
    let app = spawn_app_with(&every_route_toml()).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    for name in ["bearer", "session_cookie", "access_cookie", "refresh_cookie", "csrf_token", "admin_key", "feed_key"] {
        assert!(schemes.contains_key(name), "security scheme {name} missing: {schemes:?}");
    }
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "__Host-tessera-session");
    assert_eq!(schemes["csrf_token"]["name"], "X-CSRF-Token");
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            let responses = op["responses"].as_object().expect("responses");
            for status in ["408", "431", "500"] {
                assert!(responses.contains_key(status), "{method} {path}: no {status}");
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/Problem", "{method} {path} {status}: {response}");
                }
            }
        }
    }
    // What needs a credential says which.
    assert!(doc["paths"]["/v1/me"]["get"]["security"].as_array().is_some_and(|s| !s.is_empty()));
    assert_eq!(doc["paths"]["/v1/introspect"]["post"]["security"], serde_json::json!([{"admin_key": []}]));
}

#[tokio::test]
async fn the_document_follows_the_configuration() {
    // Without the pages (or their cookie transport), and with insecure cookies, the document
    // says what this server does: no page paths, cookie names without `__Host-`.
    let toml = "[auth]\nmode = \"session\"\n[pages]\nenabled = false\n[cookie]\nsecure = false\n";
    let app = spawn_app_with(toml).await;
    let doc = document(&app).await;
    assert!(doc["paths"].get("/login").is_none(), "pages are off");
    assert!(doc["paths"].get("/tessera.js").is_some(), "the client module is always served");
    assert!(doc["paths"].get("/metrics").is_none(), "metrics are off by default");
    assert_eq!(doc["components"]["securitySchemes"]["session_cookie"]["name"], "tessera-session");

    // With metrics on, the scrape endpoint is described with what it serves.
    let app = spawn_app_with("[auth]\nmode = \"session\"\n[metrics]\naccess = \"open\"\n").await;
    let doc = document(&app).await;
    let scrape = &doc["paths"]["/metrics"]["get"];
    assert!(
        scrape["responses"]["200"]["content"]["application/openmetrics-text; version=1.0.0; charset=utf-8"].is_object(),
        "{scrape}"
    );
    let reply = app.send(app.get("/metrics")).await;
    reply.assert_status(200);
    assert_eq!(reply.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
}

#[tokio::test]
async fn every_documented_operation_is_in_the_readme_api_table() {
    let app = spawn_app_with(&every_route_toml()).await;
    let doc = document(&app).await;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README.md");
    let start = readme.find("\n## HTTP API\n").expect("README has an HTTP API section");
    let section = &readme[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS.into_iter().filter(|m| item.get(*m).is_some()) {
            let entry = format!("`{} {path}`", method.to_uppercase());
            if !section.contains(&entry) {
                missing.push(entry);
            }
        }
    }
    assert!(missing.is_empty(), "README's HTTP API section does not list {missing:?}");
}
