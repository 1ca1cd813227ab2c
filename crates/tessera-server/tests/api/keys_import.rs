//! `tessera keys import` through the real binary: keys the test made (and keys `openssl`
//! made) go in as PEM or JWK, are stored sealed, listed, published, and the server then
//! issues tokens under them; every refusal exits non-zero with a message saying why, leaves
//! the store as it was, and never prints key material.

use std::process::{Command, Output};

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::forge::{TestKey, b64u, header_of, pem};
use crate::helpers::{PASSWORD, TestApp, bare_tessera, run_cmd, spawn_token_app};
use crate::token_helpers::{COMMAND_LIMIT, KEY_RELOAD, token_toml};

const SEAL: &str = "c2VhbC1rZXktZm9yLXRoZS1rZXlzLWltcG9ydC0wMTI";

/// A hybrid server signing with `alg`, its keys sealed.
async fn sealed_app(alg: &str) -> TestApp {
    let app = spawn_token_app(&token_toml("hybrid", &format!("[jwt]\nalg = \"{alg}\"\nseal_key = \"{SEAL}\"\n"))).await;
    app.create_user("alice").await;
    app
}

/// `tessera keys import - <args…>` with `input` on standard input, against `app`'s store.
async fn import_stdin(app: &TestApp, input: &str, args: &[&str]) -> Output {
    let config = app.config_file();
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut cmd: Command = bare_tessera(cwd.path());
    cmd.args(["keys", "import", "-"]).args(args).arg("--config").arg(&config);
    run_cmd(cmd, Some(input.to_owned()), COMMAND_LIMIT).await
}

/// `tessera keys import <file> <args…>`, the key written to a file first.
async fn import_file(app: &TestApp, input: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("key.pem");
    std::fs::write(&file, input).expect("write the key file");
    let mut all = vec!["keys", "import", file.to_str().expect("UTF-8 path")];
    all.extend_from_slice(args);
    app.cli(&all).await
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The kid a successful import printed: `imported <kid> (<alg>, sealed); …`.
fn imported_kid(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "keys import succeeds; status {:?}\nstdout: {stdout}\nstderr: {stderr}", out.status);
    let kid = stdout.strip_prefix("imported ").and_then(|rest| rest.split(' ').next());
    kid.unwrap_or_else(|| panic!("an 'imported <kid>' line: {stdout}")).to_owned()
}

/// Neither the output nor the error of the command contains the key's secret, in any of the
/// encodings it went in with.
fn assert_no_secret(out: &Output, key: &TestKey) {
    let (stdout, stderr) = text(out);
    let all = format!("{stdout}{stderr}");
    let secret = key.secret_core();
    for encoded in [b64u(&secret), base64_std(&secret), hex(&secret)] {
        assert!(!all.contains(&encoded[..20]), "the output shows the private key: {all}");
    }
    let pem_text = key.pkcs8_pem();
    for line in pem_text.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16) {
        assert!(!all.contains(line), "the output shows the PEM: {all}");
    }
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server's clock is a test clock that started when it did; the CLI used the system's.
/// Move the server's to the system time (and a second on), so a key activated "now" by the
/// CLI is active for it too.
fn catch_up(app: &TestApp) {
    let lag = OffsetDateTime::now_utc() - app.now();
    app.advance(lag.max(Duration::ZERO) + Duration::seconds(1));
}

