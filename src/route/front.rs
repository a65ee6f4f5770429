//! The git front door as a [`SessionHandler`]: parse the command, decide where it runs (access
//! rules, routes), hand it to the local or the upstream backend, log the session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::connection::ChannelRequest;
use crate::git::command::{self, GitCommand, Service, valid_git_protocol};
use crate::git::process::{self, GitRun};
use crate::git::repo::{Repo, RepoRoot, canonical_name};
use crate::keys::authorized_keys::KeyOptions;
use crate::log_safe::LogSafe;
use crate::proxy::{Upstream, backend};
use crate::route::http::{HttpAccess, Verdict};
use crate::route::line::{Served, SessionLine, not_found};
use crate::route::policy::{Access, Authorizer, Decision};
use crate::route::router::{Hop, Router};
use crate::session::{
    ExecDecision, ExitStatus, SessionContext, SessionHandler, SessionIo, SessionTask,
};

/// Where a command runs: the routing decision, above both backends.
enum Target {
    /// A repository under the local root (created by this push when `create`).
    Local {
        /// The repository.
        repo: Repo,
        /// Whether the push creates it.
        create: bool,
    },
    /// An upstream host or a storage host's git daemon, with the repository's canonical name.
    Remote {
        /// The repository name.
        name: String,
        /// Where.
        hop: Hop,
    },
}

/// The git front door: repositories under one root, or on upstream hosts.
pub struct FrontDoor {
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
    /// A site's HTTP API deciding access and routes instead of `authorizer` and the
    /// configured routes (`[keys] backend = "http"`).
    pub http: Option<Arc<HttpAccess>>,
    /// svn servers for `svnserve -t` sessions (`[[svn_servers]]`; empty: svn is refused).
    pub svn: Arc<[Arc<crate::svn::SvnServer>]>,
}

/// What running a command needs besides the command: owned, so a task can take it along.
#[derive(Clone)]
struct Runner {
    git: PathBuf,
    idle_timeout: Duration,
}

/// Where `path` runs locally: the repository under `root`, created by this push if allowed.
fn local_target(
    root: &RepoRoot,
    create_on_push: bool,
    service: Service,
    path: &str,
) -> Result<Target, String> {
    let repo = root.resolve(path).map_err(|e| e.to_string())?;
    local_repo(repo, create_on_push, service)
}

/// [`local_target`] for a repository already resolved.
fn local_repo(repo: Repo, create_on_push: bool, service: Service) -> Result<Target, String> {
    let create = !repo.exists && service == Service::ReceivePack && create_on_push;
    if !repo.exists && !create {
        return Err("no such repository".into());
    }
    Ok(Target::Local { repo, create })
}

/// The git server's test of an authorized_keys line: a `command=` must itself be a git
/// command, which then narrows the key to exactly that command (see [`FrontDoor::exec`]);
/// anything else could not be honoured, so the line is refused.
pub fn git_commands_only(options: &KeyOptions) -> Result<(), String> {
    match &options.command {
        Some(c) if command::parse(c.as_bytes()).is_err() => Err(format!(
            "command=\"{}\" is not a git command (only git runs here): line skipped",
            LogSafe(c.as_bytes())
        )),
        _ => Ok(()),
    }
}

/// Whether `cmd` is the key's forced command `forced` (same service, same repository by its
/// canonical name): a `command=` only narrows what the access rules allow.
fn is_forced(cmd: &GitCommand, forced: &str) -> bool {
    command::parse(forced.as_bytes()).is_ok_and(|f| {
        f.service == cmd.service
            && canonical_name(&f.path).ok().is_some()
            && canonical_name(&f.path).ok() == canonical_name(&cmd.path).ok()
    })
}

/// What the git user reads when the access check cannot be made.
const ACCESS_UNAVAILABLE: &str =
    "portcullis: access check temporarily unavailable, try again later";

