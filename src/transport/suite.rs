//! The negotiable cipher and MAC algorithms, and the [`OpeningKey`]/[`SealingKey`] each one
//! becomes once keys are derived [RFC4253 §6.3, §6.4; RFC4344; RFC6668; PROTOCOL §1.6, §1.7;
//! PROTOCOL.chacha20poly1305].

use crate::crypto::aead::{self, AesGcm, ChaChaPoly};
use crate::crypto::hmac::PacketMac;
use crate::crypto::stream::AesCtr;
use crate::error::CryptoError;
use crate::transport::cipher::{Framing, OpeningKey, SealingKey, read_len};

/// An encryption algorithm we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CipherAlg {
    /// `chacha20-poly1305@openssh.com`.
    ChaCha20Poly1305,
    /// `aes128-gcm@openssh.com`.
    Aes128Gcm,
    /// `aes256-gcm@openssh.com`.
    Aes256Gcm,
    /// `aes128-ctr`.
    Aes128Ctr,
    /// `aes192-ctr`.
    Aes192Ctr,
    /// `aes256-ctr`.
    Aes256Ctr,
}

impl CipherAlg {
    /// Every cipher, in our default preference order.
    pub const SUPPORTED: [CipherAlg; 6] = [
        CipherAlg::ChaCha20Poly1305,
        CipherAlg::Aes128Gcm,
        CipherAlg::Aes256Gcm,
        CipherAlg::Aes128Ctr,
        CipherAlg::Aes192Ctr,
        CipherAlg::Aes256Ctr,
    ];

    /// Our preference as a client: AES-GCM first where the CPU has AES and carry-less multiply
    /// instructions (there it runs about twice as fast as ChaCha20-Poly1305 with the crates we
    /// use), [`CipherAlg::SUPPORTED`] otherwise. Only a client's order decides [RFC4253 §7.1].
    pub fn client_preference() -> Vec<CipherAlg> {
        let mut v = CipherAlg::SUPPORTED.to_vec();
        if aes_gcm_accelerated() {
            // Stable: the rest keeps the order of `SUPPORTED`.
            v.sort_by_key(|c| !matches!(c, CipherAlg::Aes128Gcm | CipherAlg::Aes256Gcm));
        }
        v
    }

    /// The exact name on the wire.
    pub const fn wire_name(self) -> &'static str {
        match self {
            CipherAlg::ChaCha20Poly1305 => "chacha20-poly1305@openssh.com",
            CipherAlg::Aes128Gcm => "aes128-gcm@openssh.com",
            CipherAlg::Aes256Gcm => "aes256-gcm@openssh.com",
            CipherAlg::Aes128Ctr => "aes128-ctr",
            CipherAlg::Aes192Ctr => "aes192-ctr",
            CipherAlg::Aes256Ctr => "aes256-ctr",
        }
    }

    /// The algorithm with this wire name, if we implement it.
    pub fn from_wire_name(name: &str) -> Option<Self> {
        Self::SUPPORTED.into_iter().find(|a| a.wire_name() == name)
    }

    /// Bytes of encryption key drawn from the key derivation [RFC4253 §7.2].
    pub const fn key_len(self) -> usize {
        match self {
            CipherAlg::ChaCha20Poly1305 => 64,
            CipherAlg::Aes128Gcm | CipherAlg::Aes128Ctr => 16,
            CipherAlg::Aes192Ctr => 24,
            CipherAlg::Aes256Gcm | CipherAlg::Aes256Ctr => 32,
        }
    }

    /// Bytes of IV drawn from the key derivation.
    pub const fn iv_len(self) -> usize {
        match self {
            CipherAlg::ChaCha20Poly1305 => 0,
            CipherAlg::Aes128Gcm | CipherAlg::Aes256Gcm => 12,
            CipherAlg::Aes128Ctr | CipherAlg::Aes192Ctr | CipherAlg::Aes256Ctr => 16,
        }
    }

    /// Whether the cipher authenticates on its own, making the MAC negotiation irrelevant
    /// [PROTOCOL §1.6, PROTOCOL.chacha20poly1305 "Negotiation"].
    pub const fn is_aead(self) -> bool {
        matches!(
            self,
            CipherAlg::ChaCha20Poly1305 | CipherAlg::Aes128Gcm | CipherAlg::Aes256Gcm
        )
    }
}

/// A MAC algorithm we implement (used only with non-AEAD ciphers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MacAlg {
    /// `hmac-sha2-256-etm@openssh.com`.
    HmacSha256Etm,
    /// `hmac-sha2-512-etm@openssh.com`.
    HmacSha512Etm,
    /// `hmac-sha2-256`.
    HmacSha256,
    /// `hmac-sha2-512`.
    HmacSha512,
    /// `hmac-sha1-etm@openssh.com` (opt-in only).
    HmacSha1Etm,
    /// `hmac-sha1` (opt-in only).
    HmacSha1,
}

