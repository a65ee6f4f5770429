//! Moving bytes between a session's streams and whatever serves it (a git process, an
//! upstream channel): counted copies with an activity clock for idle kills.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::limits::{FIRST_SOURCE_READ, STREAM_SOURCE_READ};

/// Copies until EOF, counting bytes (into `counters.0` when `inbound`, else `.1`) and noting
/// activity; closes the writer at the end when `close` (else the caller writes more).
pub async fn copy<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut r: R,
    mut w: W,
    counters: Arc<(AtomicU64, AtomicU64)>,
    activity: Arc<AtomicU64>,
    inbound: bool,
    close: bool,
) {
    // Most of these streams are a process's stderr, a few lines if anything: the buffer
    // starts small (a zeroed 256 KiB per session cost a 256 KiB memset per connection) and
    // grows once a read fills it.
    let mut buf = vec![0u8; FIRST_SOURCE_READ];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if w.write_all(buf.get(..n).unwrap_or_default()).await.is_err() {
            break;
        }
        if n == buf.len() && buf.len() < STREAM_SOURCE_READ {
            buf = vec![0u8; STREAM_SOURCE_READ];
        }
        let n = u64::try_from(n).unwrap_or(0);
        if inbound {
            counters.0.fetch_add(n, Ordering::Relaxed);
        } else {
            counters.1.fetch_add(n, Ordering::Relaxed);
        }
        activity.fetch_add(1, Ordering::Relaxed);
    }
    if close {
        let _ = w.shutdown().await;
    }
}

/// Resolves once `activity` (a count that grows with progress) stood still for `limit`.
pub async fn idle_watch(activity: impl Fn() -> u64, limit: Duration) {
    let mut last = activity();
    loop {
        tokio::time::sleep(limit).await;
        let now = activity();
        if now == last {
            return;
        }
        last = now;
    }
}
