//! The TCP stream both drivers run on: acknowledges small reads at once.
//!
//! A peer that writes two small packets back to back with Nagle's algorithm on (OpenSSH's
//! client does, outside interactive sessions: NEWKEYS then SERVICE_REQUEST) holds the second
//! until the first is acknowledged. Our kernel delays that ACK by up to 40 ms when it has no
//! reply to piggyback it on, so every handshake lost ~40 ms waiting on itself. After a small
//! read (a protocol message, not a stream) that we do not answer, we ask for a quick ACK,
//! which sends the pending one now: when the connection goes back to reading without having
//! written. A small read we answer gets its ACK on the answer, with no extra segment and no
//! system call; bulk reads are left to the kernel's usual delayed ACKs.
//!
//! A connection to an upstream that streams a pack to us ([`QuickAck::batched`]) reads it in
//! batches, as [`BatchReader`](super::batch_read::BatchReader) reads git's pipe: after a read
//! that brought a stream's worth without filling the buffer, the next read waits
//! [`DELAY`](super::batch_read::DELAY), so a wake-up carries what arrived meanwhile instead of
//! one of the upstream's 16–32 KiB writes. Writes are never held.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Reads at most this large are protocol messages, answered by a quick ACK.
const SMALL_READ: usize = 4096;

/// Reads at least this large, not filling the buffer, mark a stream on a batched connection.
const STREAM_READ: usize = 16 * 1024;

/// A [`TcpStream`] that quick-ACKs small reads left unanswered.
#[derive(Debug)]
pub struct QuickAck {
    stream: TcpStream,
    /// A small read came and nothing was written since.
    unanswered: bool,
    /// A batched connection's wait before its next read (`None`: not batched).
    batch: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The wait is armed.
    holding: bool,
}

impl QuickAck {
    /// Wraps an accepted or connected stream.
    pub const fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            unanswered: false,
            batch: None,
            holding: false,
        }
    }

    /// Wraps a connection whose peer streams to us (an upstream): reads batched.
    pub fn batched(stream: TcpStream) -> Self {
        Self {
            batch: Some(Box::pin(tokio::time::sleep(super::batch_read::DELAY))),
            ..Self::new(stream)
        }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.unanswered {
            // Back to reading with nothing written: the peer may be waiting on our ACK.
            // Best effort: a failure only leaves the kernel's default in place.
            this.unanswered = false;
            let _ = this.stream.set_quickack(true);
        }
        if this.holding
            && let Some(wait) = this.batch.as_mut()
        {
            std::task::ready!(wait.as_mut().poll(cx));
            this.holding = false;
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.stream).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if matches!(r, Poll::Ready(Ok(()))) {
            if (1..=SMALL_READ).contains(&n) {
                this.unanswered = true;
            }
            if n >= STREAM_READ
                && buf.remaining() > 0
                && let Some(wait) = this.batch.as_mut()
            {
                let now = tokio::time::Instant::now();
                wait.as_mut()
                    .reset(now.checked_add(super::batch_read::DELAY).unwrap_or(now));
                this.holding = true;
            }
        }
        r
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            // The ACK rides on this segment.
            self.unanswered = false;
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
