//! Public and private keys in SSH's encodings: key blobs and signature blobs [RFC4253 §6.6,
//! RFC8709], the OpenSSH one-line public key format, and SHA256 fingerprints.

mod private;
mod public;

pub use private::PrivateKey;
pub use public::{KeyError, PublicKey, SignatureBlob};

/// A host key / signature algorithm we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostKeyAlg {
    /// `ssh-ed25519` [RFC8709].
    Ed25519,
}

impl HostKeyAlg {
    /// Every host key algorithm, in our default preference order.
    pub const SUPPORTED: [HostKeyAlg; 1] = [HostKeyAlg::Ed25519];

    /// The exact name on the wire.
    pub const fn wire_name(self) -> &'static str {
        match self {
            HostKeyAlg::Ed25519 => "ssh-ed25519",
        }
    }

    /// The algorithm with this wire name, if we implement it.
    pub fn from_wire_name(name: &str) -> Option<Self> {
        Self::SUPPORTED.into_iter().find(|a| a.wire_name() == name)
    }
}
