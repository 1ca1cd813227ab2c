//! `POST /v1/accounts`: sign-up, username normalisation, password length rules.

use serde_json::json;

use crate::helpers::{PASSWORD, is_b64url, spawn_app, spawn_app_with};

#[tokio::test]
async fn signup_returns_201_with_id_and_normalised_username_only() {
    let app = spawn_app().await;
    let reply = app.signup("Alice", PASSWORD).await;
    reply.assert_status(201);
    let body = reply.json();
    let obj = body.as_object().expect("an object");
    assert_eq!(obj.len(), 2, "only id and username, never a hash: {body}");
    assert_eq!(body["username"], "alice");
    let id = body["id"].as_str().expect("id is a string");
    assert!(is_b64url(id, 22), "id is 22 characters of base64url: {id}");
}

#[tokio::test]
async fn signup_ids_differ_between_accounts() {
    let app = spawn_app().await;
    let a = app.create_user("alice").await;
    let b = app.create_user("bob").await;
    assert_ne!(a["id"], b["id"]);
}

#[tokio::test]
async fn signup_with_taken_username_is_409_whatever_the_case() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.signup("alice", PASSWORD).await.assert_problem(409, "username-taken");
    app.signup("ALICE", PASSWORD).await.assert_problem(409, "username-taken");
}

#[tokio::test]
async fn signup_with_fullwidth_form_of_taken_username_is_409() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    // NFKC maps fullwidth letters to ASCII: one account, not a look-alike second one.
    app.signup("ＡＬＩＣＥ", PASSWORD).await.assert_problem(409, "username-taken");
}

#[tokio::test]
async fn signup_normalises_fullwidth_username_to_ascii_lowercase() {
    let app = spawn_app().await;
    let reply = app.signup("Ｂｏｂ", PASSWORD).await;
    reply.assert_status(201);
    assert_eq!(reply.json()["username"], "bob");
}

#[tokio::test]
async fn signup_with_bad_username_is_400() {
    let app = spawn_app().await;
    let too_long = "x".repeat(65);
    for bad in ["ab", "", too_long.as_str(), "al ice", "al\u{7}ice", "tab\tbed", "new\nline"] {
        app.signup(bad, PASSWORD).await.assert_problem(400, "invalid-request");
    }
}

#[tokio::test]
async fn signup_accepts_usernames_of_3_and_64_characters() {
    let app = spawn_app().await;
    app.signup("abc", PASSWORD).await.assert_status(201);
    app.signup(&"y".repeat(64), PASSWORD).await.assert_status(201);
}

#[tokio::test]
async fn signup_with_password_shorter_than_8_bytes_is_400() {
    let app = spawn_app().await;
    app.signup("alice", "1234567").await.assert_problem(400, "invalid-request");
    // Three characters, six bytes: the rule counts bytes.
    app.signup("alice", "ééé").await.assert_problem(400, "invalid-request");
    app.signup("alice", "").await.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn signup_with_password_longer_than_1024_bytes_is_400() {
    let app = spawn_app().await;
    app.signup("alice", &"p".repeat(1025)).await.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn signup_accepts_passwords_of_8_and_1024_bytes() {
    let app = spawn_app().await;
    app.signup("alice", "12345678").await.assert_status(201);
    app.signup("bob", "éééé").await.assert_status(201);
    app.signup("carol", &"p".repeat(1024)).await.assert_status(201);
    app.login_bearer("carol", &"p".repeat(1024)).await;
    app.login_bearer("bob", "éééé").await;
}

#[tokio::test]
async fn signup_is_403_when_signup_is_closed() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\nsignup = false\n").await;
    app.signup("alice", PASSWORD).await.assert_problem(403, "signup-closed");
}

#[tokio::test]
async fn signup_with_non_string_fields_is_400() {
    let app = spawn_app().await;
    let reply = app.send(app.post("/v1/accounts").json(&json!({"username": 5, "password": PASSWORD}))).await;
    reply.assert_problem(400, "invalid-request");
    let reply = app.send(app.post("/v1/accounts").json(&json!({"username": "alice", "password": null}))).await;
    reply.assert_problem(400, "invalid-request");
}
