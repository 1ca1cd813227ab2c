//! Bad input gets a clear 4xx problem, never a 500, a panic or a hang: malformed JSON, wrong
//! content types, oversized bodies and headers, invalid UTF-8, slow clients, random tokens.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::header::HeaderValue;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{PASSWORD, SESSION_COOKIE, SESSION_TOML, TestApp, WithCookies, spawn_app, spawn_app_with};

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> crate::helpers::Reply {
    app.send(app.post(path).header("content-type", content_type).body(body)).await
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    for path in ["/v1/accounts", "/v1/login"] {
        for body in ["{", "{\"username\": \"alice\",}", "[]", "null", "\"alice\"", ""] {
            post_raw(&app, path, "application/json", body).await.assert_problem(400, "invalid-request");
        }
    }
}

/// Found by the `login_signup_body` fuzz target: serde_json skips a member the body type does
/// not have without checking its UTF-8, so such a body was accepted although it is no JSON.
#[tokio::test]
async fn a_body_that_is_not_utf8_is_400_even_inside_an_unknown_member() {
    let app = spawn_app().await;
    for path in ["/v1/accounts", "/v1/login"] {
        let body = b"{\"userName\":\"\xe1\",\"username\":\"bob\",\"password\":\"p9999999\"}".to_vec();
        post_raw(&app, path, "application/json", body).await.assert_problem(400, "invalid-request");
    }
}

/// Found by the `login_signup_body` fuzz target: serde's derived structs also read an array
/// of the field values, so `["alice","secret"]` was a login body.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_400() {
    let app = spawn_app().await;
    app.signup("alice", PASSWORD).await.assert_status(201);
    for path in ["/v1/accounts", "/v1/login"] {
        for body in [json!(["alice", PASSWORD]), json!(["bob", PASSWORD])] {
            app.send(app.post(path).json(&body)).await.assert_problem(400, "invalid-request");
        }
    }
}

#[tokio::test]
async fn missing_field_is_400() {
    let app = spawn_app().await;
    for path in ["/v1/accounts", "/v1/login"] {
        for body in [json!({"username": "alice"}), json!({"password": PASSWORD}), json!({})] {
            app.send(app.post(path).json(&body)).await.assert_problem(400, "invalid-request");
        }
    }
}

#[tokio::test]
async fn body_over_64_kib_is_413() {
    let app = spawn_app().await;
    let padding = "x".repeat(64 * 1024);
    let body = json!({"username": "alice", "password": PASSWORD, "padding": padding}).to_string();
    assert!(body.len() > 64 * 1024);
    for path in ["/v1/accounts", "/v1/login"] {
        post_raw(&app, path, "application/json", body.clone()).await.assert_problem(413, "payload-too-large");
    }
    // The form bodies (token revocation, RFC 7009) are held to the same limit.
    let form = format!("token={}", "x".repeat(64 * 1024));
    post_raw(&app, "/v1/revoke", "application/x-www-form-urlencoded", form)
        .await
        .assert_problem(413, "payload-too-large");
}

#[tokio::test]
async fn chunked_body_over_64_kib_is_413() {
    // No Content-Length to check up front: the limit must hold while the body streams in.
    let app = spawn_app().await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    let mut request = b"POST /v1/accounts HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    let chunk = "x".repeat(8 * 1024);
    request.extend_from_slice(format!("{:x}\r\n{{\"username\": \"{chunk}\r\n", chunk.len() + 14).as_bytes());
    for _ in 0..9 {
        request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer before reading everything; a failed write is not the point.
    let _ = stream.write_all(&request).await;
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received)).await;
    let answer = String::from_utf8_lossy(&received);
    assert!(answer.starts_with("HTTP/1.1 413"), "a 413 answer: {answer:?}");
    assert!(answer.contains("urn:tessera:problem:payload-too-large"), "{answer:?}");
}

