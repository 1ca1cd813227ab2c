//! The JWT module, tested from outside: attacks that must fail (`attacks`) and the behaviour
//! that must work (`accepted`).

mod accepted;
mod attacks;
mod fuzz;
mod support;