impl MacAlg {
    /// Every MAC, in our default preference order (encrypt-then-MAC first).
    pub const SUPPORTED: [MacAlg; 4] = [
        MacAlg::HmacSha256Etm,
        MacAlg::HmacSha512Etm,
        MacAlg::HmacSha256,
        MacAlg::HmacSha512,
    ];

    /// Everything we implement: the defaults plus the SHA-1 MACs a config may opt into.
    pub const ALL: [MacAlg; 6] = [
        MacAlg::HmacSha256Etm,
        MacAlg::HmacSha512Etm,
        MacAlg::HmacSha256,
        MacAlg::HmacSha512,
        MacAlg::HmacSha1Etm,
        MacAlg::HmacSha1,
    ];

    /// The exact name on the wire.
    pub const fn wire_name(self) -> &'static str {
        match self {
            MacAlg::HmacSha256Etm => "hmac-sha2-256-etm@openssh.com",
            MacAlg::HmacSha512Etm => "hmac-sha2-512-etm@openssh.com",
            MacAlg::HmacSha256 => "hmac-sha2-256",
            MacAlg::HmacSha512 => "hmac-sha2-512",
            MacAlg::HmacSha1Etm => "hmac-sha1-etm@openssh.com",
            MacAlg::HmacSha1 => "hmac-sha1",
        }
    }

    /// The algorithm with this wire name, if we implement it.
    pub fn from_wire_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.wire_name() == name)
    }

    /// Bytes of MAC key drawn from the key derivation (= tag length) [RFC6668 §2].
    pub const fn key_len(self) -> usize {
        match self {
            MacAlg::HmacSha256Etm | MacAlg::HmacSha256 => 32,
            MacAlg::HmacSha512Etm | MacAlg::HmacSha512 => 64,
            MacAlg::HmacSha1Etm | MacAlg::HmacSha1 => 20,
        }
    }

    /// Whether the MAC covers the ciphertext with the length in clear [PROTOCOL §1.7].
    pub const fn is_etm(self) -> bool {
        matches!(
            self,
            MacAlg::HmacSha256Etm | MacAlg::HmacSha512Etm | MacAlg::HmacSha1Etm
        )
    }

    fn keyed(self, key: &[u8]) -> Option<PacketMac> {
        match self {
            MacAlg::HmacSha256Etm | MacAlg::HmacSha256 => PacketMac::sha256(key),
            MacAlg::HmacSha512Etm | MacAlg::HmacSha512 => PacketMac::sha512(key),
            MacAlg::HmacSha1Etm | MacAlg::HmacSha1 => PacketMac::sha1(key),
        }
    }
}

/// Key material for one direction, as derived in RFC 4253 §7.2.
#[derive(Clone, Copy, Debug)]
pub struct DirectionKeys<'a> {
    /// Initial IV (A or B).
    pub iv: &'a [u8],
    /// Encryption key (C or D).
    pub key: &'a [u8],
    /// Integrity key (E or F); ignored for AEAD ciphers.
    pub mac_key: &'a [u8],
}

/// Builds the receive-side protection, or `None` if the material has the wrong size or a
/// non-AEAD cipher comes without a MAC.
pub fn opening_key(
    cipher: CipherAlg,
    mac: Option<MacAlg>,
    k: DirectionKeys<'_>,
) -> Option<Box<dyn OpeningKey>> {
    Some(match cipher {
        CipherAlg::ChaCha20Poly1305 => Box::new(ChaChaPoly::new(k.key.try_into().ok()?)),
        CipherAlg::Aes128Gcm | CipherAlg::Aes256Gcm => {
            Box::new(AesGcm::new(k.key, k.iv.try_into().ok()?)?)
        }
        _ => Box::new(CtrHmac::new(cipher, mac?, k)?),
    })
}

/// Builds the send-side protection; see [`opening_key`].
pub fn sealing_key(
    cipher: CipherAlg,
    mac: Option<MacAlg>,
    k: DirectionKeys<'_>,
) -> Option<Box<dyn SealingKey>> {
    Some(match cipher {
        CipherAlg::ChaCha20Poly1305 => Box::new(ChaChaPoly::new(k.key.try_into().ok()?)),
        CipherAlg::Aes128Gcm | CipherAlg::Aes256Gcm => {
            Box::new(AesGcm::new(k.key, k.iv.try_into().ok()?)?)
        }
        _ => Box::new(CtrHmac::new(cipher, mac?, k)?),
    })
}

impl OpeningKey for ChaChaPoly {
    fn framing(&self) -> Framing {
        Framing::SealedLength
    }
    fn block_len(&self) -> usize {
        8
    }
    fn tag_len(&self) -> usize {
        aead::TAG_LEN
    }
    fn open_length(&mut self, seq: u32, head: &mut [u8]) -> Result<u32, CryptoError> {
        ChaChaPoly::open_length(self, seq, head)
    }
    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        ChaChaPoly::open(self, seq, packet, tag)
    }
}

