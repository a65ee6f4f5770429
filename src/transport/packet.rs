//! The binary packet protocol [RFC4253 §6]: a resumable decoder and an encoder, one per
//! direction, each owning its sequence number and its [`OpeningKey`]/[`SealingKey`].
//!
//! The decoder reads the length from the first block, checks it against the cap and the
//! alignment rule *before* buffering the body, then buffers exactly one packet, so the memory a
//! peer can make us hold is bounded by the configured maximum packet length. Given mutable
//! input (the drivers' read buffer), a packet that arrived whole is not buffered at all: it is
//! authenticated and decrypted where it lies, and only a packet split across reads is copied.

use crate::crypto::rng::SecureRandom;
use crate::error::{Error, LimitExceeded, ProtocolError};
use crate::limits::{MAX_PACKET_LEN, MIN_MAX_PACKET_LEN, RETAIN_BUFFER_MAX};
use crate::transport::cipher::{Cleartext, OpeningKey, SealingKey};
use crate::wire::Writer;

/// Smallest legal `packet_length`: the padding-length byte, one payload byte, four of padding.
const MIN_PACKET_LEN: u32 = 6;

/// What an empty output buffer is given before a packet is written into it: a control
/// message with its framing and tag (a bigger packet grows it once more).
const SMALL_PACKET: usize = 256;

/// Traffic carried under the current keys, for rekey decisions [RFC4253 §9, RFC4344 §3].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets since the keys were installed.
    pub packets: u64,
    /// Bytes on the wire (length field, body and tag) since the keys were installed.
    pub bytes: u64,
}

impl Counters {
    fn add(&mut self, wire_len: usize) {
        self.packets = self.packets.saturating_add(1);
        self.bytes = self
            .bytes
            .saturating_add(u64::try_from(wire_len).unwrap_or(u64::MAX));
    }
}

/// A complete, authenticated packet.
#[derive(Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The sequence number it was received under.
    pub seq: u32,
    /// The payload (padding and MAC removed).
    pub payload: &'a [u8],
}

#[derive(Clone, Debug)]
enum State {
    /// Collecting the first bytes of a packet until the length is readable.
    Head,
    /// Length known and valid; collecting `total` bytes (length field, body, tag).
    Body { packet_len: u32, total: usize },
    /// The previous call returned a packet that still borrows the buffer.
    Delivered,
    /// A fatal error happened; the connection must go.
    Failed(Error),
}

/// A complete, authenticated packet handed to the layers above: opened where it arrived (the
/// caller's input, when the packet came whole in it) or in the decoder's buffer, which it
/// then takes along; hand that back with [`PacketDecoder::recycle`] to reuse it.
#[derive(Debug)]
pub struct InPacket<'a> {
    /// The sequence number it was received under.
    pub seq: u32,
    body: Body<'a>,
}

#[derive(Debug)]
enum Body<'a> {
    /// The payload, decrypted inside the caller's input.
    InPlace(&'a [u8]),
    /// The decoder's buffer and the payload's range in it.
    Buffered {
        buf: Vec<u8>,
        range: std::ops::Range<usize>,
    },
}

impl InPacket<'_> {
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        match &self.body {
            Body::InPlace(p) => p,
            Body::Buffered { buf, range } => buf.get(range.clone()).unwrap_or_default(),
        }
    }

    /// Whether the packet was opened in the decoder's buffer (not in place): for the tests
    /// that check which path a packet took.
    #[cfg(test)]
    fn is_buffered(&self) -> bool {
        matches!(self.body, Body::Buffered { .. })
    }

    /// The decoder's buffer, if the packet was opened there (for [`PacketDecoder::recycle`]).
    pub fn into_buffer(self) -> Option<Vec<u8>> {
        match self.body {
            Body::InPlace(_) => None,
            Body::Buffered { buf, .. } => Some(buf),
        }
    }
}

