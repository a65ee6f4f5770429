//! A connection's input buffer: what the socket delivered and the core has not taken yet.
//!
//! The buffer is kept initialized (zeroed once, when it is made or grows), so a read offers
//! its whole room as a plain `&mut [u8]`. Reading into a `Vec`'s spare capacity instead makes a
//! fresh, uninitialized `ReadBuf` each time, and a reader that needs a `&mut [u8]` (our paced
//! socket reads with `read(2)`, [`QuickAck`](super::tcp::QuickAck)) must then clear the room
//! before every read: 64 KiB of `memset` per read of a streaming upstream, about one pass
//! over every byte received.
//!
//! Its size follows what arrives: [`IDLE_READ_CHUNK`] while the peer only sends protocol
//! messages (so a held connection keeps 2 KiB), [`READ_CHUNK`] once a read fills that, and
//! for a peer that may stream (authenticated) [`STREAM_READ_CHUNK`].

use crate::limits::{IDLE_READ_CHUNK, READ_CHUNK, STREAM_READ_CHUNK};

/// Bytes read and not yet taken, at the front of a zero-initialized buffer.
pub(crate) struct InBuf {
    buf: Vec<u8>,
    len: usize,
}

impl InBuf {
    /// An empty buffer of [`IDLE_READ_CHUNK`].
    pub(crate) fn new() -> Self {
        Self::with_size(IDLE_READ_CHUNK)
    }

    fn with_size(size: usize) -> Self {
        Self {
            buf: vec![0; size],
            len: 0,
        }
    }

    /// The bytes waiting for the core.
    pub(crate) fn data(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The bytes waiting for the core, which may decrypt the packets it takes in place.
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(..self.len).unwrap_or_default()
    }

    /// Whether no byte waits.
    pub(crate) const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The room the next read may fill. Never empty: a buffer the core left full (it takes
    /// partial packets into its own buffer, so only a connection that stopped taking input
    /// leaves bytes behind) grows by [`IDLE_READ_CHUNK`] first.
    pub(crate) fn room(&mut self) -> &mut [u8] {
        if self.len >= self.buf.len() {
            self.buf.resize(self.len.saturating_add(IDLE_READ_CHUNK), 0);
        }
        self.buf.get_mut(self.len..).unwrap_or_default()
    }

    /// `n` bytes were read into [`InBuf::room`].
    pub(crate) fn filled(&mut self, n: usize) {
        self.len = self.len.saturating_add(n).min(self.buf.len());
    }

    /// Drops the first `n` bytes (the core took them); what is left moves to the front.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if n > 0 {
            self.buf.copy_within(n..self.len, 0);
            self.len = self.len.saturating_sub(n);
        }
    }

    /// Sizes the buffer for the next read, after a read of `n` bytes was fed: one that
    /// filled it (`full`) asks for more next time — [`READ_CHUNK`], then, for a peer that may
    /// stream (`may_stream`: authenticated), [`STREAM_READ_CHUNK`]. A read that left nothing
    /// behind gives the buffer back down to [`IDLE_READ_CHUNK`] (a protocol message: the
    /// connection waits) or to [`READ_CHUNK`] (the tail of a stream).
    pub(crate) fn resize_after(&mut self, n: usize, full: bool, may_stream: bool) {
        let size = self.buf.len();
        if full {
            let want = if size < READ_CHUNK {
                READ_CHUNK
            } else if may_stream {
                STREAM_READ_CHUNK
            } else {
                return;
            };
            if want > size {
                self.buf.resize(want, 0);
            }
        } else if self.is_empty() {
            let keep = if n <= IDLE_READ_CHUNK {
                IDLE_READ_CHUNK
            } else if n < READ_CHUNK / 4 {
                READ_CHUNK
            } else {
                return;
            };
            if size > keep {
                *self = Self::with_size(keep);
            }
        }
    }

    /// Whether a read filled the buffer.
    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.buf.len()
    }

    #[cfg(test)]
    fn size(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(b: &mut InBuf, bytes: &[u8]) {
        let room = b.room();
        let n = bytes.len().min(room.len());
        room.get_mut(..n).unwrap().copy_from_slice(&bytes[..n]);
        b.filled(n);
    }

    #[test]
    fn what_is_not_taken_stays_in_order_at_the_front() {
        let mut b = InBuf::new();
        read(&mut b, b"abcdef");
        b.consume(2);
        assert_eq!(b.data(), b"cdef");
        read(&mut b, b"gh");
        assert_eq!(b.data(), b"cdefgh");
        b.consume(100);
        assert!(b.is_empty());
        // A full buffer the core took nothing of still offers room.
        read(&mut b, &[7u8; IDLE_READ_CHUNK]);
        assert!(b.is_full());
        assert_eq!(b.room().len(), IDLE_READ_CHUNK);
        assert_eq!(b.data().len(), IDLE_READ_CHUNK);
    }

    #[test]
    fn the_buffer_grows_for_what_arrives_and_is_given_back_when_idle() {
        let mut b = InBuf::new();
        // A read that fills the idle buffer (a big KEXINIT): READ_CHUNK next, authenticated
        // or not.
        read(&mut b, &[0u8; 100]);
        b.resize_after(IDLE_READ_CHUNK, true, false);
        assert_eq!(b.size(), READ_CHUNK);
        assert_eq!(b.data().len(), 100, "a partial packet stays");
        // A full READ_CHUNK before authentication: no more growth.
        b.resize_after(READ_CHUNK, true, false);
        assert_eq!(b.size(), READ_CHUNK);
        // A full read of a streaming peer: the next read asks for STREAM_READ_CHUNK.
        b.resize_after(READ_CHUNK, true, true);
        assert_eq!(b.size(), STREAM_READ_CHUNK);
        assert_eq!(b.data().len(), 100, "still there");
        // Big reads keep it; a short read that left nothing gives back down to READ_CHUNK,
        // a protocol message's down to IDLE_READ_CHUNK.
        b.consume(100);
        b.resize_after(100 * 1024, false, true);
        assert_eq!(b.size(), STREAM_READ_CHUNK);
        b.resize_after(8 * 1024, false, true);
        assert_eq!(b.size(), READ_CHUNK);
        b.resize_after(100, false, true);
        assert_eq!(b.size(), IDLE_READ_CHUNK);
        // Small reads leave it there.
        b.resize_after(100, false, true);
        assert_eq!(b.size(), IDLE_READ_CHUNK);
        // The room offered is all initialized bytes past the data.
        read(&mut b, b"xy");
        assert_eq!(b.room().len(), IDLE_READ_CHUNK - 2);
    }
}
