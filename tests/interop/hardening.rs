//! Issue 15's hardening, end to end with the `portcullis` binary: each test fails on the code
//! before the fix.

use std::process::{Command, Stdio};

use crate::git_server::{EVERYONE_WRITES, Server, config, start_on};

fn ssh(s: &Server, key: &std::path::Path, remote: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} -p {} git@127.0.0.1 {remote}",
            s.ssh_command(key),
            s.port
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// On a dual-stack socket an IPv4 client is `::ffff:127.0.0.1`; `from=` negations, the log and
/// PORTCULLIS_REMOTE_ADDR must see 127.0.0.1. (The listener is the v4-mapped loopback address,
/// so the test stays on loopback.)
#[test]
fn from_negations_hold_for_ipv4_clients_of_a_dual_stack_listener() {
    let s = start_on("[::ffff:127.0.0.1]:0", &config(EVERYONE_WRITES), |data| {
        std::fs::create_dir_all(data.join("repos")).unwrap();
    });
    let refused = s.user_key_with("refused", Some("mallory"), "from=\"*,!127.0.0.0/8\"");
    let allowed = s.user_key_with("allowed", Some("alice"), "from=\"127.0.0.1\"");
    let out = ssh(&s, &refused, "\"git-upload-pack '/x.git'\"");
    assert_eq!(
        out.status.code(),
        Some(255),
        "the negation must refuse 127.0.0.1"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    let out = ssh(&s, &allowed, "\"git-upload-pack '/x.git'\"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not found"), "{err}");
    let log = s.log();
    assert!(log.contains("addr=127.0.0.1:"), "{log}");
    assert!(!log.contains("::ffff:"), "{log}");
}

/// Issue 15, item 2: a client finishes the key exchange, then sends messages that each earn a
/// reply (UNIMPLEMENTED) and never reads. Once the server's writes block, the login grace timer
/// must still fire and the connection end (before the fix the task sat in `write_all` for ever,
/// holding its connection slot).
#[test]
fn a_client_that_stops_reading_is_still_cut_at_the_login_grace_time() {
    use portcullis::driver::os_rng;
    use portcullis::keys::PublicKey;
    use portcullis::transport::{Pinned, Transport, TransportConfig, TransportEvent};
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let cfg = config(EVERYONE_WRITES).replace("login_grace_secs = 120", "login_grace_secs = 2");
    assert!(cfg.contains("login_grace_secs = 2"));
    let s = start_on("127.0.0.1:0", &cfg, |_| {});
    let host = std::fs::read_to_string(s.data().join("host_ed25519_key.pub")).unwrap();
    let mut t = Transport::new_client(
        Arc::new(TransportConfig::default()),
        Box::new(Pinned::Key(PublicKey::from_openssh(&host).unwrap())),
        Box::new(os_rng().unwrap()),
        Instant::now(),
    );
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let me = sock.local_addr().unwrap().port();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The handshake, driven by hand.
    let (mut out, mut buf, mut inbuf) = (Vec::new(), [0u8; 65536], Vec::new());
    let mut done = false;
    while !done {
        t.poll_transmit(&mut out);
        sock.write_all(&out).unwrap();
        out.clear();
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "server closed during the handshake: {}", s.log());
        inbuf.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while at < inbuf.len() {
            let (used, pkt) = t.read(&inbuf[at..], Instant::now()).unwrap();
            at += used;
            if let Some(p) = pkt {
                t.recycle(p);
            }
            if used == 0 {
                break;
            }
        }
        inbuf.drain(..at);
        while let Some(ev) = t.poll_event() {
            done |= matches!(ev, TransportEvent::KexDone { .. });
        }
    }
    t.poll_transmit(&mut out);
    sock.write_all(&out).unwrap();
    out.clear();
    // The flood: message 200 is unknown, each earns an UNIMPLEMENTED; we read nothing.
    sock.set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let started = Instant::now();
    let mut sent = 0usize;
    'flood: while started.elapsed() < Duration::from_secs(20) && sent < 256 << 20 {
        for _ in 0..1000 {
            t.send(&[200]).unwrap();
        }
        t.poll_transmit(&mut out);
        let mut at = 0;
        while at < out.len() {
            match sock.write(&out[at..]) {
                Ok(n) => at += n,
                Err(_) => break 'flood, // the server stopped reading: its writes are blocked
            }
        }
        sent += out.len();
        out.clear();
    }
    assert!(
        started.elapsed() < Duration::from_secs(20) && sent < 256 << 20,
        "the server kept reading ({sent} bytes): the flood never blocked it"
    );
    // Grace (2 s) + the bounded last flush (5 s) + slack; we still read nothing.
    let deadline = Instant::now() + Duration::from_secs(15);
    let ended = format!("127.0.0.1:{me}");
    while Instant::now() < deadline {
        if s.log()
            .lines()
            .any(|l| l.contains("connection ended") && l.contains(&ended))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the connection from port {me} still holds its slot after the login grace time:\n{}",
        s.log()
    );
}