/// After an `--activate-now` import of `kid`: the restarted server issues tokens under `kid`
/// signed by `key`, publishes the public half under `kid` (never an HS256 secret), lists it,
/// and stores it sealed.
async fn assert_signs_with(app: &mut TestApp, key: &TestKey, kid: &str) {
    catch_up(app);
    app.restart().await;
    let login = app.login_tokens("alice", PASSWORD).await;
    assert_eq!(header_of(&login.access)["kid"], kid, "the token names the imported key");
    assert!(key.signed(&login.access), "the token is signed by the imported key");
    app.me_bearer(&login.access).await.assert_status(200);

    let jwks = app.jwks().await;
    let published: Vec<&Value> = jwks["keys"].as_array().expect("keys").iter().filter(|k| k["kid"] == kid).collect();
    if key.alg == "HS256" {
        assert!(published.is_empty(), "an HS256 secret is never published: {jwks}");
    } else {
        let [jwk] = published.as_slice() else { panic!("the imported key is published once: {jwks}") };
        for (member, value) in key.public_jwk().as_object().expect("object") {
            assert_eq!(&jwk[member], value, "JWKS member {member}");
        }
        assert_eq!(jwk["alg"], key.alg);
        assert!(jwk.get("d").is_none() && jwk.get("p").is_none(), "no private member: {jwk}");
    }

    let listed = text(&app.cli_ok(&["keys", "list"]).await).0;
    let line =
        listed.lines().find(|l| l.starts_with(&format!("{kid}\t"))).unwrap_or_else(|| panic!("listed: {listed}"));
    assert!(line.contains(key.alg) && line.ends_with("\tsealed"), "{line}");

    // The row itself: sealed, and none of the private key's bytes in it.
    let backend = app.open_store().await;
    let keys = backend.store().keys().await.expect("read the keys");
    backend.close().await;
    let row = keys.iter().find(|k| k.kid == kid).expect("the imported row");
    assert!(row.sealed);
    let secret = key.secret_core();
    assert!(!row.private.windows(16).any(|w| secret.windows(16).any(|s| s == w)), "plaintext key bytes in the row");
    assert!(!row.private.windows(16).any(|w| key.private.windows(16).any(|s| s == w)), "plaintext PKCS#8 in the row");
}

async fn round_trip(alg: &'static str, input: impl Fn(&TestKey) -> String, via_file: bool) {
    let mut app = sealed_app(alg).await;
    let key = TestKey::generate(alg);
    let out = if via_file {
        import_file(&app, &input(&key), &["--activate-now"]).await
    } else {
        import_stdin(&app, &input(&key), &["--activate-now"]).await
    };
    assert_no_secret(&out, &key);
    let kid = imported_kid(&out);
    assert!(text(&out).0.contains(&format!("({alg}, sealed)")), "{}", text(&out).0);
    assert_signs_with(&mut app, &key, &kid).await;
}

fn jwk_text(key: &TestKey) -> String {
    key.private_jwk().to_string()
}

#[tokio::test]
async fn an_ed25519_pkcs8_pem_is_imported_sealed_and_signs() {
    round_trip("EdDSA", TestKey::pkcs8_pem, true).await;
}

#[tokio::test]
async fn an_es256_pkcs8_pem_is_imported_sealed_and_signs() {
    round_trip("ES256", TestKey::pkcs8_pem, false).await;
}

#[tokio::test]
async fn an_es256_sec1_pem_is_imported_sealed_and_signs() {
    round_trip("ES256", TestKey::sec1_pem, true).await;
}

#[tokio::test]
async fn an_rs256_pkcs8_and_pkcs1_pem_are_imported_sealed_and_sign() {
    round_trip("RS256", TestKey::pkcs8_pem, false).await;
    round_trip("RS256", TestKey::pkcs1_pem, true).await;
}

#[tokio::test]
async fn an_ed25519_jwk_is_imported_sealed_and_signs() {
    round_trip("EdDSA", jwk_text, false).await;
}

#[tokio::test]
async fn an_es256_jwk_is_imported_sealed_and_signs() {
    round_trip("ES256", jwk_text, true).await;
}

#[tokio::test]
async fn an_rs256_jwk_is_imported_sealed_and_signs() {
    round_trip("RS256", jwk_text, false).await;
}

#[tokio::test]
async fn an_hs256_jwk_is_imported_sealed_signs_and_is_never_published() {
    round_trip("HS256", jwk_text, false).await;
}

#[tokio::test]
async fn a_jwk_set_with_one_key_and_its_kid_is_imported_under_that_kid() {
    let mut app = sealed_app("EdDSA").await;
    let key = TestKey::generate("EdDSA");
    let mut jwk = key.private_jwk();
    jwk["kid"] = json!("from-the-jwk");
    jwk["use"] = json!("sig");
    jwk["alg"] = json!("EdDSA");
    let out = import_stdin(&app, &json!({ "keys": [jwk] }).to_string(), &["--activate-now"]).await;
    assert_eq!(imported_kid(&out), "from-the-jwk");
    assert_signs_with(&mut app, &key, "from-the-jwk").await;
}

