//! Thin handlers, one file per area of the API. Each parses its input, calls `Auth`, and
//! shapes the answer; none makes a security decision of its own.

pub mod accounts;
pub mod admin;
pub mod forward_auth;
pub mod health;
pub mod login;
pub mod password;
pub mod revocations;
pub mod sessions;
pub mod tokens;
