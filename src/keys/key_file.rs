//! OpenSSH private key files, `openssh-key-v1` [PROTOCOL.key]: unencrypted, or encrypted with
//! `bcrypt` + `aes256-ctr` under a passphrase. Keys: ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp*.

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use crate::crypto::sign::{EcdsaPrivate, Ed25519Private, RsaPrivate};
use crate::crypto::stream::AesCtr;
use crate::crypto::verify::Curve;
use crate::error::DecodeError;
use crate::keys::PrivateKey;
use crate::limits::MAX_ROUNDS;
use crate::wire::Reader;

const MAGIC: &[u8] = b"openssh-key-v1\0";
const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";

/// Why a key file could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Not an OpenSSH private key file.
    #[error("not an OpenSSH private key file")]
    NotOpenSsh,
    /// The structure is malformed.
    #[error("malformed key file: {0}")]
    Malformed(#[from] DecodeError),
    /// Encrypted and no passphrase given.
    #[error("the key is encrypted and needs a passphrase")]
    NeedsPassphrase,
    /// Wrong passphrase (the check integers differ).
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// A cipher, KDF or key type we do not support, or more than one key.
    #[error("unsupported key file: {0}")]
    Unsupported(&'static str),
    /// The key material is invalid (public and private halves disagree, weak RSA…).
    #[error("invalid key")]
    InvalidKey,
}

/// Parses the armored file text.
pub fn parse(text: &str, passphrase: Option<&[u8]>) -> Result<PrivateKey, KeyFileError> {
    let start = text.find(BEGIN).ok_or(KeyFileError::NotOpenSsh)?;
    let body = text
        .get(start.saturating_add(BEGIN.len())..)
        .unwrap_or_default();
    let end = body.find(END).ok_or(KeyFileError::NotOpenSsh)?;
    let b64: Zeroizing<String> = Zeroizing::new(
        body.get(..end)
            .unwrap_or_default()
            .split_whitespace()
            .collect(),
    );
    let raw = Zeroizing::new(Base64::decode_vec(&b64).map_err(|_| KeyFileError::NotOpenSsh)?);
    parse_binary(&raw, passphrase)
}

fn parse_binary(raw: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey, KeyFileError> {
    let rest = raw.strip_prefix(MAGIC).ok_or(KeyFileError::NotOpenSsh)?;
    let mut r = Reader::new(rest);
    let cipher = r.string()?;
    let kdf = r.string()?;
    let kdf_options = r.string()?;
    if r.u32()? != 1 {
        return Err(KeyFileError::Unsupported("more than one key"));
    }
    let public_blob = r.string()?;
    let sealed = r.string()?;
    r.finish()?;
    let mut plain = Zeroizing::new(sealed.to_vec());
    match (cipher, kdf) {
        (b"none", b"none") => {}
        (b"aes256-ctr", b"bcrypt") => {
            let pass = passphrase.ok_or(KeyFileError::NeedsPassphrase)?;
            let mut o = Reader::new(kdf_options);
            let salt = o.string()?;
            let rounds = o.u32()?;
            o.finish()?;
            if rounds == 0 || rounds > MAX_ROUNDS || pass.is_empty() {
                return Err(KeyFileError::Unsupported("bcrypt parameters"));
            }
            let mut km = Zeroizing::new([0u8; 48]);
            bcrypt_pbkdf::bcrypt_pbkdf(pass, salt, rounds, &mut km[..])
                .map_err(|_| KeyFileError::Unsupported("bcrypt parameters"))?;
            let (key, iv) = km.split_at(32);
            let iv: [u8; 16] = iv.try_into().map_err(|_| KeyFileError::InvalidKey)?;
            AesCtr::new(key, &iv)
                .ok_or(KeyFileError::InvalidKey)?
                .apply(&mut plain);
        }
        _ => return Err(KeyFileError::Unsupported("cipher or KDF")),
    }
    let mut p = Reader::new(&plain);
    if p.u32()? != p.u32()? {
        return Err(if passphrase.is_some() {
            KeyFileError::WrongPassphrase
        } else {
            KeyFileError::InvalidKey
        });
    }
    let key = match p.string()? {
        b"ssh-ed25519" => {
            let public = p.string()?;
            let both = p.string()?;
            let seed: [u8; 32] = both
                .get(..32)
                .and_then(|s| s.try_into().ok())
                .ok_or(KeyFileError::InvalidKey)?;
            let key = Ed25519Private::from_seed(seed);
            if both.get(32..) != Some(public) || key.public()[..] != *public {
                return Err(KeyFileError::InvalidKey);
            }
            PrivateKey::Ed25519(key)
        }
        b"ssh-rsa" => {
            let n = p.mpint()?.positive()?;
            let e = p.mpint()?.positive()?;
            let d = p.mpint()?.positive()?;
            let _iqmp = p.mpint()?;
            let pp = p.mpint()?.positive()?;
            let q = p.mpint()?.positive()?;
            PrivateKey::Rsa(
                RsaPrivate::from_components(n, e, d, pp, q).ok_or(KeyFileError::InvalidKey)?,
            )
        }
        name => {
            let curve = match name {
                b"ecdsa-sha2-nistp256" => Curve::P256,
                b"ecdsa-sha2-nistp384" => Curve::P384,
                b"ecdsa-sha2-nistp521" => Curve::P521,
                _ => return Err(KeyFileError::Unsupported("key type")),
            };
            let _curve_name = p.string()?;
            let point = p.string()?;
            let scalar = p.mpint()?.positive()?;
            let key = EcdsaPrivate::from_scalar(curve, scalar).ok_or(KeyFileError::InvalidKey)?;
            if key.public().as_deref() != Some(point) {
                return Err(KeyFileError::InvalidKey);
            }
            PrivateKey::Ecdsa(key)
        }
    };
    let _comment = p.string()?;
    // The key inside must be the one the file announces.
    if key.public().to_blob() != public_blob {
        return Err(KeyFileError::InvalidKey);
    }
    Ok(key)
}

/// Writes `key` as an unencrypted `openssh-key-v1` file [PROTOCOL.key], as `ssh-keygen` does.
pub fn serialize(
    key: &PrivateKey,
    comment: &str,
    rng: &mut dyn crate::crypto::rng::SecureRandom,
) -> Zeroizing<String> {
    use crate::wire::Writer;
    let public = key.public();
    let blob = public.to_blob();
    let mut check = [0u8; 4];
    rng.fill(&mut check);
    let mut private = Zeroizing::new(Vec::new());
    {
        let mut w = Writer::new(&mut private);
        w.raw(&check)
            .raw(&check)
            .string(public.key_type().wire_name().as_bytes());
        match key {
            PrivateKey::Ed25519(k) => {
                let pk = k.public();
                let mut both = Zeroizing::new(k.seed().to_vec());
                both.extend_from_slice(&pk);
                w.string(&pk).string(&both);
            }
            PrivateKey::Rsa(k) => {
                if let Some([n, e, d, iqmp, p, q]) = k.components() {
                    w.mpint_unsigned(&n)
                        .mpint_unsigned(&e)
                        .mpint_unsigned(&d)
                        .mpint_unsigned(&iqmp)
                        .mpint_unsigned(&p)
                        .mpint_unsigned(&q);
                }
            }
            PrivateKey::Ecdsa(k) => {
                let point = k.public().unwrap_or_default();
                let curve: &[u8] = match k.curve() {
                    Curve::P256 => b"nistp256",
                    Curve::P384 => b"nistp384",
                    Curve::P521 => b"nistp521",
                };
                w.string(curve).string(&point).mpint_unsigned(k.scalar());
            }
        }
        w.string(comment.as_bytes());
    }
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad = pad.wrapping_add(1);
    }
    let mut raw = Zeroizing::new(MAGIC.to_vec());
    Writer::new(&mut raw)
        .string(b"none")
        .string(b"none")
        .string(b"")
        .u32(1)
        .string(&blob)
        .string(&private);
    let b64 = Zeroizing::new(Base64::encode_string(&raw));
    let mut out = Zeroizing::new(String::new());
    out.push_str(BEGIN);
    out.push('\n');
    for chunk in b64.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}
