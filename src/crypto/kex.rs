//! Key agreement primitives: X25519 [RFC8731 §3, RFC7748 §5], NIST ECDH, finite-field DH, and
//! the ML-KEM / sntrup761 hybrids.

use zeroize::Zeroizing;

use crate::crypto::hash::HashAlg;
use crate::crypto::rng::SecureRandom;
use crate::limits::{DH_EXPONENT_BITS, DH_MAX_BITS, DH_MIN_BITS};

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

    /// Our public value Q = X25519(k, 9), computed on the Edwards form with the precomputed
    /// basepoint table: the same value as the ladder on u = 9 (the RFC 7748 vectors check it),
    /// at about a third of its cost, once per key exchange.
    pub fn public(&self) -> [u8; 32] {
        let secret = x25519_dalek::StaticSecret::from(*self.0);
        x25519_dalek::PublicKey::from(&secret).to_bytes()
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

/// How a method's shared secret enters the exchange hash and key derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretEncoding {
    /// As an mpint of the big-endian bytes (classical DH/ECDH [RFC4253 §8, RFC5656 §4]).
    Mpint,
    /// As a string (PQ/T hybrids [draft-ietf-sshm-mlkem-hybrid-kex §2.5]).
    String,
}

/// A shared secret with its encoding.
pub struct Secret {
    /// The raw bytes.
    pub bytes: Zeroizing<Vec<u8>>,
    /// How to encode them.
    pub encoding: SecretEncoding,
}

/// The agreement schemes behind the ECDH-shaped exchanges (messages 30/31 with string
/// public values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agreement {
    /// X25519 \[RFC8731\].
    X25519,
    /// ECDH on a NIST curve [RFC5656 §4].
    Nist(crate::crypto::verify::Curve),
    /// ML-KEM-768 + X25519, K = SHA-256(K_PQ ‖ K_CL) [draft-ietf-sshm-mlkem-hybrid-kex §2.4].
    Mlkem768X25519,
    /// Streamlined NTRU Prime 761 + X25519, K = SHA-512(K_PQ ‖ K_CL), the same construction
    /// with OpenSSH's sntrup761 (PROTOCOL: sntrup761x25519-sha512).
    Sntrup761X25519,
    /// Finite-field Diffie-Hellman over an RFC 3526 group, generator 2 [RFC4253 §8, RFC8268].
    Dh(DhGroup),
    /// Diffie-Hellman over a group the server picks per connection \[RFC4419\]: the group is
    /// only known after GEX_GROUP, so the exchange runs through [`DhParams`] directly.
    GroupExchange,
}

/// A MODP group \[RFC3526\].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhGroup {
    /// 2048-bit, group 14.
    G14,
    /// 4096-bit, group 16.
    G16,
    /// 8192-bit, group 18.
    G18,
}

impl DhGroup {
    /// The prime, big-endian.
    pub fn prime(self) -> Vec<u8> {
        let hex = match self {
            DhGroup::G14 => crate::crypto::modp::GROUP14,
            DhGroup::G16 => crate::crypto::modp::GROUP16,
            DhGroup::G18 => crate::crypto::modp::GROUP18,
        };
        hex.as_bytes()
            .chunks(2)
            .filter_map(|c| {
                std::str::from_utf8(c)
                    .ok()
                    .and_then(|s| u8::from_str_radix(s, 16).ok())
            })
            .collect()
    }
}

/// The same bound for the exponentiation: only our own exponents are ever raised to, and they
/// have exactly this many bits, so `pow_bounded_exp` loops 512 times instead of over p's full
/// width (16× less work for an 8192-bit group; constant time in the exponent's value).
const EXPONENT_BITS: u32 = DH_EXPONENT_BITS as u32;

/// A finite-field DH group: a fixed RFC 3526 one, or one a GEX server sent us.
pub struct DhParams {
    p: crypto_bigint::BoxedUint,
    g: crypto_bigint::BoxedUint,
    params: crypto_bigint::modular::BoxedMontyParams,
}

