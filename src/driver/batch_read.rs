//! Reading a process's output pipe in batches.
//!
//! git writes its pack 8 KiB at a time. Read eagerly, every `write` wakes us and costs a read,
//! an encryption, a `send` and a context switch — the same per-chunk cost OpenSSH pays, and most
//! of our CPU per byte in a clone. While output streams, [`BatchReader`] lets the producer fill a
//! widened pipe for [`DELAY`] between reads, with the pipe left out of epoll meanwhile (so its
//! writes wake nobody): a wake then carries ~100 KiB instead of 8 KiB. Small reads (protocol
//! exchanges, progress) never wait, and a read that finds the pipe nearly full reads again at
//! once, so neither latency nor throughput is traded: the added delay is bounded by [`DELAY`]
//! (plus timer granularity) and only between two chunks of an ongoing stream.
//!
//! A storage host's git daemon streams the same 8 KiB writes through a TCP socket
//! ([`BatchReader::socket`]): the socket's receive buffer plays the widened pipe's part.

use crate::limits::{MIN_BATCH_SOCKET, PIPE_BYTES, SOCKET_RCVBUF};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::unix::pipe::Receiver;

/// How long a streaming producer gets to fill the pipe between two reads.
pub const DELAY: Duration = Duration::from_millis(1);

/// Reads shorter than this are not a stream (protocol messages): the next read does not wait.
pub const STREAMING: usize = 16 * 1024;

/// The same for a socket, read as each segment lands: one of upload-pack's 8 KiB pack writes
/// (a sideband packet) already marks a stream.
const SOCKET_STREAMING: usize = 8 * 1024;

/// Below this pipe size (the per-user quota refused to widen it) reads never wait: the
/// producer would block on a full pipe and the stream would slow down.
const MIN_BATCH_PIPE: usize = 512 * 1024;

/// Pipes this process has widened and not yet closed.
static WIDENED: AtomicUsize = AtomicUsize::new(0);

/// How many pipes may be widened at once: a quarter of the per-user pipe quota
/// (`/proc/sys/fs/pipe-user-pages-soft`). Past that quota the kernel gives every *new* pipe of
/// the user two pages, git's own included, so we leave it three quarters of it; streams beyond
/// the budget are read as they come.
fn widen_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/fs/pipe-user-pages-soft")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or(usize::MAX, |pages| match pages {
                0 => usize::MAX,
                n => n.saturating_mul(4096) / 4 / PIPE_BYTES,
            })
    })
}

enum Fd {
    /// Not in epoll: read directly (the producer is known to be streaming).
    Plain(File),
    /// In epoll: waiting for the producer.
    Watched(Receiver),
    /// Only while switching between the two (or after a failed registration).
    Gone,
}

/// An `AsyncRead` over the read end of a pipe (or a socket) that batches a streaming
/// producer's writes.
pub struct BatchReader {
    fd: Fd,
    delay: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The pipe's size, once widening was tried (`None`: not yet).
    size: Option<usize>,
    /// This pipe counts against [`widen_budget`].
    counted: bool,
    /// The smallest buffer reads may wait on ([`MIN_BATCH_PIPE`] or [`MIN_BATCH_SOCKET`]).
    min_batch: usize,
    /// The smallest read that marks a stream ([`STREAMING`] or [`SOCKET_STREAMING`]).
    streaming: usize,
}

