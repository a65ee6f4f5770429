//! `examples/tunnel.rs` run against OpenSSH `sshd` the way its README lines say: `-L` and
//! `-R` with real transfers, many connections at once, a stalled reader, a command, and the
//! one-line errors.

use std::time::Instant;

use portcullis::driver::os_rng;
use portcullis::keys::PrivateKey;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{SshServer, Sshd, example_binary, free_port, require, rss_kib};
use crate::tunnels::echo_service;

/// sshd with forwarding allowed, a key for the example and a known_hosts naming sshd.
struct Example {
    sshd: Sshd,
    key_file: std::path::PathBuf,
    known: std::path::PathBuf,
    dest: String,
}

impl Example {
    fn start() -> Self {
        require("sshd", "openssh-server");
        let sshd = Sshd::start("AllowTcpForwarding yes\n");
        let dir = sshd.dir.path();
        let key = PrivateKey::generate_ed25519(&mut os_rng().unwrap());
        let key_file = dir.join("id_tunnel");
        let text =
            portcullis::keys::key_file::serialize(&key, "tunnel test", &mut os_rng().unwrap());
        std::fs::write(&key_file, text.as_bytes()).unwrap();
        std::fs::write(
            dir.join("authorized_keys"),
            key.public().to_openssh() + "\n",
        )
        .unwrap();
        let known = dir.join("known_hosts");
        let line = format!(
            "[127.0.0.1]:{} {}\n",
            sshd.port(),
            sshd.host_key().to_openssh()
        );
        std::fs::write(&known, line).unwrap();
        let dest = format!("{}@127.0.0.1:{}", sshd.user(), sshd.port());
        Self {
            sshd,
            key_file,
            known,
            dest,
        }
    }

    /// The example with this key and known_hosts; the caller adds forwardings, the
    /// destination and the command.
    fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(tunnel_example());
        c.arg("-i")
            .arg(&self.key_file)
            .arg("-o")
            .arg(format!("known_hosts={}", self.known.display()));
        c
    }
}

/// The `tunnel` example binary.
fn tunnel_example() -> std::path::PathBuf {
    example_binary("tunnel")
}

/// `examples/tunnel.rs` against sshd as its README line says: `-L` to a service behind the
/// server, `-R` back to one here, a command with its output and exit status; an unknown host
/// key and a port in use are clear one-line errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnel_example_does_what_ssh_l_and_ssh_r_do() {
    let ex = Example::start();
    let echo = echo_service().await;
    let (l_port, r_port) = (free_port(), free_port());
    let mut child = ex
        .command()
        .arg("-L")
        .arg(format!("{l_port}:127.0.0.1:{echo}"))
        .arg("-R")
        .arg(format!("127.0.0.1:{r_port}:127.0.0.1:{echo}"))
        .arg(&ex.dest)
        .arg("sleep 30")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Both ends listen once the tunnels are up: through -L (we → sshd → echo) and through -R
    // (we → sshd's port → the example → echo).
    for port in [l_port, r_port] {
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        let mut sock = loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(s) => break s,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "port {port}: {e}\n{}",
                        ex.sshd.log()
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        };
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = sock.split();
        let send = async {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let recv = r.read_to_end(&mut back);
        let (_, got) = tokio::join!(send, recv);
        got.unwrap();
        assert!(back == data, "port {port}: {} bytes came back", back.len());
    }
    // 50 connections at once through -L, each its own channel of the one SSH connection.
    let mut runs = Vec::new();
    for i in 0..50u32 {
        runs.push(tokio::spawn(async move {
            let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", l_port))
                .await
                .unwrap();
            let data: Vec<u8> = (0..(256u32 << 10) + i).map(|j| (j ^ i) as u8).collect();
            let (mut r, mut w) = sock.split();
            let send = async {
                w.write_all(&data).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut back = Vec::new();
            let (_, got) = tokio::join!(send, r.read_to_end(&mut back));
            got.unwrap();
            assert!(
                back == data,
                "connection {i}: {} bytes came back",
                back.len()
            );
        }));
    }
    for r in runs {
        r.await.unwrap();
    }
    let _ = child.kill().await;
    // A command: its output and its exit status.
    let out = ex
        .command()
        .arg(&ex.dest)
        .arg("echo tunnel-ok; exit 7")
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("tunnel-ok"));
    // An unknown host key: one line naming the host, status 255.
    let empty = ex.sshd.dir.path().join("known_hosts.empty");
    std::fs::write(&empty, "").unwrap();
    let out = tokio::process::Command::new(tunnel_example())
        .arg("-i")
        .arg(&ex.key_file)
        .arg("-o")
        .arg(format!("known_hosts={}", empty.display()))
        .arg(&ex.dest)
        .arg("true")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(
        err.contains("127.0.0.1") && err.lines().count() == 1,
        "{err}"
    );
    // A local port in use.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let out = ex
        .command()
        .arg("-L")
        .arg(format!("{busy_port}:127.0.0.1:{echo}"))
        .arg(&ex.dest)
        .arg("true")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains(&format!("-L 127.0.0.1:{busy_port}")), "{err}");
}

/// A service on loopback that sends `len` bytes of a fixed pattern to each connection, then
/// closes. Returns its port.
async fn source_service(len: usize) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let block: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
                let mut left = len;
                while left > 0 {
                    let n = left.min(block.len());
                    if sock.write_all(&block[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    port
}

/// Reads a connection to the end; returns its length and SHA-256.
async fn drain(mut sock: tokio::net::TcpStream) -> (usize, String) {
    let mut h = Sha256::new();
    let mut n = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let k = sock.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k;
    }
    (n, hex::encode(h.finalize()))
}

async fn connect_when_up(port: u16, sshd: &Sshd) -> tokio::net::TcpStream {
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => return s,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "port {port}: {e}\n{}",
                    sshd.log()
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// 256 MiB through `-L` and through `-R`, checksums verified; and a reader that stops reading:
/// the example's memory stays flat (the channel window and the pipes bound it), then the rest
/// arrives intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnel_example_moves_256_mib_each_way_and_a_stalled_reader_stays_flat() {
    const LEN: usize = 256 << 20;
    let ex = Example::start();
    let source = source_service(LEN).await;
    let want = {
        let block: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
        let mut h = Sha256::new();
        for _ in 0..LEN >> 20 {
            h.update(&block);
        }
        hex::encode(h.finalize())
    };
    let (l_port, r_port) = (free_port(), free_port());
    let mut child = ex
        .command()
        .arg("-L")
        .arg(format!("{l_port}:127.0.0.1:{source}"))
        .arg("-R")
        .arg(format!("127.0.0.1:{r_port}:127.0.0.1:{source}"))
        .arg(&ex.dest)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    for port in [l_port, r_port] {
        let sock = connect_when_up(port, &ex.sshd).await;
        assert_eq!(drain(sock).await, (LEN, want.clone()), "port {port}");
    }
    // A reader that stalls: the source keeps writing, but what the tunnel holds is bounded.
    let stalled = connect_when_up(l_port, &ex.sshd).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let after = rss_kib(pid);
    assert!(
        after < before + 16 * 1024,
        "the example grew from {before} KiB to {after} KiB while nobody read"
    );
    assert_eq!(drain(stalled).await, (LEN, want));
    let _ = child.kill().await;
}