impl std::fmt::Debug for DhParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DhParams({} bits)", self.bits())
    }
}

fn modp(group: DhGroup) -> Option<DhParams> {
    DhParams::from_wire(&group.prime(), &[2])
}

impl DhParams {
    /// One of the RFC 3526 groups (generator 2).
    pub fn fixed(group: DhGroup) -> Option<Self> {
        modp(group)
    }

    /// p and g as received (mpint magnitudes), refused unless p is odd and within
    /// [`DH_MIN_BITS`, `DH_MAX_BITS`] and g lies in [2, p−2]. Primality is not tested: the
    /// group is covered by the host key signature over H, as in OpenSSH's client.
    pub fn from_wire(p: &[u8], g: &[u8]) -> Option<Self> {
        use crypto_bigint::{BoxedUint, Odd, modular::BoxedMontyParams};
        let p: Vec<u8> = p.iter().copied().skip_while(|&b| b == 0).collect();
        if p.len() > DH_MAX_BITS as usize / 8 {
            return None;
        }
        let precision = u32::try_from(p.len().saturating_mul(8)).ok()?.max(64);
        let p = BoxedUint::from_be_slice(&p, precision).ok()?;
        if !(DH_MIN_BITS..=DH_MAX_BITS).contains(&p.bits()) {
            return None;
        }
        let odd = Option::<Odd<BoxedUint>>::from(Odd::new(p.clone()))?;
        let mut params = DhParams {
            g: BoxedUint::zero_with_precision(p.bits_precision()),
            p,
            params: BoxedMontyParams::new(odd),
        };
        let g = params.value(g)?;
        if !params.check(&g) {
            return None;
        }
        params.g = g;
        Some(params)
    }

    /// Bit length of p.
    pub fn bits(&self) -> u32 {
        self.p.bits()
    }

    /// p, big-endian without leading zeros.
    pub fn p_bytes(&self) -> Vec<u8> {
        strip(&self.p.to_be_bytes())
    }

    /// g, big-endian without leading zeros.
    pub fn g_bytes(&self) -> Vec<u8> {
        strip(&self.g.to_be_bytes())
    }

    /// Client: a private exponent and e = g^x mod p.
    pub fn start(
        &self,
        rng: &mut dyn SecureRandom,
    ) -> Option<(Zeroizing<crypto_bigint::BoxedUint>, Vec<u8>)> {
        let (x, e) = self.exponent(rng)?;
        Some((Zeroizing::new(x), e.to_vec()))
    }