#[tokio::test]
async fn the_default_kid_is_the_rfc_7638_thumbprint_and_kid_chooses_another() {
    let app = sealed_app("EdDSA").await;
    let key = TestKey::generate("EdDSA");
    let out = import_stdin(&app, &key.pkcs8_pem(), &[]).await;
    // RFC 7638 §3: SHA-256 over the required members in order, without whitespace.
    let x = key.public_jwk()["x"].as_str().expect("x").to_owned();
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    let thumbprint = b64u(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref());
    assert_eq!(imported_kid(&out), thumbprint);

    let other = TestKey::generate("EdDSA");
    let out = import_stdin(&app, &other.pkcs8_pem(), &["--kid", "2026-11_ops-key"]).await;
    assert_eq!(imported_kid(&out), "2026-11_ops-key");

    // Each import is in the audit trail as a key rotation that says it was an import.
    let imports: Vec<String> = app
        .recent_audit(20)
        .await
        .into_iter()
        .filter(|r| r.kind == "key_rotated")
        .filter_map(|r| r.detail)
        .filter(|d| d.contains("imported"))
        .collect();
    assert_eq!(imports.len(), 2, "{imports:?}");
    assert!(imports.iter().any(|d| d.starts_with(&format!("{thumbprint} imported"))), "{imports:?}");
}

/// `openssl` writes keys the way operators have them: `ecparam -genkey` puts an
/// `EC PARAMETERS` block before the SEC 1 key, `genpkey` writes PKCS#8.
#[tokio::test]
async fn keys_written_by_openssl_are_imported() {
    for (alg, args) in [
        ("EdDSA", &["genpkey", "-algorithm", "ed25519"][..]),
        ("ES256", &["ecparam", "-name", "prime256v1", "-genkey"][..]),
        ("ES256", &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..]),
        ("RS256", &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..]),
    ] {
        let mut app = sealed_app(alg).await;
        let pem_text = openssl(args);
        let kid = imported_kid(&import_stdin(&app, &pem_text, &["--activate-now"]).await);
        catch_up(&app);
        app.restart().await;
        let login = app.login_tokens("alice", PASSWORD).await;
        assert_eq!(header_of(&login.access)["kid"], kid.as_str(), "{args:?}");
        assert!(app.jwks_kids().await.contains(&kid));
    }
}

/// Runs `openssl` and returns what it printed; the test fails (never skips) without it.
fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().unwrap_or_else(|e| {
        panic!("openssl is needed for this test (Debian package `openssl`; scripts/test installs it): {e}")
    });
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("PEM is text")
}

/// Without `jwt.seal_key` the key is stored as is, and the command says so.
#[tokio::test]
async fn without_a_seal_key_the_import_warns_that_the_key_is_unsealed() {
    let app = spawn_token_app(&token_toml("hybrid", "")).await;
    let key = TestKey::generate("EdDSA");
    let out = import_stdin(&app, &key.pkcs8_pem(), &[]).await;
    let kid = imported_kid(&out);
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("(EdDSA, unsealed)"), "{stdout}");
    assert!(stderr.contains("unsealed") && stderr.contains("TESSERA_JWT__SEAL_KEY"), "{stderr}");
    let backend = app.open_store().await;
    let keys = backend.store().keys().await.expect("keys");
    backend.close().await;
    assert!(!keys.iter().find(|k| k.kid == kid).expect("row").sealed);
}

