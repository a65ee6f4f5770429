//! User authentication \[RFC4252\]: the signed data of `publickey`, and both roles' state machines.

pub mod client;
pub mod publickey;
pub mod server;
