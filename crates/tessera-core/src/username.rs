//! Usernames are compared after NFKC normalisation and Unicode case folding, so `Alice`,
//! `ALICE` and `Ａｌｉｃｅ` (fullwidth) are one account and cannot be registered twice to
//! impersonate each other.
//!
//! Folding alone does not stop look-alikes, so a username is also refused when it:
//!
//! - contains characters that display as nothing or move other text: default-ignorable code
//!   points (zero-width space, joiners, soft hyphen, word joiner, byte-order mark, variation
//!   selectors, Hangul fillers, tag characters), format characters and the bidirectional
//!   controls (`U+202A`–`U+202E`, `U+2066`–`U+2069`, the marks). Each of these lets several
//!   accounts display as "alice", or one name display as another;
//! - contains spaces, control characters, unassigned or private-use code points (the last two
//!   have no fixed normalisation or appearance), or starts with a combining mark, which would
//!   attach itself to whatever text is shown before the name;
//! - is not a fixed point of the normalisation (normalising it again would change it).
//!   Canonicalising twice therefore never changes a name, so a stored name is always found
//!   again by the name it was stored under.
//!
//! At sign-up, with [`Confusables::Refuse`] (the default), it is also refused when it mixes
//! scripts in a way UTS #39 does not call "highly restrictive" (Cyrillic `а` inside a Latin
//! `alice`; Japanese, Chinese or Korean with Latin stay allowed), or when it is written
//! outside ASCII yet its UTS #39 confusable skeleton is plain ASCII, i.e. it looks exactly like
//! an ASCII name (all-Cyrillic `аоре`, Latin alpha `ɑlice`). These rules apply to new names
//! only: a name that exists keeps logging in if the operator tightens the setting later.

use std::fmt;
use std::sync::Arc;

use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_script::Script;
use unicode_security::mixed_script::AugmentedScriptSet;
use unicode_security::skeleton;

/// Characters a username may have after normalisation.
pub const MIN_CHARS: usize = 3;
pub const MAX_CHARS: usize = 64;

/// Shared, not copied: a username rides along with every session read from a cache and every
/// answer that names the caller, and cloning it is then a reference count, not an allocation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(Arc<str>);

impl Serialize for Username {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("a username must have {MIN_CHARS} to {MAX_CHARS} characters")]
    Length,
    #[error("a username may not contain spaces or control characters")]
    Forbidden,
    #[error(
        "a username may not contain invisible characters (zero-width characters, joiners, soft hyphens, \
         byte-order marks, variation selectors or other default-ignorable code points)"
    )]
    Invisible,
    #[error("a username may not contain bidirectional formatting characters")]
    Bidi,
    #[error("a username may not contain unassigned or private-use code points")]
    Unassigned,
    #[error("a username may not begin with a combining mark")]
    LeadingMark,
    #[error("a username must not change when normalised again (NFKC with case folding)")]
    Unstable,
    #[error("a username may not contain letters newer than the server's Unicode case-folding tables")]
    NewerThanCaseTables,
    #[error("a username may not mix scripts that look alike (such as Latin with Cyrillic or Greek)")]
    MixedScripts,
    #[error("a username may not be written in look-alikes of plain ASCII letters")]
    LooksLikeAscii,
}

/// Whether sign-up refuses names that can pass for another name (`auth.username_confusables`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Confusables {
    /// Refuse confusable mixtures of scripts and non-ASCII look-alikes of ASCII names.
    #[default]
    Refuse,
    /// Accept them; the invisible, bidi and control characters stay refused.
    Allow,
}

impl Username {
    /// Canonicalises (NFKC, case fold, NFKC again as UAX #15 advises for caseless matching)
    /// and checks the result. Used wherever a name is looked up: the result is a fixed point,
    /// `parse(parse(x)) == parse(x)`.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        // Bound the work before normalising: the input may be up to the body limit.
        if raw.len() > MAX_CHARS * 4 * 3 {
            return Err(UsernameError::Length);
        }
        // The raw input first: an invisible character is refused even when normalisation
        // would have mapped it to something visible.
        raw.chars().try_for_each(check_char)?;
        let folded = canonicalise(raw);
        let chars = folded.chars().count();
        if !(MIN_CHARS..=MAX_CHARS).contains(&chars) {
            return Err(UsernameError::Length);
        }
        folded.chars().try_for_each(check_char)?;
        if folded.chars().next().is_some_and(is_mark) {
            return Err(UsernameError::LeadingMark);
        }
        // Case folding and NFKC are each idempotent, but their composition is not for every
        // string (and the tables come from different Unicode versions): refuse the rare name
        // that would change again rather than store one that a lookup could miss.
        if canonicalise(&folded) != folded {
            return Err(UsernameError::Unstable);
        }
        if !folded.chars().all(case_tables_agree) {
            return Err(UsernameError::NewerThanCaseTables);
        }
        Ok(Self(folded.into()))
    }

    /// [`parse`](Self::parse) plus the rules for a name being created (sign-up, `user add`).
    pub fn parse_new(raw: &str, confusables: Confusables) -> Result<Self, UsernameError> {
        let name = Self::parse(raw)?;
        if confusables == Confusables::Refuse {
            check_confusable(&name.0)?;
        }
        Ok(name)
    }

    /// Rebuilds a username that a store already normalised.
    pub fn from_stored(s: impl Into<Arc<str>>) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn canonicalise(s: &str) -> String {
    caseless::default_case_fold_str(&s.nfkc().collect::<String>()).nfkc().collect()
}

