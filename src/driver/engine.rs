//! The one connection loop, for both roles: it moves bytes between a socket and a sans-IO
//! connection, fires the connection's timer and wakes the role's own sources (session tasks,
//! pipes, commands, the stop signal). What differs between roles is in their [`Role`]: the
//! server decides authentication and runs sessions (`server.rs`), the client runs commands for
//! its handles (`client.rs`), and [`drive`](super::drive) runs a bare [`Connection`](super::Connection).

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::driver::inbuf::InBuf;
use crate::driver::{Connection, Ended};
use crate::error::Error;

/// A role's part of the loop. Every hook runs on the loop's task, never concurrently; an
/// error from any of them ends the connection with our DISCONNECT flushed (bounded).
pub(crate) trait Role {
    /// The sans-IO connection the role drives.
    type Conn: Connection;
    /// That connection.
    fn conn(&self) -> &Self::Conn;
    /// That connection, to feed.
    fn conn_mut(&mut self) -> &mut Self::Conn;
    /// Acts on what the core queued since the last turn (events, channel data for the
    /// application's pipes, output the pipes hold), before the loop waits again.
    fn pump(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// The next timer: the connection's, or an earlier one of the role's.
    fn deadline(&self) -> Option<Instant> {
        self.conn().poll_timeout()
    }
    /// Feeds what was read to the core and handles the events it queues; leaves in `inbuf`
    /// only what the core did not take yet (a partial packet).
    async fn input(&mut self, inbuf: &mut InBuf) -> Result<(), Error>;
    /// Resolves when one of the role's own sources has something (a session task ended, a
    /// pipe has room or data, a command arrived, the stop signal). `writing`: output is still
    /// waiting for the socket, so produce no more. Never resolving is fine.
    async fn wake(&mut self, writing: bool) -> Result<(), Error> {
        let _ = writing;
        std::future::pending().await
    }
    /// Whether output streams to a peer that is behind (asked after each read): the loop then
    /// lets the socket pace its reads (see [`run`]).
    fn peer_behind(&self) -> bool {
        false
    }
}

/// Runs `role` over `stream` until it ends. Output is written before anything more is read,
/// a part at a time inside the select so timers fire while a peer does not read; after an
/// error what is pending is flushed (bounded) so the peer sees our DISCONNECT. After a read
/// that leaves the role streaming to a peer that is behind ([`Role::peer_behind`]), `pace`
/// (if any) makes the stream's next read wait (a TCP socket's
/// [`QuickAck::pace`](super::tcp::QuickAck::pace)).
pub(crate) async fn run<S, R>(stream: &mut S, role: &mut R, pace: Option<fn(&mut S)>) -> Ended
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    R: Role,
{
    let mut inbuf = InBuf::new();
    let mut out = Outbox::default();
    let mut deadline = Deadline::new();
    let mut read = false;
    let failed = loop {
        if let Err(e) = role.pump() {
            break e;
        }
        if std::mem::take(&mut read)
            && let Some(pace) = pace
            && role.peer_behind()
        {
            pace(stream);
        }
        if out.is_empty() {
            out.refill(|b| role.conn_mut().poll_transmit(b));
            if out.is_empty() && role.conn().is_closed() {
                flush_and_close(stream, &[]).await;
                return Ended::Closed;
            }
        }
        // While output waits nothing more is read or produced, but the timers still run: a
        // peer that stops reading meets the login grace, keepalive or kex timeout.
        let writing = !out.is_empty();
        deadline.set(role.deadline());
        let turn = tokio::select! {
            step = io_step(stream, &out, &mut inbuf) => match step {
                Io::Wrote(Ok(n)) => {
                    out.advance(n);
                    if out.is_empty() { role.conn_mut().handle_writable(Instant::now()) } else { Ok(()) }
                }
                Io::Read(Ok(0)) => return Ended::Eof,
                Io::Read(Ok(n)) => {
                    read = true;
                    inbuf.filled(n);
                    let full = inbuf.is_full();
                    // Boxed while it runs: its state (lookups, a key exchange) would otherwise
                    // sit in every connection's task for its whole life, idle or not.
                    let r = Box::pin(role.input(&mut inbuf)).await;
                    inbuf.resize_after(n, full, role.conn().may_stream());
                    r
                }
                Io::Wrote(Err(e)) | Io::Read(Err(e)) => return Ended::Io(e),
            },
            () = deadline.wait() => role.conn_mut().handle_timeout(Instant::now()),
            woke = role.wake(writing) => woke,
        };
        if let Err(e) = turn {
            break e;
        }
    };
    finish(
        stream,
        &out,
        |b| role.conn_mut().poll_transmit(b),
        Ended::Error(failed),
    )
    .await
}

/// Feeds `inbuf` to `handle` until it is all taken or `handle` takes nothing (a partial
/// packet, or the connection ended), then drops what was taken, also after an error. `handle`
/// may overwrite the bytes it takes (packets are decrypted in place), never the others.
pub(crate) fn feed(
    inbuf: &mut InBuf,
    mut handle: impl FnMut(&mut [u8]) -> Result<usize, Error>,
) -> Result<(), Error> {
    let mut at = 0usize;
    let result = loop {
        let Some(rest) = inbuf.data_mut().get_mut(at..).filter(|r| !r.is_empty()) else {
            break Ok(());
        };
        match handle(rest) {
            Ok(0) => break Ok(()),
            Ok(n) => at = at.saturating_add(n),
            Err(e) => break Err(e),
        }
    };
    inbuf.consume(at);
    result
}

/// A connection's one timer, re-armed only when its deadline changes: a fresh tokio timer
/// per loop turn would cost a timer-wheel registration per packet.
struct Deadline {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    at: Option<Instant>,
}

impl Deadline {
    fn new() -> Self {
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
    fn set(&mut self, at: Option<Instant>) {
        if at != self.at {
            if let Some(t) = at {
                self.sleep.as_mut().reset(t.into());
            }
            self.at = at;
        }
    }

    /// Resolves when the armed deadline passes.
    async fn wait(&mut self) {
        match self.at {
            Some(_) => self.sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }
}

/// A connection's end: what was still pending, then what `transmit` adds (our DISCONNECT),
/// flushed within [`FINAL_FLUSH`](crate::limits::FINAL_FLUSH), the socket shut down, and a
/// peer's DISCONNECT reported as such rather than as an error. The loop ends here.
async fn finish<S>(
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
struct Outbox {
    buf: Vec<u8>,
    at: usize,
}

impl Outbox {
    /// Whether everything taken so far went out.
    fn is_empty(&self) -> bool {
        self.at >= self.buf.len()
    }

    /// Once everything went out: gives the buffer back if it grew for a bulk transfer that is
    /// over ([`recycle`]), then lets `fill` append the next bytes.
    fn refill(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        if self.is_empty() {
            if !self.buf.is_empty() {
                recycle(&mut self.buf);
            }
            self.at = 0;
            fill(&mut self.buf);
        }
    }

    /// What is still to be written.
    fn pending(&self) -> &[u8] {
        self.buf.get(self.at..).unwrap_or_default()
    }

    /// `n` more bytes went out.
    fn advance(&mut self, n: usize) {
        self.at = self.at.saturating_add(n).min(self.buf.len());
    }
}

/// One socket step of a connection loop.
enum Io {
    /// A read into the input buffer (0: end of stream).
    Read(std::io::Result<usize>),
    /// A write of part of the pending output.
    Wrote(std::io::Result<usize>),
}

/// Writes what is pending, or else reads: a connection reads nothing more while its output
/// waits, so a peer that does not read cannot make us produce more.
async fn io_step<S>(stream: &mut S, out: &Outbox, inbuf: &mut InBuf) -> Io
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if out.is_empty() {
        // Into initialized room ([`InBuf`]): nothing is cleared before the read.
        Io::Read(stream.read(inbuf.room()).await)
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
async fn flush_and_close<S>(stream: &mut S, out: &[u8])
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
/// KiB) is kept while the stream goes on; a small write (a protocol message, the end of a
/// stream) gives it back, so a connection that waits (a held one, a pooled upstream, a
/// multiplexed client) keeps no output buffer at all. The transport swaps buffers with us, so
/// both of its buffers go this way.
fn recycle(out: &mut Vec<u8>) {
    const SMALL_WRITE: usize = 16 * 1024;
    if out.len() < SMALL_WRITE {
        *out = Vec::new();
    } else {
        out.clear();
    }
}
