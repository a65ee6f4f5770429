//! Bounded byte pipes between the connection task and a session's task, with tokio
//! `AsyncRead`/`AsyncWrite` ends. Their capacity is the only buffering between the SSH window
//! and the process: a full pipe stops the driver reading the channel, so no credit goes back
//! to the peer until the process has consumed bytes.

use crate::limits::PIPE_CAPACITY;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A task's output handed to the driver to read itself (see [`attach`]).
pub(crate) struct Source(Box<dyn AsyncRead + Send + Unpin>);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Source")
    }
}

/// A task's input handed to the driver to write itself (see [`PipeReader::attach`]).
pub(crate) struct Sink(Box<dyn AsyncWrite + Send + Unpin>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}
use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct PipeState {
    pub(crate) buf: VecDeque<u8>,
    cap: usize,
    /// The writing end is done (EOF after the buffer).
    pub(crate) write_closed: bool,
    /// The reading end is gone: writes fail.
    pub(crate) read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// Spliced (see [`splice`]): the other driver, which writes here in place of a task.
    bridge: Option<Arc<Notify>>,
    /// Spliced away: what is pushed here goes to this pipe instead (kept open by its writer).
    forward_to: Option<PipeWriter>,
    /// Attached (see [`attach`]): the driver reads the stream from here once `buf` is empty.
    source: Option<Source>,
    /// Attached (see [`PipeReader::attach`]): the driver writes the channel's data here
    /// itself, after what `buf` still holds.
    sink: Option<Sink>,
    /// Bytes ever pushed, read from the source or written to the sink, for logs and idle clocks.
    moved: u64,
    /// The output comes from the network (a storage host, an upstream channel), where it
    /// waits at no cost here: the driver may pace its reads of a client that is behind.
    remote: bool,
}

impl PipeState {
    /// Room left for a push into this pipe itself (not following a splice): everything once
    /// nobody reads (it is dropped), nothing while the driver writes to an attached sink.
    fn room(&self) -> usize {
        if self.read_closed {
            usize::MAX
        } else if self.sink.is_some() {
            0
        } else {
            self.cap.saturating_sub(self.buf.len())
        }
    }
}

/// One pipe: the shared state plus the driver's wake-up.
#[derive(Clone, Debug)]
pub(crate) struct Pipe {
    state: Arc<Mutex<PipeState>>,
    driver: Arc<Notify>,
}

