//! Behind a load balancer: Debian's HAProxy (started here with a temporary configuration) in
//! front of two portcullis instances, round robin, with `send-proxy` and with `send-proxy-v2`.
//! The clients connect from 127.0.0.2, the balancer reaches the instances from 127.0.0.1: every
//! session line must name 127.0.0.2, and the instances refuse what does not come through the
//! balancer.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, listening, require};
use crate::git_server::{EVERYONE_WRITES, Git, Server, config, local_repo, start_on};

struct Haproxy {
    child: Child,
    port: u16,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy(dir: &Path, backends: &[u16], send_proxy: &str) -> Haproxy {
    let bin = require("haproxy", "haproxy");
    for _ in 0..10 {
        let port = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // v2 also health-checks with a PROXY LOCAL header (the balancer's own check).
                let check = if send_proxy == "send-proxy-v2" {
                    " check inter 500ms check-send-proxy"
                } else {
                    ""
                };
                format!("  server s{i} 127.0.0.1:{p} {send_proxy}{check}\n")
            })
            .collect();
        let cfg = dir.join(format!("haproxy-{port}.cfg"));
        std::fs::write(
            &cfg,
            format!(
                "global\n  maxconn 200\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
                 timeout client 60s\n  timeout server 60s\n\nfrontend ssh\n  bind 127.0.0.1:{port}\n  \
                 default_backend git\n\nbackend git\n  balance roundrobin\n{servers}"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
        let mut child = Command::new(&bin)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        if listening(&mut child, port) {
            return Haproxy { child, port };
        }
    }
    panic!(
        "haproxy did not start:\n{}",
        std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default()
    );
}

/// Two instances sharing host key, authorized_keys and repositories (as a site's instances
/// would), each with a `required` PROXY listener trusting only 127.0.0.1.
fn instances(shared: &Path) -> Vec<(Server, u16)> {
    std::fs::create_dir_all(shared.join("repos")).unwrap();
    let mut out = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        let cfg = config(EVERYONE_WRITES)
            .replace(
                "host_keys = [\"host_ed25519_key\"]",
                &format!(
                    "host_keys = [\"{}\"]",
                    shared.join("host_ed25519_key").display()
                ),
            )
            .replace(
                "repos_root = \"repos\"",
                &format!("repos_root = \"{}\"", shared.join("repos").display()),
            )
            .replace(
                "file = \"authorized_keys\"",
                &format!("file = \"{}\"", shared.join("authorized_keys").display()),
            )
            .replace(
                "[keys]",
                &format!(
                    "[[listeners]]\naddress = \"127.0.0.1:{port}\"\nproxy_protocol = \"required\"\n\
                     trusted_sources = [\"127.0.0.1\"]\n\n[keys]"
                ),
            );
        out.push((start_on("127.0.0.1:0", &cfg, |_| {}), port));
    }
    out
}

/// `ssh` as git runs it, from 127.0.0.2, through the balancer.
fn git_ssh(s: &Server, key: &Path, known_hosts: &Path) -> String {
    s.ssh_command(key).replace(
        &format!(
            "UserKnownHostsFile={}",
            s.dir.path().join("known_hosts").display()
        ),
        &format!(
            "UserKnownHostsFile={} -o BindAddress=127.0.0.2",
            known_hosts.display()
        ),
    )
}

fn through_haproxy(send_proxy: &str) {
    let shared = tempfile::tempdir().unwrap();
    let both = instances(shared.path());
    let (a, b) = (&both[0].0, &both[1].0);
    let key: PathBuf = a.user_key("alice", None);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut p = public.split_whitespace();
    std::fs::write(
        shared.path().join("authorized_keys"),
        format!("{} {} alice\n", p.next().unwrap(), p.next().unwrap()),
    )
    .unwrap();
    let lb = haproxy(shared.path(), &[both[0].1, both[1].1], send_proxy);
    let host = std::fs::read_to_string(shared.path().join("host_ed25519_key.pub")).unwrap();
    let known_hosts = shared.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{} {host}", lb.port)).unwrap();
    let url = |repo: &str| format!("ssh://git@127.0.0.1:{}/{repo}", lb.port);
    let git = Git {
        server: a,
        key: key.clone(),
    };
    let ssh = git_ssh(a, &key, &known_hosts);
    let run = |cwd: &Path, args: &[&str]| {
        let out = Command::new("git")
            .current_dir(cwd)
            .args(["-c", "user.name=L", "-c", "user.email=l@example.org"])
            .args(args)
            .env("GIT_SSH_COMMAND", &ssh)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}\nA:\n{}\nB:\n{}",
            String::from_utf8_lossy(&out.stderr),
            a.log(),
            b.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A push, then clones and ls-remotes: round robin spreads them over both instances.
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 2);
    run(&local, &["push", "-q", &url("lb.git"), "main"]);
    for i in 0..3 {
        run(
            work.path(),
            &["clone", "-q", &url("lb.git"), &format!("c{i}")],
        );
        assert!(run(work.path(), &["ls-remote", &url("lb.git")]).contains("refs/heads/main"));
    }
    for (name, s) in [("A", a), ("B", b)] {
        let log = s.log();
        let sessions: Vec<&str> = log.lines().filter(|l| l.contains(" session ")).collect();
        assert!(!sessions.is_empty(), "{name} served nothing:\n{log}");
        assert!(
            sessions.iter().all(|l| l.contains("addr=127.0.0.2:")),
            "{name} logged another address than the client's:\n{log}"
        );
    }
    // Straight to an instance, around the balancer: from 127.0.0.1 without a header (missing),
    // from 127.0.0.2 (untrusted), and from 127.0.0.2 with a header (untrusted too).
    let port = both[0].1;
    let refused = |from: &str, send: &[u8]| {
        let mut sock = bound_connect(from, port);
        sock.write_all(send).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        sock.read(&mut buf).unwrap_or(0)
    };
    assert_eq!(refused("127.0.0.1", b"SSH-2.0-direct\r\n"), 0);
    assert_eq!(refused("127.0.0.2", b"SSH-2.0-direct\r\n"), 0);
    assert_eq!(
        refused(
            "127.0.0.2",
            b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 22\r\nSSH-2.0-x\r\n"
        ),
        0
    );
    let log = a.log();
    assert!(log.contains("PROXY header required but missing"), "{log}");
    assert_eq!(
        log.matches("PROXY header from an untrusted source").count(),
        2,
        "{log}"
    );
    assert!(
        !log.contains("203.0.113.9"),
        "an untrusted header was believed:\n{log}"
    );
    // With v2 the balancer's health checks arrive as PROXY LOCAL: taken, not refused.
    if send_proxy == "send-proxy-v2" {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !a.log().contains("PROXY v2 LOCAL") {
            assert!(
                Instant::now() < deadline,
                "no LOCAL health check seen:\n{}",
                a.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!a.log().contains("malformed PROXY header"), "{}", a.log());
    }
}

/// A TCP connection from a chosen loopback address (std has no bind-before-connect).
fn bound_connect(from: &str, port: u16) -> std::net::TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let c = s
            .connect(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .unwrap();
        let std = c.into_std().unwrap();
        std.set_nonblocking(false).unwrap();
        std
    })
}

#[test]
fn behind_haproxy_with_send_proxy_v1() {
    through_haproxy("send-proxy");
}

#[test]
fn behind_haproxy_with_send_proxy_v2_and_local_health_checks() {
    through_haproxy("send-proxy-v2");
}