/// Where the HTTP API sends `cmd`, or (the user's message, the log's reason).
async fn routed(
    http: &HttpAccess,
    root: &RepoRoot,
    router: &Router,
    create_on_push: bool,
    ctx: &SessionContext,
    cmd: &GitCommand,
) -> Result<Target, (String, String)> {
    let hidden = |reason: String| (not_found(&cmd.path), reason);
    let name = canonical_name(&cmd.path).map_err(|e| hidden(e.to_string()))?;
    let id = &ctx.identity;
    let verdict = http
        .decide(
            &id.name,
            &id.fingerprint,
            &name,
            Access::from(cmd.service),
            ctx.peer.ip(),
        )
        .await
        .map_err(|e| (ACCESS_UNAVAILABLE.to_owned(), format!("access check: {e}")))?;
    match verdict {
        Verdict::Denied { message: None } => Err(hidden("denied by the backend".into())),
        Verdict::Denied { message: Some(m) } => {
            // The backend's words, as one line of printable text.
            let shown: String = m
                .chars()
                .filter(|c| !c.is_control())
                .take(crate::limits::MAX_LINE)
                .collect();
            Err((
                format!("portcullis: {shown}"),
                "denied by the backend".into(),
            ))
        }
        Verdict::Upstream { name: up, path } => {
            let hop = router.hop(&up).ok_or_else(|| {
                (
                    ACCESS_UNAVAILABLE.to_owned(),
                    format!("the backend routes to upstream {up}, which is not configured"),
                )
            })?;
            let name = match path {
                Some(p) => canonical_name(&p).map_err(|e| hidden(e.to_string()))?,
                None => name,
            };
            Ok(Target::Remote { name, hop })
        }
        Verdict::Local { path } => local_target(
            root,
            create_on_push,
            cmd.service,
            path.as_deref().unwrap_or(&cmd.path),
        )
        .map_err(hidden),
    }
}

