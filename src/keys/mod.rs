//! Public and private keys in SSH's encodings: key blobs and signature blobs [RFC4253 §6.6,
//! RFC8709, RFC8332, RFC5656 §3], the OpenSSH one-line public key format, SHA256 fingerprints.

pub mod authorized_keys;
pub mod cert;
pub mod key_file;
pub(crate) mod pattern;
mod private;
mod public;

pub use crate::crypto::verify::Curve;
pub use private::PrivateKey;
pub use public::{KeyError, PublicKey, SignatureBlob, Verified, sk_signed_data};

/// What a public key blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `ssh-ed25519`.
    Ed25519,
    /// `ssh-rsa` (signed with any of the RSA signature algorithms).
    Rsa,
    /// `ecdsa-sha2-<curve>`.
    Ecdsa(Curve),
    /// `sk-ssh-ed25519@openssh.com` (FIDO security key) [PROTOCOL.u2f].
    SkEd25519,
    /// `sk-ecdsa-sha2-nistp256@openssh.com` (FIDO security key) [PROTOCOL.u2f].
    SkEcdsaP256,
}

impl KeyType {
    /// The key type name in blobs and `authorized_keys`.
    pub const fn wire_name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ssh-ed25519",
            KeyType::Rsa => "ssh-rsa",
            KeyType::Ecdsa(Curve::P256) => "ecdsa-sha2-nistp256",
            KeyType::Ecdsa(Curve::P384) => "ecdsa-sha2-nistp384",
            KeyType::Ecdsa(Curve::P521) => "ecdsa-sha2-nistp521",
            KeyType::SkEd25519 => "sk-ssh-ed25519@openssh.com",
            KeyType::SkEcdsaP256 => "sk-ecdsa-sha2-nistp256@openssh.com",
        }
    }
}

/// A signature algorithm [RFC4253 §6.6, RFC8332 §3, RFC5656 §6.2, RFC8709 §6].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigAlg {
    /// `ssh-ed25519`.
    Ed25519,
    /// `ecdsa-sha2-nistp256`.
    EcdsaP256,
    /// `ecdsa-sha2-nistp384`.
    EcdsaP384,
    /// `ecdsa-sha2-nistp521`.
    EcdsaP521,
    /// `rsa-sha2-512`.
    RsaSha512,
    /// `rsa-sha2-256`.
    RsaSha256,
    /// `ssh-rsa` with SHA-1: opt-in only.
    RsaSha1,
    /// `sk-ssh-ed25519@openssh.com` (user keys only).
    SkEd25519,
    /// `sk-ecdsa-sha2-nistp256@openssh.com` (user keys only).
    SkEcdsaP256,
}

/// A host key algorithm: the signature the server makes over the exchange hash, with a plain
/// key or with an OpenSSH host certificate of that key [PROTOCOL.certkeys].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostKeyAlg {
    /// The signature algorithm.
    pub sig: SigAlg,
    /// Whether the host key travels as a certificate (`*-cert-v01@openssh.com`).
    pub cert: bool,
}

impl HostKeyAlg {
    /// A plain key's algorithm.
    pub const fn plain(sig: SigAlg) -> Self {
        Self { sig, cert: false }
    }

    /// A certificate's algorithm, if certificates exist for that signature (security-key
    /// algorithms sign no host keys).
    pub fn certified(sig: SigAlg) -> Option<Self> {
        Some(Self { sig, cert: true }).filter(|a| a.cert_name().is_some())
    }

