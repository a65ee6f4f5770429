//! Signature verification for user and host keys: RSA PKCS#1 v1.5 [RFC8332 §3, RFC4253 §6.6]
//! and ECDSA over the NIST curves [RFC5656 §3.1.2]. Inputs are the raw integers and points from
//! the SSH blobs; every check fails closed.

use crate::limits::{MAX_RSA_BITS, MIN_RSA_BITS};
use rsa::pkcs1v15::{Signature as RsaSignature, VerifyingKey as RsaVerifyingKey};
use rsa::signature::Verifier;
use rsa::{BoxedUint, RsaPublicKey};

/// The hash of an RSA signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaHash {
    /// `ssh-rsa`: SHA-1 (only where configuration enables it).
    Sha1,
    /// `rsa-sha2-256`.
    Sha256,
    /// `rsa-sha2-512`.
    Sha512,
}

/// Checks that (e, n) form an acceptable public key: size within limits, odd modulus.
pub fn rsa_key_ok(e: &[u8], n: &[u8]) -> bool {
    rsa_key(e, n).is_some()
}

fn rsa_key(e: &[u8], n: &[u8]) -> Option<RsaPublicKey> {
    let n = BoxedUint::from_be_slice_vartime(n);
    let e = BoxedUint::from_be_slice_vartime(e);
    RsaPublicKey::new_with_size_limits(n, e, MIN_RSA_BITS..=MAX_RSA_BITS).ok()
}

/// Verifies an RSASSA-PKCS1-v1_5 signature. A signature shorter than the modulus is
/// left-padded with zeros first, as OpenSSH does for peers that strip leading zero bytes.
pub fn rsa_verify(e: &[u8], n: &[u8], hash: RsaHash, msg: &[u8], sig: &[u8]) -> bool {
    let Some(key) = rsa_key(e, n) else {
        return false;
    };
    let modlen = n.iter().skip_while(|&&b| b == 0).count();
    if sig.len() > modlen {
        return false;
    }
    let mut padded = vec![0u8; modlen.saturating_sub(sig.len())];
    padded.extend_from_slice(sig);
    let Ok(sig) = RsaSignature::try_from(padded.as_slice()) else {
        return false;
    };
    match hash {
        RsaHash::Sha1 => RsaVerifyingKey::<sha1::Sha1>::new(key)
            .verify(msg, &sig)
            .is_ok(),
        RsaHash::Sha256 => RsaVerifyingKey::<sha2::Sha256>::new(key)
            .verify(msg, &sig)
            .is_ok(),
        RsaHash::Sha512 => RsaVerifyingKey::<sha2::Sha512>::new(key)
            .verify(msg, &sig)
            .is_ok(),
    }
}

/// A NIST curve of `ecdsa-sha2-*` [RFC5656 §10.1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// nistp256, hashed with SHA-256.
    P256,
    /// nistp384, hashed with SHA-384.
    P384,
    /// nistp521, hashed with SHA-512.
    P521,
}

impl Curve {
    /// Bytes of one field element / scalar.
    pub const fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// Whether `point` is a valid SEC1 point on the curve (not the identity).
    pub fn point_ok(self, point: &[u8]) -> bool {
        match self {
            Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(point).is_ok(),
            Curve::P384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(point).is_ok(),
            Curve::P521 => p521::ecdsa::VerifyingKey::from_sec1_bytes(point).is_ok(),
        }
    }
}

/// Left-pads a big-endian magnitude to `len` bytes; `None` if it does not fit.
fn fixed(mag: &[u8], len: usize) -> Option<Vec<u8>> {
    let mag: Vec<u8> = mag.iter().copied().skip_while(|&b| b == 0).collect();
    if mag.len() > len {
        return None;
    }
    let mut out = vec![0u8; len.saturating_sub(mag.len())];
    out.extend_from_slice(&mag);
    Some(out)
}

/// Verifies an ECDSA signature given as the magnitudes of r and s, hashing `msg` with the
/// curve's hash [RFC5656 §6.2.1].
pub fn ecdsa_verify(curve: Curve, point: &[u8], msg: &[u8], r: &[u8], s: &[u8]) -> bool {
    let (Some(r), Some(s)) = (fixed(r, curve.field_len()), fixed(s, curve.field_len())) else {
        return false;
    };
    let sig = [r, s].concat();
    match curve {
        Curve::P256 => {
            let (Ok(k), Ok(sig)) = (
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p256::ecdsa::Signature::from_slice(&sig),
            ) else {
                return false;
            };
            k.verify(msg, &sig).is_ok()
        }
        Curve::P384 => {
            let (Ok(k), Ok(sig)) = (
                p384::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p384::ecdsa::Signature::from_slice(&sig),
            ) else {
                return false;
            };
            k.verify(msg, &sig).is_ok()
        }
        Curve::P521 => {
            let (Ok(k), Ok(sig)) = (
                p521::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p521::ecdsa::Signature::from_slice(&sig),
            ) else {
                return false;
            };
            k.verify(msg, &sig).is_ok()
        }
    }
}