/// Input the decoder may read packets from: a shared slice (each packet is copied into the
/// decoder's buffer and opened there) or a mutable one (a packet that arrived whole is opened
/// where it lies, one copy less per packet). Either is split as it is consumed, so a packet
/// borrowed from the front never holds the rest.
pub trait Input<'a>: Sized + sealed::Sealed {
    /// The bytes not consumed yet.
    fn bytes(&self) -> &[u8];
    /// Drops the first `n` bytes.
    fn advance(self, n: usize) -> Self;
    /// Decodes at most one packet from the front: bytes taken, the packet, and the rest.
    fn decode_with(
        self,
        dec: &mut PacketDecoder,
    ) -> Result<(usize, Option<InPacket<'a>>, Self), Error>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for &[u8] {}
    impl Sealed for &mut [u8] {}
}

impl<'a> Input<'a> for &'a [u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn advance(self, n: usize) -> Self {
        self.get(n..).unwrap_or_default()
    }
    fn decode_with(
        self,
        dec: &mut PacketDecoder,
    ) -> Result<(usize, Option<InPacket<'a>>, Self), Error> {
        let (n, pkt) = dec.decode_owned(self)?;
        Ok((n, pkt, self.advance(n)))
    }
}

impl<'a> Input<'a> for &'a mut [u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn advance(self, n: usize) -> Self {
        let at = n.min(self.len());
        self.split_at_mut(at).1
    }
    fn decode_with(
        self,
        dec: &mut PacketDecoder,
    ) -> Result<(usize, Option<InPacket<'a>>, Self), Error> {
        dec.decode_in_place(self)
    }
}

/// What [`PacketDecoder::open_in_place`] did with the front of the input.
enum InPlace {
    /// A whole packet was opened in `..total`; the payload is at `range`.
    Opened {
        total: usize,
        seq: u32,
        range: std::ops::Range<usize>,
    },
    /// No packet was opened there; `used` bytes (a head already read) went to the buffer.
    Buffered { used: usize },
}

/// A completed packet inside the decode buffer: its sequence number and payload range.
type Delivered = (u32, std::ops::Range<usize>);

/// Incoming half of the binary packet protocol.
pub struct PacketDecoder {
    key: Box<dyn OpeningKey>,
    seq: u32,
    max_len: u32,
    buf: Vec<u8>,
    state: State,
    counters: Counters,
}