/// Without `--activate-now` an imported key is a rotation: published at once, signing once
/// `jwt.jwks_max_age` has passed — and the running server follows without a restart.
#[tokio::test]
async fn the_running_server_publishes_at_once_and_signs_after_jwks_max_age() {
    let app = sealed_app("ES256").await;
    let key = TestKey::generate("ES256");
    let login = app.login_tokens("alice", PASSWORD).await;
    let old_kid = header_of(&login.access)["kid"].as_str().expect("kid").to_owned();
    let kid = imported_kid(&import_stdin(&app, &key.pkcs8_pem(), &[]).await);
    assert!(
        app.eventually(KEY_RELOAD, || async { app.jwks_kids().await.contains(&kid) }).await,
        "the imported key is published within the reload interval"
    );
    // Published, not yet signing.
    let mut current = app.refresh_ok(login.refresh()).await;
    assert_eq!(header_of(&current.access)["kid"], old_kid.as_str());

    catch_up(&app);
    app.advance(Duration::seconds(60)); // jwt.jwks_max_age, by default
    let deadline = std::time::Instant::now() + KEY_RELOAD;
    loop {
        current = app.refresh_ok(current.refresh()).await;
        if header_of(&current.access)["kid"] == kid.as_str() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the imported key signs after jwks_max_age");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(key.signed(&current.access));
    app.me_bearer(&current.access).await.assert_status(200);
    // The old key stays published for the tokens it signed.
    assert!(app.jwks_kids().await.contains(&old_kid));
}

// ---- refusals ----

/// Every refusal: non-zero exit, a message naming the reason, no panic, no key stored.
async fn assert_refused(app: &TestApp, input: &str, args: &[&str], says: &str) {
    let before = stored_kids(app).await;
    let out = import_stdin(app, input, args).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "refused ({says}); stdout: {stdout}");
    assert!(stderr.contains(says), "the message says {says:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stored_kids(app).await, before, "nothing stored ({says})");
}

async fn stored_kids(app: &TestApp) -> Vec<String> {
    let backend = app.open_store().await;
    let keys = backend.store().keys().await.expect("keys");
    backend.close().await;
    keys.into_iter().map(|k| k.kid).collect()
}

#[tokio::test]
async fn public_keys_and_wrong_algorithms_are_refused() {
    let app = sealed_app("EdDSA").await;
    let ed = TestKey::generate("EdDSA");
    assert_refused(&app, &ed.public_pem(), &[], "holds no private key").await;
    assert_refused(&app, &ed.public_jwk().to_string(), &[], "only be imported with its private half").await;
    let es = TestKey::generate("ES256");
    assert_refused(&app, &es.public_jwk().to_string(), &[], "private half").await;
    // A valid key, but not of the algorithm this server signs with.
    assert_refused(&app, &es.pkcs8_pem(), &[], "jwt.alg = \"EdDSA\"").await;
    assert_refused(&app, &TestKey::generate("HS256").private_jwk().to_string(), &[], "jwt.alg").await;
    // Another curve.
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let p384 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        &rng,
    )
    .expect("P-384");
    assert_refused(&app, &pem("PRIVATE KEY", p384.as_ref()), &[], "P-384").await;
    let mut jwk = es.private_jwk();
    jwk["crv"] = json!("P-384");
    assert_refused(&app, &jwk.to_string(), &[], "P-384").await;
    // A JWK that says it is for something else.
    let mut jwk = ed.private_jwk();
    jwk["use"] = json!("enc");
    assert_refused(&app, &jwk.to_string(), &[], "not for signing").await;
    let mut jwk = ed.private_jwk();
    jwk["alg"] = json!("ES256");
    assert_refused(&app, &jwk.to_string(), &[], "can only sign EdDSA").await;
    // d of one key, x of another.
    let mut jwk = ed.private_jwk();
    jwk["x"] = TestKey::generate("EdDSA").public_jwk()["x"].clone();
    assert_refused(&app, &jwk.to_string(), &[], "not one Ed25519 key").await;
}

