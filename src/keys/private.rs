//! Private keys we sign with (host keys; later client keys).

use crate::crypto::rng::SecureRandom;
use crate::crypto::sign::{EcdsaPrivate, Ed25519Private, RsaPrivate};
use crate::crypto::verify::Curve;
use crate::crypto::verify::RsaHash;
use crate::keys::{PublicKey, SigAlg};
use crate::wire::Writer;

/// A private key. Secrets are zeroized on drop and never printed.
#[derive(Debug)]
pub enum PrivateKey {
    /// Ed25519.
    Ed25519(Ed25519Private),
    /// RSA (signs with rsa-sha2-512, rsa-sha2-256, or ssh-rsa when asked).
    Rsa(RsaPrivate),
    /// ECDSA on a NIST curve.
    Ecdsa(EcdsaPrivate),
}

impl PrivateKey {
    /// A new random Ed25519 key.
    pub fn generate_ed25519(rng: &mut dyn SecureRandom) -> Self {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill(&mut seed[..]);
        PrivateKey::Ed25519(Ed25519Private::from_seed(*seed))
    }

    /// A new random RSA key of `bits` bits.
    pub fn generate_rsa(rng: &mut dyn SecureRandom, bits: usize) -> Option<Self> {
        RsaPrivate::generate(rng, bits).map(PrivateKey::Rsa)
    }

    /// An RSA key from its big-endian components (2048 bits or more).
    pub fn rsa_from_components(n: &[u8], e: &[u8], d: &[u8], p: &[u8], q: &[u8]) -> Option<Self> {
        RsaPrivate::from_components(n, e, d, p, q).map(PrivateKey::Rsa)
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        match self {
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.public()),
            PrivateKey::Rsa(k) => {
                let (e, n) = k.public();
                PublicKey::Rsa { e, n }
            }
            PrivateKey::Ecdsa(k) => PublicKey::Ecdsa {
                curve: k.curve(),
                point: k.public().unwrap_or_default(),
            },
        }
    }

    /// The preferred signature algorithm of this key.
    pub fn algorithm(&self) -> SigAlg {
        match self {
            PrivateKey::Ed25519(_) => SigAlg::Ed25519,
            PrivateKey::Rsa(_) => SigAlg::RsaSha512,
            PrivateKey::Ecdsa(k) => match k.curve() {
                Curve::P256 => SigAlg::EcdsaP256,
                Curve::P384 => SigAlg::EcdsaP384,
                Curve::P521 => SigAlg::EcdsaP521,
            },
        }
    }

    /// Every signature algorithm this key can sign with (RSA: SHA-2 only; `ssh-rsa` by request).
    pub fn algorithms(&self) -> Vec<SigAlg> {
        match self {
            PrivateKey::Rsa(_) => vec![SigAlg::RsaSha512, SigAlg::RsaSha256, SigAlg::RsaSha1],
            other => vec![other.algorithm()],
        }
    }

    /// A signature blob over `data` with the key's preferred algorithm.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.sign_as(data, self.algorithm()).unwrap_or_default()
    }

    /// A signature blob over `data` made with `alg` [RFC8709 §6, RFC8332 §3]; `None` if this key
    /// cannot sign with it.
    pub fn sign_as(&self, data: &[u8], alg: SigAlg) -> Option<Vec<u8>> {
        let raw = match (self, alg) {
            (PrivateKey::Ed25519(k), SigAlg::Ed25519) => k.sign(data).to_vec(),
            (PrivateKey::Rsa(k), SigAlg::RsaSha512) => k.sign(RsaHash::Sha512, data)?,
            (PrivateKey::Rsa(k), SigAlg::RsaSha256) => k.sign(RsaHash::Sha256, data)?,
            (PrivateKey::Rsa(k), SigAlg::RsaSha1) => k.sign(RsaHash::Sha1, data)?,
            (PrivateKey::Ecdsa(k), alg) if alg == self.algorithm() => {
                // string (mpint r, mpint s) [RFC5656 §3.1.2].
                let (r, s) = k.sign(data)?;
                let mut inner = Vec::new();
                Writer::new(&mut inner)
                    .mpint_unsigned(&r)
                    .mpint_unsigned(&s);
                inner
            }
            _ => return None,
        };
        let mut out = Vec::new();
        Writer::new(&mut out)
            .string(alg.wire_name().as_bytes())
            .string(&raw);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rng::DeterministicRng;
    use crate::keys::KeyError;

    #[test]
    fn signs_and_verifies_and_rejects_tampering() {
        let k = PrivateKey::generate_ed25519(&mut DeterministicRng::new(5));
        let sig = k.sign(b"exchange hash");
        let public = k.public();
        public
            .verify(b"exchange hash", &sig, &[SigAlg::Ed25519])
            .unwrap();
        assert_eq!(
            public.verify(b"exchange hasH", &sig, &[SigAlg::Ed25519]),
            Err(KeyError::BadSignature)
        );
        let mut bad = sig.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            public.verify(b"exchange hash", &bad, &[SigAlg::Ed25519]),
            Err(KeyError::BadSignature)
        );
        let other = PrivateKey::generate_ed25519(&mut DeterministicRng::new(6)).public();
        assert_eq!(
            other.verify(b"exchange hash", &sig, &[SigAlg::Ed25519]),
            Err(KeyError::BadSignature)
        );
    }

    #[test]
    fn openssh_text_roundtrip_and_fingerprint_shape() {
        let public = PrivateKey::generate_ed25519(&mut DeterministicRng::new(9)).public();
        let line = public.to_openssh();
        assert!(line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
        assert_eq!(
            PublicKey::from_openssh(&format!("{line} comment here")).unwrap(),
            public
        );
        assert!(public.fingerprint().starts_with("SHA256:"));
        assert_eq!(public.fingerprint().len(), 7 + 43);
        assert!(PublicKey::from_openssh(&line.replace("ssh-ed25519", "ssh-rsa")).is_err());
    }

    fn k_sig() -> Vec<u8> {
        PrivateKey::generate_ed25519(&mut DeterministicRng::new(9)).sign(b"x")
    }

    #[test]
    fn rejects_malformed_blobs() {
        let public = PrivateKey::generate_ed25519(&mut DeterministicRng::new(9)).public();
        let mut blob = public.to_blob();
        blob.push(0);
        assert!(matches!(PublicKey::decode(&blob), Err(KeyError::Decode(_))));
        blob.truncate(blob.len() - 2);
        assert!(PublicKey::decode(&blob).is_err());
        let mut w = Vec::new();
        Writer::new(&mut w).string(b"ssh-ed25519").string(&[0; 31]);
        assert_eq!(PublicKey::decode(&w), Err(KeyError::Weak));
        let mut sig = Vec::new();
        Writer::new(&mut sig)
            .string(b"rsa-sha2-256")
            .string(&[0; 64]);
        assert_eq!(
            public.verify(b"x", &sig, &SigAlg::ALL),
            Err(KeyError::AlgorithmMismatch)
        );
        assert_eq!(
            public.verify(b"x", &k_sig(), &[]),
            Err(KeyError::AlgorithmMismatch)
        );
    }
}