    /// Server: f and K from the client's e.
    pub fn respond(
        &self,
        e: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<(Vec<u8>, Secret), AgreementError> {
        let e = self
            .value(e)
            .filter(|e| self.check(e))
            .ok_or(AgreementError::BadPublic)?;
        let (y, f) = self.exponent(rng).ok_or(AgreementError::BadPublic)?;
        let y = Zeroizing::new(y);
        Ok((f.to_vec(), self.shared(&e, &y)?))
    }

    /// Client: K from the server's f.
    pub fn finish(&self, x: &crypto_bigint::BoxedUint, f: &[u8]) -> Result<Secret, AgreementError> {
        let f = self
            .value(f)
            .filter(|f| self.check(f))
            .ok_or(AgreementError::BadPublic)?;
        self.shared(&f, x)
    }

    /// K = peer^x mod p, accepted only if 1 < K < p−1 against confinement [RFC4419 §3].
    fn shared(
        &self,
        peer: &crypto_bigint::BoxedUint,
        x: &crypto_bigint::BoxedUint,
    ) -> Result<Secret, AgreementError> {
        let k = Zeroizing::new(
            crypto_bigint::modular::BoxedMontyForm::new(peer.clone(), &self.params)
                .pow_bounded_exp(x, EXPONENT_BITS)
                .retrieve(),
        );
        if !self.check(&k) {
            return Err(AgreementError::BadPublic);
        }
        Ok(Secret {
            bytes: Zeroizing::new(strip(&k.to_be_bytes())),
            encoding: SecretEncoding::Mpint,
        })
    }

    fn value(&self, bytes: &[u8]) -> Option<crypto_bigint::BoxedUint> {
        let mag: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        if mag.len() > self.p.bits_precision() as usize / 8 {
            return None;
        }
        crypto_bigint::BoxedUint::from_be_slice(&mag, self.p.bits_precision()).ok()
    }

    /// base^exp mod p, big-endian without leading zeros.
    fn pow(
        &self,
        base: &crypto_bigint::BoxedUint,
        exp: &crypto_bigint::BoxedUint,
    ) -> Zeroizing<Vec<u8>> {
        let r = crypto_bigint::modular::BoxedMontyForm::new(base.clone(), &self.params)
            .pow_bounded_exp(exp, EXPONENT_BITS)
            .retrieve();
        Zeroizing::new(strip(&r.to_be_bytes()))
    }

    /// A peer value must lie in [2, p-2] [RFC4253 §8: "not in the range [1, p-1] MUST NOT be accepted"].
    fn check(&self, v: &crypto_bigint::BoxedUint) -> bool {
        let two = crypto_bigint::BoxedUint::from_be_slice(&[2], self.p.bits_precision()).ok();
        let p_minus_1 = self
            .p
            .wrapping_sub(crypto_bigint::BoxedUint::one_with_precision(
                self.p.bits_precision(),
            ));
        two.is_some_and(|two| *v >= two && *v < p_minus_1)
    }

    fn exponent(
        &self,
        rng: &mut dyn SecureRandom,
    ) -> Option<(crypto_bigint::BoxedUint, Zeroizing<Vec<u8>>)> {
        let mut x = Zeroizing::new(vec![0u8; DH_EXPONENT_BITS / 8]);
        rng.fill(&mut x);
        if let Some(top) = x.first_mut() {
            *top |= 0x80;
        }
        let exp = crypto_bigint::BoxedUint::from_be_slice(&x, self.p.bits_precision()).ok()?;
        let public = self.pow(&self.g, &exp);
        Some((exp, public))
    }
}

fn strip(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().copied().skip_while(|&b| b == 0).collect()
}

/// A client's ephemeral secret between its INIT and the server's REPLY; zeroized on drop.
pub enum Ephemeral {
    /// X25519 scalar.
    X25519(X25519Secret),
    /// NIST scalar (big-endian) and its curve.
    Nist(crate::crypto::verify::Curve, Zeroizing<Vec<u8>>),
    /// ML-KEM decapsulation key and X25519 scalar.
    Mlkem768X25519(Box<ml_kem::DecapsulationKey768>, X25519Secret),
    /// sntrup761 decapsulation key and X25519 scalar.
    Sntrup761X25519(Box<sntrup::sntrup761::DecapsulationKey>, X25519Secret),
    /// DH group and private exponent.
    Dh(Box<DhParams>, Zeroizing<crypto_bigint::BoxedUint>),
    /// No usable ephemeral could be made; every reply is refused.
    Failed,
}

impl std::fmt::Debug for Ephemeral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ephemeral(<redacted>)")
    }
}

const MLKEM768_EK: usize = 1184;
const MLKEM768_CT: usize = 1088;

fn nist_scalar(
    curve: crate::crypto::verify::Curve,
    rng: &mut dyn SecureRandom,
) -> Zeroizing<Vec<u8>> {
    // A random scalar in range: reject the (astronomically rare) out-of-range draws.
    loop {
        let mut k = Zeroizing::new(vec![0u8; curve.field_len()]);
        rng.fill(&mut k);
        if curve == crate::crypto::verify::Curve::P521
            && let Some(top) = k.first_mut()
        {
            *top &= 0x01;
        }
        if nist_public(curve, &k).is_some() {
            return k;
        }
    }
}

