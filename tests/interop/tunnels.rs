//! Our client's `direct-tcpip` channels (ssh's `-L`) through OpenSSH `sshd` to a service on
//! loopback: bytes both ways with their checksum, half-close, and the failure a refused target
//! or a forbidden forwarding gives [RFC4254 §7.2].

use std::sync::Arc;
use std::time::Instant;

use portcullis::driver::client::{ClientHandle, RemoteExit};
use portcullis::driver::os_rng;
use portcullis::keys::PrivateKey;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Sshd, require};

/// An echo service on loopback: each connection gets back what it sends, then EOF after the
/// client's EOF. Returns its port.
pub async fn echo_service() -> u16 {
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
    sshd.logged_in(key).await
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
    // The four rounds, and any probe above that connected before sshd took the cancel (sshd
    // still forwards those, and they arrive like the rest).
    let served = server.await.unwrap();
    assert!(served >= 4, "{served} connections served");
}
