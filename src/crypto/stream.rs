//! AES in counter mode, `aes{128,192,256}-ctr` [RFC4344 §4]: one keystream per direction that
//! runs on across packets.

use aes::{Aes128, Aes192, Aes256};
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};

/// An AES-CTR keystream for one direction.
pub enum AesCtr {
    /// 16-byte key.
    Aes128(Box<Ctr128BE<Aes128>>),
    /// 24-byte key.
    Aes192(Box<Ctr128BE<Aes192>>),
    /// 32-byte key.
    Aes256(Box<Ctr128BE<Aes256>>),
}

impl AesCtr {
    /// A 16-, 24- or 32-byte key and the 16-byte initial counter block.
    pub fn new(key: &[u8], iv: &[u8; 16]) -> Option<Self> {
        let iv = iv.into();
        Some(match key.len() {
            16 => AesCtr::Aes128(Box::new(Ctr128BE::new(key.try_into().ok()?, iv))),
            24 => AesCtr::Aes192(Box::new(Ctr128BE::new(key.try_into().ok()?, iv))),
            32 => AesCtr::Aes256(Box::new(Ctr128BE::new(key.try_into().ok()?, iv))),
            _ => return None,
        })
    }

    /// XORs the next keystream bytes into `buf`.
    pub fn apply(&mut self, buf: &mut [u8]) {
        match self {
            AesCtr::Aes128(c) => c.apply_keystream(buf),
            AesCtr::Aes192(c) => c.apply_keystream(buf),
            AesCtr::Aes256(c) => c.apply_keystream(buf),
        }
    }
}
