//! The git front door as a [`SessionHandler`]: parse, resolve, authorize, run, log.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::connection::ChannelRequest;
use crate::driver::server::{ExecDecision, ExitStatus, SessionContext, SessionHandler, SessionIo};
use crate::git::command::{self, GitCommand, Service, valid_git_protocol};
use crate::git::policy::{Access, Authorizer, Decision};
use crate::git::process::{self, GitRun};
use crate::git::repo::{RepoRoot, canonical_name};
use crate::log_safe::LogSafe;
use crate::monitoring::METRICS;
use crate::proxy::forward::{ForwardReport, forward};
use crate::proxy::{Router, Upstream};

/// Serves repositories under one root.
pub struct GitServer {
    /// The repository root.
    pub root: RepoRoot,
    /// Who may read or write what.
    pub authorizer: Arc<dyn Authorizer>,
    /// Absolute path of `git`.
    pub git: PathBuf,
    /// Create a missing repository on the first push (for identities allowed to write it).
    pub create_on_push: bool,
    /// Kill git after this long without a byte moving.
    pub idle_timeout: Duration,
    /// Repositories served by upstream hosts (empty: everything is local).
    pub router: Arc<Router>,
}

/// Where a session ran, for its log line.
enum Served<'a> {
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
struct SessionLine {
    user: String,
    fingerprint: String,
    addr: std::net::SocketAddr,
    repo: String,
    service: Service,
    protocol: String,
}

impl SessionLine {
    fn new(ctx: &SessionContext, repo: String, service: Service, protocol: String) -> Self {
        Self {
            user: ctx.identity.name.clone(),
            fingerprint: ctx.identity.fingerprint.clone(),
            addr: ctx.peer,
            repo,
            service,
            protocol,
        }
    }

