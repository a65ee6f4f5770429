//! Running git for one session: a fixed argv, no shell, a scrubbed environment, its own
//! process group (killed with everything in it when the client goes away or falls idle), and
//! its stdio piped through the channel with backpressure both ways.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::driver::batch_read::BatchReader;
use crate::driver::pipe::{Attached, AttachedInput};
use crate::driver::relay::{copy, idle_watch};
use crate::git::command::Service;
use crate::limits::GIT_STOP_GRACE;
use crate::session::{ExitStatus, SessionIo};

/// What to run and with which identity variables.
#[derive(Clone, Debug)]
pub struct GitRun {
    /// Absolute path of the `git` binary.
    pub git: PathBuf,
    /// The service.
    pub service: Service,
    /// Absolute repository path.
    pub repo: PathBuf,
    /// Create a bare repository there first.
    pub create: bool,
    /// Environment for git and its hooks (`GIT_PROTOCOL`, `PORTCULLIS_*`).
    pub env: Vec<(String, String)>,
    /// Kill git when no byte moved either way for this long.
    pub idle_timeout: Duration,
}

/// Bytes moved and how the session ended, for the log line.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Bytes from the client into git.
    pub bytes_in: u64,
    /// Bytes from git to the client (stdout and stderr).
    pub bytes_out: u64,
    /// Wall time.
    pub duration: Duration,
    /// Exit status sent to the client.
    pub status: ExitStatus,
    /// How it ended: "exited", "client gone" (git's group killed) or "idle" (killed too).
    pub ended: &'static str,
}

/// Runs git to completion (or until the client is gone), then reports.
pub async fn run(job: GitRun, io: SessionIo) -> RunReport {
    let start = Instant::now();
    let counters = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let mut pack = None;
    let mut input = None;
    // Only a repository this session brought into being is ever removed again (another push
    // may have created it a moment before).
    let fresh = job.create && tokio::fs::symlink_metadata(&job.repo).await.is_err();
    let (status, ended) = run_inner(&job, io, counters.clone(), (&mut pack, &mut input)).await;
    if fresh && remove_if_unused(&job).await {
        // Nothing was pushed (a failed push, or one with no refs): nothing is left behind.
    } else if job.create && status == ExitStatus::Code(0) {
        point_head_at_a_branch(&job).await;
    }
    RunReport {
        bytes_in: input.map_or(0, |i: AttachedInput| i.moved()),
        bytes_out: counters
            .1
            .load(Ordering::Relaxed)
            .saturating_add(pack.map_or(0, |p: Attached| p.moved())),
        duration: start.elapsed(),
        status,
        ended,
    }
}

