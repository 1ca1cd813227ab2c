//! Black-box tests of tessera's session mode: each test starts the real server on a random
//! port with a fresh SQLite data directory and a clock it can move, and talks HTTP to it.
//! One test binary, one module per area of the contract (SPEC §2 and §3).

mod helpers;

mod accounts;
mod admin;
mod audit;
mod bad_input;
mod cli;
mod cookies_and_csrf;
mod login;
mod logout;
mod me_and_sessions;
mod password;
mod restart;
mod throttle;
mod timeouts;
