//! The TCP stream both drivers run on: acknowledges small reads at once, batches a streaming
//! upstream's data, and paces the reads of a peer that is behind.
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
//! that brought a stream's worth without filling the buffer, the next read waits [`DELAY`]
//! with the socket out of epoll (paced, below), so a wake-up carries what arrived meanwhile
//! instead of one of the upstream's 16–32 KiB writes. Writes are never held.
//!
//! A client that consumes slower than we send (git's index-pack behind a fast link) returns
//! window credit as it goes: OpenSSH sends a WINDOW_ADJUST for each batch it has taken once
//! half its window is in flight, thousands per clone, and each would wake us for a read of
//! 36 bytes and a send of what it allows. While the connection streams to such a peer the
//! loop calls [`QuickAck::pace`]: the socket leaves epoll (so what arrives wakes nobody) and the
//! next read waits [`DELAY`], then reads whatever gathered. The peer has half a window in hand
//! meanwhile. A read that finds nothing, or a write the socket cannot take, puts the socket
//! back in epoll.

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::batch_read::DELAY;
use crate::limits::PACED_EMPTY_POLLS;

/// Reads at most this large are protocol messages, answered by a quick ACK.
const SMALL_READ: usize = 4096;

/// Reads at least this large, not filling the buffer, mark a stream on a batched connection.
const STREAM_READ: usize = 16 * 1024;

/// The socket, in epoll or (while paced) out of it.
#[derive(Debug)]
enum Sock {
    Watched(TcpStream),
    /// Non-blocking, read and written directly.
    Paced(std::net::TcpStream),
    /// Only while switching (or after a switch failed: the connection ends).
    Gone,
}

/// A [`TcpStream`] that quick-ACKs small reads left unanswered.
#[derive(Debug)]
pub struct QuickAck {
    sock: Sock,
    /// A small read came and nothing was written since.
    unanswered: bool,
    /// The wait before the next read (batched or paced), made on first use and kept.
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Batched: reads that bring a stream wait before the next.
    batched: bool,
    /// The wait is armed.
    holding: bool,
    /// Paced reads in a row that found nothing.
    empty_polls: u8,
}

impl QuickAck {
    /// Wraps an accepted or connected stream.
    pub const fn new(stream: TcpStream) -> Self {
        Self {
            sock: Sock::Watched(stream),
            unanswered: false,
            wait: None,
            batched: false,
            holding: false,
            empty_polls: 0,
        }
    }

    /// Wraps a connection whose peer streams to us (an upstream): reads batched.
    pub fn batched(stream: TcpStream) -> Self {
        let mut s = Self::new(stream);
        s.batched = true;
        s
    }

    /// The next read waits [`DELAY`], with the socket out of epoll meanwhile (see the module
    /// notes): the connection streams to a peer that is behind.
    pub fn pace(&mut self) {
        if let Sock::Watched(_) = self.sock
            && let Sock::Watched(s) = std::mem::replace(&mut self.sock, Sock::Gone)
        {
            // On failure the socket is gone and the next read or write says so.
            if let Ok(s) = s.into_std() {
                self.sock = Sock::Paced(s);
            }
        }
        self.hold();
    }