#[tokio::test]
async fn body_just_under_64_kib_is_not_413() {
    let app = spawn_app().await;
    // Same shape as above, within the limit: the answer is about the content, not the size.
    let username = "u".repeat(60 * 1024);
    let body = json!({"username": username, "password": PASSWORD}).to_string();
    assert!(body.len() < 64 * 1024);
    post_raw(&app, "/v1/accounts", "application/json", body).await.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn non_json_content_type_is_415() {
    let app = spawn_app().await;
    let body = json!({"username": "alice", "password": PASSWORD}).to_string();
    for path in ["/v1/accounts", "/v1/login"] {
        for ct in ["text/plain", "application/x-www-form-urlencoded", "application/xml"] {
            post_raw(&app, path, ct, body.clone()).await.assert_problem(415, "unsupported-media-type");
        }
    }
}

#[tokio::test]
async fn json_like_content_types_and_other_charsets_are_415() {
    // Before: axum took any application/*+json and ignored the charset.
    let app = spawn_app().await;
    let body = json!({"username": "alice", "password": PASSWORD}).to_string();
    for ct in [
        "application/json; charset=utf-16",
        "application/json; charset=iso-8859-1",
        "application/vnd.api+json",
        "application/problem+json",
        "text/json",
        "application/x-json",
    ] {
        for path in ["/v1/accounts", "/v1/login"] {
            post_raw(&app, path, ct, body.clone()).await.assert_problem(415, "unsupported-media-type");
        }
    }
    post_raw(&app, "/v1/accounts", "application/json", body).await.assert_status(201);
}

#[tokio::test]
async fn the_rfc_endpoints_take_only_form_bodies() {
    let app = spawn_app().await;
    for ct in ["application/x-www-form-urlencoded; charset=utf-16", "multipart/form-data", "text/plain"] {
        post_raw(&app, "/v1/revoke", ct, "token=abc").await.assert_problem(415, "unsupported-media-type");
    }
    post_raw(&app, "/v1/revoke", "application/x-www-form-urlencoded; charset=UTF-8", "token=abc")
        .await
        .assert_status(200);
}

#[tokio::test]
async fn missing_content_type_is_415() {
    let app = spawn_app().await;
    let body = json!({"username": "alice", "password": PASSWORD}).to_string();
    app.send(app.post("/v1/accounts").body(body)).await.assert_problem(415, "unsupported-media-type");
}

#[tokio::test]
async fn json_content_type_with_charset_is_accepted() {
    let app = spawn_app().await;
    let body = json!({"username": "alice", "password": PASSWORD}).to_string();
    post_raw(&app, "/v1/accounts", "application/json; charset=utf-8", body).await.assert_status(201);
}

#[tokio::test]
async fn invalid_utf8_body_is_400() {
    let app = spawn_app().await;
    let mut body = b"{\"username\": \"al".to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    body.extend_from_slice(format!("ice\", \"password\": \"{PASSWORD}\"}}").as_bytes());
    for path in ["/v1/accounts", "/v1/login"] {
        post_raw(&app, path, "application/json", body.clone()).await.assert_problem(400, "invalid-request");
    }
}

#[tokio::test]
async fn password_body_with_wrong_types_is_400() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let login = app.login_bearer("alice", PASSWORD).await;
    let reply = app
        .send(
            app.post("/v1/password")
                .bearer(&login.token)
                .header("content-type", "application/json")
                .body("{\"current_password\": 1, \"new_password\": [] }"),
        )
        .await;
    reply.assert_problem(400, "invalid-request");
    let reply =
        app.send(app.post("/v1/password").bearer(&login.token).header("content-type", "text/plain").body("{}")).await;
    reply.assert_problem(415, "unsupported-media-type");
}

#[tokio::test]
async fn headers_over_16_kib_are_refused_with_431_or_a_closed_connection() {
    let app = spawn_app().await;
    let big = "a".repeat(20 * 1024);
    match app.client.get(app.url("/healthz")).header("x-padding", big).send().await {
        Ok(resp) => {
            let reply = crate::helpers::Reply::from(resp).await;
            assert_eq!(reply.status.as_u16(), 431, "{}", reply.text);
            if !reply.text.is_empty() {
                reply.assert_problem(431, "headers-too-large");
            }
        }
        Err(e) => assert!(!e.is_timeout(), "refused by closing, not by hanging: {e}"),
    }
    // Many small headers adding up to more than 16 KiB count too.
    let mut rb = app.client.get(app.url("/healthz"));
    for i in 0..40 {
        rb = rb.header(format!("x-pad-{i}"), "b".repeat(512));
    }
    match rb.send().await {
        Ok(resp) => assert_eq!(resp.status().as_u16(), 431),
        Err(e) => assert!(!e.is_timeout(), "refused by closing, not by hanging: {e}"),
    }
    // The server is still fine.
    app.send(app.get("/healthz")).await.assert_status(200);
}

#[tokio::test]
async fn unknown_path_is_404_problem() {
    let app = spawn_app().await;
    for path in ["/nope", "/v1/nope", "/v2/login", "/v1/me/extra"] {
        app.send(app.get(path)).await.assert_problem(404, "not-found");
    }
}

#[tokio::test]
async fn wrong_method_is_405_problem() {
    let app = spawn_app().await;
    app.send(app.get("/v1/login")).await.assert_problem(405, "method-not-allowed");
    app.send(app.get("/v1/accounts")).await.assert_problem(405, "method-not-allowed");
    app.send(app.delete("/v1/me")).await.assert_problem(405, "method-not-allowed");
    app.send(app.get("/v1/logout")).await.assert_problem(405, "method-not-allowed");
}

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let app = spawn_app().await;
    app.send(app.get("/healthz")).await.assert_status(200);
    app.send(app.get("/readyz")).await.assert_status(200);
}

#[tokio::test]
async fn client_stalling_in_headers_is_disconnected_after_header_timeout() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\n[server]\nheader_timeout = \"1s\"\n").await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.expect("write partial headers");
    let start = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    let elapsed = start.elapsed();
    assert!(read.is_ok(), "the server closes a stalled connection within 5 s");
    assert!(elapsed >= Duration::from_millis(500), "not before the header timeout: closed after {elapsed:?}");
    // Closing silently or answering 408 are both fine; anything else is not.
    if !received.is_empty() {
        let head = String::from_utf8_lossy(&received);
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    }
}