    fn cert_name(self) -> Option<&'static str> {
        Some(match self.sig {
            SigAlg::Ed25519 => "ssh-ed25519-cert-v01@openssh.com",
            SigAlg::EcdsaP256 => "ecdsa-sha2-nistp256-cert-v01@openssh.com",
            SigAlg::EcdsaP384 => "ecdsa-sha2-nistp384-cert-v01@openssh.com",
            SigAlg::EcdsaP521 => "ecdsa-sha2-nistp521-cert-v01@openssh.com",
            SigAlg::RsaSha512 => "rsa-sha2-512-cert-v01@openssh.com",
            SigAlg::RsaSha256 => "rsa-sha2-256-cert-v01@openssh.com",
            SigAlg::RsaSha1 => "ssh-rsa-cert-v01@openssh.com",
            SigAlg::SkEd25519 | SigAlg::SkEcdsaP256 => return None,
        })
    }

    /// The exact name on the wire.
    pub fn wire_name(self) -> &'static str {
        match self.cert_name().filter(|_| self.cert) {
            Some(n) => n,
            None => self.sig.wire_name(),
        }
    }

    /// The algorithm with this wire name (host keys: no security-key algorithms).
    pub fn from_wire_name(name: &str) -> Option<Self> {
        SigAlg::HOST_ALL.into_iter().find_map(|sig| {
            let plain = Self::plain(sig);
            let cert = Self::certified(sig);
            [Some(plain), cert]
                .into_iter()
                .flatten()
                .find(|a| a.wire_name() == name)
        })
    }
}

impl SigAlg {
    /// Every signature algorithm we can verify, strongest first.
    pub const ALL: [SigAlg; 9] = [
        SigAlg::Ed25519,
        SigAlg::SkEd25519,
        SigAlg::EcdsaP256,
        SigAlg::SkEcdsaP256,
        SigAlg::EcdsaP384,
        SigAlg::EcdsaP521,
        SigAlg::RsaSha512,
        SigAlg::RsaSha256,
        SigAlg::RsaSha1,
    ];

    /// What user keys may sign with by default: everything but SHA-1.
    pub const DEFAULT_USER: [SigAlg; 8] = [
        SigAlg::Ed25519,
        SigAlg::SkEd25519,
        SigAlg::EcdsaP256,
        SigAlg::SkEcdsaP256,
        SigAlg::EcdsaP384,
        SigAlg::EcdsaP521,
        SigAlg::RsaSha512,
        SigAlg::RsaSha256,
    ];

    /// Host key algorithms, in our default preference order (SHA-1 `ssh-rsa` is opt-in).
    pub const SUPPORTED: [SigAlg; 6] = [
        SigAlg::Ed25519,
        SigAlg::EcdsaP256,
        SigAlg::EcdsaP384,
        SigAlg::EcdsaP521,
        SigAlg::RsaSha512,
        SigAlg::RsaSha256,
    ];

    /// Host key algorithms a configuration may choose from: the defaults plus `ssh-rsa`.
    pub const HOST_ALL: [SigAlg; 7] = [
        SigAlg::Ed25519,
        SigAlg::EcdsaP256,
        SigAlg::EcdsaP384,
        SigAlg::EcdsaP521,
        SigAlg::RsaSha512,
        SigAlg::RsaSha256,
        SigAlg::RsaSha1,
    ];

    /// The exact name on the wire.
    pub const fn wire_name(self) -> &'static str {
        match self {
            SigAlg::Ed25519 => "ssh-ed25519",
            SigAlg::EcdsaP256 => "ecdsa-sha2-nistp256",
            SigAlg::EcdsaP384 => "ecdsa-sha2-nistp384",
            SigAlg::EcdsaP521 => "ecdsa-sha2-nistp521",
            SigAlg::RsaSha512 => "rsa-sha2-512",
            SigAlg::RsaSha256 => "rsa-sha2-256",
            SigAlg::RsaSha1 => "ssh-rsa",
            SigAlg::SkEd25519 => "sk-ssh-ed25519@openssh.com",
            SigAlg::SkEcdsaP256 => "sk-ecdsa-sha2-nistp256@openssh.com",
        }
    }

    /// The algorithm with this wire name.
    pub fn from_wire_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.wire_name() == name)
    }

    /// The key type that signs with it.
    pub const fn key_type(self) -> KeyType {
        match self {
            SigAlg::Ed25519 => KeyType::Ed25519,
            SigAlg::EcdsaP256 => KeyType::Ecdsa(Curve::P256),
            SigAlg::EcdsaP384 => KeyType::Ecdsa(Curve::P384),
            SigAlg::EcdsaP521 => KeyType::Ecdsa(Curve::P521),
            SigAlg::RsaSha512 | SigAlg::RsaSha256 | SigAlg::RsaSha1 => KeyType::Rsa,
            SigAlg::SkEd25519 => KeyType::SkEd25519,
            SigAlg::SkEcdsaP256 => KeyType::SkEcdsaP256,
        }
    }
}
