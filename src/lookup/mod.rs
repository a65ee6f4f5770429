//! Who a key belongs to: the pluggable, asynchronous lookup the server consults for every
//! verified (or queried) public key. Backends: an `authorized_keys` file, re-read when it
//! changes, and an external command in the manner of OpenSSH's AuthorizedKeysCommand. Other
//! backends (an HTTP API) implement the same trait.

mod command;
mod file;

pub use command::CommandLookup;
pub use file::FileLookup;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use crate::keys::PublicKey;

/// The identity a key maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Name used for authorization and logs.
    pub name: String,
    /// The key's SHA256 fingerprint.
    pub fingerprint: String,
}

/// Why a lookup could not answer (as opposed to answering "nobody").
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Reading the source failed.
    #[error("key lookup I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The backend did not answer in time.
    #[error("key lookup timed out")]
    Timeout,
    /// The backend answered with a failure.
    #[error("key lookup failed: {0}")]
    Failed(String),
}

/// A boxed future, so the trait stays object-safe.
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Identity>, LookupError>> + Send + 'a>>;

/// Maps (user name, key, client address) to an identity, or to nobody.
pub trait KeyLookup: Send + Sync {
    /// Looks the key up. `Ok(None)`: not authorized. `Err`: the backend failed (the server
    /// refuses the key and logs it).
    fn lookup<'a>(&'a self, user: &'a str, key: &'a PublicKey, addr: IpAddr) -> LookupFuture<'a>;
}