/// The client's `GIT_PROTOCOL` (accepted by `env_allowed`), empty without one.
fn git_protocol(ctx: &SessionContext) -> String {
    ctx.env
        .iter()
        .find(|(k, _)| k == b"GIT_PROTOCOL")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// Ends a session that runs nothing: `message` on stderr, exit status 1.
async fn say(io: SessionIo, message: &str) -> ExitStatus {
    use tokio::io::AsyncWriteExt;
    let (mut out, mut err) = (io.stdout, io.stderr);
    let _ = err.write_all(format!("{message}\n").as_bytes()).await;
    let _ = err.shutdown().await;
    let _ = out.shutdown().await;
    ExitStatus::Code(1)
}

impl FrontDoor {
    /// Where `cmd` runs for this identity, or why it may not (a log reason: the client sees
    /// the same answer for a denied and a missing repository). An upstream route (the
    /// authorizer's own choice first, then the configured routes) wins over the local root.
    fn decide(&self, ctx: &SessionContext, cmd: &GitCommand) -> Result<Target, String> {
        let access = Access::from(cmd.service);
        let allowed = |name: &str| {
            self.authorizer
                .authorize(&ctx.identity.name, &ctx.identity.fingerprint, name, access)
                == Decision::Allow
        };
        if self.router.has_remotes() {
            let name = canonical_name(&cmd.path).map_err(|e| e.to_string())?;
            let routed = self
                .authorizer
                .route(&ctx.identity.name, &name)
                .and_then(|u| self.router.hop(&u))
                .or_else(|| self.router.route(&name));
            if let Some(hop) = routed {
                return if allowed(&name) {
                    Ok(Target::Remote { name, hop })
                } else {
                    Err("access denied".into())
                };
            }
        }
        let repo = self.root.resolve(&cmd.path).map_err(|e| e.to_string())?;
        if !allowed(&repo.name) {
            return Err("access denied".into());
        }
        local_repo(repo, self.create_on_push, cmd.service)
    }

    fn runner(&self) -> Runner {
        Runner {
            git: self.git.clone(),
            idle_timeout: self.idle_timeout,
        }
    }

    /// `cmd` decided by the HTTP API: the decision is awaited inside the session's task.
    fn exec_http(
        &self,
        ctx: &SessionContext,
        cmd: GitCommand,
        io: SessionIo,
        http: Arc<HttpAccess>,
    ) -> ExecDecision {
        let runner = self.runner();
        let (root, router) = (self.root.clone(), self.router.clone());
        let create_on_push = self.create_on_push;
        let ctx = ctx.clone();
        ExecDecision::Run(Box::pin(async move {
            match routed(&http, &root, &router, create_on_push, &ctx, &cmd).await {
                Ok(target) => runner.run(&ctx, &cmd, target, io).await,
                Err((message, reason)) => {
                    tracing::info!(user = %ctx.identity.name, fingerprint = %ctx.identity.fingerprint, addr = %ctx.peer, repo = %LogSafe(cmd.path.as_bytes()), reason = %reason, "refused");
                    say(io, &message).await
                }
            }
        }))
    }
}

impl Runner {
    /// The task that runs `cmd` on `target`.
    fn run(
        &self,
        ctx: &SessionContext,
        cmd: &GitCommand,
        target: Target,
        io: SessionIo,
    ) -> SessionTask {
        match target {
            Target::Remote {
                name,
                hop: Hop::Ssh(upstream),
            } => self.proxied(ctx, cmd, name, upstream, io),
            Target::Remote {
                name,
                hop: Hop::GitDaemon(daemon),
            } => self.git_daemon(ctx, cmd, name, daemon, io),
            Target::Local { repo, create } => self.local(ctx, cmd, repo, create, io),
        }
    }

    /// Runs the command on a local repository, with the identity in the environment of hooks.
    fn local(
        &self,
        ctx: &SessionContext,
        cmd: &GitCommand,
        repo: Repo,
        create: bool,
        io: SessionIo,
    ) -> SessionTask {
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
        let protocol = git_protocol(ctx);
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
        Box::pin(async move {
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
        })
    }

    /// Runs the command on a storage host's git daemon: same service, the repository under its
    /// path prefix, `GIT_PROTOCOL` passed on as the request's extra parameters.
    fn git_daemon(
        &self,
        ctx: &SessionContext,
        cmd: &GitCommand,
        name: String,
        daemon: Arc<crate::git_daemon::GitDaemon>,
        io: SessionIo,
    ) -> SessionTask {
        let protocol = git_protocol(ctx);
        let line_log = SessionLine::new(ctx, name.clone(), cmd.service, protocol.clone());
        let (service, idle) = (cmd.service, self.idle_timeout);
        Box::pin(async move {
            let report = daemon.run(service, &name, &protocol, io, idle).await;
            line_log.log_remote(&daemon.name, false, &report);
            report.status
        })
    }

    /// Runs the command on `upstream`: same service, the repository under its path prefix,
    /// `GIT_PROTOCOL` passed on (and the identity, if configured).
    fn proxied(
        &self,
        ctx: &SessionContext,
        cmd: &GitCommand,
        name: String,
        upstream: Arc<Upstream>,
        io: SessionIo,
    ) -> SessionTask {
        let mut env: Vec<(Vec<u8>, Vec<u8>)> = ctx
            .env
            .iter()
            .filter(|(k, _)| k == b"GIT_PROTOCOL")
            .cloned()
            .collect();
        let protocol = git_protocol(ctx);
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
        let line_log = SessionLine::new(ctx, name, cmd.service, protocol);
        let idle = self.idle_timeout;
        Box::pin(async move {
            let (report, reused) = backend::run(&upstream, line.into_bytes(), env, io, idle).await;
            line_log.log_remote(&upstream.name, reused.unwrap_or(false), &report);
            report.status
        })
    }
}

impl SessionHandler for FrontDoor {
    fn env_allowed(&self, name: &[u8], value: &[u8]) -> bool {
        name == b"GIT_PROTOCOL" && valid_git_protocol(value)
    }

    fn exec(&self, ctx: &SessionContext, command: &[u8], io: SessionIo) -> ExecDecision {
        let refuse = |why: String, reason: &str| {
            let shown = LogSafe(command).to_string();
            tracing::info!(user = %ctx.identity.name, fingerprint = %ctx.identity.fingerprint, addr = %ctx.peer, command = %shown, reason, "refused");
            ExecDecision::Refuse(why)
        };
        if crate::svn::is_svnserve(command)
            && !self.svn.is_empty()
            && ctx.identity.forced_command.is_none()
        {
            let policy = crate::route::svn::SvnPolicy {
                servers: self.svn.clone(),
                authorizer: self.authorizer.clone(),
                http: self.http.clone(),
                idle: self.idle_timeout,
            };
            return policy.exec(ctx, io);
        }
        let cmd = match command::parse(command) {
            Ok(c) => c,
            Err(e) => return refuse(format!("portcullis: {e}"), "not a git command"),
        };
        if let Some(forced) = &ctx.identity.forced_command
            && !is_forced(&cmd, forced)
        {
            return refuse(
                format!(
                    "portcullis: this key may only run {}",
                    LogSafe(forced.as_bytes())
                ),
                "not the key's forced command",
            );
        }
        if let Some(http) = &self.http {
            return self.exec_http(ctx, cmd, io, http.clone());
        }
        match self.decide(ctx, &cmd) {
            Ok(target) => ExecDecision::Run(self.runner().run(ctx, &cmd, target, io)),
            Err(reason) => refuse(not_found(&cmd.path), &reason),
        }
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
    use crate::proxy::test_upstream;
    use crate::route::router::RouteConfig;
    use crate::session::ExitStatus;
    use tokio::io::AsyncReadExt;

    /// Sends everything under `special/` to the upstream called "chosen", whatever the routes say.
    struct RoutingAuthorizer;

    impl Authorizer for RoutingAuthorizer {
        fn authorize(&self, _: &str, _: &str, _: &str, _: Access) -> Decision {
            Decision::Allow
        }
        fn route(&self, _: &str, repo: &str) -> Option<String> {
            if repo.starts_with("stored/") {
                return Some("store".to_owned());
            }
            repo.starts_with("special/").then(|| "chosen".to_owned())
        }
    }

    /// Runs `command` for "alice" and returns what the client would read on stderr.
    async fn stderr_of(server: &FrontDoor, command: &str) -> String {
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
            identity: Identity::named("alice", key.fingerprint()),
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
        // Nothing listens on port 1 of 127.0.0.1.
        let store = crate::git_daemon::GitDaemon::new(&crate::git_daemon::GitDaemonConfig {
            name: "store".into(),
            address: "127.0.0.1:1".into(),
            path_prefix: "/".into(),
            connect_timeout_secs: 5,
            allow_public_address: false,
        })
        .unwrap();
        let router = Router::new(
            vec![test_upstream("chosen"), test_upstream("configured")],
            vec![Arc::new(store)],
            &[RouteConfig {
                repos: vec!["**".into()],
                upstream: "configured".into(),
            }],
        );
        let server = FrontDoor {
            root: RepoRoot::new(root.path()).unwrap(),
            authorizer: Arc::new(RoutingAuthorizer),
            git: "git".into(),
            create_on_push: false,
            idle_timeout: Duration::from_secs(5),
            router: Arc::new(router),
            http: None,
            svn: Arc::from(Vec::new()),
        };
        let err = stderr_of(&server, "git-upload-pack 'special/app.git'").await;
        assert!(
            err.starts_with("portcullis: upstream chosen unreachable"),
            "{err}"
        );
        let err = stderr_of(&server, "git-upload-pack 'stored/app.git'").await;
        assert!(
            err.starts_with("portcullis: storage host store unreachable"),
            "{err}"
        );
        let err = stderr_of(&server, "git-upload-pack 'other/app.git'").await;
        assert!(
            err.starts_with("portcullis: upstream configured unreachable"),
            "{err}"
        );
    }
}
