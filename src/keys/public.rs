//! Public keys and signature blobs as they travel in SSH messages.

use base64ct::{Base64, Base64Unpadded, Encoding};

use crate::crypto::hash::HashAlg;
use crate::crypto::sign::ed25519_verify;
use crate::error::DecodeError;
use crate::keys::HostKeyAlg;
use crate::wire::{Reader, Writer};

/// Why a key or signature was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The blob is malformed.
    #[error("malformed key or signature: {0}")]
    Decode(#[from] DecodeError),
    /// A key type we do not implement.
    #[error("unsupported key type")]
    Unsupported,
    /// The signature's algorithm does not belong to the key, or is not the expected one.
    #[error("signature algorithm does not match the key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Text form not understood.
    #[error("malformed public key text")]
    BadText,
}

/// A public key we can verify with.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// An Ed25519 key [RFC8709 §4].
    Ed25519([u8; 32]),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.algorithm().wire_name(), self.fingerprint())
    }
}

/// A parsed signature blob: `string algorithm, string signature` [RFC4253 §6.6].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureBlob<'a> {
    /// The signature algorithm name inside the blob.
    pub algorithm: &'a str,
    /// The raw signature bytes.
    pub signature: &'a [u8],
}

impl<'a> SignatureBlob<'a> {
    /// Parses a signature blob; trailing bytes are an error.
    pub fn decode(blob: &'a [u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let algorithm =
            std::str::from_utf8(r.string_max(64)?).map_err(|_| KeyError::Unsupported)?;
        let signature = r.string()?;
        r.finish()?;
        Ok(Self {
            algorithm,
            signature,
        })
    }
}

impl PublicKey {
    /// Parses a public key blob [RFC4253 §6.6]; trailing bytes are an error.
    pub fn decode(blob: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let key = match r.string_max(64)? {
            b"ssh-ed25519" => {
                let k = r.string()?;
                PublicKey::Ed25519(k.try_into().map_err(|_| KeyError::Unsupported)?)
            }
            _ => return Err(KeyError::Unsupported),
        };
        r.finish()?;
        Ok(key)
    }

    /// Appends the key blob.
    pub fn encode(&self, w: &mut Writer<'_>) {
        match self {
            PublicKey::Ed25519(k) => {
                w.string(b"ssh-ed25519").string(k);
            }
        }
    }

    /// The key blob.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut Writer::new(&mut out));
        out
    }

    /// The key's algorithm.
    pub const fn algorithm(&self) -> HostKeyAlg {
        match self {
            PublicKey::Ed25519(_) => HostKeyAlg::Ed25519,
        }
    }

    /// `SHA256:` and the unpadded base64 of the SHA-256 of the blob, as OpenSSH prints it.
    pub fn fingerprint(&self) -> String {
        let digest = HashAlg::Sha256.digest(&[&self.to_blob()]);
        format!("SHA256:{}", Base64Unpadded::encode_string(&digest))
    }

    /// The OpenSSH one-line form `type base64`, as in `authorized_keys` and `known_hosts`.
    pub fn to_openssh(&self) -> String {
        format!(
            "{} {}",
            self.algorithm().wire_name(),
            Base64::encode_string(&self.to_blob())
        )
    }

    /// Parses `type base64 [comment]`; the type must match the blob.
    pub fn from_openssh(line: &str) -> Result<Self, KeyError> {
        let mut parts = line.split_ascii_whitespace();
        let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
            return Err(KeyError::BadText);
        };
        let blob = Base64::decode_vec(b64).map_err(|_| KeyError::BadText)?;
        let key = Self::decode(&blob)?;
        if key.algorithm().wire_name() != kind {
            return Err(KeyError::BadText);
        }
        Ok(key)
    }

    /// Verifies a signature blob over `data`. The blob's algorithm must be one this key type
    /// signs with, and is verified as what it says.
    pub fn verify(&self, data: &[u8], blob: &[u8]) -> Result<(), KeyError> {
        let sig = SignatureBlob::decode(blob)?;
        match self {
            PublicKey::Ed25519(k) => {
                if sig.algorithm != "ssh-ed25519" {
                    return Err(KeyError::AlgorithmMismatch);
                }
                if ed25519_verify(k, data, sig.signature) {
                    Ok(())
                } else {
                    Err(KeyError::BadSignature)
                }
            }
        }
    }
}
