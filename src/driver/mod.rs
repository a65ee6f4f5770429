//! The tokio driver: moves bytes between a socket and a sans-IO connection and fires its
//! timers. It holds no protocol state.

pub mod admission;
pub mod batch_read;
pub mod client;
pub mod listener;
pub mod pipe;
pub mod proxy_header;
pub mod relay;
pub mod server;
pub mod tcp;

use std::sync::OnceLock;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::crypto::rng::ChaChaRng;
use crate::error::Error;
use crate::limits::READ_CHUNK;

/// What the driver needs from a sans-IO connection (see ARCHITECTURE.md §3).
pub trait Connection {
    /// Consumes input; returns how many bytes were taken.
    fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<usize, Error>;
    /// Moves bytes ready for the socket into `out`.
    fn poll_transmit(&mut self, out: &mut Vec<u8>);
    /// When [`Connection::handle_timeout`] next needs calling.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Handles an expired timer.
    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error>;
    /// Whether the connection is over (flush and close).
    fn is_closed(&self) -> bool;
    /// Output was flushed to the socket: a chance to produce more (backpressure released).
    fn handle_writable(&mut self, now: Instant) -> Result<(), Error> {
        let _ = now;
        Ok(())
    }
}

/// Both roles' connections, as the drivers drive them.
impl<S: crate::endpoint::Side> Connection for crate::endpoint::Endpoint<S> {
    fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<usize, Error> {
        crate::endpoint::Endpoint::handle_input(self, bytes, now)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        crate::endpoint::Endpoint::poll_transmit(self, out);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        crate::endpoint::Endpoint::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        crate::endpoint::Endpoint::handle_timeout(self, now)
    }
    fn is_closed(&self) -> bool {
        crate::endpoint::Endpoint::is_closed(self)
    }
}

/// A fresh per-connection CSPRNG seeded from the operating system.
pub fn os_rng() -> std::io::Result<ChaChaRng> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut seed[..]).map_err(std::io::Error::other)?;
    Ok(ChaChaRng::from_seed(*seed))
}

/// How a driven connection ended.
#[derive(Debug)]
pub enum Ended {
    /// The connection closed itself (disconnect sent or received).
    Closed,
    /// The peer closed the socket.
    Eof,
    /// The peer sent SSH_MSG_DISCONNECT.
    PeerDisconnected {
        /// Its reason code.
        reason: u32,
        /// Its description.
        description: String,
    },
    /// A protocol error ended it (a DISCONNECT was sent where possible).
    Error(Error),
    /// The socket failed.
    Io(std::io::Error),
}