fn command(git: &Path, env: &[(String, String)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(git);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// Kills git's whole process group (hooks, pack-objects children).
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Stops a git that is still running: its stdin closes first (`to_git`, held by the
/// connection's driver), which ends a `receive-pack` cleanly — it reports the failure and removes the
/// quarantine holding the objects received so far, which it does not do when killed by a
/// signal, SIGTERM and SIGPIPE included (git 2.47) — and an `upload-pack` waiting for the
/// client. Its stdout and stderr stay open meanwhile (the driver closes them only once this
/// task ended). Whatever of the group is left after [`GIT_STOP_GRACE`] is killed.
async fn stop_git(
    pid: Option<u32>,
    child: &mut tokio::process::Child,
    to_git: &AttachedInput,
) -> ExitStatus {
    to_git.close();
    let ended = tokio::time::timeout(GIT_STOP_GRACE, child.wait()).await;
    kill_group(pid);
    match ended {
        Ok(Ok(s)) => exit_status(s),
        _ => ExitStatus::Signal("KILL".into()),
    }
}

async fn run_inner(
    job: &GitRun,
    io: SessionIo,
    counters: Arc<(AtomicU64, AtomicU64)>,
    attached: (&mut Option<Attached>, &mut Option<AttachedInput>),
) -> (ExitStatus, &'static str) {
    let status = run_git(job, io, counters, attached).await;
    let ended = match &status {
        GitEnd::Exited(_) => "exited",
        GitEnd::ClientGone(_) => "client gone",
        GitEnd::Idle(_) => "idle",
    };
    let status = match status {
        GitEnd::Exited(s) | GitEnd::ClientGone(s) | GitEnd::Idle(s) => s,
    };
    (status, ended)
}

/// How git's run ended.
enum GitEnd {
    Exited(ExitStatus),
    /// The session went away (client disconnected or closed the channel): git stopped
    /// ([`stop_git`]), with this status.
    ClientGone(ExitStatus),
    /// Nothing moved for `idle_timeout`: git stopped too.
    Idle(ExitStatus),
}

/// Creates the repository if the job says so, then starts git on it; or the line the client
/// gets on stderr instead.
async fn start(job: &GitRun) -> Result<(tokio::process::Child, OwnedFd), &'static str> {
    if job.create {
        let init = command(&job.git, &job.env)
            .args(["init", "--bare", "--quiet"])
            .arg(&job.repo)
            .stdin(Stdio::null())
            .output()
            .await;
        if !init.is_ok_and(|o| o.status.success()) {
            return Err("portcullis: could not create the repository\n");
        }
    }
    let failed = |e: std::io::Error| {
        tracing::error!(error = %e, git = %job.git.display(), "cannot start git");
        "portcullis: internal error starting git\n"
    };
    // git's stdout is a pipe of our own, read by `BatchReader`: one tokio would make is
    // registered with epoll and made non-blocking, then taken back out (6 system calls).
    let (ours, theirs) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| failed(std::io::Error::from(e)))?;
    let mut cmd = command(&job.git, &job.env);
    cmd.arg(job.service.subcommand())
        .arg(&job.repo)
        .stdout(Stdio::from(theirs));
    let child = cmd.spawn().map_err(failed)?;
    // Our copy of git's end closes with `cmd`: EOF comes when git (and what it started) exits.
    drop(cmd);
    Ok((child, ours))
}

/// Runs git for the session: its stdin from the client, its output to the client (the pack
/// read by the driver itself), until it exits, the client goes, or nothing moves for the idle
/// time (then it is stopped, see [`stop_git`]).
async fn run_git(
    job: &GitRun,
    mut io: SessionIo,
    counters: Arc<(AtomicU64, AtomicU64)>,
    (pack, input): (&mut Option<Attached>, &mut Option<AttachedInput>),
) -> GitEnd {
    let (mut child, stdout) = match start(job).await {
        Ok(started) => started,
        Err(why) => {
            let _ = io.stderr.write_all(why.as_bytes()).await;
            return GitEnd::Exited(ExitStatus::Code(1));
        }
    };
    let pid = child.id();
    let (Some(stdin), Some(stderr)) = (child.stdin.take(), child.stderr.take()) else {
        kill_group(pid);
        return GitEnd::Exited(ExitStatus::Code(1));
    };
    let activity = Arc::new(AtomicU64::new(0));
    // The client's data goes into git's stdin from the connection's driver itself (see
    // `PipeReader::attach`); the client may keep its side open after git is done, which does
    // not hold us up.
    let to_git = io.stdin.attach(stdin);
    *input = Some(to_git.clone());
    // The pack comes from here: the connection's driver reads it itself (see
    // `PipeWriter::attach`), in batches (see `BatchReader`).
    let stdout = match BatchReader::new(stdout) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read git's output");
            kill_group(pid);
            return GitEnd::Exited(ExitStatus::Code(1));
        }
    };
    let out = io.stdout.attach(stdout);
    *pack = Some(out.clone());
    // Polled alongside git's exit, and when the session is cut alongside `stop_git` too, so
    // git does not die of SIGPIPE on its last words. In this task, not a task of its own: a
    // spawn per session cost a hand-off to the other worker thread and back.
    let errors_done = AtomicBool::new(false);
    let errors = {
        let (out, counters, activity, done) =
            (io.stderr, counters.clone(), activity.clone(), &errors_done);
        async move {
            copy(stderr, out, counters, activity, false, true).await;
            done.store(true, Ordering::Relaxed);
        }
    };
    tokio::pin!(errors);
    let (watched, fed) = (out.clone(), to_git.clone());
    let idle = idle_watch(
        move || {
            activity
                .load(Ordering::Relaxed)
                .saturating_add(watched.moved())
                .saturating_add(fed.moved())
        },
        job.idle_timeout,
    );
    let wait = async {
        let (_, status) = tokio::join!(errors.as_mut(), child.wait());
        // Whatever still holds git's stdout (a hook's background job) keeps the session
        // open, as with sshd; the idle clock still runs meanwhile.
        out.ended().await;
        status
    };
    let cut: fn(ExitStatus) -> GitEnd = tokio::select! {
        status = wait => return GitEnd::Exited(match status {
            Ok(s) => exit_status(s),
            Err(_) => ExitStatus::Code(1),
        }),
        _ = &mut io.gone => GitEnd::ClientGone,
        () = idle => {
            tracing::info!(repo = %job.repo.display(), "git idle too long, stopped");
            GitEnd::Idle
        }
    };
    let stop = stop_git(pid, &mut child, &to_git);
    tokio::pin!(stop);
    let status = loop {
        tokio::select! {
            status = &mut stop => break status,
            () = errors.as_mut(), if !errors_done.load(Ordering::Relaxed) => {}
        }
    };
    cut(status)
}

