//! The tokio driver: moves bytes between a socket and a sans-IO connection and fires its
//! timers. It holds no protocol state.

pub mod admission;
mod attached;
pub mod batch_read;
pub mod client;
mod engine;
mod inbuf;
pub mod listener;
pub mod pipe;
pub mod proxy_header;
pub mod relay;
pub mod server;
pub mod tcp;

use std::sync::OnceLock;
use std::time::Instant;

use crate::crypto::rng::ChaChaRng;
use crate::error::Error;

/// What the driver needs from a sans-IO connection (see ARCHITECTURE.md §3).
pub trait Connection {
    /// Consumes input; returns how many bytes were taken. The bytes taken may be overwritten
    /// (a packet decrypted where it lies); the rest must be left as they were.
    fn handle_input(&mut self, bytes: &mut [u8], now: Instant) -> Result<usize, Error>;
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
    /// Whether the peer may be read in bulk-sized bites when it streams (authenticated).
    fn may_stream(&self) -> bool {
        false
    }
}

/// Both roles' connections, as the drivers drive them.
impl<S: crate::endpoint::Side> Connection for crate::endpoint::Endpoint<S> {
    fn handle_input(&mut self, bytes: &mut [u8], now: Instant) -> Result<usize, Error> {
        crate::endpoint::Endpoint::handle_input(self, bytes, now)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        crate::endpoint::Endpoint::poll_transmit(self, out);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        crate::endpoint::Endpoint::poll_timeout(self)
    }
    fn may_stream(&self) -> bool {
        self.is_authenticated()
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

/// Runs `conn` over `stream` until it ends, with the loop both roles' drivers use
/// (`engine::run`): output is written before anything more is read, timers fire while a
/// peer does not read, and after an error our DISCONNECT is flushed (bounded).
pub async fn drive<S, C>(stream: &mut S, conn: &mut C) -> Ended
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    C: Connection,
{
    engine::run(stream, &mut Bare(conn), None).await
}

/// A [`Connection`] with nothing around it, as a [`engine::Role`].
struct Bare<'a, C>(&'a mut C);

impl<C: Connection> engine::Role for Bare<'_, C> {
    type Conn = C;
    fn conn(&self) -> &C {
        self.0
    }
    fn conn_mut(&mut self) -> &mut C {
        self.0
    }
    async fn input(&mut self, inbuf: &mut inbuf::InBuf) -> Result<(), Error> {
        let now = Instant::now();
        let conn = &mut *self.0;
        engine::feed(inbuf, |bytes| {
            if conn.is_closed() {
                return Ok(0);
            }
            conn.handle_input(bytes, now)
        })
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
