//! The client role: [`ClientConnection`] and `known_hosts` verification.

mod connection;
pub mod known_hosts;

pub use connection::{ClientConfig, ClientConnection, ClientEvent, ClientSide};
