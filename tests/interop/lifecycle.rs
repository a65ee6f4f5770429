//! The server's life cycle with real git and ssh: a binary upgrade that loses neither the clone
//! in flight nor any new connection, a drain that lets a clone finish and cuts the one that
//! outlives the grace period with a DISCONNECT, a second signal, reload on SIGHUP (a broken
//! file refused, a changed rule for new connections only), systemd socket activation and
//! `sd_notify`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::random_file;
use crate::common::{free_port, require};
use crate::git_server::{EVERYONE_WRITES, Git, Server, config, local_repo, start};
use crate::monitoring::{get, monitoring_addr};
use crate::raw_git::stalled_push;

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), sig).unwrap();
}

fn alive(pid: u32) -> bool {
    // Signal 0 checks existence; a zombie (exited, not yet reaped) has no /proc/<pid>/fd left.
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), None).is_ok()
        && std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|mut d| d.next().is_some())
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Pushes `big.git` (a `mib` MiB file) and `small.git`; returns the big file's SHA-256.
fn repositories(git: &Git<'_>, work: &Path, mib: usize) -> String {
    let local = local_repo(git, work, 1);
    git.ok(
        &local,
        &["push", "-q", &git.server.url("small.git"), "main"],
    );
    let digest = random_file(&local.join("big.bin"), mib);
    git.ok(&local, &["add", "big.bin"]);
    git.ok(&local, &["commit", "-q", "-m", "big"]);
    git.ok(&local, &["push", "-q", &git.server.url("big.git"), "main"]);
    digest
}

/// `git clone` of `big.git` into `work/into`, stopped (SIGSTOP) once at least `mib` MiB of the
/// pack arrived: the session stays open, the window closed, until it is continued.
fn stopped_clone(git: &Git<'_>, work: &Path, into: &str, mib: u64) -> Child {
    let child = Command::new(require("git", "git"))
        .current_dir(work)
        .args(["clone", "-q", &git.server.url("big.git"), into])
        .env("GIT_SSH_COMMAND", git.server.ssh_command(&git.key))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let packs = work.join(into).join(".git/objects/pack");
    let received = || {
        std::fs::read_dir(&packs).map_or(0, |d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("tmp_pack"))
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum::<u64>()
        })
    };
    wait_for("the clone's first MiB", Duration::from_secs(60), || {
        received() >= mib << 20
    });
    signal(child.id(), Signal::SIGSTOP);
    child
}

/// Whether `repo` holds a receive-pack quarantine (objects of a push in progress).
fn quarantined(repo: &Path) -> bool {
    std::fs::read_dir(repo.join("objects")).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().contains("incoming"))
    })
}

