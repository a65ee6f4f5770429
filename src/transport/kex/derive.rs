//! Exchange hash inputs and key derivation [RFC4253 §7.2, §8; RFC5656 §4; RFC8731 §3].

use zeroize::Zeroizing;

use crate::crypto::hash::HashAlg;
use crate::wire::Writer;

/// K encoded as an mpint, ready to prefix every derivation hash; zeroized on drop.
pub struct EncodedSecret(pub Zeroizing<Vec<u8>>);

impl EncodedSecret {
    /// Encodes the big-endian shared secret as an mpint.
    pub fn from_unsigned(k: &[u8]) -> Self {
        let mut out = Zeroizing::new(Vec::with_capacity(k.len().saturating_add(5)));
        Writer::new(&mut out).mpint_unsigned(k);
        Self(out)
    }

    /// Encodes a method's secret as that method says: mpint, or string for the hybrids.
    pub fn new(k: &crate::crypto::kex::Secret) -> Self {
        match k.encoding {
            crate::crypto::kex::SecretEncoding::Mpint => Self::from_unsigned(&k.bytes),
            crate::crypto::kex::SecretEncoding::String => {
                let mut out = Zeroizing::new(Vec::with_capacity(k.bytes.len().saturating_add(4)));
                Writer::new(&mut out).string(&k.bytes);
                Self(out)
            }
        }
    }
}

/// The fields of an ECDH-style exchange hash, in order [RFC5656 §4, RFC8731 §3].
pub struct EcdhHashInput<'a> {
    /// V_C, the client's identification string without CR LF.
    pub v_c: &'a [u8],
    /// V_S, the server's.
    pub v_s: &'a [u8],
    /// I_C, the payload of the client's KEXINIT.
    pub i_c: &'a [u8],
    /// I_S, the payload of the server's KEXINIT.
    pub i_s: &'a [u8],
    /// K_S, the server's host key blob.
    pub k_s: &'a [u8],
    /// GEX only: min ‖ n ‖ max ‖ p ‖ g, already encoded [RFC4419 §3].
    pub gex: Option<&'a [u8]>,
    /// Q_C, the client's ephemeral public value.
    pub q_c: &'a [u8],
    /// Q_S, the server's.
    pub q_s: &'a [u8],
    /// DH: e and f are hashed as mpints [RFC4253 §8], not strings.
    pub mpint_publics: bool,
}

impl EcdhHashInput<'_> {
    /// H = HASH(V_C ‖ V_S ‖ I_C ‖ I_S ‖ K_S ‖ Q_C ‖ Q_S ‖ K), strings length-prefixed.
    pub fn hash(&self, alg: HashAlg, k: &EncodedSecret) -> Vec<u8> {
        let mut h = alg.hasher();
        for field in [self.v_c, self.v_s, self.i_c, self.i_s, self.k_s] {
            let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
            h.update(&len.to_be_bytes());
            h.update(field);
        }
        if let Some(gex) = self.gex {
            h.update(gex);
        }
        // ECDH/hybrids hash Q_C, Q_S as strings; DH hashes e, f as mpints [RFC4253 §8].
        let mut publics = Vec::with_capacity(
            self.q_c
                .len()
                .saturating_add(self.q_s.len())
                .saturating_add(10),
        );
        let mut w = Writer::new(&mut publics);
        if self.mpint_publics {
            w.mpint_unsigned(self.q_c).mpint_unsigned(self.q_s);
        } else {
            w.string(self.q_c).string(self.q_s);
        }
        h.update(&publics);
        h.update(&k.0);
        h.finish()
    }
}

/// Derives `len` bytes for `letter` ('A'..'F'): K1 = HASH(K ‖ H ‖ letter ‖ session_id),
/// Kn = HASH(K ‖ H ‖ K1 ‖ … ‖ Kn-1), concatenated and truncated [RFC4253 §7.2].
pub fn derive(
    alg: HashAlg,
    k: &EncodedSecret,
    h: &[u8],
    session_id: &[u8],
    letter: u8,
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(alg.digest(&[&k.0, h, &[letter], session_id]));
    while out.len() < len {
        let more = alg.digest(&[&k.0, h, &out]);
        out.extend_from_slice(&more);
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DH public value with its top bit set gains a sign byte as an mpint: the hash must
    /// differ from the string form exactly then (RFC 4253 §8 hashes e and f as mpints).
    #[test]
    fn dh_publics_are_hashed_as_mpints() {
        fn input(q_c: &[u8], mpint: bool) -> EcdhHashInput<'_> {
            EcdhHashInput {
                v_c: b"c",
                v_s: b"s",
                i_c: b"",
                i_s: b"",
                k_s: b"",
                gex: None,
                q_c,
                q_s: &[0x01],
                mpint_publics: mpint,
            }
        }
        let k = EncodedSecret::from_unsigned(&[5]);
        let high = [0x80u8, 1, 2];
        assert_ne!(
            input(&high, true).hash(HashAlg::Sha256, &k),
            input(&high, false).hash(HashAlg::Sha256, &k)
        );
        let low = [0x7fu8, 1, 2];
        assert_eq!(
            input(&low, true).hash(HashAlg::Sha256, &k),
            input(&low, false).hash(HashAlg::Sha256, &k)
        );
        // And the mpint form is exactly RFC 4251's.
        let mut expect = Vec::new();
        for f in [&b"c"[..], b"s", b"", b"", b""] {
            expect.extend_from_slice(&(f.len() as u32).to_be_bytes());
            expect.extend_from_slice(f);
        }
        expect.extend_from_slice(&[0, 0, 0, 4, 0, 0x80, 1, 2, 0, 0, 0, 1, 1]);
        expect.extend_from_slice(&k.0);
        assert_eq!(
            input(&high, true).hash(HashAlg::Sha256, &k),
            HashAlg::Sha256.digest(&[&expect])
        );
    }
}