impl Pipe {
    pub(crate) fn new(driver: Arc<Notify>) -> Self {
        let state = PipeState {
            buf: VecDeque::new(),
            cap: PIPE_CAPACITY,
            write_closed: false,
            read_closed: false,
            reader: None,
            writer: None,
            bridge: None,
            forward_to: None,
            source: None,
            sink: None,
            moved: 0,
            remote: false,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            driver,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // Spliced away (`forward_to`), each driver-side call goes to the other pipe while this
    // one's lock is held: locks are only ever taken spliced pipe first, then its target.

    /// Driver side: room left for `push`.
    pub(crate) fn room(&self) -> usize {
        let s = self.lock();
        match &s.forward_to {
            Some(t) => t.0.room(),
            None => s.room(),
        }
    }

    /// Driver side: whether nobody reads any more.
    pub(crate) fn reader_gone(&self) -> bool {
        let s = self.lock();
        match &s.forward_to {
            Some(t) => t.0.reader_gone(),
            None => s.read_closed,
        }
    }

    /// Driver side: appends bytes for the task (dropped if the task stopped reading);
    /// takes all of `data`, so returns its length.
    pub(crate) fn push(&self, data: &[u8]) -> usize {
        let s = self.lock();
        if let Some(t) = &s.forward_to {
            return t.0.push(data);
        }
        self.append(s, data);
        data.len()
    }

    /// Driver side: [`Pipe::push`] of as much of `data` as there is [`Pipe::room`] for, under
    /// one lock; returns how much it took.
    pub(crate) fn offer(&self, data: &[u8]) -> usize {
        let s = self.lock();
        if let Some(t) = &s.forward_to {
            return t.0.offer(data);
        }
        let take = data.len().min(s.room());
        if take > 0 {
            self.append(s, data.get(..take).unwrap_or_default());
        }
        take
    }

    /// Appends `data` under the lock `s` and wakes whoever reads this pipe.
    fn append(&self, mut s: MutexGuard<'_, PipeState>, data: &[u8]) {
        if !s.read_closed {
            s.buf.extend(data);
            s.moved = s
                .moved
                .saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        }
        if let Some(w) = s.reader.take() {
            w.wake();
        }
        if s.bridge.is_some() {
            drop(s);
            self.driver.notify_one();
        }
    }

    /// Bytes ever pushed (through a splice too).
    pub(crate) fn moved(&self) -> u64 {
        self.lock().moved
    }

    /// Driver side: takes up to `n` bytes the task wrote through `f`, which returns how many it used.
    pub(crate) fn drain(&self, f: impl FnOnce(&[u8]) -> usize) -> usize {
        let mut s = self.lock();
        let used = {
            let (front, _) = s.buf.as_slices();
            f(front)
        };
        let used = used.min(s.buf.len());
        s.buf.drain(..used);
        if used > 0
            && let Some(w) = s.writer.take()
        {
            w.wake();
        }
        if used > 0
            && let Some(b) = &s.bridge
        {
            b.notify_one();
        }
        used
    }

    /// Marks the writing end finished (EOF), waking the reader.
    pub(crate) fn close_write(&self) {
        let mut s = self.lock();
        if let Some(t) = &s.forward_to {
            return t.0.close_write();
        }
        s.write_closed = true;
        if let Some(w) = s.reader.take() {
            w.wake();
        }
        if s.bridge.is_some() {
            drop(s);
            self.driver.notify_one();
        }
    }

    /// Marks the reading end gone, waking the writer (its writes now fail; an attached
    /// source is closed, so the process writing it gets EPIPE).
    pub(crate) fn close_read(&self) {
        let mut s = self.lock();
        s.read_closed = true;
        s.buf.clear();
        s.source = None;
        s.sink = None;
        if let Some(w) = s.writer.take() {
            w.wake();
        }
        if let Some(b) = &s.bridge {
            b.notify_one();
        }
    }

    /// Whether the writer finished and everything was taken.
    pub(crate) fn finished(&self) -> bool {
        let s = self.lock();
        s.write_closed && s.buf.is_empty() && s.source.is_none()
    }

    /// Driver side: whether the output comes from an attached source.
    pub(crate) fn has_source(&self) -> bool {
        self.lock().source.is_some()
    }

    /// Driver side: whether output from the network may be waiting (bytes in the pipe, or an
    /// attached source): see [`PipeWriter::attach_remote`].
    pub(crate) fn remote_output(&self) -> bool {
        let s = self.lock();
        s.remote && (!s.buf.is_empty() || s.source.is_some())
    }

    /// Driver side: reads the attached source into `buf` once earlier bytes are all taken.
    /// `Ready(Some(n))`: `n` bytes to send (what is not taken goes back with [`Pipe::keep`]);
    /// `Ready(None)`: the source ended (EOF or error) and is gone; `Pending`: nothing yet, and
    /// the driver is woken when there is.
    pub(crate) fn poll_source(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Option<usize>> {
        let mut s = self.lock();
        if !s.buf.is_empty() || buf.is_empty() {
            return Poll::Pending;
        }
        let Some(src) = s.source.as_mut() else {
            return Poll::Ready(None);
        };
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut src.0).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                let n = rb.filled().len();
                s.moved = s.moved.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
                Poll::Ready(Some(n))
            }
            Poll::Ready(result) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "reading a session's output failed");
                }
                s.source = None;
                if let Some(w) = s.writer.take() {
                    w.wake();
                }
                Poll::Ready(None)
            }
        }
    }

    /// Driver side, when the connection ends: drops the sink (the process reads EOF; there is
    /// no driver left to write it).
    pub(crate) fn release_sink(&self) {
        self.lock().sink = None;
    }

    /// Driver side: whether the input goes to an attached sink.
    pub(crate) fn has_sink(&self) -> bool {
        self.lock().sink.is_some()
    }

    /// Driver side: writes what reached the pipe before the sink was attached (or after the
    /// channel closed) into the sink. `Ready(moved)` once none is left, `Pending` while the
    /// sink is full (the driver is woken when it has room).
    pub(crate) fn poll_sink_backlog(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut s = self.lock();
        let mut moved = false;
        while !s.buf.is_empty() {
            let state = &mut *s;
            let Some(sink) = state.sink.as_mut() else {
                return Poll::Ready(moved);
            };
            let (front, _) = state.buf.as_slices();
            match Pin::new(&mut sink.0).poll_write(cx, front) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(n)) if n > 0 => {
                    let n = n.min(front_len(&s.buf));
                    s.buf.drain(..n);
                    moved = true;
                }
                Poll::Ready(_) => {
                    sink_failed(&mut s);
                    return Poll::Ready(true);
                }
            }
        }
        Poll::Ready(moved)
    }

    /// Driver side: writes `data` (the channel's) into the sink; returns how much it took.
    /// A sink that failed (the process is gone) takes everything from then on, as a pipe
    /// nobody reads does.
    pub(crate) fn poll_sink_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<usize> {
        let mut s = self.lock();
        let Some(sink) = s.sink.as_mut() else {
            return Poll::Ready(data.len());
        };
        match Pin::new(&mut sink.0).poll_write(cx, data) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(n)) if n > 0 => {
                s.moved = s.moved.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
                Poll::Ready(n)
            }
            Poll::Ready(_) => {
                sink_failed(&mut s);
                Poll::Ready(data.len())
            }
        }
    }

    /// Driver side: once the writing end is closed (the client's EOF) and nothing is left,
    /// shuts the sink down and drops it, so the process reads EOF. `Ready(true)` when that
    /// happened now.
    pub(crate) fn poll_sink_close(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut s = self.lock();
        if !s.write_closed || !s.buf.is_empty() {
            return Poll::Ready(false);
        }
        let Some(sink) = s.sink.as_mut() else {
            return Poll::Ready(false);
        };
        if Pin::new(&mut sink.0).poll_shutdown(cx).is_pending() {
            return Poll::Pending;
        }
        s.sink = None;
        Poll::Ready(true)
    }

    /// Task side: ready once the attached source ended or was closed (its `writer` waker slot
    /// is free: nobody writes an attached pipe).
    pub(crate) fn poll_source_ended(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if s.source.is_none() {
            return Poll::Ready(());
        }
        s.writer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Driver side: keeps bytes read from the source that the channel did not take yet; they
    /// go out before the source is read again.
    pub(crate) fn keep(&self, data: &[u8]) {
        let mut s = self.lock();
        if !s.read_closed {
            s.buf.extend(data);
        }
    }
}