#[tokio::test]
async fn keys_openssl_makes_that_tessera_cannot_sign_with_are_refused() {
    let app = sealed_app("EdDSA").await;
    for (args, says) in [
        (&["genpkey", "-algorithm", "ed448"][..], "Ed448"),
        (&["genpkey", "-algorithm", "x25519"][..], "not for signing"),
        (&["genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"][..], "RSASSA-PSS"),
        (&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"][..], "2048 to 8192 bits"),
        (&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"][..], "secp256k1"),
        (&["ecparam", "-name", "secp384r1", "-genkey", "-noout"][..], "P-384"),
        (&["genpkey", "-algorithm", "ed25519", "-aes256", "-pass", "pass:secret"][..], "encrypted"),
    ] {
        assert_refused(&app, &openssl(args), &[], says).await;
    }
}

#[tokio::test]
async fn short_hs256_secrets_are_refused() {
    let app = sealed_app("HS256").await;
    for len in [0, 16, 31] {
        let jwk = json!({"kty": "oct", "k": b64u(&vec![7u8; len])});
        assert_refused(&app, &jwk.to_string(), &[], "at least 32 bytes").await;
    }
}

#[tokio::test]
async fn a_kid_that_exists_or_is_not_a_kid_is_refused() {
    let app = sealed_app("EdDSA").await;
    let key = TestKey::generate("EdDSA");
    imported_kid(&import_stdin(&app, &key.pkcs8_pem(), &[]).await);
    // The same key again: the same thumbprint.
    assert_refused(&app, &key.pkcs8_pem(), &[], "already exists").await;
    // The kid of the key the server generated.
    let generated = stored_kids(&app).await.into_iter().find(|k| k.len() == 11).expect("the generated key");
    assert_refused(&app, &TestKey::generate("EdDSA").pkcs8_pem(), &["--kid", &generated], "already exists").await;
    for bad in ["../../etc/passwd", "a b", "csrf.sealed", &"k".repeat(65), ""] {
        assert_refused(&app, &TestKey::generate("EdDSA").pkcs8_pem(), &["--kid", bad], "not a usable kid").await;
    }
    let mut jwk = TestKey::generate("EdDSA").private_jwk();
    jwk["kid"] = json!("has/slash");
    assert_refused(&app, &jwk.to_string(), &[], "choose one with --kid").await;
}

#[tokio::test]
async fn malformed_input_is_refused_with_a_clear_message() {
    let app = sealed_app("EdDSA").await;
    let key = TestKey::generate("EdDSA");
    let good = key.pkcs8_pem();
    let lines: Vec<&str> = good.lines().collect();
    let truncated = format!("{}\n{}\n", lines[0], &lines[1][..20]);
    let no_end = good.replace("-----END PRIVATE KEY-----", "");
    let not_base64 = good.replace(&lines[1][..8], "!!!!!!!!");
    let cut_der = pem("PRIVATE KEY", &key.private[..key.private.len() - 5]);
    let jwk = key.private_jwk().to_string();
    for (input, says) in [
        ("", "empty"),
        ("just some text\n", "neither PEM nor JWK"),
        (&truncated[..], "no '-----END PRIVATE KEY-----'"),
        (&no_end[..], "no '-----END PRIVATE KEY-----'"),
        (&not_base64[..], "not base64"),
        (&cut_der[..], "not"),
        (&format!("{good}{good}")[..], "exactly one private key"),
        (&jwk[..jwk.len() - 2], "not a valid JSON Web Key"),
        (r#"{"kty":"OKP","crv":"Ed25519","x":"AA","x":"AA"}"#, "duplicate field"),
        (r#"{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0cw=="}"#, "not base64url"),
        (r#"{"kty":"OKP","crv":"Ed25519"}"#, "\"x\" is missing"),
        (r#"{"kty":"PQ"}"#, "key type"),
        (r#"{"keys":[]}"#, "exactly one key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "OpenSSH"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "holds no private key"),
    ] {
        assert_refused(&app, input, &[], says).await;
    }
    // Not text at all, and a file that is not there.
    let out = import_file(&app, "\u{0}\u{1}\u{fffd}", &[]).await;
    assert!(!out.status.success());
    let out = app.cli(&["keys", "import", "/nonexistent/key.pem"]).await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success() && stderr.contains("cannot open the key file"), "{stderr}");
}

#[tokio::test]
async fn import_in_the_session_mode_says_keys_belong_to_the_token_modes() {
    let app = crate::helpers::spawn_app().await;
    let out = import_stdin(&app, &TestKey::generate("EdDSA").pkcs8_pem(), &[]).await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success() && stderr.contains("jwt and hybrid modes"), "{stderr}");
}
