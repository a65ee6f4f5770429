//! User authentication [RFC4252]: the signed data of `publickey`, and the server's state machine.

pub mod publickey;
pub mod server;