/// The readable end handed to a session task (its stdin).
#[derive(Debug)]
pub struct PipeReader(pub(crate) Pipe);

/// A writable end handed to a session task (its stdout or stderr).
#[derive(Debug)]
pub struct PipeWriter(pub(crate) Pipe);

impl AsyncRead for PipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let pipe = &self.0;
        let mut s = pipe.lock();
        if s.buf.is_empty() {
            if s.write_closed {
                return Poll::Ready(Ok(()));
            }
            s.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = s.buf.len().min(out.remaining());
        let (front, back) = s.buf.as_slices();
        let a = front.len().min(n);
        out.put_slice(front.get(..a).unwrap_or_default());
        out.put_slice(back.get(..n.saturating_sub(a)).unwrap_or_default());
        s.buf.drain(..n);
        drop(s);
        // Room was made: the driver may read more from the channel.
        pipe.driver.notify_one();
        Poll::Ready(Ok(()))
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        // Attached, the reading end lives on in the driver (see [`PipeReader::attach`]).
        if !self.0.has_sink() {
            self.0.close_read();
        }
        self.0.driver.notify_one();
    }
}

impl PipeReader {
    /// Hands the stream's consumer to the connection's driver: it writes the channel's data
    /// into `sink` (a process's stdin) itself as it arrives, straight from the channel's
    /// buffer, instead of moving it into this pipe for a task to copy on: the decrypted packet
    /// is copied once, into the channel, and nowhere else. The sink is shut down at the
    /// client's EOF, or closed with [`AttachedInput::close`].
    pub fn attach(self, sink: impl AsyncWrite + Send + Unpin + 'static) -> AttachedInput {
        let pipe = self.0.clone();
        {
            let mut s = pipe.lock();
            // Nobody writes to a stream whose reader is gone: the sink closes at once.
            if !s.read_closed {
                s.sink = Some(Sink(Box::new(sink)));
            }
        }
        drop(self);
        pipe.driver.notify_one();
        AttachedInput(pipe)
    }
}