#[tokio::test]
async fn keep_alive_connection_idle_after_its_answer_is_closed_after_header_timeout() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\n[server]\nheader_timeout = \"1s\"\n").await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    // Requests keep the connection open past the timeout as long as they keep coming.
    let mut buf = vec![0u8; 4096];
    for _ in 0..4 {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
        let n =
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("answered").expect("read");
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let start = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    let elapsed = start.elapsed();
    assert!(read.is_ok(), "the server closes an idle keep-alive connection within 5 s");
    assert!(rest.is_empty(), "nothing more is sent: {:?}", String::from_utf8_lossy(&rest));
    assert!(elapsed >= Duration::from_millis(500), "not before the header timeout: closed after {elapsed:?}");
}

#[tokio::test]
async fn client_stalling_in_the_body_gets_408_after_request_timeout() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\n[server]\nrequest_timeout = \"1s\"\n").await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(
            b"POST /v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\": ",
        )
        .await
        .expect("write headers and part of the body");
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server answers and closes within 5 s");
    let answer = String::from_utf8_lossy(&received);
    assert!(answer.starts_with("HTTP/1.1 408"), "a 408 answer: {answer:?}");
    assert!(answer.contains("urn:tessera:problem:request-timeout"), "a problem document: {answer:?}");
}

#[tokio::test]
async fn server_keeps_serving_after_a_stalled_client() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\n[server]\nheader_timeout = \"1s\"\n").await;
    let mut stalled = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    stalled.write_all(b"POST /v1/login HTTP/1.1\r\n").await.expect("write");
    app.send(app.get("/healthz")).await.assert_status(200);
    app.create_user("alice").await;
    app.login_bearer("alice", PASSWORD).await;
    drop(stalled);
}

/// Throws arbitrary values at the credential extractor: whatever arrives as the bearer token
/// or the session cookie, the answer is 401, never a 5xx or a panic.
#[test]
fn random_bearer_tokens_and_session_cookies_are_always_401() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let app = rt.block_on(spawn_app_with(SESSION_TOML));
    let mut runner = TestRunner::new(ProptestConfig { cases: 256, ..ProptestConfig::default() });

    let candidates = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[A-Za-z0-9_-]{87}".prop_map(String::into_bytes),
        // Right length and kind byte: parses as a token, then names no session.
        proptest::collection::vec(any::<u8>(), 64).prop_map(|rest| {
            let mut raw = vec![1u8];
            raw.extend(rest);
            tessera_core::secret::b64(&raw).into_bytes()
        }),
        ".{0,120}".prop_map(String::into_bytes),
    ];
    let result = runner.run(&candidates, |bytes| {
        let Ok(bearer) = HeaderValue::from_bytes(&[b"Bearer ".as_slice(), &bytes].concat()) else {
            return Ok(());
        };
        let cookie = HeaderValue::from_bytes(&[format!("{SESSION_COOKIE}=").as_bytes(), &bytes].concat())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (by_bearer, by_cookie) = rt.block_on(async {
            let a =
                app.send(app.get("/v1/me").header("authorization", bearer).header("tessera-transport", "bearer")).await;
            let b = app.send(app.get("/v1/me").header("cookie", cookie)).await;
            (a, b)
        });
        prop_assert_eq!(by_bearer.status.as_u16(), 401, "bearer {:?}: {}", bytes, by_bearer.text);
        prop_assert_eq!(by_cookie.status.as_u16(), 401, "cookie {:?}: {}", bytes, by_cookie.text);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(async move {
        let mut app = app;
        app.stop().await;
    });
}

/// Whatever strings arrive as username and password, sign-up and login answer with one of
/// their documented statuses, never a 5xx.
#[test]
fn random_signup_and_login_input_never_causes_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let app = rt.block_on(spawn_app_with(SESSION_TOML));
    let mut runner = TestRunner::new(ProptestConfig { cases: 64, ..ProptestConfig::default() });
    let input = (any::<String>(), prop_oneof![any::<String>(), ".{8,40}"]);
    let result = runner.run(&input, |(username, password)| {
        let (signup, login) = rt.block_on(async {
            let body = json!({"username": username, "password": password});
            let signup = app.send(app.post("/v1/accounts").json(&body)).await;
            let login = app.send(app.post("/v1/login").header("tessera-transport", "bearer").json(&body)).await;
            (signup, login)
        });
        prop_assert!(
            matches!(signup.status.as_u16(), 201 | 400 | 409),
            "sign-up {:?}: {} {}",
            username,
            signup.status,
            signup.text
        );
        // 429 once the per-IP allowance is used up by earlier failed cases.
        prop_assert!(
            matches!(login.status.as_u16(), 200 | 401 | 429),
            "login {:?}: {} {}",
            username,
            login.status,
            login.text
        );
        if signup.status.as_u16() == 201 {
            prop_assert!(matches!(login.status.as_u16(), 200 | 429), "a new account logs in: {}", login.text);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(async move {
        let mut app = app;
        app.stop().await;
    });
}
