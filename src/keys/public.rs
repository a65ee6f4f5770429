//! Public keys and signature blobs as they travel in SSH messages.

use base64ct::{Base64, Base64Unpadded, Encoding};

use crate::crypto::hash::HashAlg;
use crate::crypto::sign::ed25519_verify;
use crate::crypto::verify::{self, Curve, RsaHash};
use crate::error::DecodeError;
use crate::keys::{KeyType, SigAlg};
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
    /// A key below our strength floor (RSA under 2048 bits) or not a valid point.
    #[error("weak or invalid key")]
    Weak,
    /// The signature's algorithm does not belong to the key, or is not allowed.
    #[error("signature algorithm not allowed for this key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Text form not understood.
    #[error("malformed public key text")]
    BadText,
}

/// A public key we can verify with. Integers are kept as canonical big-endian magnitudes and
/// re-encoded exactly, so the blob, the fingerprint and the signed data never drift.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// Ed25519 [RFC8709 §4].
    Ed25519([u8; 32]),
    /// RSA [RFC4253 §6.6]: exponent and modulus.
    Rsa {
        /// Public exponent e.
        e: Vec<u8>,
        /// Modulus n.
        n: Vec<u8>,
    },
    /// ECDSA [RFC5656 §3.1]: the curve and the SEC1 point Q.
    Ecdsa {
        /// The curve.
        curve: Curve,
        /// Q, SEC1-encoded.
        point: Vec<u8>,
    },
    /// A FIDO Ed25519 key [PROTOCOL.u2f].
    SkEd25519 {
        /// The Ed25519 key.
        key: [u8; 32],
        /// The FIDO application (usually "ssh:").
        application: Vec<u8>,
    },
    /// A FIDO ECDSA P-256 key [PROTOCOL.u2f].
    SkEcdsaP256 {
        /// Q, SEC1-encoded.
        point: Vec<u8>,
        /// The FIDO application (usually "ssh:").
        application: Vec<u8>,
    },
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.key_type().wire_name(), self.fingerprint())
    }
}

/// A parsed signature blob: `string algorithm, string signature` [RFC4253 §6.6], plus
/// `byte flags, uint32 counter` for security keys [PROTOCOL.u2f].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureBlob<'a> {
    /// The signature algorithm name inside the blob.
    pub algorithm: &'a str,
    /// The raw signature bytes.
    pub signature: &'a [u8],
    /// Security keys: (flags, counter).
    pub sk: Option<(u8, u32)>,
}

impl<'a> SignatureBlob<'a> {
    /// Parses a signature blob; trailing bytes are an error.
    pub fn decode(blob: &'a [u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let algorithm =
            std::str::from_utf8(r.string_max(64)?).map_err(|_| KeyError::Unsupported)?;
        let signature = r.string()?;
        let sk = if algorithm.starts_with("sk-") {
            Some((r.u8()?, r.u32()?))
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            algorithm,
            signature,
            sk,
        })
    }
}

/// What a verified signature says besides "valid".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The algorithm the signature used.
    pub algorithm: SigAlg,
    /// Security keys: the authenticator flags (0x01 user present, 0x04 user verified).
    pub sk_flags: Option<u8>,
}

fn curve_name(c: Curve) -> &'static [u8] {
    match c {
        Curve::P256 => b"nistp256",
        Curve::P384 => b"nistp384",
        Curve::P521 => b"nistp521",
    }
}

/// The data a security key signs: SHA256(application) ‖ flags ‖ counter ‖ SHA256(message)
/// [PROTOCOL.u2f "SSH U2F signatures"; no extensions are defined].
pub fn sk_signed_data(application: &[u8], flags: u8, counter: u32, message: &[u8]) -> Vec<u8> {
    let mut out = HashAlg::Sha256.digest(&[application]);
    out.push(flags);
    out.extend_from_slice(&counter.to_be_bytes());
    out.extend_from_slice(&HashAlg::Sha256.digest(&[message]));
    out
}

impl PublicKey {
    /// Parses a public key blob; trailing bytes, weak RSA moduli and off-curve points are errors.
    pub fn decode(blob: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let name = r.string_max(64)?;
        let key = Self::decode_fields(name, &mut r)?;
        r.finish()?;
        Ok(key)
    }

