//! Username canonicalisation: `Username::parse` never panics, its result is a fixed point
//! (`parse(parse(x)) == parse(x)`: a lookup can never miss the account it names), and the
//! stricter sign-up rules only ever refuse more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::Username;
use tessera_core::username::Confusables;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let parsed = Username::parse(raw);
    if let Ok(name) = &parsed {
        let again = Username::parse(name.as_str()).expect("a canonical name parses again");
        assert_eq!(again.as_str(), name.as_str(), "canonicalisation is not a fixed point");
    }
    for confusables in [Confusables::Refuse, Confusables::Allow] {
        if let Ok(new) = Username::parse_new(raw, confusables) {
            let name = parsed.as_ref().expect("sign-up accepted what lookup refuses");
            assert_eq!(new.as_str(), name.as_str());
        }
    }
});
