//! Signature primitives: Ed25519 [RFC8032 §5.1, RFC8709].

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// An Ed25519 private key: the 32-byte seed with its public key derived once (a host key signs
/// every handshake and is asked for its public blob several times per connection); the
/// seed is zeroized on drop (`SigningKey` does it).
pub struct Ed25519Private(SigningKey);

impl std::fmt::Debug for Ed25519Private {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ed25519Private(<redacted>)")
    }
}

impl Ed25519Private {
    /// The key with this seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        Self(SigningKey::from_bytes(&seed))
    }

    /// The seed (for writing key files).
    pub fn seed(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The 32-byte public key.
    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The 64-byte signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
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

/// An RSA private key; the `rsa` crate zeroizes its secret components on drop.
pub struct RsaPrivate(Box<rsa::RsaPrivateKey>);

impl std::fmt::Debug for RsaPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaPrivate(<redacted>)")
    }
}

impl RsaPrivate {
    /// A key from its big-endian components; validated (and refused below 2048 bits).
    pub fn from_components(n: &[u8], e: &[u8], d: &[u8], p: &[u8], q: &[u8]) -> Option<Self> {
        use rsa::BoxedUint;
        use rsa::traits::PublicKeyParts;
        let u = BoxedUint::from_be_slice_vartime;
        let key = rsa::RsaPrivateKey::from_components(u(n), u(e), u(d), vec![u(p), u(q)]).ok()?;
        (key.n().bits_vartime() >= 2048).then(|| Self(Box::new(key)))
    }

    /// A new random key of `bits` bits (slow: seconds for 3072).
    pub fn generate(rng: &mut dyn crate::crypto::rng::SecureRandom, bits: usize) -> Option<Self> {
        let mut adapter = crate::crypto::rng::RandCore(rng);
        rsa::RsaPrivateKey::new(&mut adapter, bits)
            .ok()
            .map(|k| Self(Box::new(k)))
    }

    /// The private components for a key file: (n, e, d, iqmp, p, q), big-endian.
    pub fn components(&self) -> Option<[Zeroizing<Vec<u8>>; 6]> {
        use rsa::traits::{PrivateKeyParts, PublicKeyParts};
        let k = &self.0;
        let [p, q] = k.primes() else { return None };
        let b = |v: &rsa::BoxedUint| {
            Zeroizing::new(
                v.to_be_bytes()
                    .iter()
                    .copied()
                    .skip_while(|&x| x == 0)
                    .collect::<Vec<u8>>(),
            )
        };
        let iqmp = k.crt_coefficient()?;
        Some([b(k.n()), b(k.e()), b(k.d()), b(&iqmp), b(p), b(q)])
    }

    /// (e, n) as big-endian magnitudes.
    pub fn public(&self) -> (Vec<u8>, Vec<u8>) {
        use rsa::traits::PublicKeyParts;
        let strip = |v: Vec<u8>| v.into_iter().skip_while(|&b| b == 0).collect::<Vec<u8>>();
        (
            strip(self.0.e().to_be_bytes().to_vec()),
            strip(self.0.n().to_be_bytes().to_vec()),
        )
    }

    /// An RSASSA-PKCS1-v1_5 signature of `msg` with `hash` [RFC8332 §3].
    pub fn sign(&self, hash: crate::crypto::verify::RsaHash, msg: &[u8]) -> Option<Vec<u8>> {
        use crate::crypto::verify::RsaHash;
        use rsa::pkcs1v15::SigningKey;
        use rsa::signature::SignatureEncoding;
        use rsa::signature::hazmat::PrehashSigner;
        use sha2::Digest;
        let key = (*self.0).clone();
        let sig = match hash {
            RsaHash::Sha1 => {
                SigningKey::<sha1::Sha1>::new(key).sign_prehash(&sha1::Sha1::digest(msg))
            }
            RsaHash::Sha256 => {
                SigningKey::<sha2::Sha256>::new(key).sign_prehash(&sha2::Sha256::digest(msg))
            }
            RsaHash::Sha512 => {
                SigningKey::<sha2::Sha512>::new(key).sign_prehash(&sha2::Sha512::digest(msg))
            }
        };
        sig.ok().map(|s| s.to_vec())
    }
}

/// An ECDSA private scalar on a NIST curve; zeroized on drop.
pub struct EcdsaPrivate {
    curve: crate::crypto::verify::Curve,
    scalar: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for EcdsaPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcdsaPrivate({:?}, <redacted>)", self.curve)
    }
}

macro_rules! with_ecdsa_key {
    ($curve:expr, $scalar:expr, |$k:ident| $body:expr) => {
        match $curve {
            crate::crypto::verify::Curve::P256 => p256::ecdsa::SigningKey::from_slice($scalar)
                .ok()
                .map(|$k| $body),
            crate::crypto::verify::Curve::P384 => p384::ecdsa::SigningKey::from_slice($scalar)
                .ok()
                .map(|$k| $body),
            crate::crypto::verify::Curve::P521 => p521::ecdsa::SigningKey::from_slice($scalar)
                .ok()
                .map(|$k| $body),
        }
    };
}

impl EcdsaPrivate {
    /// A key from its big-endian scalar; `None` if it is out of range.
    pub fn from_scalar(curve: crate::crypto::verify::Curve, scalar: &[u8]) -> Option<Self> {
        let len = curve.field_len();
        let mag: Vec<u8> = scalar.iter().copied().skip_while(|&b| b == 0).collect();
        if mag.len() > len {
            return None;
        }
        let mut fixed = Zeroizing::new(vec![0u8; len.saturating_sub(mag.len())]);
        fixed.extend_from_slice(&mag);
        let key = Self {
            curve,
            scalar: fixed,
        };
        key.public()?;
        Some(key)
    }

    /// The big-endian scalar (for key files).
    pub fn scalar(&self) -> &[u8] {
        &self.scalar
    }

    /// The curve.
    pub const fn curve(&self) -> crate::crypto::verify::Curve {
        self.curve
    }

    /// The uncompressed SEC1 public point.
    pub fn public(&self) -> Option<Vec<u8>> {
        with_ecdsa_key!(self.curve, &self.scalar, |k| k
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec())
    }

    /// A deterministic (RFC 6979) signature of `msg` with the curve's hash: (r, s) big-endian.
    pub fn sign(&self, msg: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        use crate::crypto::verify::Curve;
        use p256::ecdsa::signature::Signer;
        match self.curve {
            Curve::P256 => {
                let k = p256::ecdsa::SigningKey::from_slice(&self.scalar).ok()?;
                let sig: p256::ecdsa::Signature = k.sign(msg);
                let (r, s) = sig.split_bytes();
                Some((r.to_vec(), s.to_vec()))
            }
            Curve::P384 => {
                let k = p384::ecdsa::SigningKey::from_slice(&self.scalar).ok()?;
                let sig: p384::ecdsa::Signature = k.sign(msg);
                let (r, s) = sig.split_bytes();
                Some((r.to_vec(), s.to_vec()))
            }
            Curve::P521 => {
                let k = p521::ecdsa::SigningKey::from_slice(&self.scalar).ok()?;
                let sig: p521::ecdsa::Signature = k.sign(msg);
                let (r, s) = sig.split_bytes();
                Some((r.to_vec(), s.to_vec()))
            }
        }
    }
}
