//! One forwarded session: the client's streams piped to the upstream channel's and back, EOF
//! passed on both ways, the upstream's exit status (or signal) relayed. Every hop is a bounded
//! pipe or an SSH window, so a slow reader on either side stalls the other instead of making
//! the proxy buffer the transfer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::driver::client::{RemoteExit, RemoteSession};
use crate::driver::pipe::splice;
use crate::driver::relay::{copy, idle_watch};
use crate::session::{ExitStatus, SessionIo};

/// Bytes moved and how the session ended, for the log line.
#[derive(Clone, Debug)]
pub struct ForwardReport {
    /// Client → upstream bytes.
    pub bytes_in: u64,
    /// Upstream → client bytes (stdout and stderr).
    pub bytes_out: u64,
    /// Wall time.
    pub duration: Duration,
    /// The status the client gets.
    pub status: ExitStatus,
    /// What went wrong on the way, if anything (also told to the client on stderr).
    pub failure: Option<String>,
    /// How it ended: "exited", "client gone" or "failed".
    pub ended: &'static str,
}

/// Pipes `io` through `remote` until the upstream command ends, the client goes away, or
/// nothing moves for `idle`. `upstream` names it in messages.
pub async fn forward(
    io: SessionIo,
    remote: RemoteSession,
    idle: Duration,
    upstream: &str,
) -> ForwardReport {
    let start = Instant::now();
    let counters = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let activity = Arc::new(AtomicU64::new(0));
    let SessionIo {
        stdin,
        stdout,
        mut stderr,
        mut gone,
    } = io;
    let RemoteSession {
        stdin: up_stdin,
        stdout: up_stdout,
        stderr: up_stderr,
        exit,
    } = remote;
    // Both directions are spliced: each connection's driver writes straight into the other
    // one's pipe, no task in between. The client's input goes up this way (and nothing waits
    // for a client that holds its stdin open after the command is done) …
    let spliced_in = splice(stdin, up_stdin);
    // … and the pack comes back this way.
    let spliced = splice(up_stdout, stdout);
    let moved = || {
        activity
            .load(Ordering::Relaxed)
            .saturating_add(spliced.moved())
            .saturating_add(spliced_in.moved())
    };
    let outcome = {
        let errors = copy(
            up_stderr,
            &mut stderr,
            counters.clone(),
            activity.clone(),
            false,
            false,
        );
        let finished = async {
            errors.await;
            exit.await
                .unwrap_or_else(|_| RemoteExit::Disconnected("connection task ended".into()))
        };
        tokio::select! {
            e = finished => Some(e),
            _ = &mut gone => None,
            () = idle_watch(moved, idle) => Some(RemoteExit::Disconnected(
                format!("no data moved for {}s", idle.as_secs()),
            )),
        }
    };
    let ended = match &outcome {
        Some(RemoteExit::Status(_)) => "exited",
        None => "client gone",
        Some(_) => "failed",
    };
    let (status, failure, tell_client) = match outcome {
        Some(RemoteExit::Status(s)) => (s, None, false),
        // The client is gone: nobody hears the status; the upstream channel closes as the
        // streams drop.
        None => (
            ExitStatus::Code(1),
            Some("client went away".to_owned()),
            false,
        ),
        Some(other) => (ExitStatus::Code(1), Some(other.to_string()), true),
    };
    if let Some(why) = &failure
        && tell_client
    {
        let _ = stderr
            .write_all(format!("portcullis: upstream {upstream}: {why}\n").as_bytes())
            .await;
    }
    let _ = stderr.shutdown().await;
    ForwardReport {
        bytes_in: spliced_in.moved(),
        bytes_out: counters
            .1
            .load(Ordering::Relaxed)
            .saturating_add(spliced.moved()),
        duration: start.elapsed(),
        status,
        failure,
        ended,
    }
}