fn nist_public(curve: crate::crypto::verify::Curve, k: &[u8]) -> Option<Vec<u8>> {
    use crate::crypto::verify::Curve;
    use p256::elliptic_curve::sec1::ToSec1Point;
    Some(match curve {
        Curve::P256 => p256::SecretKey::from_slice(k)
            .ok()?
            .public_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec(),
        Curve::P384 => p384::SecretKey::from_slice(k)
            .ok()?
            .public_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec(),
        Curve::P521 => p521::SecretKey::from_slice(k)
            .ok()?
            .public_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec(),
    })
}

/// ECDH with a validated peer point; the x-coordinate [RFC5656 §4, SEC1 §3.3.1].
fn nist_agree(
    curve: crate::crypto::verify::Curve,
    k: &[u8],
    peer: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AgreementError> {
    use crate::crypto::verify::Curve;
    macro_rules! dh {
        ($c:ident) => {{
            let sk = $c::SecretKey::from_slice(k).map_err(|_| AgreementError::BadPublic)?;
            let pk = $c::PublicKey::from_sec1_bytes(peer).map_err(|_| AgreementError::BadPublic)?;
            let ss = $c::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine());
            Zeroizing::new(ss.raw_secret_bytes().to_vec())
        }};
    }
    Ok(match curve {
        Curve::P256 => dh!(p256),
        Curve::P384 => dh!(p384),
        Curve::P521 => dh!(p521),
    })
}

impl Agreement {
    /// Whether the public values travel (and are hashed) as mpints — DH — rather than strings.
    pub const fn public_is_mpint(self) -> bool {
        matches!(self, Agreement::Dh(_) | Agreement::GroupExchange)
    }

    /// Client: a fresh ephemeral and the INIT value (Q_C or C_INIT; e for DH).
    pub fn start(self, rng: &mut dyn SecureRandom) -> (Ephemeral, Vec<u8>) {
        match self {
            Agreement::X25519 => {
                let s = X25519Secret::generate(rng);
                let q = s.public().to_vec();
                (Ephemeral::X25519(s), q)
            }
            Agreement::Nist(curve) => {
                let k = nist_scalar(curve, rng);
                let q = nist_public(curve, &k).unwrap_or_default();
                (Ephemeral::Nist(curve, k), q)
            }
            Agreement::Mlkem768X25519 => {
                let mut seed = Zeroizing::new([0u8; 64]);
                rng.fill(&mut seed[..]);
                let dk = ml_kem::DecapsulationKey768::from_seed((*seed).into());
                use ml_kem::kem::KeyExport;
                let mut c_init = dk.encapsulation_key().to_bytes().to_vec();
                let x = X25519Secret::generate(rng);
                c_init.extend_from_slice(&x.public());
                (Ephemeral::Mlkem768X25519(Box::new(dk), x), c_init)
            }
            Agreement::Dh(group) => {
                match modp(group).and_then(|m| m.start(rng).map(|(x, e)| (m, x, e))) {
                    Some((m, x, e)) => (Ephemeral::Dh(Box::new(m), x), e),
                    // Unreachable with valid constants; an empty e is refused by any peer.
                    None => (Ephemeral::Failed, Vec::new()),
                }
            }
            Agreement::Sntrup761X25519 => {
                let (ek, dk) =
                    sntrup::sntrup761::generate_key(&mut crate::crypto::rng::RandCore(rng));
                let mut c_init = ek.as_ref().to_vec();
                let x = X25519Secret::generate(rng);
                c_init.extend_from_slice(&x.public());
                (Ephemeral::Sntrup761X25519(Box::new(dk), x), c_init)
            }
            // GEX starts from the server's group (`DhParams::start`), never from here.
            Agreement::GroupExchange => (Ephemeral::Failed, Vec::new()),
        }
    }