/// A session's input handed over with [`PipeReader::attach`], for its task to count and close.
#[derive(Clone, Debug)]
pub struct AttachedInput(Pipe);

impl AttachedInput {
    /// Bytes written to the sink so far (for logs and idle clocks).
    pub fn moved(&self) -> u64 {
        self.0.moved()
    }

    /// Closes the sink now (the process reads EOF) and discards what the client sends after.
    pub fn close(&self) {
        self.0.close_read();
        self.0.driver.notify_one();
    }
}

impl AsyncWrite for PipeWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let pipe = &self.0;
        let mut s = pipe.lock();
        if s.read_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "channel closed",
            )));
        }
        let room = s.cap.saturating_sub(s.buf.len());
        if room == 0 {
            s.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        s.buf.extend(data.get(..n).unwrap_or_default());
        drop(s);
        pipe.driver.notify_one();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.0.lock();
        if s.buf.is_empty() || s.read_closed {
            Poll::Ready(Ok(()))
        } else {
            s.writer = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.close_write();
        self.0.driver.notify_one();
        Poll::Ready(Ok(()))
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.close_write();
        self.0.driver.notify_one();
    }
}

impl PipeWriter {
    /// Hands the stream's producer to the connection's driver: it reads `source` (a process's
    /// pipe) itself whenever the channel can take data and sends it straight on, instead of a
    /// task copying it into this pipe first — one user-space copy and one task hand-off less
    /// per chunk. The stream ends at the source's EOF.
    pub fn attach(self, source: impl AsyncRead + Send + Unpin + 'static) -> Attached {
        Attached(attach(self, source))
    }

    /// [`attach`](Self::attach) for a source on the network (a storage host's socket): its
    /// bytes wait there at no cost here, so while the client is behind the connection's reads
    /// of it are paced. (A local process is not: held back, it blocks on its full pipe and is
    /// woken again, costing this host what pacing saves; measured on a local clone, +8 % wall.)
    pub fn attach_remote(self, source: impl AsyncRead + Send + Unpin + 'static) -> Attached {
        self.0.lock().remote = true;
        self.attach(source)
    }
}

/// A stream handed over with [`PipeWriter::attach`], for its task to watch.
#[derive(Clone, Debug)]
pub struct Attached(pub(crate) Pipe);

impl Attached {
    /// Bytes read from the source so far (for logs and idle clocks).
    pub fn moved(&self) -> u64 {
        self.0.moved()
    }

    /// Resolves once the source ended or the channel went (the source is then closed).
    pub async fn ended(&self) {
        std::future::poll_fn(|cx| self.0.poll_source_ended(cx)).await;
    }
}

/// The length of the first contiguous part of `buf`.
fn front_len(buf: &VecDeque<u8>) -> usize {
    buf.as_slices().0.len()
}

/// A sink that failed (EPIPE: the process exited) or took nothing: dropped, and what the
/// client sends from then on is discarded (its window credit still returned).
fn sink_failed(s: &mut PipeState) {
    s.sink = None;
    s.read_closed = true;
    s.buf.clear();
}

/// See [`PipeWriter::attach`]; returns the pipe, whose [`Pipe::moved`] counts what was read.
pub(crate) fn attach(into: PipeWriter, source: impl AsyncRead + Send + Unpin + 'static) -> Pipe {
    let pipe = into.0.clone();
    {
        let mut s = pipe.lock();
        // Nobody reads any more: closing the source at once tells the process.
        if !s.read_closed {
            s.source = Some(Source(Box::new(source)));
        }
    }
    // Dropping the writer marks the end of what tasks write; the source still has to end.
    drop(into);
    pipe
}