/// The folding tables may predate the standard library's: a cased letter they do not know is
/// left as it is, so its upper- and lower-case forms would be two accounts. Such a letter is
/// one whose lower-case form (per the standard library) does not fold back to it. (Cherokee
/// folds to upper case, so "is lower case" would be the wrong test.)
fn case_tables_agree(c: char) -> bool {
    let lower: String = c.to_lowercase().collect();
    let mut buf = [0u8; 4];
    caseless::default_case_fold_str(&lower) == *c.encode_utf8(&mut buf)
}

fn check_char(c: char) -> Result<(), UsernameError> {
    // Bidi controls first: most are also default-ignorable, and this message says more.
    if CodePointSetData::new::<BidiControl>().contains(c) {
        return Err(UsernameError::Bidi);
    }
    if c.is_whitespace() || c.is_control() {
        return Err(UsernameError::Forbidden);
    }
    if CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c) {
        return Err(UsernameError::Invisible);
    }
    match CodePointMapData::<GeneralCategory>::new().get(c) {
        // Format characters that are not default-ignorable still render oddly or not at all
        // (e.g. `U+0600` Arabic number sign spans the following digits).
        GeneralCategory::Format => Err(UsernameError::Invisible),
        GeneralCategory::Unassigned | GeneralCategory::PrivateUse | GeneralCategory::Surrogate => {
            Err(UsernameError::Unassigned)
        }
        _ => Ok(()),
    }
}

fn is_mark(c: char) -> bool {
    matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        GeneralCategory::NonspacingMark | GeneralCategory::SpacingMark | GeneralCategory::EnclosingMark
    )
}

