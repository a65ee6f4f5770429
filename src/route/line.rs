//! The one `session` log line (and metrics) every git session ends with, local or upstream.

use std::time::Duration;

use crate::git::command::Service;
use crate::monitoring::METRICS;
use crate::session::{ExitStatus, SessionContext};

/// Where a session ran, for its log line.
pub(super) enum Served<'a> {
    /// Here, under the repository root.
    Local { created: bool },
    /// On an upstream host.
    Upstream {
        name: &'a str,
        reused: bool,
        failure: Option<&'a str>,
    },
}

/// The one `session` line every git session ends with: who, what, where, how much, how it ended.
pub(super) struct SessionLine {
    user: String,
    fingerprint: String,
    addr: std::net::SocketAddr,
    repo: String,
    service: Service,
    protocol: String,
}

impl SessionLine {
    pub(super) fn new(
        ctx: &SessionContext,
        repo: String,
        service: Service,
        protocol: String,
    ) -> Self {
        Self {
            user: ctx.identity.name.clone(),
            fingerprint: ctx.identity.fingerprint.clone(),
            addr: ctx.peer,
            repo,
            service,
            protocol,
        }
    }

    /// The line of a session carried to `upstream` (an SSH upstream or a git daemon).
    pub(super) fn log_remote(
        &self,
        upstream: &str,
        reused: bool,
        report: &crate::proxy::forward::ForwardReport,
    ) {
        self.log(
            Served::Upstream {
                name: upstream,
                reused,
                failure: report.failure.as_deref(),
            },
            report.bytes_in,
            report.bytes_out,
            report.duration,
            &report.status,
            report.ended,
        );
    }

    pub(super) fn log(
        &self,
        served: Served<'_>,
        bytes_in: u64,
        bytes_out: u64,
        duration: Duration,
        status: &ExitStatus,
        ended: &str,
    ) {
        let exit = match status {
            ExitStatus::Code(c) => c.to_string(),
            ExitStatus::Signal(s) => format!("signal {s}"),
        };
        let (created, upstream, reused, failure) = match served {
            Served::Local { created } => (created, "", false, None),
            Served::Upstream {
                name,
                reused,
                failure,
            } => (false, name, reused, failure),
        };
        METRICS.session(&self.service.to_string(), &exit, bytes_in, bytes_out);
        if !upstream.is_empty() {
            METRICS.upstream(upstream, if failure.is_some() { ended } else { "ok" });
        }
        tracing::info!(
            user = %self.user,
            fingerprint = %self.fingerprint,
            addr = %self.addr,
            repo = %self.repo,
            command = %self.service,
            protocol = %self.protocol,
            created,
            upstream = %upstream,
            reused,
            failure = failure.unwrap_or(""),
            bytes_in,
            bytes_out,
            duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            exit = %exit,
            ended,
            "session"
        );
    }
}

/// What the client sees for a missing and for a forbidden repository alike.
pub(super) fn not_found(path: &str) -> String {
    format!("portcullis: repository '{path}' not found, or you do not have access to it")
}