    /// Server: the REPLY value (Q_S or S_REPLY) and K, from the client's INIT value.
    pub fn respond(
        self,
        init: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<(Vec<u8>, Secret), AgreementError> {
        match self {
            Agreement::X25519 => {
                let s = X25519Secret::generate(rng);
                let k = s.agree(init)?;
                Ok((
                    s.public().to_vec(),
                    Secret {
                        bytes: k.0,
                        encoding: SecretEncoding::Mpint,
                    },
                ))
            }
            Agreement::Nist(curve) => {
                let k = nist_scalar(curve, rng);
                let shared = nist_agree(curve, &k, init)?;
                Ok((
                    nist_public(curve, &k).unwrap_or_default(),
                    Secret {
                        bytes: shared,
                        encoding: SecretEncoding::Mpint,
                    },
                ))
            }
            Agreement::Mlkem768X25519 => {
                use ml_kem::kem::Encapsulate;
                // C_INIT must be exactly C_PK2 ‖ C_PK1 [draft §2.3].
                if init.len() != MLKEM768_EK.saturating_add(32) {
                    return Err(AgreementError::BadPublic);
                }
                let (pk2, pk1) = init.split_at(MLKEM768_EK);
                let key = ml_kem::kem::Key::<ml_kem::EncapsulationKey768>::try_from(pk2)
                    .map_err(|_| AgreementError::BadPublic)?;
                // FIPS 203 §7.2 encapsulation key check happens in `new`.
                let ek = ml_kem::EncapsulationKey768::new(&key)
                    .map_err(|_| AgreementError::BadPublic)?;
                let (ct, k_pq) = ek.encapsulate_with_rng(&mut crate::crypto::rng::RandCore(rng));
                let x = X25519Secret::generate(rng);
                let k_cl = x.agree(pk1)?;
                let mut reply = ct.to_vec();
                reply.extend_from_slice(&x.public());
                Ok((reply, hybrid_secret(HashAlg::Sha256, &k_pq, &k_cl.0)))
            }
            Agreement::Sntrup761X25519 => {
                use sntrup::sntrup761::{EncapsulationKey, PUBLIC_KEY_SIZE};
                if init.len() != PUBLIC_KEY_SIZE.saturating_add(32) {
                    return Err(AgreementError::BadPublic);
                }
                let (pk2, pk1) = init.split_at(PUBLIC_KEY_SIZE);
                // As in the reference code OpenSSH uses, coefficients are reduced on decode,
                // not checked: a malformed key only spoils the sender's own exchange.
                let ek = EncapsulationKey::try_from(pk2).map_err(|_| AgreementError::BadPublic)?;
                let (ct, k_pq) = ek.encapsulate(&mut crate::crypto::rng::RandCore(rng));
                let x = X25519Secret::generate(rng);
                let k_cl = x.agree(pk1)?;
                let mut reply = ct.as_ref().to_vec();
                reply.extend_from_slice(&x.public());
                Ok((
                    reply,
                    hybrid_secret(HashAlg::Sha512, k_pq.as_ref(), &k_cl.0),
                ))
            }
            Agreement::Dh(group) => modp(group)
                .ok_or(AgreementError::BadPublic)?
                .respond(init, rng),
            Agreement::GroupExchange => Err(AgreementError::BadPublic),
        }
    }
}

/// K = HASH(K_PQ ‖ K_CL), as a string [draft-ietf-sshm-mlkem-hybrid-kex §2.4].
fn hybrid_secret(hash: HashAlg, k_pq: &[u8], k_cl: &[u8]) -> Secret {
    let k = hash.digest(&[k_pq, k_cl]);
    Secret {
        bytes: Zeroizing::new(k),
        encoding: SecretEncoding::String,
    }
}

impl Ephemeral {
    /// Client: K from the server's REPLY value.
    pub fn finish(self, reply: &[u8]) -> Result<Secret, AgreementError> {
        match self {
            Ephemeral::X25519(s) => Ok(Secret {
                bytes: s.agree(reply)?.0,
                encoding: SecretEncoding::Mpint,
            }),
            Ephemeral::Nist(curve, k) => Ok(Secret {
                bytes: nist_agree(curve, &k, reply)?,
                encoding: SecretEncoding::Mpint,
            }),
            Ephemeral::Mlkem768X25519(dk, x) => {
                use ml_kem::kem::Decapsulate;
                // S_REPLY must be exactly S_CT2 ‖ S_PK1 [draft §2.3].
                if reply.len() != MLKEM768_CT.saturating_add(32) {
                    return Err(AgreementError::BadPublic);
                }
                let (ct, pk1) = reply.split_at(MLKEM768_CT);
                let ct = ml_kem::ml_kem_768::Ciphertext::try_from(ct)
                    .map_err(|_| AgreementError::BadPublic)?;
                let k_pq = dk.decapsulate(&ct);
                let k_cl = x.agree(pk1)?;
                Ok(hybrid_secret(HashAlg::Sha256, &k_pq, &k_cl.0))
            }
            Ephemeral::Sntrup761X25519(dk, x) => {
                use sntrup::sntrup761::{CIPHERTEXT_SIZE, Ciphertext};
                if reply.len() != CIPHERTEXT_SIZE.saturating_add(32) {
                    return Err(AgreementError::BadPublic);
                }
                let (ct, pk1) = reply.split_at(CIPHERTEXT_SIZE);
                let ct = Ciphertext::try_from(ct).map_err(|_| AgreementError::BadPublic)?;
                let k_pq = dk.decapsulate(&ct);
                let k_cl = x.agree(pk1)?;
                Ok(hybrid_secret(HashAlg::Sha512, k_pq.as_ref(), &k_cl.0))
            }
            Ephemeral::Dh(params, x) => params.finish(&x, reply),
            Ephemeral::Failed => Err(AgreementError::BadPublic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GEX server may send any odd p. With p = 2^2048 − 1 = 3·b, f = 2b − 1 is a square root
    /// of 1: an even exponent confines K to 1, which must be refused [RFC4419 §3], while an
    /// odd one gives K = f, in range, and is accepted — so the K check is what refuses.
    #[test]
    fn shared_secret_confined_to_one_is_refused() {
        let p = [0xffu8; 256];
        let mut f = vec![0xaau8; 255];
        f.push(0xa9);
        let group = DhParams::from_wire(&p, &[2]).unwrap();
        let exp = |v: u8| crypto_bigint::BoxedUint::from_be_slice(&[v], 2048).unwrap();
        assert!(group.finish(&exp(2), &f).is_err());
        let k = group.finish(&exp(3), &f).unwrap();
        assert_eq!(&k.bytes[..], &f[..]);
    }

    /// Our exponents are raised with a 512-bit bound; the result must equal a plain full-width
    /// exponentiation, and both sides of every fixed group must agree on K.
    #[test]
    fn bounded_exponentiation_agrees_with_full_width_and_both_sides_agree() {
        let mut rng = crate::crypto::rng::DeterministicRng::new(7);
        for group in [DhGroup::G14, DhGroup::G16, DhGroup::G18] {
            let params = DhParams::fixed(group).unwrap();
            let (x, e) = params.start(&mut rng).unwrap();
            assert!(x.bits() <= EXPONENT_BITS && x.bits() > EXPONENT_BITS - 1);
            let full =
                crypto_bigint::modular::BoxedMontyForm::new(params.g.clone(), &params.params)
                    .pow(&x)
                    .retrieve();
            assert_eq!(strip(&full.to_be_bytes()), e);
            let (f, k_server) = params.respond(&e, &mut rng).unwrap();
            let k_client = params.finish(&x, &f).unwrap();
            assert_eq!(&k_client.bytes[..], &k_server.bytes[..]);
        }
    }
}
