//! `hmac-sha2-256` and `hmac-sha2-512` \[RFC6668\] (and the opt-in `hmac-sha1` [RFC4253 §6.4])
//! over the sequence number and packet bytes.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use crate::crypto::ct;

/// HMAC-SHA-256 of `data` under `key` \[RFC2104\]: the `HS256` signature of the tokens the HTTP
/// key backend receives [RFC7518 §3.2]. `None` only if the MAC refused the key, which HMAC
/// (any key length) never does.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Option<[u8; 32]> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
    m.update(data);
    Some(m.finalize().into_bytes().into())
}

/// HMAC-MD5 of `data` under `key` \[RFC2104\]: what the CRAM-MD5 answer to an svn server's
/// challenge is \[RFC2195\] (the svn route authenticates as the user that way; MD5 is the
/// mechanism's, not a choice of ours).
pub fn hmac_md5(key: &[u8], data: &[u8]) -> Option<[u8; 16]> {
    let mut m = <Hmac<md5::Md5> as KeyInit>::new_from_slice(key).ok()?;
    m.update(data);
    Some(m.finalize().into_bytes().into())
}

/// A keyed HMAC for one direction. The initialised state is cloned per packet, so the key
/// schedule is paid once per key, not once per packet.
#[derive(Clone)]
pub enum PacketMac {
    /// hmac-sha1: 20-byte key and tag (legacy, opt-in only).
    Sha1(Box<Hmac<Sha1>>),
    /// hmac-sha2-256: 32-byte key and tag.
    Sha256(Box<Hmac<Sha256>>),
    /// hmac-sha2-512: 64-byte key and tag.
    Sha512(Box<Hmac<Sha512>>),
}

impl PacketMac {
    /// HMAC-SHA-1 with a 20-byte key.
    pub fn sha1(key: &[u8]) -> Option<Self> {
        Some(Self::Sha1(Box::new(Hmac::new_from_slice(key).ok()?)))
    }

    /// HMAC-SHA-256 with a 32-byte key.
    pub fn sha256(key: &[u8]) -> Option<Self> {
        Some(Self::Sha256(Box::new(Hmac::new_from_slice(key).ok()?)))
    }

    /// HMAC-SHA-512 with a 64-byte key.
    pub fn sha512(key: &[u8]) -> Option<Self> {
        Some(Self::Sha512(Box::new(Hmac::new_from_slice(key).ok()?)))
    }

    /// Tag length in bytes.
    pub const fn len(&self) -> usize {
        match self {
            Self::Sha1(_) => 20,
            Self::Sha256(_) => 32,
            Self::Sha512(_) => 64,
        }
    }

    /// Always false: every MAC has a tag.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// MAC(key, seq ‖ data) [RFC4253 §6.4] into `tag`.
    pub fn compute(&self, seq: u32, data: &[u8], tag: &mut [u8]) {
        match self {
            Self::Sha1(m) => {
                let mut m = (**m).clone();
                m.update(&seq.to_be_bytes());
                m.update(data);
                copy_prefix(tag, m.finalize().into_bytes().as_slice());
            }
            Self::Sha256(m) => {
                let mut m = (**m).clone();
                m.update(&seq.to_be_bytes());
                m.update(data);
                copy_prefix(tag, m.finalize().into_bytes().as_slice());
            }
            Self::Sha512(m) => {
                let mut m = (**m).clone();
                m.update(&seq.to_be_bytes());
                m.update(data);
                copy_prefix(tag, m.finalize().into_bytes().as_slice());
            }
        }
    }

    /// Whether `tag` is MAC(key, seq ‖ data), compared in constant time.
    pub fn verify(&self, seq: u32, data: &[u8], tag: &[u8]) -> bool {
        let mut want = [0u8; 64];
        let n = self.len();
        let want = want.get_mut(..n).unwrap_or_default();
        self.compute(seq, data, want);
        ct::eq(want, tag)
    }
}

fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
}

#[cfg(test)]
mod tests {
    /// RFC 2202 §2, test case 2: HMAC-MD5 with a key shorter than the block.
    #[test]
    fn hmac_md5_known_answer() {
        let mac = super::hmac_md5(b"Jefe", b"what do ya want for nothing?").unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "750c783e6ab0b503eaa86e310a5db738");
    }
}
