//! Bounded byte pipes between the connection task and a session's task, with tokio
//! `AsyncRead`/`AsyncWrite` ends. Their capacity is the only buffering between the SSH window
//! and the process: a full pipe stops the driver reading the channel, so no credit goes back
//! to the peer until the process has consumed bytes.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Pipe capacity: eight 32 KiB packets, so a bulk stream wakes the other side once per several
/// packets; the buffer grows only as far as it is used (idle sessions pay nothing).
pub const PIPE_CAPACITY: usize = 256 * 1024;

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

    /// Driver side: room left for `push`.
    pub(crate) fn room(&self) -> usize {
        let s = self.lock();
        if s.read_closed {
            usize::MAX
        } else {
            s.cap.saturating_sub(s.buf.len())
        }
    }

    /// Driver side: appends bytes for the task (dropped if the task stopped reading).
    pub(crate) fn push(&self, data: &[u8]) {
        let mut s = self.lock();
        if !s.read_closed {
            s.buf.extend(data);
        }
        if let Some(w) = s.reader.take() {
            w.wake();
        }
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
        used
    }

    /// Marks the writing end finished (EOF), waking the reader.
    pub(crate) fn close_write(&self) {
        let mut s = self.lock();
        s.write_closed = true;
        if let Some(w) = s.reader.take() {
            w.wake();
        }
    }

    /// Marks the reading end gone, waking the writer (its writes now fail).
    pub(crate) fn close_read(&self) {
        let mut s = self.lock();
        s.read_closed = true;
        s.buf.clear();
        if let Some(w) = s.writer.take() {
            w.wake();
        }
    }

    /// Whether the writer finished and everything was taken.
    pub(crate) fn finished(&self) -> bool {
        let s = self.lock();
        s.write_closed && s.buf.is_empty()
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
