//! Who a key belongs to: the pluggable, asynchronous lookup the server consults for every
//! verified (or queried) public key. Backends: an `authorized_keys` file, re-read when it
//! changes, an external command in the manner of OpenSSH's AuthorizedKeysCommand, and a
//! site's HTTP API.

mod command;
mod file;
mod http;

pub use command::CommandLookup;
pub use file::FileLookup;
pub(crate) use http::AnswerCache;
pub use http::{HttpBackend, HttpLookup};

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
    /// Security keys: require the user-presence flag (default; `no-touch-required` clears it).
    pub touch_required: bool,
    /// Security keys: require the user-verification flag (`verify-required`).
    pub verify_required: bool,
}

impl Identity {
    /// The identity an authorized_keys line gives `key`.
    pub fn from_entry(e: &crate::keys::authorized_keys::AuthorizedKey, key: &PublicKey) -> Self {
        Self {
            name: e.name.clone(),
            fingerprint: key.fingerprint(),
            touch_required: e.touch_required,
            verify_required: e.verify_required,
        }
    }

    /// Whether a signature with these security-key flags (`None` for other keys) meets this
    /// identity's requirements [PROTOCOL.u2f, sshd(8) no-touch-required / verify-required].
    pub fn accepts_flags(&self, sk_flags: Option<u8>) -> bool {
        match sk_flags {
            None => !self.verify_required,
            Some(f) => {
                (!self.touch_required || f & 0x01 != 0) && (!self.verify_required || f & 0x04 != 0)
            }
        }
    }
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
    /// logs it and disconnects the client with "temporarily unavailable", reason 7
    /// SERVICE_NOT_AVAILABLE: a failure is never reported as a denial).
    fn lookup<'a>(&'a self, user: &'a str, key: &'a PublicKey, addr: IpAddr) -> LookupFuture<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rng::DeterministicRng;
    use crate::keys::PrivateKey;
    use crate::keys::authorized_keys::AuthorizedKeys;

    #[test]
    fn security_key_presence_and_verification_policy() {
        let k = PrivateKey::generate_ed25519(&mut DeterministicRng::new(1)).public();
        let sk = PublicKey::SkEd25519 {
            key: [3; 32],
            application: b"ssh:".to_vec(),
        };
        let text = format!(
            "{} plain\nno-touch-required {} relaxed\nverify-required {} strict\n",
            sk.to_openssh(),
            sk.to_openssh(),
            k.to_openssh()
        );
        let ak = AuthorizedKeys::parse(&text);
        assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
        let plain = Identity::from_entry(&ak.entries[0], &sk);
        let relaxed = Identity::from_entry(&ak.entries[1], &sk);
        let strict = Identity::from_entry(&ak.entries[2], &k);
        assert!(
            plain.accepts_flags(Some(0x01)) && !plain.accepts_flags(Some(0x00)),
            "touch required by default"
        );
        assert!(relaxed.accepts_flags(Some(0x00)));
        assert!(
            !strict.accepts_flags(None),
            "verify-required cannot be met by a non-FIDO key"
        );
        assert!(
            plain.accepts_flags(None),
            "ordinary keys have no flags to check"
        );
    }
}
