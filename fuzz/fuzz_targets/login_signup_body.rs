//! The JSON bodies of `POST /v1/login` and `POST /v1/accounts`, through the real extractor
//! (`ApiJson`: content type, axum's JSON rejection, tessera's problem+json mapping), then the
//! fields through what the handlers do with them before any hashing: username
//! canonicalisation and password normalisation. Bad input is a 4xx, never a panic or a 5xx.
#![no_main]

use axum::body::Body;
use axum::extract::FromRequest as _;
use axum::http::Request;
use axum::response::IntoResponse as _;
use futures_util::FutureExt as _;
use libfuzzer_sys::fuzz_target;
use tessera_core::{Password, Username};
use tessera_server::http::extract::ApiJson;
use tessera_server::http::routes::accounts::SignUp;
use tessera_server::http::routes::login::Login;

#[derive(serde::Deserialize)]
struct Fields {
    username: String,
    password: String,
}

fn request(path: &str, body: &[u8]) -> Request<Body> {
    Request::post(path).header("content-type", "application/json").body(Body::from(body.to_vec())).unwrap()
}

fn check<T: serde::de::DeserializeOwned>(path: &str, data: &[u8]) -> bool {
    let extracted = ApiJson::<T>::from_request(request(path, data), &()).now_or_never().expect("a full body is ready");
    match extracted {
        Ok(_) => true,
        Err(e) => {
            let status = e.into_response().status();
            assert!(status.is_client_error(), "{path}: {status} for a bad body");
            false
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let login = check::<Login>("/v1/login", data);
    let signup = check::<SignUp>("/v1/accounts", data);
    assert_eq!(login, signup, "the two bodies have the same shape");
    if login {
        // The two fields, read as the handlers' types read them (a `serde_json::Value` would
        // refuse numbers it cannot hold, such as 1e999 in an ignored member).
        let body: Fields = serde_json::from_slice(data).expect("an accepted body has a username and a password");
        assert!(std::str::from_utf8(data).is_ok(), "an accepted body is UTF-8");
        assert_eq!(data.trim_ascii_start().first(), Some(&b'{'), "an accepted body is an object");
        let _ = Username::parse(&body.username);
        let presented = Password::presented(body.password.clone());
        let _ = Password::new_choice(body.password);
        assert_eq!(format!("{presented:?}"), "Password([redacted])");
    }
});
