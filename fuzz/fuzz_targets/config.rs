//! Configuration files (`Config::from_toml`: parsing and validation) and the duration syntax
//! they use. A bad file is an error, never a panic; a duration that parses prints back to one
//! that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::Config;
use tessera_server::duration::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = Config::from_toml(text) {
        let _ = config.warnings();
        let _ = config.revocation_check();
    }
    for line in text.lines() {
        if let Some(d) = Duration::parse(line) {
            assert_eq!(Duration::parse(&d.to_string()), Some(d));
            let _ = (d.as_std(), d.as_time());
        }
    }
});