/// What a repository on the server is: its refs, its files, and `git fsck`.
fn state(git: &Git<'_>, repo: &Path) -> (String, Vec<PathBuf>) {
    git.ok(repo, &["fsck", "--no-progress"]);
    let refs = git.ok(repo, &["for-each-ref"]);
    let mut files = Vec::new();
    let mut dirs = vec![repo.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    files.sort();
    (refs, files)
}

/// Bounded loops of `git ls-remote` on `small.git` until `stop` (then a few more), each
/// iteration a new connection: (successes, failures with their stderr).
fn ls_remote_loops(
    git: &Git<'_>,
    n: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<(usize, Vec<String>)>> {
    (0..n)
        .map(|_| {
            let (url, ssh, stop) = (
                git.server.url("small.git"),
                git.server.ssh_command(&git.key),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let (mut ok, mut failed, mut after) = (0, Vec::new(), 0);
                let until = Instant::now() + Duration::from_secs(120);
                while after < 5 && ok + failed.len() < 500 && Instant::now() < until {
                    if stop.load(Ordering::SeqCst) {
                        after += 1;
                    }
                    let out = Command::new("git")
                        .args(["ls-remote", &url])
                        .env("GIT_SSH_COMMAND", &ssh)
                        .output()
                        .unwrap();
                    if out.status.success() {
                        ok += 1;
                    } else {
                        failed.push(String::from_utf8_lossy(&out.stderr).into_owned());
                    }
                }
                (ok, failed)
            })
        })
        .collect()
}

/// Kills the process the pid file names at the end (the successor is not our child).
struct Successor(PathBuf);

impl Successor {
    fn pid(&self) -> u32 {
        std::fs::read_to_string(&self.0)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Successor {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.0)
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

#[test]
fn an_upgrade_loses_neither_the_clone_in_flight_nor_a_new_connection() {
    use sha2::{Digest, Sha256};
    let s = start(&config(EVERYONE_WRITES));
    let successor = Successor(s.data().join("portcullis.pid"));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let digest = repositories(&git, work.path(), 112);
    let old = s.pid();
    let mut clone = stopped_clone(&git, work.path(), "big-clone", 8);
    let stop = Arc::new(AtomicBool::new(false));
    let loops = ls_remote_loops(&git, 2, &stop);
    std::thread::sleep(Duration::from_millis(500));
    let out = s.command(&["upgrade"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let new = successor.pid();
    assert_ne!(new, old);
    assert_eq!(said.trim(), format!("ok: pid {old} replaced by {new}"));
    // New connections reach the successor while the old process still serves the clone.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let (mut ok, mut failed) = (0, Vec::new());
    for l in loops {
        let (o, f) = l.join().unwrap();
        ok += o;
        failed.extend(f);
    }
    assert!(
        failed.is_empty(),
        "{} of {} ls-remote failed, the first: {:?}",
        failed.len(),
        ok + failed.len(),
        failed.first()
    );
    assert!(ok >= 10, "only {ok} ls-remote ran");
    assert!(
        s.exited().is_none(),
        "the old process left with a clone in flight"
    );
    // The clone resumes and completes intact from the old process.
    signal(clone.id(), Signal::SIGCONT);
    let status = clone.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(clone.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "clone failed: {err}\n{}", s.log());
    let cloned = std::fs::read(work.path().join("big-clone/big.bin")).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&cloned)), digest);
    git.ok(&work.path().join("big-clone"), &["fsck", "--no-progress"]);
    // Its last session over, the old process exits; the successor serves on.
    wait_for("the old process to exit", Duration::from_secs(30), || {
        s.exited().is_some()
    });
    assert!(s.exited().unwrap().success());
    assert!(alive(new));
    git.ok(work.path(), &["ls-remote", &s.url("small.git")]);
    let log = s.log();
    for line in [
        "upgrade: the new process is ready",
        "took over inherited listening sockets",
        "drained: every connection has ended",
    ] {
        assert!(log.contains(line), "{line}\n{log}");
    }
    assert!(s.printed.iter().any(|l| l.starts_with("listening on")));
}

#[test]
fn a_failed_upgrade_leaves_the_old_process_serving() {
    let s = start(&config(EVERYONE_WRITES));
    let _successor = Successor(s.data().join("portcullis.pid"));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 1);
    git.ok(&local, &["push", "-q", &s.url("small.git"), "main"]);
    // The new process cannot start: its host key cannot be created.
    let good = std::fs::read_to_string(s.config_path()).unwrap();
    std::fs::write(
        s.config_path(),
        good.replace(
            "host_keys = [\"host_ed25519_key\"]",
            "host_keys = [\"no/such/dir/host_ed25519_key\"]",
        ),
    )
    .unwrap();
    let out = s.command(&["upgrade"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(err.contains("failed: the new process"), "{err}");
    assert!(err.contains("exited before it was ready"), "{err}");
    assert!(
        s.log()
            .contains("upgrade failed; this process keeps serving"),
        "{}",
        s.log()
    );
    assert_eq!(
        std::fs::read_to_string(s.data().join("portcullis.pid"))
            .unwrap()
            .trim(),
        s.pid().to_string()
    );
    git.ok(work.path(), &["ls-remote", &s.url("small.git")]);
}

#[test]
fn a_stop_lets_a_clone_finish_and_cuts_a_clone_and_a_push_that_outlive_the_grace_period() {
    // Room for the first clone to finish on a loaded CI machine; the second is stopped, so it
    // outlives any grace period.
    let grace = 10;
    let s = start(&config(EVERYONE_WRITES).replace(
        "shutdown_grace_secs = 30",
        &format!("shutdown_grace_secs = {grace}"),
    ));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    repositories(&git, work.path(), 32);
    let repo = s.data().join("repos/big.git");
    let before = state(&git, &repo);
    let mut finishing = stopped_clone(&git, work.path(), "finishes", 1);
    let mut cut = stopped_clone(&git, work.path(), "cut", 1);
    let mut push = stalled_push(&git, &work.path().join("local"), "big.git");
    wait_for("the push's quarantine", Duration::from_secs(20), || {
        quarantined(&repo)
    });
    let probe = monitoring_addr(&s);
    let stopped_at = Instant::now();
    signal(s.pid(), Signal::SIGTERM);
    wait_for("not ready", Duration::from_secs(10), || {
        get(&probe, "/start").0 == 503
    });
    wait_for("the listener to close", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err()
    });
    // Within the grace period: the first clone completes.
    signal(finishing.id(), Signal::SIGCONT);
    assert!(finishing.wait().unwrap().success(), "{}", s.log());
    assert!(stopped_at.elapsed() < Duration::from_secs(grace));
    git.ok(&work.path().join("finishes"), &["fsck", "--no-progress"]);
    // The second outlives it: a DISCONNECT saying why, then the server exits.
    wait_for(
        "the server to exit",
        Duration::from_secs(grace + 25),
        || s.exited().is_some(),
    );
    assert!(s.exited().unwrap().success());
    assert!(stopped_at.elapsed() >= Duration::from_secs(grace));
    signal(cut.id(), Signal::SIGCONT);
    assert!(!cut.wait().unwrap().success());
    let mut err = String::new();
    std::io::Read::read_to_string(cut.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("server shutting down"), "{err}");
    // The push's receive-pack saw its input end and removed its quarantine.
    assert!(!push.wait().unwrap().success());
    let mut err = String::new();
    std::io::Read::read_to_string(push.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("server shutting down"), "{err}");
    let log = s.log();
    for line in [
        "shutdown grace period over: disconnecting the open connections",
        "disconnecting: the shutdown grace period is over",
    ] {
        assert!(log.contains(line), "{line}\n{log}");
    }
    assert_eq!(
        state(&git, &repo),
        before,
        "the repository changed:\n{}",
        s.log()
    );
}

#[test]
fn a_second_stop_signal_exits_at_once() {
    let s = start(&config(EVERYONE_WRITES));
    let git = Git::as_user(&s, "alice");
    let mut held = s.held_ssh(&git.key, "", Stdio::null());
    wait_for("the session", Duration::from_secs(10), || {
        s.log().contains("authenticated")
    });
    signal(s.pid(), Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(700));
    assert!(s.exited().is_none(), "left with a session open, grace 30 s");
    let second = Instant::now();
    signal(s.pid(), Signal::SIGINT);
    wait_for("the exit", Duration::from_secs(5), || s.exited().is_some());
    assert!(second.elapsed() < Duration::from_secs(3));
    assert!(
        s.log().contains("second stop request: exiting now"),
        "{}",
        s.log()
    );
    let _ = held.kill();
    let _ = held.wait();
}

#[test]
fn a_reload_applies_to_new_connections_only_and_refuses_a_broken_file() {
    let only = |who: &str| {
        format!("[[access]]\nwho = [\"{who}\"]\nrepos = [\"**\"]\naccess = \"write\"\n")
    };
    let s = start(&config(&only("alice")));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 1);
    git.ok(&local, &["push", "-q", &s.url("app.git"), "main"]);
    // A connection opened before the reload (OpenSSH connection sharing: later commands run
    // as new sessions on it).
    let control = work.path().join("ctl");
    let mut master = s.held_ssh(
        &git.key,
        &format!("-M -S {}", control.display()),
        Stdio::null(),
    );
    wait_for("the master connection", Duration::from_secs(10), || {
        control.exists()
    });
    let shared_ssh = format!(
        "{} -S {} -o ControlMaster=no",
        s.ssh_command(&git.key),
        control.display()
    );
    let ls_remote = |ssh: &str| {
        Command::new("git")
            .args(["ls-remote", &s.url("app.git")])
            .env("GIT_SSH_COMMAND", ssh)
            .output()
            .unwrap()
    };
    // A broken file: the command refuses before signalling, and a plain SIGHUP is refused by
    // the server, which names the key and serves on with the rules in force.
    let good = std::fs::read_to_string(s.config_path()).unwrap();
    let broken = good.replace("max_startups = \"100:30:200\"", "max_startups = \"lots\"");
    assert_ne!(good, broken);
    std::fs::write(s.config_path(), &broken).unwrap();
    let out = s.command(&["reload"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("limits.max_startups"));
    signal(s.pid(), Signal::SIGHUP);
    wait_for("the refusal", Duration::from_secs(10), || {
        s.log().contains("reload refused")
    });
    assert!(s.log().contains("limits.max_startups"), "{}", s.log());
    assert!(ls_remote(&s.ssh_command(&git.key)).status.success());
    // Alice loses access: new connections see it, the open one keeps the rules it began with.
    std::fs::write(s.config_path(), config(&only("bob"))).unwrap();
    let out = s.command(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok: reloaded");
    let refused = ls_remote(&s.ssh_command(&git.key));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not found, or you do not have access"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let open = ls_remote(&shared_ssh);
    assert!(
        open.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&open.stderr),
        s.log()
    );
    let _ = master.kill();
    let _ = master.wait();
}

#[test]
fn systemd_socket_activation_and_notifications() {
    let activate = require("systemd-socket-activate", "systemd");
    require("git", "git");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        config(EVERYONE_WRITES).replace(
            "listen = [\"127.0.0.1:2222\"]",
            &format!("listen = [\"127.0.0.1:{port}\"]"),
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/authorized_keys"), "").unwrap();
    let notify_path = dir.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    // systemd-socket-activate binds the port, and starts the server at the first connection
    // with the socket as fd 3 (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES).
    let manager = Command::new(activate)
        .args(["-l", &format!("127.0.0.1:{port}"), "--fdname=ssh"])
        .arg(format!("--setenv=NOTIFY_SOCKET={}", notify_path.display()))
        .arg(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(dir.path().join("portcullis.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let messages = || {
        let mut buf = [0u8; 4096];
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    wait_for("the socket", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(messages().contains("READY=1"));
    // The server serves on the socket it was given.
    let server = Server::adopt(manager, port, dir);
    let git = Git::as_user(&server, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 1);
    git.ok(&local, &["push", "-q", &server.url("app.git"), "main"]);
    git.ok(work.path(), &["ls-remote", &server.url("app.git")]);
    assert!(
        server
            .log()
            .contains("took over inherited listening sockets"),
        "{}",
        server.log()
    );
    // SIGHUP: RELOADING=1 with the monotonic time, then READY=1; SIGTERM: STOPPING=1.
    signal(server.pid(), Signal::SIGHUP);
    let reloading = messages();
    assert!(reloading.contains("RELOADING=1"), "{reloading}");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    assert!(messages().contains("READY=1"));
    signal(server.pid(), Signal::SIGTERM);
    assert!(messages().contains("STOPPING=1"));
}