/// UTS #39 §5.2 "Highly Restrictive": one script, or Latin with Han + Hiragana + Katakana,
/// Han + Bopomofo, or Han + Hangul. Characters common to all scripts (digits, `.`, `-`, `_`,
/// `@`) and inherited marks count for any. Then UTS #39 §4 skeletons: a non-ASCII name whose
/// skeleton is ASCII looks like that ASCII name.
fn check_confusable(name: &str) -> Result<(), UsernameError> {
    if !AugmentedScriptSet::for_str(name).is_empty() {
        // One script (possibly resolved to Japanese, Chinese or Korean as a whole).
    } else {
        let mut without_latin = AugmentedScriptSet::default();
        for c in name.chars() {
            let set = AugmentedScriptSet::for_char(c);
            if !set.base.contains_script(Script::Latin) {
                without_latin.intersect_with(set);
            }
        }
        if !(without_latin.kore || without_latin.hanb || without_latin.jpan) {
            return Err(UsernameError::MixedScripts);
        }
    }
    if !name.is_ascii() && skeleton(name).all(|c| c.is_ascii()) {
        return Err(UsernameError::LooksLikeAscii);
    }
    Ok(())
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn case_and_compatibility_forms_are_one_username() {
        let a = Username::parse("Alice").unwrap();
        assert_eq!(a.as_str(), "alice");
        assert_eq!(Username::parse("ＡＬＩＣＥ").unwrap(), a);
        assert_eq!(Username::parse("STRASSE").unwrap(), Username::parse("straße").unwrap());
    }

    #[test]
    fn bad_usernames_are_refused() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"x".repeat(65)), Err(UsernameError::Length));
        assert_eq!(Username::parse("al ice"), Err(UsernameError::Forbidden));
        assert_eq!(Username::parse("al\u{0}ice"), Err(UsernameError::Forbidden));
        assert_eq!(Username::parse("al\u{85}ice"), Err(UsernameError::Forbidden));
        assert_eq!(Username::parse(&"x".repeat(100_000)), Err(UsernameError::Length));
    }

    #[test]
    fn invisible_characters_are_refused() {
        for c in [
            '\u{200B}',  // zero-width space
            '\u{200C}',  // zero-width non-joiner
            '\u{200D}',  // zero-width joiner
            '\u{FEFF}',  // byte-order mark / zero-width no-break space
            '\u{00AD}',  // soft hyphen
            '\u{2060}',  // word joiner
            '\u{034F}',  // combining grapheme joiner
            '\u{FE0F}',  // variation selector 16
            '\u{3164}',  // Hangul filler
            '\u{FFA0}',  // halfwidth Hangul filler
            '\u{115F}',  // Hangul choseong filler
            '\u{180E}',  // Mongolian vowel separator
            '\u{E0041}', // tag latin capital A
            '\u{2064}',  // invisible plus
            '\u{0600}',  // Arabic number sign (format, not default-ignorable)
        ] {
            for name in [format!("ali{c}ce"), format!("alice{c}"), format!("{c}alice")] {
                assert_eq!(Username::parse(&name), Err(UsernameError::Invisible), "U+{:04X}", c as u32);
            }
        }
    }

    #[test]
    fn bidi_controls_are_refused() {
        for c in [
            '\u{202E}', '\u{202A}', '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}',
            '\u{061C}',
        ] {
            assert_eq!(Username::parse(&format!("ali{c}ce")), Err(UsernameError::Bidi), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn unassigned_private_use_and_leading_marks_are_refused() {
        assert_eq!(Username::parse("ali\u{E000}ce"), Err(UsernameError::Unassigned));
        assert_eq!(Username::parse("ali\u{10FFFD}ce"), Err(UsernameError::Unassigned));
        assert_eq!(Username::parse("ali\u{0378}ce"), Err(UsernameError::Unassigned));
        assert_eq!(Username::parse("\u{0301}alice"), Err(UsernameError::LeadingMark));
        // A mark after a letter is ordinary (and composes under NFKC).
        assert_eq!(Username::parse("jose\u{0301}").unwrap().as_str(), "josé");
    }

    #[test]
    fn mixed_script_look_alikes_are_refused_at_sign_up() {
        // Cyrillic а (U+0430) inside Latin "alice".
        assert_eq!(Username::parse_new("\u{0430}lice", Confusables::Refuse), Err(UsernameError::MixedScripts));
        // Greek ο inside Latin.
        assert_eq!(Username::parse_new("b\u{03BF}b", Confusables::Refuse), Err(UsernameError::MixedScripts));
        // Whole-script and same-script look-alikes of ASCII names.
        assert_eq!(
            Username::parse_new("\u{0430}\u{043E}\u{0440}\u{0435}", Confusables::Refuse),
            Err(UsernameError::LooksLikeAscii)
        );
        assert_eq!(Username::parse_new("\u{0251}lice", Confusables::Refuse), Err(UsernameError::LooksLikeAscii));
        // "allow" lets them through; lookups never apply the rule.
        assert!(Username::parse_new("\u{0430}lice", Confusables::Allow).is_ok());
        assert!(Username::parse("\u{0430}lice").is_ok());
    }

    #[test]
    fn ordinary_names_pass_the_confusable_rules() {
        for name in [
            "alice",
            "alice.smith@example.com",
            "bob_42",
            "josé",
            "müller",
            "ελένη",      // Greek
            "владимир",   // Cyrillic
            "김민수",     // Hangul
            "kim민수",    // Hangul with Latin
            "田中taro",   // Han with Latin
            "たなか太郎", // Hiragana with Han
            "tanakaたろう",
            "王小明",
            "محمد",
            "दिव्या", // Devanagari with its vowel signs
            "ᏣᎳᎩ",   // Cherokee, which case-folds to upper case
        ] {
            assert!(Username::parse_new(name, Confusables::Refuse).is_ok(), "{name} should be accepted");
        }
    }

    /// Any code point, weighted towards the ones that interact with normalisation and folding.
    fn interesting_string() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            any::<char>(),
            proptest::char::range('\u{0300}', '\u{036F}'), // combining marks
            proptest::char::range('\u{0370}', '\u{03FF}'), // Greek, incl. ypogegrammeni forms
            proptest::char::range('\u{1E00}', '\u{1FFF}'), // Latin extended additional, Greek extended
            proptest::char::range('\u{2100}', '\u{218F}'), // letterlike symbols, number forms
            proptest::char::range('\u{3130}', '\u{318F}'), // Hangul compatibility jamo
            proptest::char::range('\u{FB00}', '\u{FB4F}'), // ligatures
            proptest::char::range('\u{FF00}', '\u{FFEF}'), // half/fullwidth forms
            proptest::char::range('a', 'z'),
        ];
        proptest::collection::vec(c, 0..24).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn canonicalisation_is_a_fixed_point(raw in interesting_string()) {
            if let Ok(name) = Username::parse(&raw) {
                prop_assert_eq!(Username::parse(name.as_str()), Ok(name.clone()));
                let again = Username::parse_new(name.as_str(), Confusables::Allow);
                prop_assert_eq!(again, Ok(name));
            }
        }

        #[test]
        fn accepted_names_hold_no_invisible_or_bidi_characters(raw in interesting_string()) {
            if let Ok(name) = Username::parse_new(&raw, Confusables::Refuse) {
                for c in name.as_str().chars() {
                    prop_assert!(!CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c));
                    prop_assert!(!CodePointSetData::new::<BidiControl>().contains(c));
                    prop_assert!(!c.is_control() && !c.is_whitespace());
                }
                prop_assert_eq!(Username::parse(name.as_str()), Ok(name));
            }
        }

        #[test]
        fn parse_never_panics_on_arbitrary_text(raw in ".{0,300}") {
            let _ = Username::parse_new(&raw, Confusables::Refuse);
        }
    }
}
