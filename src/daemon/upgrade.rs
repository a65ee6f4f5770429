//! Binary upgrade, the way nginx and tableflip do it: the running process starts the (new)
//! binary with its listening sockets as inherited descriptors (`LISTEN_FDS`), waits until the
//! successor says it is ready, and only then stops accepting and drains. Until that moment it
//! serves as before; if the successor fails, it keeps serving and says why.
//!
//! The successor reports readiness with the `sd_notify` protocol (`READY=1` in a datagram) to
//! a socket of the old process, in a directory only this user can enter; under systemd the old
//! process then names the successor as the service's main process (`MAINPID=`).
//!
//! Also here: the pid file, and the outcome files that `portcullis upgrade` / `portcullis
//! reload` wait on.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};

use crate::daemon::sockets::Handover;
use crate::limits::UPGRADE_READY_TIMEOUT;

/// Where a successor sends `READY=1`: set by the old process for the new one only.
pub const NOTIFY_ENV: &str = "PORTCULLIS_UPGRADE_NOTIFY";

/// Starts `exe` with this process's arguments and the sockets of `handover`; resolves to its
/// pid once it is ready, or to why not (then it has been stopped, or has exited).
pub async fn start_successor(exe: &Path, handover: &Handover) -> Result<u32, String> {
    let dir = private_dir()?;
    let result = spawn_and_wait(exe, handover, &dir.join("ready")).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn spawn_and_wait(exe: &Path, handover: &Handover, notify: &Path) -> Result<u32, String> {
    let socket =
        tokio::net::UnixDatagram::bind(notify).map_err(|e| format!("{}: {e}", notify.display()))?;
    let (fds, names) = handover.for_child()?;
    let count = fds.len();
    let mappings = fds
        .into_iter()
        .zip(3..)
        .map(|(parent_fd, child_fd)| FdMapping {
            parent_fd,
            child_fd,
        })
        .collect();
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env("LISTEN_FDS", count.to_string())
        .env("LISTEN_FDNAMES", names)
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS_FIRST_FD")
        .env(NOTIFY_ENV, notify)
        .stdin(Stdio::null());
    cmd.fd_mappings(mappings)
        .map_err(|e| format!("passing the sockets: {e}"))?;
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", exe.display()))?;
    let pid = child.id().unwrap_or_default();
    let mut buf = [0u8; 512];
    let waited = tokio::time::timeout(UPGRADE_READY_TIMEOUT, async {
        loop {
            tokio::select! {
                got = socket.recv(&mut buf) => {
                    let n = got.map_err(|e| format!("{}: {e}", notify.display()))?;
                    let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
                    if text.lines().any(|l| l == "READY=1") {
                        return Ok(());
                    }
                }
                status = child.wait() => {
                    return Err(match status {
                        Ok(s) => format!("the new process ({pid}) exited before it was ready: {s}"),
                        Err(e) => format!("the new process ({pid}): {e}"),
                    });
                }
            }
        }
    })
    .await;
    match waited {
        // Not waited for from here on: it outlives this process (the kernel reparents it).
        Ok(Ok(())) => Ok(pid),
        Ok(Err(why)) => Err(why),
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(format!(
                "the new process ({pid}) was not ready within {} s: stopped it",
                UPGRADE_READY_TIMEOUT.as_secs()
            ))
        }
    }
}

/// A fresh directory under the temporary directory that only this user may enter.
fn private_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir =
        std::env::temp_dir().join(format!("portcullis-upgrade-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// In a successor: tells the old process it is ready. Returns whether this process is one.
pub fn notify_predecessor() -> bool {
    let Some(path) = std::env::var_os(NOTIFY_ENV) else {
        return false;
    };
    let msg = format!("READY=1\nMAINPID={}\n", std::process::id());
    let sent =
        std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.send_to(msg.as_bytes(), &path));
    if let Err(e) = sent {
        tracing::error!(error = %e, "could not tell the old process we are ready");
    }
    true
}

/// Tells the service manager (systemd's `NOTIFY_SOCKET`, if any) about a state change.
pub fn notify_manager(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// Writes `pid_file` (atomically: a reader never sees it half written).
pub fn write_pid_file(path: &Path) -> Result<(), String> {
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("pid_file {}: {e}", path.display()))
}

/// Removes `pid_file` if it still names this process (after an upgrade it names the successor).
pub fn remove_pid_file(path: &Path) {
    if read_pid(path).is_ok_and(|pid| pid == std::process::id()) {
        let _ = std::fs::remove_file(path);
    }
}

fn read_pid(path: &Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{}: not a process id", path.display()))
}

/// The file an operation's outcome is written to, beside the pid file.
pub fn outcome_file(pid_file: &Path, operation: &str) -> PathBuf {
    let mut name = pid_file.as_os_str().to_owned();
    name.push(".");
    name.push(operation);
    PathBuf::from(name)
}

/// Records an operation's outcome for the command waiting on it (`ok …` or `failed: …`).
pub fn write_outcome(pid_file: &Path, operation: &str, outcome: &str) {
    let path = outcome_file(pid_file, operation);
    if let Err(e) = std::fs::write(&path, format!("{outcome}\n")) {
        tracing::warn!(path = %path.display(), error = %e, "could not record the outcome");
    }
}

/// `portcullis upgrade` / `portcullis reload`: signals the server named by `pid_file` and waits
/// for the outcome it records; `Ok` is its `ok …` line.
pub fn signal_running(
    pid_file: &Path,
    operation: &str,
    signal: nix::sys::signal::Signal,
    wait: Duration,
) -> Result<String, String> {
    let pid = read_pid(pid_file)?;
    let outcome = outcome_file(pid_file, operation);
    let _ = std::fs::remove_file(&outcome);
    let target = nix::unistd::Pid::from_raw(i32::try_from(pid).map_err(|e| e.to_string())?);
    nix::sys::signal::kill(target, signal)
        .map_err(|e| format!("signalling pid {pid} (from {}): {e}", pid_file.display()))?;
    let until = super::after(wait);
    while Instant::now() < until {
        if let Ok(text) = std::fs::read_to_string(&outcome)
            && text.ends_with('\n')
        {
            let line = text.trim().to_owned();
            return if line.starts_with("ok") {
                Ok(line)
            } else {
                Err(line)
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "no outcome from pid {pid} within {} s: see its log",
        wait.as_secs()
    ))
}
