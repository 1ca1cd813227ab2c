//! JWKS documents, as tessera-verify fetches them: `PublicKeySet::from_jwks` for every
//! algorithm. Whatever arrives, the answer is a key set or an error, never a panic, and a
//! document that parsed keeps its keys addressable by `kid`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_jwt::{Alg, PublicKeySet};

fuzz_target!(|data: &[u8]| {
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256] {
        if let Ok((set, _skipped)) = PublicKeySet::from_jwks(data, alg) {
            for kid in set.kids() {
                let key = set.verifier(&kid).expect("every listed kid resolves");
                assert_eq!(key.alg(), alg, "a key set holds only the configured algorithm");
            }
        }
    }
});
