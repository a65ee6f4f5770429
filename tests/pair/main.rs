//! In-memory client ⇄ server tests of the transport layer: no sockets, deterministic RNG.
// Tests tweak one setting of a default config at a time; that reads best as assignments.
#![allow(clippy::field_reassign_with_default)]

mod channels;
mod client;
mod forwarding;
mod harness;
mod kex_cost;
mod session;
mod transcript;
mod transport;
