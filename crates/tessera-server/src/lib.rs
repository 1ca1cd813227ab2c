//! tessera's server: configuration, the HTTP API of SPEC §2, and the `tessera` command.
//! Security decisions live in `tessera-core`; this crate parses, calls and answers.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bench;
pub mod cli;
pub mod config;
pub mod duration;
pub mod http;
pub mod metrics;
pub mod serve;
pub mod startup;

pub use config::Config;
pub use startup::Application;