#[cfg(test)]
mod sk_tests {
    use crate::crypto::rng::DeterministicRng;
    use crate::crypto::sign::{EcdsaPrivate, Ed25519Private};
    use crate::crypto::verify::Curve;
    use crate::keys::{KeyError, PublicKey, SigAlg, sk_signed_data};
    use crate::wire::Writer;

    /// A signature blob as a FIDO authenticator plus OpenSSH produce it [PROTOCOL.u2f].
    fn sk_blob(alg: &str, raw: &[u8], flags: u8, counter: u32) -> Vec<u8> {
        let mut out = Vec::new();
        Writer::new(&mut out)
            .string(alg.as_bytes())
            .string(raw)
            .u8(flags)
            .u32(counter);
        out
    }

    #[test]
    fn sk_ed25519_signatures_cover_application_flags_and_counter() {
        let k = Ed25519Private::from_seed([4; 32]);
        let public = PublicKey::SkEd25519 {
            key: k.public(),
            application: b"ssh:".to_vec(),
        };
        let msg = b"session data";
        let sig = k.sign(&sk_signed_data(b"ssh:", 0x01, 7, msg));
        let blob = sk_blob("sk-ssh-ed25519@openssh.com", &sig, 0x01, 7);
        let v = public.verify(msg, &blob, &SigAlg::DEFAULT_USER).unwrap();
        assert_eq!((v.algorithm, v.sk_flags), (SigAlg::SkEd25519, Some(0x01)));
        // Flags, counter or application changed after signing: invalid.
        for bad in [
            sk_blob("sk-ssh-ed25519@openssh.com", &sig, 0x05, 7),
            sk_blob("sk-ssh-ed25519@openssh.com", &sig, 0x01, 8),
        ] {
            assert_eq!(
                public.verify(msg, &bad, &SigAlg::DEFAULT_USER),
                Err(KeyError::BadSignature)
            );
        }
        let other_app = PublicKey::SkEd25519 {
            key: k.public(),
            application: b"ssh:other".to_vec(),
        };
        assert_eq!(
            other_app.verify(msg, &blob, &SigAlg::DEFAULT_USER),
            Err(KeyError::BadSignature)
        );
        // The blob round-trips and an sk blob without flags/counter is malformed.
        assert_eq!(PublicKey::decode(&public.to_blob()).unwrap(), public);
        let mut short = Vec::new();
        Writer::new(&mut short)
            .string(b"sk-ssh-ed25519@openssh.com")
            .string(&sig);
        assert!(matches!(
            public.verify(msg, &short, &SigAlg::DEFAULT_USER),
            Err(KeyError::Decode(_))
        ));
    }

    #[test]
    fn sk_ecdsa_p256_signatures_verify() {
        let k = EcdsaPrivate::from_scalar(Curve::P256, &[9; 32]).unwrap();
        let public = PublicKey::SkEcdsaP256 {
            point: k.public().unwrap(),
            application: b"ssh:".to_vec(),
        };
        let msg = b"session data";
        let (r, s) = k.sign(&sk_signed_data(b"ssh:", 0x05, 1, msg)).unwrap();
        let mut raw = Vec::new();
        Writer::new(&mut raw).mpint_unsigned(&r).mpint_unsigned(&s);
        let blob = sk_blob("sk-ecdsa-sha2-nistp256@openssh.com", &raw, 0x05, 1);
        let v = public.verify(msg, &blob, &SigAlg::DEFAULT_USER).unwrap();
        assert_eq!((v.algorithm, v.sk_flags), (SigAlg::SkEcdsaP256, Some(0x05)));
        assert_eq!(
            PublicKey::from_openssh(&public.to_openssh()).unwrap(),
            public
        );
        let _ = DeterministicRng::new(0);
    }
}
