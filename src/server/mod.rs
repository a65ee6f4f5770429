//! The server role: one [`ServerConnection`] per accepted socket.

mod connection;

pub use connection::{ServerConfig, ServerConnection, ServerEvent, ServerSide};