/// Unauthenticated connections have their own cap (`limits.max_startups`, here "3": no early
/// drop, full at 3): past it a connection is refused at once, and a connection gives its place
/// back when it logs in.
#[test]
fn unauthenticated_connections_have_their_own_cap() {
    use std::io::Read;
    use std::time::Duration;

    let cfg =
        config(EVERYONE_WRITES).replace("max_startups = \"100:30:200\"", "max_startups = \"3\"");
    assert!(cfg.contains("max_startups = \"3\""));
    let s = start_on("127.0.0.1:0", &cfg, |data| {
        std::fs::create_dir_all(data.join("repos")).unwrap();
    });
    let key = s.user_key("alice", Some("alice"));
    let connect = || {
        let c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c
    };
    // Three silent clients hold the three slots (each reads our version line first).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect();
        let mut line = [0u8; 8];
        c.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"SSH-2.0-");
        held.push(c);
    }
    let mut fourth = connect();
    let mut buf = [0u8; 64];
    assert_eq!(
        fourth.read(&mut buf).unwrap_or(0),
        0,
        "the fourth is refused"
    );
    assert!(
        s.log().contains("reason=\"max_startups full\""),
        "{}",
        s.log()
    );
    // The slots come free once the server has seen each close: wait for that, or a client
    // started at once may still find them taken (it did, on a loaded machine).
    let ends: Vec<String> = held
        .iter()
        .map(|c| format!("connection ended addr={}", c.local_addr().unwrap()))
        .collect();
    drop(held);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ends.iter().all(|e| s.log().contains(e.as_str())) {
        assert!(
            std::time::Instant::now() < deadline,
            "the held connections did not end:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Logged-in connections do not count: three held `ssh -N` sessions, then a command.
    // (ssh runs LocalCommand once it has logged in: the marker files say all three did.)
    let mut sessions = Vec::new();
    for i in 0..3 {
        let marker = s.dir.path().join(format!("in-{i}"));
        sessions.push((
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "exec {} -N -o PermitLocalCommand=yes -o 'LocalCommand=touch {}' -p {} git@127.0.0.1",
                    s.ssh_command(&key),
                    marker.display(),
                    s.port
                ))
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
            marker,
        ));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !sessions.iter().all(|(_, m)| m.exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "ssh -N did not log in:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = ssh(&s, &key, "\"git-upload-pack '/x.git'\"");
    for (mut c, _) in sessions {
        let _ = c.kill();
        let _ = c.wait();
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not found"), "{err}\n{}", s.log());
}

impl crate::common::SshServer for Server {
    fn port(&self) -> u16 {
        self.port
    }
    fn host_key(&self) -> portcullis::keys::PublicKey {
        let text = std::fs::read_to_string(self.data().join("host_ed25519_key.pub")).unwrap();
        portcullis::keys::PublicKey::from_openssh(&text).unwrap()
    }
    fn user(&self) -> String {
        "git".into()
    }
    fn log(&self) -> String {
        Server::log(self)
    }
}

/// Issue 15, item 4: a session channel that never runs a command is closed after `idle_secs`
/// (before, it stayed open as long as the connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_never_runs_a_command_is_closed_after_the_idle_time() {
    let cfg = config(EVERYONE_WRITES).replace("idle_secs = 600", "idle_secs = 2");
    assert!(cfg.contains("idle_secs = 2"));
    let s = start_on("127.0.0.1:0", &cfg, |_| {});
    let path = s.user_key("alice", Some("alice"));
    let key =
        portcullis::keys::key_file::parse(&std::fs::read_to_string(&path).unwrap(), None).unwrap();
    let started = std::time::Instant::now();
    let run = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        crate::client_sessions::park_session(&s, std::sync::Arc::new(key)),
    )
    .await
    .expect("the parked session was never closed");
    let closed = run.closed_at.expect("the server closed the channel") - started;
    assert!(
        closed >= std::time::Duration::from_secs(2) && closed < std::time::Duration::from_secs(10),
        "{closed:?}"
    );
    assert!(s.log().contains("no command in time"), "{}", s.log());
}