/// A push that created its repository and then failed (or pushed no ref) leaves nothing
/// behind: the repository is removed if it holds no ref at all. Returns whether it was.
async fn remove_if_unused(job: &GitRun) -> bool {
    let refs = command(&job.git, &[])
        .arg("--git-dir")
        .arg(&job.repo)
        .args(["for-each-ref", "--count=1"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await;
    if !refs.is_ok_and(|o| o.status.success() && o.stdout.is_empty()) {
        return false;
    }
    match tokio::fs::remove_dir_all(&job.repo).await {
        Ok(()) => {
            tracing::info!(repo = %job.repo.display(), "first push left no ref: empty repository removed");
            true
        }
        Err(e) => {
            tracing::warn!(repo = %job.repo.display(), error = %e, "could not remove an empty repository");
            false
        }
    }
}

/// A repository created by a push has `HEAD` naming git's default branch, which the push may
/// not have created: point it at a pushed branch (main or master first) so clones check out.
async fn point_head_at_a_branch(job: &GitRun) {
    let git = |args: &[&str]| {
        let mut c = command(&job.git, &[]);
        c.arg("--git-dir")
            .arg(&job.repo)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let head_ok = git(&["rev-parse", "--verify", "--quiet", "HEAD"])
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if head_ok {
        return;
    }
    let Ok(out) = git(&["for-each-ref", "--format=%(refname)", "refs/heads"])
        .output()
        .await
    else {
        return;
    };
    let refs = String::from_utf8_lossy(&out.stdout).into_owned();
    let branches: Vec<&str> = refs.lines().collect();
    let pick = ["refs/heads/main", "refs/heads/master"]
        .into_iter()
        .find(|b| branches.contains(b))
        .or_else(|| branches.first().copied());
    if let Some(branch) = pick {
        let _ = git(&["symbolic-ref", "HEAD", branch]).output().await;
    }
}

fn exit_status(s: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(code), _) => ExitStatus::Code(u32::try_from(code).unwrap_or(1)),
        (None, Some(sig)) => {
            ExitStatus::Signal(nix::sys::signal::Signal::try_from(sig).map_or_else(
                |_| "KILL".into(),
                |s| s.as_str().trim_start_matches("SIG").to_owned(),
            ))
        }
        _ => ExitStatus::Code(1),
    }
}