impl Ended {
    /// A short name for metrics.
    pub const fn kind(&self) -> &'static str {
        match self {
            Ended::Closed => "closed",
            Ended::Eof => "eof",
            Ended::PeerDisconnected { .. } => "peer_disconnected",
            Ended::Error(_) => "error",
            Ended::Io(_) => "io",
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Closed => f.write_str("closed"),
            Ended::Eof => f.write_str("the peer closed the connection"),
            Ended::PeerDisconnected {
                reason,
                description,
            } => write!(f, "the peer disconnected (reason {reason}): {description}"),
            Ended::Error(e) => write!(f, "{e}"),
            Ended::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A connection's one timer, re-armed only when its deadline changes: a fresh tokio timer
/// per loop turn would cost a timer-wheel registration per packet.
pub(crate) struct Deadline {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    at: Option<Instant>,
}

impl Deadline {
    pub(crate) fn new() -> Self {
        let now = tokio::time::Instant::now();
        let far = now
            .checked_add(std::time::Duration::from_secs(365 * 86_400))
            .unwrap_or(now);
        Self {
            sleep: Box::pin(tokio::time::sleep_until(far)),
            at: None,
        }
    }

    /// Arms the timer for `at` (`None`: never fires).
    pub(crate) fn set(&mut self, at: Option<Instant>) {
        if at != self.at {
            if let Some(t) = at {
                self.sleep.as_mut().reset(t.into());
            }
            self.at = at;
        }
    }

    /// Resolves when the armed deadline passes.
    pub(crate) async fn wait(&mut self) {
        match self.at {
            Some(_) => self.sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }
}

/// Runs `conn` over `stream` until it ends. Output is written before anything more is read,
/// a part at a time inside the select so timers fire while a peer does not read; after an
/// error what is pending is flushed (bounded) so the peer sees our DISCONNECT.
pub async fn drive<S, C>(stream: &mut S, conn: &mut C) -> Ended
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    C: Connection,
{
    let mut inbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out = Outbox::default();
    let mut deadline = Deadline::new();
    loop {
        if out.is_empty() {
            out.refill(|b| conn.poll_transmit(b));
            if out.is_empty() && conn.is_closed() {
                flush_and_close(stream, &[]).await;
                return Ended::Closed;
            }
        }
        deadline.set(conn.poll_timeout());
        let sleep = deadline.wait();
        tokio::select! {
            step = io_step(stream, &out, &mut inbuf) => match step {
                Io::Wrote(Ok(n)) => {
                    out.advance(n);
                    if out.is_empty()
                        && let Err(e) = conn.handle_writable(Instant::now())
                    {
                        return finish(stream, &out, |b| conn.poll_transmit(b), Ended::Error(e)).await;
                    }
                }
                Io::Read(Ok(0)) => return Ended::Eof,
                Io::Read(Ok(_)) => {
                    let now = Instant::now();
                    let mut at = 0;
                    while at < inbuf.len() && !conn.is_closed() {
                        match conn.handle_input(inbuf.get(at..).unwrap_or_default(), now) {
                            Ok(0) => break,
                            Ok(n) => at = at.saturating_add(n),
                            Err(e) => return finish(stream, &out, |b| conn.poll_transmit(b), Ended::Error(e)).await,
                        }
                    }
                    inbuf.drain(..at.min(inbuf.len()));
                    if inbuf.capacity() > 4 * READ_CHUNK && inbuf.is_empty() {
                        inbuf = Vec::with_capacity(READ_CHUNK);
                    }
                }
                Io::Wrote(Err(e)) | Io::Read(Err(e)) => return Ended::Io(e),
            },
            () = sleep => {
                if let Err(e) = conn.handle_timeout(Instant::now()) {
                    return finish(stream, &out, |b| conn.poll_transmit(b), Ended::Error(e)).await;
                }
            }
        }
    }
}

/// A connection's end: what was still pending, then what `transmit` adds (our DISCONNECT),
/// flushed within [`FINAL_FLUSH`](crate::limits::FINAL_FLUSH), the socket shut down, and a
/// peer's DISCONNECT reported as such rather than as an error. Every driver loop ends here.
pub(crate) async fn finish<S>(
    stream: &mut S,
    out: &Outbox,
    transmit: impl FnOnce(&mut Vec<u8>),
    how: Ended,
) -> Ended
where
    S: tokio::io::AsyncWrite + Unpin,
{
    let mut last = out.pending().to_vec();
    transmit(&mut last);
    flush_and_close(stream, &last).await;
    match how {
        Ended::Error(Error::PeerDisconnected {
            reason,
            description,
        }) => Ended::PeerDisconnected {
            reason,
            description,
        },
        other => other,
    }
}

/// Output on its way to the socket. It is written a part at a time from inside a connection's
/// `select!` ([`io_step`]), so the connection's timers (login grace, keepalive, key exchange)
/// keep firing while a peer does not read: a blocked write cannot pin the task.
#[derive(Default)]
pub(crate) struct Outbox {
    buf: Vec<u8>,
    at: usize,
}

impl Outbox {
    /// Whether everything taken so far went out.
    pub(crate) fn is_empty(&self) -> bool {
        self.at >= self.buf.len()
    }

    /// Once everything went out: gives the buffer back if it grew for a bulk transfer that is
    /// over ([`recycle`]), then lets `fill` append the next bytes.
    pub(crate) fn refill(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        if self.is_empty() {
            if !self.buf.is_empty() {
                recycle(&mut self.buf);
            }
            self.at = 0;
            fill(&mut self.buf);
        }
    }

    /// What is still to be written.
    pub(crate) fn pending(&self) -> &[u8] {
        self.buf.get(self.at..).unwrap_or_default()
    }

    /// `n` more bytes went out.
    pub(crate) fn advance(&mut self, n: usize) {
        self.at = self.at.saturating_add(n).min(self.buf.len());
    }
}

/// One socket step of a connection loop.
pub(crate) enum Io {
    /// A read into the input buffer (0: end of stream).
    Read(std::io::Result<usize>),
    /// A write of part of the pending output.
    Wrote(std::io::Result<usize>),
}

/// Writes what is pending, or else reads: a connection reads nothing more while its output
/// waits, so a peer that does not read cannot make us produce more.
pub(crate) async fn io_step<S>(stream: &mut S, out: &Outbox, inbuf: &mut Vec<u8>) -> Io
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if out.is_empty() {
        Io::Read(stream.read_buf(inbuf).await)
    } else {
        match stream.write(out.pending()).await {
            Ok(0) => Io::Wrote(Err(std::io::ErrorKind::WriteZero.into())),
            r => Io::Wrote(r),
        }
    }
}

/// Last words: `out` (our DISCONNECT among it), then shutdown — within
/// [`FINAL_FLUSH`](crate::limits::FINAL_FLUSH), since a peer that does not read would otherwise
/// hold the task and its connection slot for ever.
pub(crate) async fn flush_and_close<S>(stream: &mut S, out: &[u8])
where
    S: tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(crate::limits::FINAL_FLUSH, async {
        if !out.is_empty() {
            let _ = stream.write_all(out).await;
        }
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Empties the output buffer after a write. One that grew for a bulk transfer (a few hundred
/// KiB) is given back once a small write shows the stream is over, so a connection that stays
/// open afterwards (a pooled upstream, a multiplexed client) does not keep it; the transport
/// swaps buffers with us, so both of its buffers shrink this way.
pub(crate) fn recycle(out: &mut Vec<u8>) {
    const SMALL_WRITE: usize = 16 * 1024;
    const KEEP: usize = 64 * 1024;
    if out.len() < SMALL_WRITE && out.capacity() > KEEP {
        *out = Vec::new();
    } else {
        out.clear();
    }
}

/// Runs a step of the sans-IO core that may compute a key exchange (up to an 8192-bit
/// exponentiation and an RSA signature, tens of milliseconds) off the runtime's I/O workers:
/// `block_in_place` hands this worker's other connections to another thread first. At most one
/// such step per core runs at once; the rest wait here (each under its own login-grace timer),
/// so a flood of handshakes delays handshakes, not established sessions.
pub async fn kex_work<T>(f: impl FnOnce() -> T) -> T {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let permits = PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    // The semaphore is never closed, so acquiring cannot fail; run anyway if it somehow did.
    let _permit = permits.acquire().await.ok();
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Resolves once `stop` turns `true`; never if there is none or its sender is gone.
pub(crate) async fn stopped(stop: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    let stopped = match stop {
        Some(rx) => rx.wait_for(|stop| *stop).await.is_ok(),
        None => false,
    };
    if !stopped {
        std::future::pending::<()>().await;
    }
}