impl Drop for BatchReader {
    fn drop(&mut self) {
        if self.counted {
            WIDENED.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl BatchReader {
    /// Takes the read end of a pipe (made non-blocking here).
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        Ok(Self {
            fd: Fd::Plain(File::from(fd)),
            delay: None,
            size: None,
            counted: false,
            min_batch: MIN_BATCH_PIPE,
            streaming: STREAMING,
        })
    }

    /// Takes a connected TCP socket to read from (its own descriptor: writes go through
    /// another one to the same socket), with its receive buffer raised to [`SOCKET_RCVBUF`]
    /// where the kernel allows. The socket is read with `read(2)`, as a pipe is.
    pub fn socket(fd: OwnedFd) -> io::Result<Self> {
        use nix::sys::socket::{getsockopt, setsockopt, sockopt};
        // Best effort: a refusal leaves the kernel's buffer, and batching follows its size.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &SOCKET_RCVBUF);
        let size = getsockopt(&fd, sockopt::RcvBuf).unwrap_or(0);
        let mut r = Self::new(fd)?;
        r.size = Some(size);
        r.min_batch = MIN_BATCH_SOCKET;
        r.streaming = SOCKET_STREAMING;
        Ok(r)
    }

    /// The pipe's size after asking, once, for [`PIPE_BYTES`]: only a streaming pipe is
    /// widened, and only within [`widen_budget`], since widened pipes count against the user's
    /// pipe quota; should the kernel refuse anyway, the pipe keeps its size. 0: not widened.
    fn widened(&mut self) -> usize {
        use nix::fcntl::{FcntlArg, fcntl};
        fn widen(fd: &impl std::os::fd::AsFd) -> Option<usize> {
            let asked = i32::try_from(PIPE_BYTES).unwrap_or(i32::MAX);
            fcntl(fd, FcntlArg::F_SETPIPE_SZ(asked))
                .or_else(|_| fcntl(fd, FcntlArg::F_GETPIPE_SZ))
                .ok()
                .and_then(|n| usize::try_from(n).ok())
        }
        if let Some(size) = self.size {
            return size;
        }
        if WIDENED.fetch_add(1, Ordering::Relaxed) >= widen_budget() {
            WIDENED.fetch_sub(1, Ordering::Relaxed);
            self.size = Some(0);
            return 0;
        }
        let size = match &self.fd {
            Fd::Plain(f) => widen(f),
            Fd::Watched(rx) => widen(rx),
            Fd::Gone => None,
        }
        .unwrap_or(0);
        // Refused by the kernel: the pipe kept its size and takes no room in the budget.
        self.counted = size >= MIN_BATCH_PIPE;
        if !self.counted {
            WIDENED.fetch_sub(1, Ordering::Relaxed);
        }
        self.size = Some(size);
        size
    }

    /// After a read of `n` bytes into a buffer of `room`: wait before the next one if the
    /// producer streams but is not ahead of us, and take the pipe out of epoll for that time.
    fn after(&mut self, n: usize, room: usize) {
        if n < self.streaming {
            return;
        }
        let size = self.widened();
        // A read that (nearly) filled the buffer or the pipe: the producer is ahead, read on.
        let limit = room.min(size);
        if size >= self.min_batch && n < limit.saturating_sub(limit / 4) {
            if let Fd::Watched(_) = self.fd
                && let Fd::Watched(rx) = std::mem::replace(&mut self.fd, Fd::Gone)
            {
                // On failure the fd is gone and the next read reports it.
                if let Ok(fd) = rx.into_nonblocking_fd() {
                    self.fd = Fd::Plain(File::from(fd));
                }
            }
            self.delay = Some(Box::pin(tokio::time::sleep(DELAY)));
        }
    }
}

fn read_into(mut f: &File, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
    let n = f.read(buf.initialize_unfilled())?;
    buf.advance(n);
    Ok(n)
}

impl AsyncRead for BatchReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let room = buf.remaining();
        if let Some(d) = this.delay.as_mut() {
            ready!(d.as_mut().poll(cx));
            this.delay = None;
        }
        loop {
            match &mut this.fd {
                Fd::Plain(f) => match read_into(f, buf) {
                    Ok(n) => {
                        this.after(n, room);
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let Fd::Plain(f) = std::mem::replace(&mut this.fd, Fd::Gone) else {
                            continue;
                        };
                        this.fd = Fd::Watched(Receiver::from_owned_fd_unchecked(f.into())?);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Poll::Ready(Err(e)),
                },
                Fd::Watched(rx) => {
                    ready!(rx.poll_read_ready(cx))?;
                    match rx.try_read(buf.initialize_unfilled()) {
                        Ok(n) => {
                            buf.advance(n);
                            this.after(n, room);
                            return Poll::Ready(Ok(()));
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                Fd::Gone => {
                    return Poll::Ready(Err(io::Error::other("pipe lost")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    fn pipe() -> (BatchReader, File) {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        (BatchReader::new(r).expect("reader"), File::from(w))
    }

    /// Writes `len` bytes through `w` in git's 8 KiB writes from another thread, then closes
    /// it; `r` must read them whole and in order, then EOF.
    async fn streams_whole(r: &mut BatchReader, mut w: impl Write + Send + 'static, len: u32) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let src = data.clone();
        let writer = std::thread::spawn(move || {
            for chunk in src.chunks(8192) {
                w.write_all(chunk).expect("write");
            }
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.expect("read");
        writer.join().expect("writer");
        assert_eq!(got, data);
    }

    #[tokio::test]
    async fn a_stream_arrives_whole_and_in_order_then_eof() {
        let (mut r, w) = pipe();
        streams_whole(&mut r, w, 3_000_000).await;
    }

    #[tokio::test]
    async fn a_small_message_is_read_without_waiting_for_more() {
        let (mut r, mut w) = pipe();
        // A streaming-sized read first, so a delay would be armed if small reads armed it.
        w.write_all(&[1u8; 100]).expect("write");
        let mut buf = [0u8; 64];
        let n = r.read(&mut buf).await.expect("read");
        assert_eq!(n, 64);
        assert!(r.delay.is_none(), "a small read must not delay the next");
        // The writer stays open: the reader must return what is there, not wait for EOF.
        let n = r.read(&mut buf).await.expect("read");
        assert_eq!(n, 36);
    }

    #[tokio::test]
    async fn a_socket_streams_in_batches_and_small_messages_do_not_wait() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut w = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("c");
        let (theirs, _) = listener.accept().expect("accept");
        let mut r = BatchReader::socket(OwnedFd::from(theirs)).expect("reader");
        // A small message first: returned at once, no delay armed.
        w.write_all(b"0008NAK\n").expect("write");
        let mut buf = vec![0u8; 512 * 1024];
        let n = r.read(&mut buf).await.expect("read");
        assert_eq!(buf.get(..n), Some(&b"0008NAK\n"[..]));
        assert!(r.delay.is_none());
        // Then a stream in 8 KiB writes, whole and in order, then EOF.
        streams_whole(&mut r, w, 2_000_000).await;
    }

    #[tokio::test]
    async fn a_streaming_read_arms_the_delay_and_leaves_epoll() {
        let (mut r, mut w) = pipe();
        w.write_all(&[7u8; STREAMING]).expect("write");
        let mut buf = vec![0u8; 256 * 1024];
        let n = r.read(&mut buf).await.expect("read");
        assert_eq!(n, STREAMING);
        // Widening may be refused by the user's pipe quota; then reads must never wait.
        let widened = r.size.is_some_and(|s| s >= MIN_BATCH_PIPE);
        assert_eq!(r.delay.is_some(), widened);
        assert!(matches!(r.fd, Fd::Plain(_)));
        w.write_all(&[8u8; 10]).expect("write");
        drop(w);
        let n = r.read(&mut buf).await.expect("read");
        assert_eq!(buf.get(..n), Some(&[8u8; 10][..]));
        assert_eq!(r.read(&mut buf).await.expect("eof"), 0);
    }
}
