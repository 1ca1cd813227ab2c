//! tessera-verify against the real tessera (started in this process on a random port):
//! tokens it issues are accepted and everything it refuses is refused (`tokens`), its keys are
//! followed through rotation and kept through JWKS trouble (`keys`).

#[path = "../common/forge.rs"]
mod forge;
#[allow(dead_code)]
#[path = "../common/tessera.rs"]
mod tessera;

mod jwks_source;
mod keys;
mod tokens;
