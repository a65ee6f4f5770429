//! portcullis: a hand-written SSH-2 stack (RFC 4253 transport, RFC 4252 public-key auth,
//! RFC 4254 channels) and the git-only server and proxy built on it.
//!
//! The protocol core (`wire`, `msg`, `transport`, `crypto`) is sans-IO: bytes in, bytes and
//! events out, with time and randomness passed in. `RFC-NOTES.md` maps each RFC section to
//! the code that implements it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Peer input must never panic the library: no unwraps, no unchecked indexing or arithmetic.
// Unit tests may assert freely.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

pub mod auth;
pub mod client;
pub mod config;
pub mod connection;
pub mod crypto;
pub mod daemon;
pub mod driver;
pub mod error;
pub mod git;
pub mod keys;
pub mod limits;
pub mod log_safe;
pub mod lookup;
pub mod monitoring;
pub mod msg;
pub mod proxy;
pub mod server;
pub mod transport;
pub mod wire;

pub use error::{Error, Result};

#[cfg(fuzzing)]
pub mod fuzzing;
