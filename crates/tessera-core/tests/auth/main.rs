//! The domain's [`Auth`](tessera_core::Auth) driven directly, on a store in memory whose
//! seam lets a test put one request inside another: the interleavings that black-box tests
//! through HTTP cannot make happen on purpose.

mod login_races;
mod memory_store;
mod support;
