//! How the client role decides whether to trust a server's host key [RFC4251 §4.1].

use crate::keys::PublicKey;
use crate::keys::cert::Certificate;

/// Decides whether a server host key is the one we expect. Synchronous and pure: the driver
/// loads `known_hosts` or the pinned key before the connection starts.
pub trait HostKeyVerifier: Send {
    /// Whether `key` is acceptable for this server. `Err` carries a message for the log.
    fn verify(&self, key: &PublicKey) -> Result<(), String>;

    /// Whether a host certificate could be judged (a CA is trusted for this server): the
    /// client then offers the certificate algorithms first, as OpenSSH's does. Default: no.
    fn accepts_certificates(&self) -> bool {
        false
    }

    /// Whether host certificate `cert` is acceptable for this server: a trusted CA, its
    /// type, validity, principals and CA signature [PROTOCOL.certkeys]. The transport has
    /// already checked that its key signed the exchange. Default: never.
    fn verify_cert(&self, cert: &Certificate) -> Result<(), String> {
        let _ = cert;
        Err("host certificates are not trusted here".into())
    }
}

/// Accepts exactly one key, given as a key or as its `SHA256:` fingerprint.
#[derive(Clone, Debug)]
pub enum Pinned {
    /// The exact public key.
    Key(PublicKey),
    /// Its SHA256 fingerprint as OpenSSH prints it.
    Fingerprint(String),
}

impl HostKeyVerifier for Pinned {
    fn verify(&self, key: &PublicKey) -> Result<(), String> {
        let ok = match self {
            Pinned::Key(k) => k == key,
            Pinned::Fingerprint(f) => {
                crate::crypto::ct::eq(f.as_bytes(), key.fingerprint().as_bytes())
            }
        };
        if ok {
            Ok(())
        } else {
            let want = match self {
                Pinned::Key(k) => k.fingerprint(),
                Pinned::Fingerprint(f) => f.clone(),
            };
            Err(format!(
                "server offered {}, expected {want}",
                key.fingerprint()
            ))
        }
    }
}