/// Issue 15, item 6: a client that vanishes while git waits in a hook leaves no process of the
/// session behind, and the session still gets its one log line saying how it ended. (Before,
/// the connection's end aborted the session task: only git itself died, by `kill_on_drop`; the
/// hook kept running and no `session` line was written.)
#[test]
fn a_vanished_client_leaves_no_process_behind_and_one_session_line() {
    use crate::git_server::{Git, local_repo};
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    let marker = 7000 + std::process::id() % 1000;
    let s = start_on("127.0.0.1:0", &config(EVERYONE_WRITES), |data| {
        let repo = data.join("repos/h.git");
        assert!(
            Command::new("git")
                .args(["init", "-q", "--bare"])
                .arg(&repo)
                .status()
                .unwrap()
                .success()
        );
        let hook = repo.join("hooks/pre-receive");
        std::fs::write(
            &hook,
            format!("#!/bin/sh\ncat >/dev/null\nsleep {marker}\n"),
        )
        .unwrap();
        let mut p = std::fs::metadata(&hook).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
        std::fs::set_permissions(&hook, p).unwrap();
    });
    let alice = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&alice, work.path(), 1);
    let sleeping = || {
        Command::new("pgrep")
            .args(["-f", &format!("^sleep {marker}$")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    // The push, in its own process group so the whole client side can be killed at once.
    let mut push = Command::new("git")
        .current_dir(&local)
        .args(["push", "-q", &s.url("h.git"), "HEAD:refs/heads/main"])
        .env("GIT_SSH_COMMAND", s.ssh_command(&alice.key))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sleeping() {
        assert!(
            Instant::now() < deadline,
            "the hook never ran:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pgid = nix::unistd::Pid::from_raw(i32::try_from(push.id()).unwrap());
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = push.wait();
    // The server notices the connection's end, kills git's group and logs the session.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = s.log();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(" session ")).collect();
        if !sleeping() && !lines.is_empty() {
            assert_eq!(lines.len(), 1, "{log}");
            assert!(lines[0].contains("ended=\"client gone\""), "{}", lines[0]);
            assert!(lines[0].contains("repo=h.git"), "{}", lines[0]);
            return;
        }
        if Instant::now() > deadline {
            let _ = Command::new("pkill")
                .args(["-f", &format!("^sleep {marker}$")])
                .status();
            panic!(
                "hook still running: {}, session lines: {:?}\n{log}",
                sleeping(),
                lines
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Should-fix items on repository creation: a push that creates its repository and then
/// fails, or pushes nothing, leaves no empty repository behind; a push cannot create a
/// repository inside another one's `refs/`; a `-`-led path component is refused.
#[test]
fn first_pushes_that_push_nothing_leave_nothing_and_cannot_nest() {
    use std::io::Write;
    let s = start_on("127.0.0.1:0", &config(EVERYONE_WRITES), |data| {
        std::fs::create_dir_all(data.join("repos")).unwrap();
    });
    let key = s.user_key("alice", Some("alice"));
    let push = |path: &str, input: &[u8]| {
        let mut c = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} -p {} git@127.0.0.1 \"git-receive-pack '{path}'\"",
                s.ssh_command(&key),
                s.port
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input).unwrap();
        c.wait_with_output().unwrap()
    };
    // A flush only (nothing to push), then a client that just hangs up.
    push("/empty.git", b"0000");
    push("/broken.git", b"");
    let repos = s.data().join("repos");
    let wait_gone = |name: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while repos.join(name).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{name} left behind:\n{}",
                s.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_gone("empty.git");
    wait_gone("broken.git");
    // A real repository, then attempts to create one inside it and a dash-led name.
    let alice = crate::git_server::Git {
        server: &s,
        key: key.clone(),
    };
    let work = tempfile::tempdir().unwrap();
    let local = crate::git_server::local_repo(&alice, work.path(), 1);
    alice.ok(&local, &["push", "-q", &s.url("a.git"), "main"]);
    for bad in ["/a.git/refs/x.git", "/--x.git"] {
        let out = push(bad, b"0000");
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not found"),
            "{bad}"
        );
    }
    assert!(!repos.join("a.git/refs/x.git").exists());
}

/// Should-fix: the descriptor limit is raised to what `max_connections` needs at start, and a
/// hard limit that cannot give every connection its socket refuses the start with the key named.
#[test]
fn the_descriptor_limit_is_raised_or_the_start_refused() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    // The defaults but for the monitoring port (tests run in parallel): a partial file.
    let cfg = dir.path().join("partial.toml");
    std::fs::write(&cfg, "[monitoring]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let spawn = |ulimit: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{ulimit}; exec {} --config {} --listen 127.0.0.1:0 --data-dir {}",
                env!("CARGO_BIN_EXE_portcullis"),
                cfg.display(),
                dir.path().display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A soft limit of 256 is raised to 1000 connections' worth (4 each + 64).
    let mut server = spawn("ulimit -Sn 256");
    let stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap().starts_with("listening on") {
            break;
        }
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.id())).unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let field = |n: usize| -> u64 {
        limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(n))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let (soft, hard) = (field(3), field(4));
    assert!(soft >= 4064.min(hard), "{limits}");
    // A hard limit of 300 cannot serve 1000 connections: refused, naming the key.
    let out = spawn("ulimit -n 300").wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("limits.max_connections = 1000"), "{err}");
}

/// Should-fix: memory per authenticated connection is bounded by the connection's window
/// budget, not 10 channels × 2 MiB. Ten sessions multiplexed on one OpenSSH connection
/// (ControlMaster) each fetch a 24 MiB pack they never read (git blocks: a window-0 producer)
/// while stuffing 4 MiB more input the server must hold. The server's RSS may grow by at most
/// 16 MiB (budget 4 MiB + floors, the stdin pipes, scratch); with 2 MiB per channel it grew by
/// more than 25 MiB.
#[test]
fn ten_stalled_sessions_on_one_connection_stay_within_the_memory_bound() {
    use crate::common::{random_file, rss_kib};
    use crate::git_server::{Git, local_repo};
    use std::time::{Duration, Instant};

    let s = start_on("127.0.0.1:0", &config(EVERYONE_WRITES), |data| {
        std::fs::create_dir_all(data.join("repos")).unwrap();
    });
    let alice = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&alice, work.path(), 1);
    random_file(&local.join("big.bin"), 24);
    alice.ok(&local, &["add", "big.bin"]);
    alice.ok(&local, &["commit", "-q", "-m", "big"]);
    alice.ok(&local, &["push", "-q", &s.url("big.git"), "main"]);
    let head = alice.ok(&local, &["rev-parse", "HEAD"]).trim().to_owned();
    // The master connection.
    let ctl = work.path().join("ctl");
    let ssh = s.ssh_command(&alice.key);
    let mut master = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {ssh} -M -S {} -N -p {} git@127.0.0.1",
            ctl.display(),
            s.port
        ))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ctl.exists() {
        assert!(Instant::now() < deadline, "no control socket:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(s.pid());
    // The ten sessions: want + done, then 4 MiB of input; their stdout is never read.
    let request = format!("0032want {head}\n00000009done\n");
    let mut sessions = Vec::new();
    for _ in 0..10 {
        sessions.push(
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "(printf '{}'; head -c 4194304 /dev/zero) | exec {ssh} -S {} -p {} git@127.0.0.1 \"git-upload-pack '/big.git'\"",
                    request.replace('\n', "\\n"),
                    ctl.display(),
                    s.port
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    // Let every channel fill what it can, then take the peak over a few seconds.
    let mut peak = 0;
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        peak = peak.max(rss_kib(s.pid()));
        std::thread::sleep(Duration::from_millis(100));
    }
    let sessions_seen = s.log().matches("connection").count();
    for mut c in sessions {
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = master.kill();
    let _ = master.wait();
    let grown = peak.saturating_sub(before);
    eprintln!("server RSS {before} -> {peak} KiB (grown {grown} KiB)");
    assert!(
        grown < 16 * 1024,
        "server RSS grew {grown} KiB with ten stalled sessions ({before} -> {peak} KiB, {sessions_seen})"
    );
}

/// Should-fix: text from a client (here a refused command) cannot forge log lines: CR, LF and
/// other controls are escaped as sshd does.
#[test]
fn a_client_cannot_forge_log_lines() {
    let s = start_on("127.0.0.1:0", &config(EVERYONE_WRITES), |_| {});
    let key = s.user_key("alice", Some("alice"));
    let line = s.ssh_command(&key);
    let mut words = line.split_whitespace();
    let out = Command::new(words.next().unwrap())
        .args(words)
        .args(["-p", &s.port.to_string(), "git@127.0.0.1"])
        .arg("ls\nFORGED session user=root\r")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = s.log();
    assert!(log.contains("command=ls\\012FORGED"), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("FORGED")), "{log}");
}

/// Issue 18's limits before authentication: a flood of silent connections from one source
/// (127.0.0.1) fills only its per-source share; another source (127.0.0.2) still logs in.
#[test]
fn a_flood_from_one_source_leaves_another_source_served() {
    use std::io::Read;
    use std::time::Duration;

    let cfg = config(EVERYONE_WRITES).replace(
        "per_source_max_startups = 20",
        "per_source_max_startups = 5",
    );
    assert!(cfg.contains("per_source_max_startups = 5"));
    let s = start_on("127.0.0.1:0", &cfg, |data| {
        std::fs::create_dir_all(data.join("repos")).unwrap();
    });
    let key = s.user_key("alice", Some("alice"));
    // The flood: 20 silent connections; 5 get our version line, the rest are closed at once.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut first = [0u8; 8];
        match c.read(&mut first) {
            Ok(8) => held.push(c),
            _ => refused += 1,
        }
    }
    assert_eq!((held.len(), refused), (5, 15), "{}", s.log());
    assert_eq!(
        s.log()
            .matches("reason=\"per_source_max_startups\"")
            .count(),
        15,
        "one line per refusal"
    );
    // Another source is served meanwhile: ssh bound to 127.0.0.2.
    let line = s.ssh_command(&key);
    let mut words = line.split_whitespace();
    let out = Command::new(words.next().unwrap())
        .args(words)
        .args([
            "-b",
            "127.0.0.2",
            "-p",
            &s.port.to_string(),
            "git@127.0.0.1",
        ])
        .arg("git-upload-pack '/x.git'")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not found"),
        "127.0.0.2 not served: {err}\n{}",
        s.log()
    );
    assert!(s.log().contains("addr=127.0.0.2:"), "{}", s.log());
    // The flooding source itself gets nothing more until its connections go.
    let out = ssh(&s, &key, "\"git-upload-pack '/x.git'\"");
    assert_eq!(out.status.code(), Some(255));
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let out = ssh(&s, &key, "\"git-upload-pack '/x.git'\"");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}
