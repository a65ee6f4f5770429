//! Signature primitives: Ed25519 [RFC8032 §5.1, RFC8709].

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// An Ed25519 private key (the 32-byte seed); zeroized on drop.
pub struct Ed25519Private(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Ed25519Private {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ed25519Private(<redacted>)")
    }
}

impl Ed25519Private {
    /// The key with this seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(Zeroizing::new(seed))
    }

    /// The seed (for writing key files).
    pub fn seed(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 32-byte public key.
    pub fn public(&self) -> [u8; 32] {
        SigningKey::from_bytes(&self.0).verifying_key().to_bytes()
    }

    /// The 64-byte signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        SigningKey::from_bytes(&self.0).sign(msg).to_bytes()
    }
}

/// Whether `sig` is a valid Ed25519 signature of `msg` by `public`. Strict verification:
/// non-canonical encodings and small-order keys are refused.
pub fn ed25519_verify(public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(public), Ok(sig)) = (<[u8; 32]>::try_from(public), <[u8; 64]>::try_from(sig)) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&public) else {
        return false;
    };
    key.verify_strict(msg, &Signature::from_bytes(&sig)).is_ok()
}
