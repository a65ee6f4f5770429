//! The packet-protection interface: one [`OpeningKey`] and one [`SealingKey`] per direction,
//! installed at NEWKEYS. The three framings SSH uses differ in where the length lives and what
//! the padding aligns, so each key says which one it is and the packet codec does the rest.

use crate::error::CryptoError;

/// How a protection scheme treats `packet_length` [RFC4253 §6, PROTOCOL §1.6, PROTOCOL.chacha20poly1305].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The length is encrypted with the rest of the packet and counts in the block alignment:
    /// the `none` cipher and encrypt-and-MAC. The first block must be decrypted to learn it.
    Whole,
    /// The length travels in the clear, authenticated by the MAC or as AEAD associated data,
    /// and is excluded from alignment: `*-etm@openssh.com` MACs and AES-GCM.
    ClearLength,
    /// The length is encrypted under its own key and authenticated with the packet, and is
    /// excluded from alignment: `chacha20-poly1305@openssh.com`.
    SealedLength,
}

impl Framing {
    /// Whether the 4-byte length field counts toward the block alignment.
    pub const fn aligns_length(self) -> bool {
        matches!(self, Framing::Whole)
    }

    /// Bytes needed before the length can be read: a whole cipher block when the length is
    /// encrypted with the packet [RFC4253 §6], otherwise the 4 length bytes.
    pub const fn head_len(self, block_len: usize) -> usize {
        match self {
            Framing::Whole => block_len,
            Framing::ClearLength | Framing::SealedLength => 4,
        }
    }
}

/// Receive-side protection for one direction.
pub trait OpeningKey: Send {
    /// Which framing this key uses.
    fn framing(&self) -> Framing;
    /// The alignment unit: the cipher block size or 8, whichever is larger [RFC4253 §6].
    fn block_len(&self) -> usize;
    /// Bytes of MAC or tag after each packet.
    fn tag_len(&self) -> usize;
    /// Reads `packet_length` from the first [`Framing::head_len`] bytes of a packet. `Whole`
    /// keys decrypt `head` in place (the packet's plaintext starts there); the others leave it
    /// untouched, because their tag covers the bytes as received.
    fn open_length(&mut self, seq: u32, head: &mut [u8]) -> Result<u32, CryptoError>;
    /// Authenticates and decrypts `packet` (length field included; for `Whole` keys its head
    /// is already plaintext) in place. Nothing may act on the plaintext unless this succeeds.
    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError>;
}

/// Send-side protection for one direction.
pub trait SealingKey: Send {
    /// Which framing this key uses.
    fn framing(&self) -> Framing;
    /// The alignment unit: the cipher block size or 8, whichever is larger [RFC4253 §6].
    fn block_len(&self) -> usize;
    /// Bytes of MAC or tag after each packet.
    fn tag_len(&self) -> usize;
    /// Encrypts `packet` (length field included, padding filled) in place and writes its tag.
    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]);
}

/// The `none` cipher with the `none` MAC, in force until the first NEWKEYS [RFC4253 §6.3, §6.4].
#[derive(Clone, Copy, Debug, Default)]
pub struct Cleartext;

impl OpeningKey for Cleartext {
    fn framing(&self) -> Framing {
        Framing::Whole
    }
    fn block_len(&self) -> usize {
        8
    }
    fn tag_len(&self) -> usize {
        0
    }
    fn open_length(&mut self, _seq: u32, head: &mut [u8]) -> Result<u32, CryptoError> {
        read_len(head)
    }
    fn open(&mut self, _seq: u32, _packet: &mut [u8], _tag: &[u8]) -> Result<(), CryptoError> {
        Ok(())
    }
}

impl SealingKey for Cleartext {
    fn framing(&self) -> Framing {
        Framing::Whole
    }
    fn block_len(&self) -> usize {
        8
    }
    fn tag_len(&self) -> usize {
        0
    }
    fn seal(&mut self, _seq: u32, _packet: &mut [u8], _tag: &mut [u8]) {}
}

/// The big-endian `packet_length` at the start of `head`.
pub fn read_len(head: &[u8]) -> Result<u32, CryptoError> {
    head.first_chunk::<4>()
        .map(|b| u32::from_be_bytes(*b))
        .ok_or(CryptoError::BadMac)
}
