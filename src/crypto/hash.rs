//! The hash functions of the key exchanges (exchange hash and key derivation) and fingerprints.

use sha2::{Digest, Sha256, Sha384, Sha512};

/// A hash algorithm named by a kex method (`-sha256`, `-sha512`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// An incremental hash of any of the algorithms.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(Sha256),
    /// SHA-384 state.
    Sha384(Sha384),
    /// SHA-512 state.
    Sha512(Sha512),
}

impl HashAlg {
    /// Output length in bytes.
    pub const fn len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Always false.
    pub const fn is_empty(self) -> bool {
        false
    }

    /// A fresh hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            HashAlg::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlg::Sha384 => Hasher::Sha384(Sha384::new()),
            HashAlg::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// The hash of the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        let mut h = self.hasher();
        for p in parts {
            h.update(p);
        }
        h.finish()
    }
}

impl Hasher {
    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}