impl SealingKey for ChaChaPoly {
    fn framing(&self) -> Framing {
        Framing::SealedLength
    }
    fn block_len(&self) -> usize {
        8
    }
    fn tag_len(&self) -> usize {
        aead::TAG_LEN
    }
    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        ChaChaPoly::seal(self, seq, packet, tag);
    }
}

impl OpeningKey for AesGcm {
    fn framing(&self) -> Framing {
        Framing::ClearLength
    }
    fn block_len(&self) -> usize {
        16
    }
    fn tag_len(&self) -> usize {
        aead::TAG_LEN
    }
    fn open_length(&mut self, _seq: u32, head: &mut [u8]) -> Result<u32, CryptoError> {
        read_len(head)
    }
    fn open(&mut self, _seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        AesGcm::open(self, packet, tag)
    }
}

impl SealingKey for AesGcm {
    fn framing(&self) -> Framing {
        Framing::ClearLength
    }
    fn block_len(&self) -> usize {
        16
    }
    fn tag_len(&self) -> usize {
        aead::TAG_LEN
    }
    fn seal(&mut self, _seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        AesGcm::seal(self, packet, tag);
    }
}

/// AES-CTR with an HMAC, either encrypt-and-MAC (MAC over the plaintext packet, RFC 4253 §6.4)
/// or encrypt-then-MAC (MAC over the clear length and the ciphertext, PROTOCOL §1.7).
struct CtrHmac {
    ctr: AesCtr,
    mac: PacketMac,
    etm: bool,
}

impl CtrHmac {
    fn new(cipher: CipherAlg, mac: MacAlg, k: DirectionKeys<'_>) -> Option<Self> {
        if k.key.len() != cipher.key_len() || k.mac_key.len() != mac.key_len() {
            return None;
        }
        Some(Self {
            ctr: AesCtr::new(k.key, k.iv.try_into().ok()?)?,
            mac: mac.keyed(k.mac_key)?,
            etm: mac.is_etm(),
        })
    }

    fn framing(&self) -> Framing {
        if self.etm {
            Framing::ClearLength
        } else {
            Framing::Whole
        }
    }
}

impl OpeningKey for CtrHmac {
    fn framing(&self) -> Framing {
        CtrHmac::framing(self)
    }
    fn block_len(&self) -> usize {
        16
    }
    fn tag_len(&self) -> usize {
        self.mac.len()
    }
    fn open_length(&mut self, _seq: u32, head: &mut [u8]) -> Result<u32, CryptoError> {
        if !self.etm {
            // The first block is decrypted here, once; `open` continues after it.
            self.ctr.apply(head);
        }
        read_len(head)
    }
    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        if self.etm {
            if !self.mac.verify(seq, packet, tag) {
                return Err(CryptoError::BadMac);
            }
            self.ctr.apply(packet.get_mut(4..).unwrap_or_default());
            Ok(())
        } else {
            self.ctr.apply(packet.get_mut(16..).unwrap_or_default());
            if self.mac.verify(seq, packet, tag) {
                Ok(())
            } else {
                Err(CryptoError::BadMac)
            }
        }
    }
}

impl SealingKey for CtrHmac {
    fn framing(&self) -> Framing {
        CtrHmac::framing(self)
    }
    fn block_len(&self) -> usize {
        16
    }
    fn tag_len(&self) -> usize {
        self.mac.len()
    }
    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        if self.etm {
            self.ctr.apply(packet.get_mut(4..).unwrap_or_default());
            self.mac.compute(seq, packet, tag);
        } else {
            self.mac.compute(seq, packet, tag);
            self.ctr.apply(packet);
        }
    }
}

/// Whether AES-GCM has hardware support here (what RustCrypto's `aes` and `polyval` pick at
/// run time).
fn aes_gcm_accelerated() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_order_offers_every_cipher_and_puts_aes_gcm_first_only_where_accelerated() {
        let order = CipherAlg::client_preference();
        let mut sorted = order.clone();
        sorted.sort_by_key(|c| c.wire_name());
        let mut all = CipherAlg::SUPPORTED.to_vec();
        all.sort_by_key(|c| c.wire_name());
        assert_eq!(sorted, all);
        if aes_gcm_accelerated() {
            assert_eq!(
                order.get(..3),
                Some(
                    &[
                        CipherAlg::Aes128Gcm,
                        CipherAlg::Aes256Gcm,
                        CipherAlg::ChaCha20Poly1305
                    ][..]
                )
            );
        } else {
            assert_eq!(order, CipherAlg::SUPPORTED.to_vec());
        }
    }
}