/// Joins two pipes so that one driver writes straight into another driver's pipe: what the
/// driver behind `from` pushes (an upstream channel's output) lands in `into` (a session's
/// output, drained by the server driver), with no task copying between them. Bytes already
/// waiting in `from` move first; EOF and a vanished reader travel through; each driver is
/// woken by the other's progress. Returns the joined pipe, whose [`Pipe::moved`] counts what
/// went through.
pub(crate) fn splice(from: PipeReader, into: PipeWriter) -> Pipe {
    let target = into.0.clone();
    {
        let mut f = from.0.lock();
        let mut t = target.lock();
        if !t.read_closed {
            let (a, b) = f.buf.as_slices();
            t.buf.extend(a);
            t.buf.extend(b);
            t.moved = t
                .moved
                .saturating_add(u64::try_from(f.buf.len()).unwrap_or(u64::MAX));
        }
        f.buf.clear();
        t.write_closed |= f.write_closed;
        // An upstream channel's output waits in the upstream's window (see `attach_remote`).
        t.remote = true;
        t.bridge = Some(from.0.driver.clone());
        f.forward_to = Some(into);
    }
    // The reader end is gone but the pipe lives on in the driver, forwarded.
    std::mem::drop(from);
    target.driver.notify_one();
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_attached_source_is_read_by_the_driver_leftovers_first_then_eof() {
        let driver = Arc::new(Notify::new());
        let out = Pipe::new(driver);
        let (mut tx, rx) = tokio::io::duplex(64);
        let pipe = attach(PipeWriter(out.clone()), rx);
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = [0u8; 16];
        assert!(pipe.poll_source(&mut cx, &mut buf).is_pending());
        assert!(!out.finished(), "the writer is gone but the source is not");
        tokio::io::AsyncWriteExt::write_all(&mut tx, b"0123456789")
            .await
            .expect("write");
        assert_eq!(pipe.poll_source(&mut cx, &mut buf), Poll::Ready(Some(10)));
        // The channel took 4: the rest waits in the pipe, and the source is not read meanwhile.
        pipe.keep(buf.get(4..10).unwrap_or_default());
        tokio::io::AsyncWriteExt::write_all(&mut tx, b"more")
            .await
            .expect("write");
        assert!(pipe.poll_source(&mut cx, &mut buf).is_pending());
        let mut got = Vec::new();
        pipe.drain(|d| {
            got.extend_from_slice(d);
            d.len()
        });
        assert_eq!(got, b"456789");
        assert_eq!(pipe.poll_source(&mut cx, &mut buf), Poll::Ready(Some(4)));
        assert!(pipe.poll_source_ended(&mut cx).is_pending());
        drop(tx);
        assert_eq!(pipe.poll_source(&mut cx, &mut buf), Poll::Ready(None));
        assert!(pipe.poll_source_ended(&mut cx).is_ready());
        assert!(out.finished());
        assert_eq!(pipe.moved(), 14);
    }

    #[tokio::test]
    async fn an_attached_sink_gets_the_backlog_first_then_the_channel_then_eof() {
        use tokio::io::AsyncReadExt;
        let stdin = Pipe::new(Arc::new(Notify::new()));
        // Pushed before the task attached: the backlog.
        stdin.push(b"early ");
        let (sink, mut process) = tokio::io::duplex(8);
        let input = PipeReader(stdin.clone()).attach(sink);
        assert_eq!(
            stdin.room(),
            0,
            "the driver writes to the sink, not the pipe"
        );
        let mut cx = Context::from_waker(Waker::noop());
        // The sink holds 8 bytes: the backlog goes in parts as the process reads.
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while stdin.poll_sink_backlog(&mut cx).is_pending() {
            let n = process.read(&mut buf).await.expect("read");
            got.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        assert_eq!(stdin.poll_sink_write(&mut cx, b"late"), Poll::Ready(2));
        stdin.close_write();
        assert_eq!(stdin.poll_sink_close(&mut cx), Poll::Ready(true));
        process.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"early la", "EOF after what the sink took");
        assert_eq!(input.moved(), 8, "pushed 6, written 2");
    }

    #[tokio::test]
    async fn a_failed_or_closed_sink_discards_what_follows() {
        let stdin = Pipe::new(Arc::new(Notify::new()));
        let (sink, process) = tokio::io::duplex(8);
        let input = PipeReader(stdin.clone()).attach(sink);
        drop(process);
        let mut cx = Context::from_waker(Waker::noop());
        // The process is gone: the write fails, the data is taken (window credit) and dropped.
        assert_eq!(stdin.poll_sink_write(&mut cx, b"abc"), Poll::Ready(3));
        assert!(!stdin.has_sink());
        assert_eq!(stdin.room(), usize::MAX);
        let stdin = Pipe::new(Arc::new(Notify::new()));
        let (sink, _process) = tokio::io::duplex(8);
        let input2 = PipeReader(stdin.clone()).attach(sink);
        input2.close();
        assert!(!stdin.has_sink());
        assert_eq!(input.moved(), 0);
    }

    #[tokio::test]
    async fn closing_the_reading_end_closes_an_attached_source() {
        let out = Pipe::new(Arc::new(Notify::new()));
        let (mut tx, rx) = tokio::io::duplex(64);
        let pipe = attach(PipeWriter(out.clone()), rx);
        out.close_read();
        assert!(
            pipe.poll_source_ended(&mut Context::from_waker(Waker::noop()))
                .is_ready()
        );
        // The producer learns that nobody reads.
        assert!(
            tokio::io::AsyncWriteExt::write_all(&mut tx, b"x")
                .await
                .is_err()
        );
        // A source attached after the reader went is closed at once.
        let (mut tx, rx) = tokio::io::duplex(64);
        let _ = attach(PipeWriter(out.clone()), rx);
        assert!(
            tokio::io::AsyncWriteExt::write_all(&mut tx, b"x")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_splice_carries_waiting_bytes_then_pushes_then_eof_and_wakes_both_drivers() {
        let (client, server) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let upstream = Pipe::new(client.clone());
        let session = Pipe::new(server.clone());
        upstream.push(b"first ");
        let joined = splice(PipeReader(upstream.clone()), PipeWriter(session.clone()));
        // The server driver was told there is output.
        tokio::time::timeout(std::time::Duration::from_secs(1), server.notified())
            .await
            .expect("server driver woken");
        assert_eq!(
            upstream.room(),
            PIPE_CAPACITY - 6,
            "room is the session pipe's"
        );
        upstream.push(b"second");
        let mut got = Vec::new();
        session.drain(|d| {
            got.extend_from_slice(d);
            d.len()
        });
        assert_eq!(got, b"first second");
        // Draining made room: the client driver hears of it.
        tokio::time::timeout(std::time::Duration::from_secs(1), client.notified())
            .await
            .expect("client driver woken");
        assert_eq!(joined.moved(), 12);
        assert!(!session.finished());
        upstream.close_write();
        assert!(session.finished(), "EOF travels through the splice");
        // The session's reader going away is what the client driver sees.
        session.close_read();
        assert!(upstream.reader_gone());
    }

    #[test]
    fn an_offer_takes_what_the_room_allows_through_a_splice_and_all_once_unread() {
        let upstream = Pipe::new(Arc::new(Notify::new()));
        let session = Pipe::new(Arc::new(Notify::new()));
        let _joined = splice(PipeReader(upstream.clone()), PipeWriter(session.clone()));
        let big = vec![5u8; PIPE_CAPACITY + 100];
        assert_eq!(
            upstream.offer(&big),
            PIPE_CAPACITY,
            "the session pipe's room"
        );
        assert_eq!(upstream.offer(b"more"), 0, "full");
        assert_eq!(session.lock().buf.len(), PIPE_CAPACITY);
        // Nobody reads: everything is taken and dropped (its window credit goes back).
        session.close_read();
        assert_eq!(upstream.offer(&big), big.len());
        assert!(session.lock().buf.is_empty());
    }
}
