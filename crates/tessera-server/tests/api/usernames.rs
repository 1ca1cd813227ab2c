//! Usernames that could pass for another one: invisible characters, bidi controls, control
//! characters and (by default) confusable mixtures of scripts are refused at sign-up with a 400
//! that names the problem, so no second account can display as "alice".

use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with};

async fn assert_refused(app: &TestApp, username: &str, detail_mentions: &str) {
    let body = app.signup(username, PASSWORD).await.assert_problem(400, "invalid-request");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(detail_mentions), "{username:?}: detail {detail:?} names {detail_mentions:?}");
}

#[tokio::test]
async fn signup_refuses_invisible_characters_that_make_a_second_alice() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    for invisible in [
        "\u{200B}", // zero-width space
        "\u{200C}", // zero-width non-joiner
        "\u{200D}", // zero-width joiner
        "\u{FEFF}", // byte-order mark
        "\u{00AD}", // soft hyphen
        "\u{2060}", // word joiner
        "\u{034F}", // combining grapheme joiner
        "\u{FE0F}", // variation selector
        "\u{3164}", // Hangul filler
    ] {
        for name in [format!("ali{invisible}ce"), format!("alice{invisible}"), format!("{invisible}alice")] {
            assert_refused(&app, &name, "invisible").await;
        }
    }
    // Logging in with such a name is an unknown user, never the real alice's account.
    app.login("ali\u{200B}ce", PASSWORD, Some("bearer")).await.assert_401("invalid-credentials");
}

#[tokio::test]
async fn signup_refuses_bidi_formatting_characters() {
    let app = spawn_app().await;
    for bidi in ["\u{202E}", "\u{202D}", "\u{202A}", "\u{2066}", "\u{2067}", "\u{2068}", "\u{2069}", "\u{200F}"] {
        assert_refused(&app, &format!("ecila{bidi}txt"), "bidirectional").await;
    }
}

#[tokio::test]
async fn signup_refuses_control_characters() {
    let app = spawn_app().await;
    for control in ["\u{0}", "\u{1B}", "\u{7F}", "\u{85}", "\u{9F}", "\u{2028}"] {
        assert_refused(&app, &format!("ali{control}ce"), "control").await;
    }
}

#[tokio::test]
async fn signup_refuses_a_cyrillic_letter_inside_a_latin_name() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    // U+0430 CYRILLIC SMALL LETTER A: displays exactly as "alice".
    assert_refused(&app, "\u{0430}lice", "mix scripts").await;
    // U+03BF GREEK SMALL LETTER OMICRON inside "bob".
    assert_refused(&app, "b\u{03BF}b", "mix scripts").await;
    // A whole name of Cyrillic look-alikes of Latin letters ("аоре").
    assert_refused(&app, "\u{0430}\u{043E}\u{0440}\u{0435}", "look-alikes of plain ASCII").await;
}

#[tokio::test]
async fn signup_accepts_ordinary_mixtures_of_latin_with_cjk() {
    let app = spawn_app().await;
    for name in ["田中taro", "kim민수", "tanakaたろう", "владимир", "ελένη", "josé.müller@example.com"]
    {
        let reply = app.signup(name, PASSWORD).await;
        reply.assert_status(201);
        assert_eq!(reply.json()["username"], name, "stored as given (already normal form)");
    }
}

#[tokio::test]
async fn confusable_check_can_be_turned_off_but_invisible_characters_stay_refused() {
    let app = spawn_app_with("[auth]\nmode = \"session\"\nusername_confusables = \"allow\"\n").await;
    app.signup("\u{0430}lice", PASSWORD).await.assert_status(201);
    assert_refused(&app, "ali\u{200B}ce", "invisible").await;
    assert_refused(&app, "ali\u{202E}ce", "bidirectional").await;
}

#[tokio::test]
async fn unknown_confusables_setting_is_refused_at_start() {
    let err = tessera_server::config::Config::from_toml("[auth]\nusername_confusables = \"maybe\"\n")
        .expect_err("an unknown value is a configuration error");
    assert!(format!("{err:?}").contains("username_confusables"), "{err:?}");
}