    fn log(
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
fn not_found(path: &str) -> String {
    format!("portcullis: repository '{path}' not found, or you do not have access to it")
}

impl GitServer {
    /// Runs the command on `upstream`: same service, the repository under its path prefix,
    /// `GIT_PROTOCOL` passed on (and the identity, if configured).
    fn proxied(
        &self,
        ctx: &SessionContext,
        cmd: &GitCommand,
        name: String,
        upstream: Arc<Upstream>,
        io: SessionIo,
    ) -> ExecDecision {
        let mut env: Vec<(Vec<u8>, Vec<u8>)> = ctx
            .env
            .iter()
            .filter(|(k, _)| k == b"GIT_PROTOCOL")
            .cloned()
            .collect();
        let protocol = env
            .first()
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        if upstream.send_identity {
            env.push((
                b"PORTCULLIS_USER".to_vec(),
                ctx.identity.name.clone().into_bytes(),
            ));
            env.push((
                b"PORTCULLIS_KEY_FINGERPRINT".to_vec(),
                ctx.identity.fingerprint.clone().into_bytes(),
            ));
        }
        let line = command::command_line(cmd.service, &format!("{}{name}", upstream.path_prefix));
        let line_log = SessionLine::new(ctx, name.clone(), cmd.service, protocol);
        let idle = self.idle_timeout;
        ExecDecision::Run(Box::pin(async move {
            let started = std::time::Instant::now();
            let (report, reused) = match upstream.exec(line.into_bytes(), env).await {
                Ok((remote, reused)) => (
                    forward(io, remote, idle, &upstream.name).await,
                    Some(reused),
                ),
                Err(e) => {
                    tracing::warn!(upstream = %upstream.name, repo = %name, error = ?e, "upstream session failed to start");
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
            };
            line_log.log(
                Served::Upstream {
                    name: &upstream.name,
                    reused: reused.unwrap_or(false),
                    failure: report.failure.as_deref(),
                },
                report.bytes_in,
                report.bytes_out,
                report.duration,
                &report.status,
                report.ended,
            );
            report.status
        }))
    }
}

impl SessionHandler for GitServer {
    fn env_allowed(&self, name: &[u8], value: &[u8]) -> bool {
        name == b"GIT_PROTOCOL" && valid_git_protocol(value)
    }

    fn exec(&self, ctx: &SessionContext, command: &[u8], io: SessionIo) -> ExecDecision {
        let shown = LogSafe(command).to_string();
        let refuse = |why: String, reason: &str| {
            tracing::info!(user = %ctx.identity.name, fingerprint = %ctx.identity.fingerprint, addr = %ctx.peer, command = %shown, reason, "refused");
            ExecDecision::Refuse(why)
        };
        let cmd = match command::parse(command) {
            Ok(c) => c,
            Err(e) => return refuse(format!("portcullis: {e}"), "not a git command"),
        };
        if self.router.upstreams().next().is_some() {
            let name = match canonical_name(&cmd.path) {
                Ok(n) => n,
                Err(e) => return refuse(not_found(&cmd.path), &e.to_string()),
            };
            let routed = self
                .authorizer
                .route(&ctx.identity.name, &name)
                .and_then(|u| self.router.upstream(&u))
                .or_else(|| self.router.route(&name));
            if let Some(upstream) = routed {
                if self.authorizer.authorize(
                    &ctx.identity.name,
                    &ctx.identity.fingerprint,
                    &name,
                    Access::from(cmd.service),
                ) == Decision::Deny
                {
                    return refuse(not_found(&cmd.path), "access denied");
                }
                return self.proxied(ctx, &cmd, name, upstream, io);
            }
        }
        let repo = match self.root.resolve(&cmd.path) {
            Ok(r) => r,
            Err(e) => return refuse(not_found(&cmd.path), &e.to_string()),
        };
        let access = Access::from(cmd.service);
        if self.authorizer.authorize(
            &ctx.identity.name,
            &ctx.identity.fingerprint,
            &repo.name,
            access,
        ) == Decision::Deny
        {
            return refuse(not_found(&cmd.path), "access denied");
        }
        let create = !repo.exists && cmd.service == Service::ReceivePack && self.create_on_push;
        if !repo.exists && !create {
            return refuse(not_found(&cmd.path), "no such repository");
        }
        let mut env: Vec<(String, String)> = ctx
            .env
            .iter()
            .filter(|(k, _)| k == b"GIT_PROTOCOL")
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        let protocol = env.first().map(|(_, v)| v.clone()).unwrap_or_default();
        env.extend([
            ("PORTCULLIS_USER".to_owned(), ctx.identity.name.clone()),
            (
                "PORTCULLIS_KEY_FINGERPRINT".to_owned(),
                ctx.identity.fingerprint.clone(),
            ),
            (
                "PORTCULLIS_REMOTE_ADDR".to_owned(),
                ctx.peer.ip().to_string(),
            ),
            ("PORTCULLIS_REPOSITORY".to_owned(), repo.name.clone()),
        ]);
        let job = GitRun {
            git: self.git.clone(),
            service: cmd.service,
            repo: repo.path.clone(),
            create,
            env,
            idle_timeout: self.idle_timeout,
        };
        let line_log = SessionLine::new(ctx, repo.name, cmd.service, protocol);
        ExecDecision::Run(Box::pin(async move {
            let report = process::run(job, io).await;
            line_log.log(
                Served::Local { created: create },
                report.bytes_in,
                report.bytes_out,
                report.duration,
                &report.status,
                report.ended,
            );
            report.status
        }))
    }

    fn shell(&self, ctx: &SessionContext) -> Option<String> {
        tracing::info!(user = %ctx.identity.name, addr = %ctx.peer, "shell refused");
        Some(format!(
            "portcullis: hello {}, you are authenticated, but there is no shell here: only git-upload-pack, git-receive-pack and git-upload-archive are allowed",
            ctx.identity.name
        ))
    }

    /// A session that never runs a command is idle: `idle_secs` bounds it like a silent git.
    fn start_timeout(&self) -> Duration {
        self.idle_timeout
    }

    fn refused(&self, ctx: &SessionContext, request: &ChannelRequest) {
        let name = LogSafe(request.name()).to_string();
        // Stock clients send LANG/LC_* with every connection: not worth an info line.
        if matches!(request, ChannelRequest::Env { .. }) {
            tracing::debug!(user = %ctx.identity.name, addr = %ctx.peer, request = %name, "request refused");
        } else {
            tracing::info!(user = %ctx.identity.name, addr = %ctx.peer, request = %name, "request refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::pipe::{Pipe, PipeReader, PipeWriter};
    use crate::keys::PrivateKey;
    use crate::lookup::Identity;
    use crate::proxy::{RouteConfig, test_upstream};
    use tokio::io::AsyncReadExt;

    /// Sends everything under `special/` to the upstream called "chosen", whatever the routes say.
    struct RoutingAuthorizer;

    impl Authorizer for RoutingAuthorizer {
        fn authorize(&self, _: &str, _: &str, _: &str, _: Access) -> Decision {
            Decision::Allow
        }
        fn route(&self, _: &str, repo: &str) -> Option<String> {
            repo.starts_with("special/").then(|| "chosen".to_owned())
        }
    }

    /// Runs `command` for "alice" and returns what the client would read on stderr.
    async fn stderr_of(server: &GitServer, command: &str) -> String {
        let notify = Arc::new(tokio::sync::Notify::new());
        let (stdin, stdout, stderr) = (
            Pipe::new(notify.clone()),
            Pipe::new(notify.clone()),
            Pipe::new(notify.clone()),
        );
        stdin.close_write();
        let (_alive, gone) = tokio::sync::oneshot::channel();
        let io = SessionIo {
            stdin: PipeReader(stdin),
            stdout: PipeWriter(stdout),
            stderr: PipeWriter(stderr.clone()),
            gone,
        };
        let key = PrivateKey::generate_ed25519(&mut crate::driver::os_rng().unwrap()).public();
        let ctx = SessionContext {
            user: "git".into(),
            identity: Identity {
                name: "alice".into(),
                fingerprint: key.fingerprint(),
                touch_required: true,
                verify_required: false,
            },
            key,
            peer: "127.0.0.1:5555".parse().unwrap(),
            env: Vec::new(),
        };
        let ExecDecision::Run(task) = server.exec(&ctx, command.as_bytes(), io) else {
            panic!("refused");
        };
        assert_eq!(task.await, ExitStatus::Code(1));
        let mut text = String::new();
        PipeReader(stderr).read_to_string(&mut text).await.unwrap();
        text
    }

    #[tokio::test]
    async fn the_authorizer_may_route_a_repository_itself() {
        let root = tempfile::tempdir().unwrap();
        let router = Router::new(
            vec![test_upstream("chosen"), test_upstream("configured")],
            &[RouteConfig {
                repos: vec!["**".into()],
                upstream: "configured".into(),
            }],
        );
        let server = GitServer {
            root: RepoRoot::new(root.path()).unwrap(),
            authorizer: Arc::new(RoutingAuthorizer),
            git: "git".into(),
            create_on_push: false,
            idle_timeout: Duration::from_secs(5),
            router: Arc::new(router),
        };
        let err = stderr_of(&server, "git-upload-pack 'special/app.git'").await;
        assert!(
            err.starts_with("portcullis: upstream chosen unreachable"),
            "{err}"
        );
        let err = stderr_of(&server, "git-upload-pack 'other/app.git'").await;
        assert!(
            err.starts_with("portcullis: upstream configured unreachable"),
            "{err}"
        );
    }
}