    /// Reads the fields of a key of type `name` (the blob after its name): shared by plain
    /// keys and by certificates, which carry the same fields after their nonce
    /// [PROTOCOL.certkeys].
    pub(crate) fn decode_fields(name: &[u8], r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let key = match name {
            b"ssh-ed25519" => {
                PublicKey::Ed25519(r.string()?.try_into().map_err(|_| KeyError::Weak)?)
            }
            b"sk-ssh-ed25519@openssh.com" => PublicKey::SkEd25519 {
                key: r.string()?.try_into().map_err(|_| KeyError::Weak)?,
                application: r.string_max(256)?.to_vec(),
            },
            b"ssh-rsa" => {
                let e = r.mpint()?.positive()?.to_vec();
                let n = r.mpint()?.positive()?.to_vec();
                if !verify::rsa_key_ok(&e, &n) {
                    return Err(KeyError::Weak);
                }
                PublicKey::Rsa { e, n }
            }
            b"sk-ecdsa-sha2-nistp256@openssh.com" => {
                if r.string()? != curve_name(Curve::P256) {
                    return Err(KeyError::Unsupported);
                }
                let point = r.string()?.to_vec();
                if !Curve::P256.point_ok(&point) {
                    return Err(KeyError::Weak);
                }
                PublicKey::SkEcdsaP256 {
                    point,
                    application: r.string_max(256)?.to_vec(),
                }
            }
            name => {
                let curve = match name {
                    b"ecdsa-sha2-nistp256" => Curve::P256,
                    b"ecdsa-sha2-nistp384" => Curve::P384,
                    b"ecdsa-sha2-nistp521" => Curve::P521,
                    _ => return Err(KeyError::Unsupported),
                };
                // The curve identifier must repeat the type's curve [RFC5656 §3.1].
                if r.string()? != curve_name(curve) {
                    return Err(KeyError::Unsupported);
                }
                let point = r.string()?.to_vec();
                if !curve.point_ok(&point) {
                    return Err(KeyError::Weak);
                }
                PublicKey::Ecdsa { curve, point }
            }
        };
        Ok(key)
    }

    /// Appends the key blob.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.string(self.key_type().wire_name().as_bytes());
        match self {
            PublicKey::Ed25519(k) => {
                w.string(k);
            }
            PublicKey::Rsa { e, n } => {
                w.mpint_unsigned(e).mpint_unsigned(n);
            }
            PublicKey::Ecdsa { curve, point } => {
                w.string(curve_name(*curve)).string(point);
            }
            PublicKey::SkEd25519 { key, application } => {
                w.string(key).string(application);
            }
            PublicKey::SkEcdsaP256 { point, application } => {
                w.string(curve_name(Curve::P256))
                    .string(point)
                    .string(application);
            }
        }
    }

    /// The key blob.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut Writer::new(&mut out));
        out
    }

    /// The key's type.
    pub const fn key_type(&self) -> KeyType {
        match self {
            PublicKey::Ed25519(_) => KeyType::Ed25519,
            PublicKey::Rsa { .. } => KeyType::Rsa,
            PublicKey::Ecdsa { curve, .. } => KeyType::Ecdsa(*curve),
            PublicKey::SkEd25519 { .. } => KeyType::SkEd25519,
            PublicKey::SkEcdsaP256 { .. } => KeyType::SkEcdsaP256,
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
            self.key_type().wire_name(),
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
        if key.key_type().wire_name() != kind {
            return Err(KeyError::BadText);
        }
        Ok(key)
    }

    /// Verifies a signature blob over `data`. The blob's algorithm must sign with this key type
    /// and be one of `allowed`; the signature is verified as what the blob says, never as what
    /// a request claimed. Security-key signatures cover the application, flags and counter
    /// too; their flags are returned for the caller's presence policy.
    pub fn verify(
        &self,
        data: &[u8],
        blob: &[u8],
        allowed: &[SigAlg],
    ) -> Result<Verified, KeyError> {
        let sig = SignatureBlob::decode(blob)?;
        let alg = SigAlg::from_wire_name(sig.algorithm).ok_or(KeyError::AlgorithmMismatch)?;
        if alg.key_type() != self.key_type() || !allowed.contains(&alg) {
            return Err(KeyError::AlgorithmMismatch);
        }
        let ecdsa = |curve: Curve, point: &[u8], msg: &[u8]| {
            // string mpint r, mpint s [RFC5656 §3.1.2].
            let mut r = Reader::new(sig.signature);
            let parsed = (|| {
                Ok::<_, DecodeError>((r.mpint()?.positive()?, r.mpint()?.positive()?, r.finish()?))
            })();
            match parsed {
                Ok((rr, ss, ())) => verify::ecdsa_verify(curve, point, msg, rr, ss),
                Err(_) => false,
            }
        };
        let ok = match (self, sig.sk) {
            (PublicKey::Ed25519(k), None) => ed25519_verify(k, data, sig.signature),
            (PublicKey::Rsa { e, n }, None) => {
                let hash = match alg {
                    SigAlg::RsaSha512 => RsaHash::Sha512,
                    SigAlg::RsaSha256 => RsaHash::Sha256,
                    _ => RsaHash::Sha1,
                };
                verify::rsa_verify(e, n, hash, data, sig.signature)
            }
            (PublicKey::Ecdsa { curve, point }, None) => ecdsa(*curve, point, data),
            (PublicKey::SkEd25519 { key, application }, Some((flags, counter))) => ed25519_verify(
                key,
                &sk_signed_data(application, flags, counter, data),
                sig.signature,
            ),
            (PublicKey::SkEcdsaP256 { point, application }, Some((flags, counter))) => ecdsa(
                Curve::P256,
                point,
                &sk_signed_data(application, flags, counter, data),
            ),
            _ => false,
        };
        if ok {
            Ok(Verified {
                algorithm: alg,
                sk_flags: sig.sk.map(|(f, _)| f),
            })
        } else {
            Err(KeyError::BadSignature)
        }
    }
}
