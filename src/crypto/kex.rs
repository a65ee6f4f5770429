//! Key agreement primitives: X25519 [RFC8731 §3, RFC7748 §5].

use zeroize::Zeroizing;

use crate::crypto::rng::SecureRandom;

/// Why a key agreement failed; deliberately coarse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgreementError {
    /// The peer's public value has the wrong length or encoding.
    #[error("malformed public value")]
    BadPublic,
    /// The shared secret is all zeros (a low-order peer point) [RFC8731 §3].
    #[error("non-contributory shared secret")]
    ZeroSecret,
}

/// An ephemeral X25519 private scalar; zeroized on drop.
pub struct X25519Secret(Zeroizing<[u8; 32]>);

/// A shared secret K as the big-endian bytes that get mpint-encoded; zeroized on drop.
pub struct SharedSecret(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("X25519Secret(<redacted>)")
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

impl X25519Secret {
    /// A fresh random scalar.
    pub fn generate(rng: &mut dyn SecureRandom) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill(&mut k[..]);
        Self(k)
    }

    /// A scalar from fixed bytes (test vectors).
    pub fn from_bytes(k: [u8; 32]) -> Self {
        Self(Zeroizing::new(k))
    }

    /// Our public value Q = X25519(k, 9).
    pub fn public(&self) -> [u8; 32] {
        x25519_dalek::x25519(*self.0, x25519_dalek::X25519_BASEPOINT_BYTES)
    }

    /// X25519(k, peer). The peer value must be exactly 32 bytes and the result non-zero; the
    /// 32 output bytes are K as an unsigned big-endian integer [RFC8731 §3].
    pub fn agree(&self, peer: &[u8]) -> Result<SharedSecret, AgreementError> {
        let peer: [u8; 32] = peer.try_into().map_err(|_| AgreementError::BadPublic)?;
        let out = Zeroizing::new(x25519_dalek::x25519(*self.0, peer));
        if crate::crypto::ct::eq(&out[..], &[0u8; 32]) {
            return Err(AgreementError::ZeroSecret);
        }
        Ok(SharedSecret(Zeroizing::new(out.to_vec())))
    }
}
