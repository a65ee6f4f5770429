//! The client role's policy pieces. So far: `known_hosts` verification.

pub mod known_hosts;