    /// Arms the wait before the next read.
    fn hold(&mut self) {
        let now = tokio::time::Instant::now();
        let at = now.checked_add(DELAY).unwrap_or(now);
        match self.wait.as_mut() {
            Some(w) => w.as_mut().reset(at),
            None => self.wait = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        self.holding = true;
    }

    /// Puts a paced socket back in epoll.
    fn watch(&mut self) -> io::Result<&mut TcpStream> {
        if let Sock::Paced(_) = self.sock
            && let Sock::Paced(s) = std::mem::replace(&mut self.sock, Sock::Gone)
        {
            // On failure the socket is gone: this and every later call says so.
            self.sock = Sock::Watched(TcpStream::from_std(s)?);
        }
        match &mut self.sock {
            Sock::Watched(s) => Ok(s),
            _ => Err(io::ErrorKind::NotConnected.into()),
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
        loop {
            if this.holding
                && let Some(wait) = this.wait.as_mut()
            {
                ready!(wait.as_mut().poll(cx));
                this.holding = false;
            }
            let Sock::Paced(s) = &mut this.sock else {
                break;
            };
            if buf.remaining() == 0 {
                break;
            }
            // The whole room: the engine's buffer is initialized (`InBuf`), so this clears
            // nothing; a reader with an uninitialized one pays a clear of what it offers.
            match s.read(buf.initialize_unfilled()) {
                Ok(n) => {
                    this.empty_polls = 0;
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Poll::Ready(Err(e)),
                // Nothing gathered: look again a few times (a peer that consumes slowly
                // credits less often), then wait for the peer in epoll.
                Err(_) if this.empty_polls < PACED_EMPTY_POLLS => {
                    this.empty_polls = this.empty_polls.saturating_add(1);
                    this.hold();
                }
                Err(_) => {
                    this.empty_polls = 0;
                    break;
                }
            }
        }
        let unanswered = std::mem::take(&mut this.unanswered);
        let stream = this.watch()?;
        if unanswered {
            // Back to reading with nothing written: the peer may be waiting on our ACK.
            // Best effort: a failure only leaves the kernel's default in place.
            let _ = stream.set_quickack(true);
        }
        let before = buf.filled().len();
        let r = Pin::new(stream).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if matches!(r, Poll::Ready(Ok(()))) {
            if (1..=SMALL_READ).contains(&n) {
                this.unanswered = true;
            }
            if this.batched && n >= STREAM_READ && buf.remaining() > 0 {
                // The upstream streams: out of epoll too, or each of its segments would wake
                // us during the wait for nothing.
                this.pace();
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
        let this = &mut *self;
        let r = match &mut this.sock {
            Sock::Paced(s) => match s.write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                r => Some(Poll::Ready(r)),
            },
            _ => None,
        };
        // A full socket buffer goes back to epoll to learn when it drains.
        let r = match r {
            Some(r) => r,
            None => Pin::new(this.watch()?).poll_write(cx, data),
        };
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            // The ACK rides on this segment.
            this.unanswered = false;
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.sock {
            Sock::Watched(s) => Pin::new(s).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.sock {
            Sock::Watched(s) => Pin::new(s).poll_shutdown(cx),
            Sock::Paced(s) => Poll::Ready(s.shutdown(std::net::Shutdown::Write)),
            Sock::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (QuickAck, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (peer, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (QuickAck::new(accepted.unwrap().0), peer.unwrap())
    }

    #[tokio::test]
    async fn paced_reads_wait_gather_and_go_back_to_epoll_when_the_peer_is_quiet() {
        let (mut ours, mut peer) = pair().await;
        // What arrives during the wait is read in one go after it.
        ours.pace();
        let start = Instant::now();
        peer.write_all(b"one").await.unwrap();
        peer.write_all(b"two").await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut buf = Vec::with_capacity(64);
        ours.read_buf(&mut buf).await.unwrap();
        assert_eq!(buf, b"onetwo");
        assert!(start.elapsed() >= DELAY);
        // A peer that stays quiet longer than the paced looks is waited for in epoll.
        ours.pace();
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            peer.write_all(b"late").await.unwrap();
            peer
        });
        buf.clear();
        ours.read_buf(&mut buf).await.unwrap();
        assert_eq!(buf, b"late");
        assert!(matches!(ours.sock, Sock::Watched(_)));
        let mut peer = late.await.unwrap();
        // Writes go on while paced, through a full socket buffer too.
        ours.pace();
        let big = vec![7u8; 8 << 20];
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = vec![0u8; 1 << 16];
            while got.len() < 8 << 20 {
                let n = peer.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&chunk[..n]);
            }
            drop(peer);
            got
        });
        ours.write_all(&big).await.unwrap();
        assert_eq!(reader.await.unwrap(), big);
        // The peer's end of stream reads as such while paced.
        ours.pace();
        buf.clear();
        assert_eq!(ours.read_buf(&mut buf).await.unwrap(), 0);
    }
}
