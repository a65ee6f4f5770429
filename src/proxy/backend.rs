//! The upstream backend: one git command run on an upstream host, its session piped through.

use std::sync::Arc;
use std::time::Duration;

use crate::proxy::Upstream;
use crate::proxy::forward::{ForwardReport, forward};
use crate::session::{ExitStatus, SessionIo};

/// Runs `command` (with `env`) on `upstream` and forwards the session `io` until it ends;
/// a session that cannot start gets one line on its stderr naming the upstream and why.
/// Returns the report and, when the session started, whether its connection was reused.
pub async fn run(
    upstream: &Arc<Upstream>,
    command: Vec<u8>,
    env: Vec<(Vec<u8>, Vec<u8>)>,
    io: SessionIo,
    idle: Duration,
) -> (ForwardReport, Option<bool>) {
    let started = std::time::Instant::now();
    match upstream.exec(command, env).await {
        Ok((remote, reused)) => (
            forward(io, remote, idle, &upstream.name).await,
            Some(reused),
        ),
        Err(e) => {
            tracing::warn!(upstream = %upstream.name, error = ?e, "upstream session failed to start");
            let mut stderr = io.stderr;
            let _ = tokio::io::AsyncWriteExt::write_all(
                &mut stderr,
                format!("portcullis: upstream {} {e}\n", upstream.name).as_bytes(),
            )
            .await;
            let report = ForwardReport {
                bytes_in: 0,
                bytes_out: 0,
                duration: started.elapsed(),
                status: ExitStatus::Code(1),
                failure: Some(e.to_string()),
                ended: "failed",
            };
            (report, None)
        }
    }
}
