//! Forged and altered versions of a genuine tessera token — the attack cases of
//! `crates/tessera-jwt/tests` that can be built from the outside, without tessera's private
//! key: every one must be refused by tessera and by a service alike.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn part(token: &str, i: usize) -> Value {
    let text = token.split('.').nth(i).expect("part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).expect("base64url")).expect("JSON")
}

/// `token` with its header (0) or payload (1) replaced by `value`, the signature kept.
fn with_part(token: &str, i: usize, value: &Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[i] = b64(value.to_string().as_bytes());
    parts.join(".")
}

fn header_with(token: &str, member: &str, value: Value) -> String {
    let mut header = part(token, 0);
    header[member] = value;
    with_part(token, 0, &header)
}

fn payload_with(token: &str, member: &str, value: Value) -> String {
    let mut payload = part(token, 1);
    payload[member] = value;
    with_part(token, 1, &payload)
}

/// What each case is, and the token. `foreign` is a genuine token of another tessera (other
/// keys, same issuer and audience); `other_user` a user id of that other tessera.
pub fn forgeries(token: &str, foreign: &str, other_user: &str) -> Vec<(&'static str, String)> {
    let payload = part(token, 1);
    let sig = token.rsplit('.').next().expect("signature").to_owned();
    let unsigned = token.rsplit_once('.').expect("parts").0;
    let none = header_with(token, "alg", json!("none"));
    vec![
        ("another user in the payload", payload_with(token, "sub", json!(other_user))),
        ("a later exp", payload_with(token, "exp", json!(payload["exp"].as_i64().unwrap_or(0) + 3600))),
        ("an extra claim", payload_with(token, "admin", json!(true))),
        ("another issuer", payload_with(token, "iss", json!("http://attacker.example"))),
        ("another audience", payload_with(token, "aud", json!("someone-else"))),
        ("alg none, no signature", format!("{}.", none.rsplit_once('.').expect("parts").0)),
        ("alg none, signature kept", none),
        ("alg HS256", header_with(token, "alg", json!("HS256"))),
        ("alg eddsa in lower case", header_with(token, "alg", json!("eddsa"))),
        ("a kid that is a path", header_with(token, "kid", json!("../../etc/passwd"))),
        ("a jku header", header_with(token, "jku", json!("https://attacker.example/jwks"))),
        ("a jwk header", header_with(token, "jwk", json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}))),
        ("a crit header", header_with(token, "crit", json!(["exp"]))),
        ("typ JWT", header_with(token, "typ", json!("JWT"))),
        ("the signature cut short", token[..token.len() - 4].to_owned()),
        ("no signature", format!("{unsigned}.")),
        ("two signatures", format!("{token}.{sig}")),
        ("padded base64", format!("{token}==")),
        ("another tessera's token", foreign.to_owned()),
        ("a session token's shape", "A".repeat(87)),
        ("garbage", "not-a-token".to_owned()),
        ("9 KiB", format!("{}.{}.{sig}", b64(b"{}"), "A".repeat(9 * 1024))),
    ]
}
