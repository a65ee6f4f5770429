//! The driver's own I/O on a session's attached streams: it reads a process's output
//! ([`PipeWriter::attach`](super::pipe::PipeWriter::attach)) straight into packets, and writes
//! the client's data straight from the channel's buffer into a process's input
//! ([`PipeReader::attach`](super::pipe::PipeReader::attach)), so no task or pipe buffer sits
//! between git and the connection in either direction.

use std::task::{Context, Poll};

use crate::driver::pipe::Pipe;
use crate::error::Error;
use crate::limits::{FIRST_SOURCE_READ, STREAM_SOURCE_READ};
use crate::server::ServerConnection;

/// Reads the sessions' attached output sources (see [`PipeWriter::attach`])
/// and sends what they give at once, each as far as its channel's window and the transport
/// take it: a git pack goes from git's pipe through `scratch` into packets with no task or
/// pipe buffer in between. Ready once something moved or ended; the sources wake the driver.
pub(super) fn poll_sources<'a>(
    s: &mut ServerConnection,
    outputs: impl Iterator<Item = (u32, &'a Pipe)>,
    scratch: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let mut progressed = false;
    let mut attached = false;
    for (id, stdout) in outputs {
        if !stdout.has_source() {
            continue;
        }
        attached = true;
        // Unpolled while the window or the transport is full: the loop polls again after
        // whatever changes that (a WINDOW_ADJUST read, a socket write).
        let room = s.write_room(id);
        if room == 0 {
            continue;
        }
        if scratch.is_empty() {
            *scratch = vec![0; FIRST_SOURCE_READ];
        }
        let want = room.min(scratch.len());
        let Some(buf) = scratch.get_mut(..want) else {
            continue;
        };
        match stdout.poll_source(cx, buf) {
            Poll::Pending => {}
            Poll::Ready(None) => progressed = true,
            Poll::Ready(Some(n)) => {
                progressed = true;
                let data = scratch.get(..n).unwrap_or_default();
                match s.write(id, None, data) {
                    Ok(taken) => stdout.keep(data.get(taken..).unwrap_or_default()),
                    Err(e) => {
                        tracing::debug!(channel = id, error = %e, "write to channel failed");
                        stdout.close_read();
                    }
                }
                // A full read: the source streams, read the rest in bigger bites. A short one
                // (a protocol message, the end of a stream): give the buffer back, so sessions
                // that wait (git for the client's wants) hold none.
                if n == want && scratch.len() < STREAM_SOURCE_READ {
                    // Zeroed by the allocator (fresh pages), not by a memset.
                    *scratch = vec![0; STREAM_SOURCE_READ];
                } else if n < FIRST_SOURCE_READ {
                    *scratch = Vec::new();
                }
            }
        }
    }
    if !attached && !scratch.is_empty() {
        *scratch = Vec::new();
    }
    if progressed {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

/// Writes what the client sent into the sessions' attached sinks (`inputs`: the channel, or
/// `None` for a session whose channel is gone, and its stdin pipe): bytes that reached the
/// pipe first, then the channel's buffer itself, each as far as the sink takes it; window
/// credit goes back for what was written. At the client's EOF the sink is shut down. Ready
/// once something moved or closed; a full sink wakes the driver when it has room.
pub(super) fn poll_sinks<'a>(
    s: &mut ServerConnection,
    inputs: impl Iterator<Item = (Option<u32>, &'a Pipe)>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Error>> {
    let mut progressed = false;
    for (id, stdin) in inputs {
        if !stdin.has_sink() {
            continue;
        }
        match stdin.poll_sink_backlog(cx) {
            Poll::Pending => continue,
            Poll::Ready(moved) => progressed |= moved,
        }
        if let Some(id) = id
            && s.channels().channel(id).is_some_and(|c| c.buffered() > 0)
        {
            let written = s.read_with(id, usize::MAX, |chunk| {
                match stdin.poll_sink_write(cx, chunk) {
                    Poll::Ready(n) => n,
                    Poll::Pending => 0,
                }
            })?;
            progressed |= written > 0;
        }
        if stdin.poll_sink_close(cx) == Poll::Ready(true) {
            progressed = true;
        }
    }
    if progressed {
        Poll::Ready(Ok(()))
    } else {
        Poll::Pending
    }
}
