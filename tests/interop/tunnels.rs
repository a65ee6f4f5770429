//! Our client's `direct-tcpip` channels (ssh's `-L`) through OpenSSH `sshd` to a service on
//! loopback: bytes both ways with their checksum, half-close, and the failure a refused target
//! or a forbidden forwarding gives [RFC4254 §7.2].

use std::sync::Arc;
use std::time::Instant;

use portcullis::client::{ClientConfig, ClientConnection};
use portcullis::driver::client::{ClientHandle, RemoteExit, connect};
use portcullis::driver::os_rng;
use portcullis::keys::PrivateKey;
use portcullis::transport::Pinned;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{SshServer, Sshd, require, rss_kib};

/// An echo service on loopback: each connection gets back what it sends, then EOF after the
/// client's EOF. Returns its port.
async fn echo_service() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

async fn logged_in(sshd: &Sshd) -> ClientHandle {
    let key = Arc::new(PrivateKey::generate_ed25519(&mut os_rng().unwrap()));
    std::fs::write(
        sshd.dir.path().join("authorized_keys"),
        key.public().to_openssh() + "\n",
    )
    .unwrap();
    let sock = tokio::net::TcpStream::connect(("127.0.0.1", sshd.port()))
        .await
        .unwrap();
    let c = ClientConnection::new(
        &ClientConfig::default(),
        Box::new(Pinned::Key(sshd.host_key())),
        &sshd.user(),
        vec![key],
        Box::new(os_rng().unwrap()),
        Instant::now(),
    )
    .unwrap();
    connect(sock, c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_tcpip_through_sshd_carries_32_mib_both_ways_and_half_closes() {
    require("sshd", "openssh-server");
    let sshd = Sshd::start("AllowTcpForwarding yes\n");
    let port = echo_service().await;
    let handle = logged_in(&sshd).await;
    let me: std::net::SocketAddr = "127.0.0.1:50000".parse().unwrap();
    // Three tunnels at once over the one connection.
    let mut runs = Vec::new();
    for i in 0..3u32 {
        let t = handle
            .direct_tcpip("127.0.0.1", port, me)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
        runs.push(tokio::spawn(async move {
            let data: Vec<u8> = (0..(32u32 << 20) + i)
                .map(|j| (j.wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            let want = hex::encode(Sha256::digest(&data));
            let mut stdin = t.stdin;
            let writer = tokio::spawn(async move {
                stdin.write_all(&data).await.unwrap();
                // Half-close: the service sees EOF, echoes the rest and closes its side.
                stdin.shutdown().await.unwrap();
            });
            let mut stdout = t.stdout;
            let mut got = Sha256::new();
            let mut n = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let k = stdout.read(&mut buf).await.unwrap();
                if k == 0 {
                    break;
                }
                got.update(&buf[..k]);
                n += k;
            }
            writer.await.unwrap();
            assert_eq!(n, (32 << 20) + i as usize);
            assert_eq!(hex::encode(got.finalize()), want);
            assert_eq!(t.exit.await.unwrap(), RemoteExit::NoStatus);
        }));
    }
    for r in runs {
        r.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_target_and_a_forbidden_forwarding_give_the_servers_reason() {
    require("sshd", "openssh-server");
    // Nothing listens on this port: sshd answers "connect failed" (reason 2).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    let me: std::net::SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let sshd = Sshd::start("AllowTcpForwarding yes\n");
    let handle = logged_in(&sshd).await;
    match handle.direct_tcpip("127.0.0.1", dead, me).await {
        Err(RemoteExit::OpenFailed { reason: 2, .. }) => {}
        other => panic!("{other:?}\n{}", sshd.log()),
    }
    // The connection is still good for another channel.
    let port = echo_service().await;
    let t = handle.direct_tcpip("127.0.0.1", port, me).await.unwrap();
    let (mut stdin, mut stdout) = (t.stdin, t.stdout);
    stdin.write_all(b"ping").await.unwrap();
    stdin.shutdown().await.unwrap();
    let mut back = Vec::new();
    stdout.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"ping");
    // A server that forbids forwarding: "administratively prohibited" (reason 1).
    let sshd = Sshd::start("AllowTcpForwarding no\n");
    let handle = logged_in(&sshd).await;
    match handle.direct_tcpip("127.0.0.1", port, me).await {
        Err(RemoteExit::OpenFailed { reason: 1, .. }) => {}
        other => panic!("{other:?}\n{}", sshd.log()),
    }
}

/// ssh's `-R`: sshd listens for us (port 0: it picks), each connection arrives as a
/// `forwarded-tcpip` channel that we answer (here: echo, upper-cased); dropping the forwarding
/// cancels it and sshd stops listening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_forward_through_sshd_brings_connections_back_and_cancels() {
    require("sshd", "openssh-server");
    let sshd = Sshd::start("AllowTcpForwarding yes\n");
    let handle = logged_in(&sshd).await;
    let mut fwd = handle
        .forward_remote("127.0.0.1", 0)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    let port = fwd.port;
    assert_ne!(port, 0, "the bound port comes back");
    let mut connections = std::mem::replace(&mut fwd.connections, tokio::sync::mpsc::channel(1).1);
    let server = tokio::spawn(async move {
        let mut served = 0;
        while let Some((ends, s)) = connections.recv().await {
            assert_eq!(
                (ends.host.as_slice(), ends.port),
                (&b"127.0.0.1"[..], u32::from(port))
            );
            served += 1;
            tokio::spawn(async move {
                let (mut stdin, mut stdout) = (s.stdin, s.stdout);
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = stdout.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf[..n].make_ascii_uppercase();
                    if stdin.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = stdin.shutdown().await;
            });
        }
        served
    });
    // Four connections to the port sshd listens on, one after another.
    for round in 0..4 {
        let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
        let msg = format!("hello {round} ").repeat(5000);
        sock.write_all(msg.as_bytes()).await.unwrap();
        sock.shutdown().await.unwrap();
        let mut back = Vec::new();
        sock.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, msg.to_uppercase().into_bytes());
    }
    // Cancelled: sshd closes its listener.
    drop(fwd);
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            break;
        }
        assert!(Instant::now() < deadline, "sshd still listens on {port}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(handle);
    assert_eq!(server.await.unwrap(), 4);
}

/// The `tunnel` example binary (built by `cargo test --all-targets`; built here if missing).
fn tunnel_example() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("examples/tunnel");
    if !path.exists() {
        let st = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "tunnel"])
            .status()
            .unwrap();
        assert!(st.success(), "cargo build --example tunnel");
    }
    path
}