impl std::fmt::Debug for PacketDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketDecoder")
            .field("seq", &self.seq)
            .field("framing", &self.key.framing())
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Default for PacketDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketDecoder {
    /// A decoder for the cleartext start of a connection.
    pub fn new() -> Self {
        Self {
            key: Box::new(Cleartext),
            seq: 0,
            max_len: MAX_PACKET_LEN,
            buf: Vec::new(),
            state: State::Head,
            counters: Counters::default(),
        }
    }

    /// Sets the largest `packet_length` accepted; values below the RFC 4253 §6.1 floor are raised
    /// to it.
    pub fn set_max_packet_len(&mut self, max: u32) {
        self.max_len = max.max(MIN_MAX_PACKET_LEN);
    }

    /// Installs new keys (at NEWKEYS [RFC4253 §7.3]); the counters restart.
    pub fn set_key(&mut self, key: Box<dyn OpeningKey>) {
        self.key = key;
        self.counters = Counters::default();
    }

    /// Resets the sequence number to zero (strict kex, at NEWKEYS [PROTOCOL §1.10]).
    pub fn reset_seq(&mut self) {
        self.seq = 0;
    }

    /// The sequence number the next packet will carry.
    pub const fn seq(&self) -> u32 {
        self.seq
    }

    /// Traffic since the current keys were installed.
    pub const fn counters(&self) -> Counters {
        self.counters
    }

    /// Bytes held for the packet in progress.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a packet is partially received (a clean EOF needs this to be false).
    pub fn mid_packet(&self) -> bool {
        !self.buf.is_empty() && !matches!(self.state, State::Delivered)
    }

    /// Consumes bytes from `input` up to the end of at most one packet. Returns how many bytes
    /// were taken and the packet, if one completed. Call again with the rest of the input.
    /// After an error the decoder stays failed: the connection must be torn down.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Packet<'_>>), Error> {
        match self.step(input) {
            Ok((used, None)) => Ok((used, None)),
            Ok((used, Some((seq, range)))) => {
                let payload = self.buf.get(range).unwrap_or_default();
                Ok((used, Some(Packet { seq, payload })))
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Like [`PacketDecoder::decode`], but the packet takes the buffer with it.
    pub fn decode_owned(
        &mut self,
        input: &[u8],
    ) -> Result<(usize, Option<InPacket<'static>>), Error> {
        match self.step(input) {
            Ok((used, None)) => Ok((used, None)),
            Ok((used, Some((seq, range)))) => {
                let buf = std::mem::take(&mut self.buf);
                let body = Body::Buffered { buf, range };
                Ok((used, Some(InPacket { seq, body })))
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Like [`PacketDecoder::decode_owned`], but a packet that arrived whole is authenticated
    /// and decrypted where it lies in `input`, and borrows it: the bytes of a packet taken
    /// are overwritten (with its plaintext), the rest are left as they were. Returns the bytes
    /// taken, the packet, and the rest of `input`.
    pub fn decode_in_place<'a>(
        &mut self,
        input: &'a mut [u8],
    ) -> Result<(usize, Option<InPacket<'a>>, &'a mut [u8]), Error> {
        match self.open_in_place(input) {
            Ok(InPlace::Opened { total, seq, range }) => {
                let (packet, rest) = input.split_at_mut(total.min(input.len()));
                let packet: &'a [u8] = packet;
                let body = Body::InPlace(packet.get(range).unwrap_or_default());
                Ok((total, Some(InPacket { seq, body }), rest))
            }
            Ok(InPlace::Buffered { used }) => {
                let (n, pkt) = self.decode_owned(input.get(used..).unwrap_or_default())?;
                let used = used.saturating_add(n);
                Ok((used, pkt, input.advance(used)))
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Puts the decoder in its failed state and returns `e`.
    fn failed(&mut self, e: Error) -> Error {
        self.buf = Vec::new();
        self.state = State::Failed(e.clone());
        e
    }

    /// Takes back a buffer from an [`InPacket`] so the next packet needs no allocation.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.buf.is_empty()
            && self.buf.capacity() < buf.capacity()
            && buf.capacity() <= RETAIN_BUFFER_MAX
        {
            buf.clear();
            self.buf = buf;
        }
    }

    /// After a delivered packet: the buffer is emptied (and let go if it grew large).
    fn settle(&mut self) {
        if matches!(self.state, State::Delivered) {
            if self.buf.capacity() > RETAIN_BUFFER_MAX {
                self.buf = Vec::new();
            }
            self.buf.clear();
            self.state = State::Head;
        }
    }

    /// Opens the packet at the front of `input` where it lies, if nothing of it is buffered
    /// and all of it is there. A packet only partly there leaves its head (read, and for
    /// `Whole` keys decrypted) in the buffer, and the body follows it there.
    fn open_in_place(&mut self, input: &mut [u8]) -> Result<InPlace, Error> {
        self.settle();
        if !matches!(self.state, State::Head) || !self.buf.is_empty() {
            return Ok(InPlace::Buffered { used: 0 });
        }
        let head = self.key.framing().head_len(self.key.block_len());
        let Some(head_bytes) = input.get_mut(..head) else {
            return Ok(InPlace::Buffered { used: 0 });
        };
        let packet_len = self.key.open_length(self.seq, head_bytes)?;
        let total = self.check_len(packet_len, head)?;
        if input.len() < total {
            self.buf.reserve_exact(total);
            self.buf
                .extend_from_slice(input.get(..head).unwrap_or_default());
            self.state = State::Body { packet_len, total };
            return Ok(InPlace::Buffered { used: head });
        }
        let whole = input.get_mut(..total).unwrap_or_default();
        let range = open(&mut *self.key, self.seq, packet_len, whole)?;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.counters.add(total);
        Ok(InPlace::Opened { total, seq, range })
    }

    fn step(&mut self, input: &[u8]) -> Result<(usize, Option<Delivered>), Error> {
        let mut used = 0usize;
        loop {
            match self.state.clone() {
                State::Failed(e) => return Err(e),
                State::Delivered => self.settle(),
                State::Head => {
                    let head = self.key.framing().head_len(self.key.block_len());
                    used = used
                        .saturating_add(self.fill_to(head, input.get(used..).unwrap_or_default()));
                    if self.buf.len() < head {
                        return Ok((used, None));
                    }
                    let head_bytes = self.buf.get_mut(..head).unwrap_or_default();
                    let packet_len = self.key.open_length(self.seq, head_bytes)?;
                    let total = self.check_len(packet_len, head)?;
                    self.buf.reserve_exact(total.saturating_sub(self.buf.len()));
                    self.state = State::Body { packet_len, total };
                }
                State::Body { packet_len, total } => {
                    used = used
                        .saturating_add(self.fill_to(total, input.get(used..).unwrap_or_default()));
                    if self.buf.len() < total {
                        return Ok((used, None));
                    }
                    let whole = self.buf.get_mut(..total).unwrap_or_default();
                    let range = open(&mut *self.key, self.seq, packet_len, whole)?;
                    let seq = self.seq;
                    self.seq = self.seq.wrapping_add(1);
                    self.counters.add(total);
                    self.state = State::Delivered;
                    return Ok((used, Some((seq, range))));
                }
            }
        }
    }

    /// Appends from `input` until the buffer holds `target` bytes; returns bytes taken.
    fn fill_to(&mut self, target: usize, input: &[u8]) -> usize {
        let want = target.saturating_sub(self.buf.len()).min(input.len());
        self.buf
            .extend_from_slice(input.get(..want).unwrap_or_default());
        want
    }

    /// Validates an announced length before any of the body is buffered; returns the packet's
    /// total size on the wire.
    fn check_len(&self, len: u32, head: usize) -> Result<usize, Error> {
        if len > self.max_len {
            return Err(ProtocolError::PacketTooLarge {
                len,
                max: self.max_len,
            }
            .into());
        }
        if len < MIN_PACKET_LEN {
            return Err(ProtocolError::PacketTooSmall { len }.into());
        }
        let block = self.key.block_len();
        let len_usize = usize::try_from(len).map_err(|_| ProtocolError::PacketTooLarge {
            len,
            max: self.max_len,
        })?;
        let with_len = len_usize.saturating_add(4);
        let aligned = if self.key.framing().aligns_length() {
            with_len
        } else {
            len_usize
        };
        if aligned.checked_rem(block) != Some(0) {
            return Err(ProtocolError::BadAlignment { len, block }.into());
        }
        if with_len < head {
            return Err(ProtocolError::PacketTooSmall { len }.into());
        }
        Ok(with_len.saturating_add(self.key.tag_len()))
    }
}

/// Authenticates and decrypts one whole packet (`total` bytes: length, body, tag) in place;
/// returns the payload's range in it.
fn open(
    key: &mut dyn OpeningKey,
    seq: u32,
    packet_len: u32,
    whole: &mut [u8],
) -> Result<std::ops::Range<usize>, Error> {
    let tag_len = key.tag_len();
    let (packet, tag) = whole.split_at_mut(whole.len().saturating_sub(tag_len));
    key.open(seq, packet, tag)?;
    let padding = *packet
        .get(4)
        .ok_or(ProtocolError::PacketTooSmall { len: packet_len })?;
    let bad = ProtocolError::BadPadding {
        padding,
        len: packet_len,
    };
    // padding_length ≥ 4, and at least one payload byte [RFC4253 §6].
    let payload_len = usize::try_from(packet_len)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .and_then(|l| l.checked_sub(usize::from(padding)))
        .filter(|&l| l >= 1 && padding >= 4)
        .ok_or(bad)?;
    Ok(5..payload_len.saturating_add(5))
}

/// Outgoing half of the binary packet protocol.
pub struct PacketEncoder {
    key: Box<dyn SealingKey>,
    seq: u32,
    max_len: u32,
    counters: Counters,
}

impl std::fmt::Debug for PacketEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketEncoder")
            .field("seq", &self.seq)
            .field("framing", &self.key.framing())
            .finish_non_exhaustive()
    }
}

impl Default for PacketEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketEncoder {
    /// An encoder for the cleartext start of a connection.
    pub fn new() -> Self {
        Self {
            key: Box::new(Cleartext),
            seq: 0,
            max_len: MAX_PACKET_LEN,
            counters: Counters::default(),
        }
    }

    /// Sets the largest `packet_length` we will send.
    pub fn set_max_packet_len(&mut self, max: u32) {
        self.max_len = max.max(MIN_MAX_PACKET_LEN);
    }

    /// Installs new keys (at NEWKEYS [RFC4253 §7.3]); the counters restart.
    pub fn set_key(&mut self, key: Box<dyn SealingKey>) {
        self.key = key;
        self.counters = Counters::default();
    }

    /// Resets the sequence number to zero (strict kex, at NEWKEYS [PROTOCOL §1.10]).
    pub fn reset_seq(&mut self) {
        self.seq = 0;
    }

    /// The sequence number the next packet will carry.
    pub const fn seq(&self) -> u32 {
        self.seq
    }

    /// Traffic since the current keys were installed.
    pub const fn counters(&self) -> Counters {
        self.counters
    }

    /// The largest payload one packet can carry under the current limit.
    pub fn max_payload_len(&self) -> usize {
        // packet_length = 1 + payload + padding, padding at most 4 + block - 1.
        usize::try_from(self.max_len)
            .unwrap_or(usize::MAX)
            .saturating_sub(self.key.block_len().saturating_add(5))
    }

    /// Frames and seals `payload` onto `out`; returns the sequence number used.
    pub fn encode(
        &mut self,
        payload: &[u8],
        rng: &mut dyn SecureRandom,
        out: &mut Vec<u8>,
    ) -> Result<u32, Error> {
        self.encode_with(rng, out, |w| {
            w.raw(payload);
        })
    }

    /// Frames and seals the payload `write` appends onto `out`, with no intermediate copy;
    /// returns the sequence number used. On error `out` is left as it was.
    pub fn encode_with(
        &mut self,
        rng: &mut dyn SecureRandom,
        out: &mut Vec<u8>,
        write: impl FnOnce(&mut Writer<'_>),
    ) -> Result<u32, Error> {
        let start = out.len();
        // The driver gives its output buffer back after each small write (a held connection
        // keeps none): room for a control message at once, not a doubling per field.
        out.reserve(SMALL_PACKET);
        out.extend_from_slice(&[0; 5]);
        write(&mut Writer::new(out));
        let payload_len = out.len().saturating_sub(start).saturating_sub(5);
        if payload_len == 0 || payload_len > self.max_payload_len() {
            out.truncate(start);
            return Err(LimitExceeded::OutgoingPacketTooLarge { len: payload_len }.into());
        }
        let block = self.key.block_len().max(8);
        let framing = self.key.framing();
        let unpadded = payload_len.saturating_add(if framing.aligns_length() { 5 } else { 1 });
        let mut padding = block.saturating_sub(unpadded.checked_rem(block).unwrap_or(0));
        if padding < 4 {
            padding = padding.saturating_add(block);
        }
        let packet_len = payload_len.saturating_add(1).saturating_add(padding);
        let (Ok(packet_len32), Ok(padding8)) = (u32::try_from(packet_len), u8::try_from(padding))
        else {
            out.truncate(start);
            return Err(LimitExceeded::OutgoingPacketTooLarge { len: payload_len }.into());
        };
        let pad_at = out.len();
        out.resize(
            pad_at
                .saturating_add(padding)
                .saturating_add(self.key.tag_len()),
            0,
        );
        let region = out.get_mut(start..).unwrap_or_default();
        if let Some(len_field) = region.get_mut(..4) {
            len_field.copy_from_slice(&packet_len32.to_be_bytes());
        }
        if let Some(pad_field) = region.get_mut(4) {
            *pad_field = padding8;
        }
        let (packet, tag) = region.split_at_mut(packet_len.saturating_add(4).min(region.len()));
        if let Some(pad) = packet.get_mut(packet_len.saturating_add(4).saturating_sub(padding)..) {
            rng.fill(pad);
        }
        let seq = self.seq;
        self.key.seal(seq, packet, tag);
        self.seq = self.seq.wrapping_add(1);
        self.counters.add(out.len().saturating_sub(start));
        Ok(seq)
    }
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
