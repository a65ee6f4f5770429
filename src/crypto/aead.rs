//! The AEAD packet ciphers OpenSSH defined: `chacha20-poly1305@openssh.com`
//! [PROTOCOL.chacha20poly1305] and `aes{128,256}-gcm@openssh.com` [PROTOCOL §1.6, RFC5647].
//! Both compute and check the tag over the packet as sent; neither releases plaintext before
//! the tag verifies.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce, Tag};
use chacha20::ChaCha20Legacy;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use poly1305::Poly1305;
use poly1305::universal_hash::UniversalHash;
use zeroize::Zeroizing;

use crate::crypto::ct;
use crate::error::CryptoError;

/// Tag length of both AEAD ciphers.
pub const TAG_LEN: usize = 16;

/// `chacha20-poly1305@openssh.com` for one direction: K_2 (main) and K_1 (length) keys.
pub struct ChaChaPoly {
    main: Zeroizing<[u8; 32]>,
    header: Zeroizing<[u8; 32]>,
}

impl ChaChaPoly {
    /// Key material is 64 bytes: K_2 then K_1 [PROTOCOL.chacha20poly1305 "Detailed Construction"].
    pub fn new(key: &[u8; 64]) -> Self {
        let (mut main, mut header) = (Zeroizing::new([0u8; 32]), Zeroizing::new([0u8; 32]));
        let (k2, k1) = key.split_at(32);
        main.copy_from_slice(k2);
        header.copy_from_slice(k1);
        Self { main, header }
    }

    fn stream(key: &[u8; 32], seq: u32) -> ChaCha20Legacy {
        let nonce = u64::from(seq).to_be_bytes();
        ChaCha20Legacy::new(key.into(), &nonce.into())
    }

    /// The per-packet Poly1305 key (block 0 of K_2's stream), then the stream at block 1.
    fn payload_stream(&self, seq: u32) -> (Poly1305, ChaCha20Legacy) {
        let mut stream = Self::stream(&self.main, seq);
        let mut poly_key = Zeroizing::new([0u8; 32]);
        stream.apply_keystream(&mut poly_key[..]);
        stream.seek(64u64);
        (Poly1305::new((&*poly_key).into()), stream)
    }

    /// Decrypts the 4-byte length with K_1 without touching `head` (the tag covers it as sent).
    pub fn open_length(&self, seq: u32, head: &[u8]) -> Result<u32, CryptoError> {
        let mut len = *head.first_chunk::<4>().ok_or(CryptoError::BadMac)?;
        Self::stream(&self.header, seq).apply_keystream(&mut len);
        Ok(u32::from_be_bytes(len))
    }

    /// Checks the tag over `packet` (encrypted length ‖ ciphertext), then decrypts the body in
    /// place; the length field stays as received.
    pub fn open(&self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        let (poly, mut stream) = self.payload_stream(seq);
        let want = poly_tag(poly, packet);
        if !ct::eq(want.as_slice(), tag) {
            return Err(CryptoError::BadMac);
        }
        stream.apply_keystream(packet.get_mut(4..).unwrap_or_default());
        Ok(())
    }

    /// Encrypts length and body in place and writes the tag.
    pub fn seal(&self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        if let Some(len) = packet.get_mut(..4) {
            Self::stream(&self.header, seq).apply_keystream(len);
        }
        let (poly, mut stream) = self.payload_stream(seq);
        stream.apply_keystream(packet.get_mut(4..).unwrap_or_default());
        let t = poly_tag(poly, packet);
        let n = tag.len().min(TAG_LEN);
        if let (Some(dst), Some(src)) = (tag.get_mut(..n), t.as_slice().get(..n)) {
            dst.copy_from_slice(src);
        }
    }
}

/// Poly1305 over `data`: whole blocks through `update`, which hashes four at a time with
/// AVX2, where `compute_unpadded` alone feeds them one by one (a third slower here).
fn poly_tag(mut poly: Poly1305, data: &[u8]) -> poly1305::Tag {
    let (blocks, rest) = poly1305::Block::slice_as_chunks(data);
    poly.update(blocks);
    poly.compute_unpadded(rest)
}

enum GcmKey {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
}

/// `aes128-gcm@openssh.com` / `aes256-gcm@openssh.com` for one direction. The 12-byte IV is a
/// 4-byte fixed field and a 64-bit invocation counter incremented after every packet
/// [RFC5647 §7.1]; the clear length is the associated data [PROTOCOL §1.6].
pub struct AesGcm {
    key: GcmKey,
    iv: Zeroizing<[u8; 12]>,
}

impl AesGcm {
    /// A 16- or 32-byte key and the 12-byte initial IV from the key derivation.
    pub fn new(key: &[u8], iv: &[u8; 12]) -> Option<Self> {
        let key = match key.len() {
            16 => GcmKey::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            32 => GcmKey::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            _ => return None,
        };
        Some(Self {
            key,
            iv: Zeroizing::new(*iv),
        })
    }

    fn advance(&mut self) {
        let (_, counter) = self.iv.split_at_mut(4);
        if let Some(c) = counter.first_chunk_mut::<8>() {
            *c = u64::from_be_bytes(*c).wrapping_add(1).to_be_bytes();
        }
    }

    /// Authenticates and decrypts `packet` (clear length ‖ ciphertext) in place; the length is
    /// the associated data.
    pub fn open(&mut self, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        let (aad, body) = packet.split_at_mut(4.min(packet.len()));
        self.open_detached(aad, body, tag)
    }

    /// Authenticates `aad` ‖ `body` against `tag` and decrypts `body` in place under the current
    /// IV, then advances the invocation counter.
    pub fn open_detached(
        &mut self,
        aad: &[u8],
        body: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        let tag = Tag::try_from(tag).map_err(|_| CryptoError::BadMac)?;
        let nonce = Nonce::from(*self.iv);
        let ok = match &self.key {
            GcmKey::Aes128(k) => k.decrypt_inout_detached(&nonce, aad, body.into(), &tag),
            GcmKey::Aes256(k) => k.decrypt_inout_detached(&nonce, aad, body.into(), &tag),
        };
        ok.map_err(|_| CryptoError::BadMac)?;
        self.advance();
        Ok(())
    }

    /// Encrypts the body of `packet` in place and writes the tag.
    pub fn seal(&mut self, packet: &mut [u8], tag: &mut [u8]) {
        let (aad, body) = packet.split_at_mut(4.min(packet.len()));
        self.seal_detached(aad, body, tag);
    }

    /// Encrypts `body` in place under the current IV with `aad` authenticated, writes the tag,
    /// then advances the invocation counter.
    pub fn seal_detached(&mut self, aad: &[u8], body: &mut [u8], tag: &mut [u8]) {
        let nonce = Nonce::from(*self.iv);
        let t = match &self.key {
            GcmKey::Aes128(k) => k.encrypt_inout_detached(&nonce, aad, body.into()),
            GcmKey::Aes256(k) => k.encrypt_inout_detached(&nonce, aad, body.into()),
        };
        // GCM fails only for inputs beyond 2^36 bytes; packets are capped far below that.
        if let Ok(t) = t {
            let n = tag.len().min(TAG_LEN);
            if let (Some(dst), Some(src)) = (tag.get_mut(..n), t.as_slice().get(..n)) {
                dst.copy_from_slice(src);
            }
        }
        self.advance();
    }
}