/// `examples/tunnel.rs` against sshd as its README line says: `-L` to a service behind the
/// server, `-R` back to one here, a command with its output and exit status; an unknown host
/// key and a port in use are clear one-line errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnel_example_does_what_ssh_l_and_ssh_r_do() {
    require("sshd", "openssh-server");
    let sshd = Sshd::start("AllowTcpForwarding yes\n");
    let dir = sshd.dir.path();
    let key = PrivateKey::generate_ed25519(&mut os_rng().unwrap());
    let key_file = dir.join("id_tunnel");
    let text = portcullis::keys::key_file::serialize(&key, "tunnel test", &mut os_rng().unwrap());
    std::fs::write(&key_file, text.as_bytes()).unwrap();
    std::fs::write(
        dir.join("authorized_keys"),
        key.public().to_openssh() + "\n",
    )
    .unwrap();
    let known = dir.join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "[127.0.0.1]:{} {}\n",
            sshd.port(),
            sshd.host_key().to_openssh()
        ),
    )
    .unwrap();
    let echo = echo_service().await;
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (l_port, r_port) = (free(), free());
    let dest = format!("{}@127.0.0.1:{}", sshd.user(), sshd.port());
    let mut child = tokio::process::Command::new(tunnel_example())
        .arg("-L")
        .arg(format!("{l_port}:127.0.0.1:{echo}"))
        .arg("-R")
        .arg(format!("127.0.0.1:{r_port}:127.0.0.1:{echo}"))
        .arg("-i")
        .arg(&key_file)
        .arg("-o")
        .arg(format!("known_hosts={}", known.display()))
        .arg(&dest)
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
                        sshd.log()
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
    let out = tokio::process::Command::new(tunnel_example())
        .arg("-i")
        .arg(&key_file)
        .arg("-o")
        .arg(format!("known_hosts={}", known.display()))
        .arg(&dest)
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
    let empty = dir.join("known_hosts.empty");
    std::fs::write(&empty, "").unwrap();
    let out = tokio::process::Command::new(tunnel_example())
        .arg("-i")
        .arg(&key_file)
        .arg("-o")
        .arg(format!("known_hosts={}", empty.display()))
        .arg(&dest)
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
    let out = tokio::process::Command::new(tunnel_example())
        .arg("-L")
        .arg(format!("{busy_port}:127.0.0.1:{echo}"))
        .arg("-i")
        .arg(&key_file)
        .arg("-o")
        .arg(format!("known_hosts={}", known.display()))
        .arg(&dest)
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
    require("sshd", "openssh-server");
    const LEN: usize = 256 << 20;
    let sshd = Sshd::start("AllowTcpForwarding yes\n");
    let dir = sshd.dir.path();
    let key = PrivateKey::generate_ed25519(&mut os_rng().unwrap());
    let key_file = dir.join("id_tunnel");
    let text = portcullis::keys::key_file::serialize(&key, "tunnel test", &mut os_rng().unwrap());
    std::fs::write(&key_file, text.as_bytes()).unwrap();
    std::fs::write(
        dir.join("authorized_keys"),
        key.public().to_openssh() + "\n",
    )
    .unwrap();
    let known = dir.join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "[127.0.0.1]:{} {}\n",
            sshd.port(),
            sshd.host_key().to_openssh()
        ),
    )
    .unwrap();
    let source = source_service(LEN).await;
    let want = {
        let block: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
        let mut h = Sha256::new();
        for _ in 0..LEN >> 20 {
            h.update(&block);
        }
        hex::encode(h.finalize())
    };
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (l_port, r_port) = (free(), free());
    let mut child = tokio::process::Command::new(tunnel_example())
        .arg("-L")
        .arg(format!("{l_port}:127.0.0.1:{source}"))
        .arg("-R")
        .arg(format!("127.0.0.1:{r_port}:127.0.0.1:{source}"))
        .arg("-i")
        .arg(&key_file)
        .arg("-o")
        .arg(format!("known_hosts={}", known.display()))
        .arg(format!("{}@127.0.0.1:{}", sshd.user(), sshd.port()))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    for port in [l_port, r_port] {
        let sock = connect_when_up(port, &sshd).await;
        assert_eq!(drain(sock).await, (LEN, want.clone()), "port {port}");
    }
    // A reader that stalls: the source keeps writing, but what the tunnel holds is bounded.
    let stalled = connect_when_up(l_port, &sshd).await;
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
