//! The server role's port forwarding [RFC4254 §7] with OpenSSH's `ssh` as the client: a small
//! server built on `serve` whose policy lets one client reach one service (`-L`) and listen on
//! loopback (`-R`). Allowed tunnels carry data both ways with half-close; refused ones give
//! ssh's usual "administratively prohibited"; port 0 reports the port it got; a cancelled
//! forwarding or a closed connection stops listening.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::driver::client::connect;
use portcullis::driver::os_rng;
use portcullis::keys::key_file;
use portcullis::server::ServerConfig;
use portcullis::session::{ExecDecision, SessionContext, SessionHandler, SessionIo};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::common::{example_binary, free_port, rss_kib};
use crate::served::{Served, our_client, ssh_command, ssh_to, start_with};
use crate::tunnels::echo_service;

/// The policy under test: `direct-tcpip` only to 127.0.0.1 on the listed ports, `tcpip-forward`
/// only on loopback; no commands.
struct Forwarder {
    reachable: Vec<u16>,
    asked: Mutex<Vec<String>>,
}

impl SessionHandler for Forwarder {
    fn exec(&self, _ctx: &SessionContext, _command: &[u8], _io: SessionIo) -> ExecDecision {
        ExecDecision::Refuse("this server only forwards ports".into())
    }

    fn direct_tcpip(&self, ctx: &SessionContext, host: &str, port: u16) -> bool {
        let who = &ctx.identity.name;
        self.asked
            .lock()
            .unwrap()
            .push(format!("{who} -L {host}:{port}"));
        host == "127.0.0.1" && self.reachable.contains(&port)
    }

    fn tcpip_forward(&self, ctx: &SessionContext, address: &str, port: u16) -> bool {
        let who = &ctx.identity.name;
        self.asked
            .lock()
            .unwrap()
            .push(format!("{who} -R {address}:{port}"));
        matches!(address, "127.0.0.1" | "localhost")
    }
}

async fn server(reachable: Vec<u16>) -> Served<Forwarder> {
    let mut config = ServerConfig::default();
    config.connection.forwarding_requests = true;
    let handler = Forwarder {
        reachable,
        asked: Mutex::new(Vec::new()),
    };
    start_with(Arc::new(handler), config).await
}

/// A running `ssh` whose stderr is collected as it comes.
struct Ssh {
    child: tokio::process::Child,
    stderr: Arc<Mutex<String>>,
}

impl Ssh {
    fn spawn<H>(s: &Served<H>, args: &[&str]) -> Self {
        let mut cmd = ssh_command(s, args);
        cmd.stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let lines = stderr.clone();
        let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                let mut all = lines.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Self { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most 20 s) until `found` picks something out of stderr.
    async fn wait_for<T>(&self, mut found: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(t) = found(&self.stderr()) {
                return t;
            }
            assert!(Instant::now() < deadline, "ssh said:\n{}", self.stderr());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits (at most 20 s) until something listens on 127.0.0.1:`port`, or with `false`, until
/// nothing does.
async fn wait_listening(port: u16, listening: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
        != listening
    {
        assert!(
            Instant::now() < deadline,
            "127.0.0.1:{port} listening: {}",
            !listening
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `mib` MiB through 127.0.0.1:`port`, half-closes, and checks that the echo comes back
/// whole and then ends (EOF both ways).
async fn echo_through(port: u16, mib: usize, seed: u32) {
    let data: Vec<u8> = (0..(mib << 20) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 11) as u8)
        .collect();
    let sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut r, mut w) = sock.into_split();
    let sent = Sha256::digest(&data);
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut back))
        .await
        .expect("the echo did not end")
        .unwrap();
    writer.await.unwrap();
    assert_eq!(back.len(), mib << 20);
    assert_eq!(Sha256::digest(&back), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_local_forwards_reach_allowed_targets_and_refused_ones_are_prohibited() {
    let echo = echo_service().await;
    let dead_port = crate::common::closed_port();
    let dead = dead_port.port;
    let s = server(vec![echo, dead]).await;
    let (allowed, refused, unreachable) = (free_port(), free_port(), free_port());
    let l = |local: u16, target: u16| format!("127.0.0.1:{local}:127.0.0.1:{target}");
    let ssh = Ssh::spawn(
        &s,
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            &l(allowed, echo),
            "-L",
            &l(refused, 22),
            "-L",
            &l(unreachable, dead),
        ],
    );
    wait_listening(allowed, true).await;
    // Three tunnels at once over the one connection, 16 MiB each way.
    let runs: Vec<_> = (0..3)
        .map(|i| tokio::spawn(echo_through(allowed, 16, i)))
        .collect();
    for r in runs {
        r.await.unwrap();
    }
    // A target the policy refuses: ssh says what sshd's refusals say, and closes the socket.
    for (port, why) in [
        (refused, "administratively prohibited"),
        (unreachable, "connect failed"),
    ] {
        let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), sock.read_to_end(&mut rest)).await;
        assert!(rest.is_empty());
        ssh.wait_for(|e| e.contains(&format!("open failed: {why}")).then_some(()))
            .await;
    }
    let asked = s.handler.asked.lock().unwrap().clone();
    assert!(
        asked.contains(&format!("alice -L 127.0.0.1:{echo}")),
        "{asked:?}"
    );
    assert!(
        asked.contains(&"alice -L 127.0.0.1:22".to_string()),
        "{asked:?}"
    );
    drop(ssh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_remote_forward_to_port_0_gets_its_port_and_ends_with_the_connection() {
    let echo = echo_service().await;
    let s = server(Vec::new()).await;
    let mut ssh = Ssh::spawn(
        &s,
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &format!("127.0.0.1:0:127.0.0.1:{echo}"),
        ],
    );
    // ssh prints the port the server chose (from the REQUEST_SUCCESS).
    let port: u16 = ssh
        .wait_for(|e| {
            let at = e.find("Allocated port ")?;
            e[at + 15..].split_whitespace().next()?.parse().ok()
        })
        .await;
    assert_ne!(port, 0);
    // Each connection to it comes back through ssh to the echo service.
    let runs: Vec<_> = (0..2)
        .map(|i| tokio::spawn(echo_through(port, 8, i)))
        .collect();
    for r in runs {
        r.await.unwrap();
    }
    // The connection ends: the server stops listening.
    ssh.child.kill().await.unwrap();
    wait_listening(port, false).await;
    // A bind address the policy refuses: ssh gives up as it does with sshd.
    let mut refused = ssh_command(
        &s,
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &format!("0.0.0.0:0:127.0.0.1:{echo}"),
        ],
    );
    let out = tokio::time::timeout(Duration::from_secs(20), refused.output())
        .await
        .expect("ssh did not give up")
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{said}");
    assert!(said.contains("remote port forwarding failed"), "{said}");
}

/// Our own client against the same server: a remote forward it drops is cancelled
/// (`cancel-tcpip-forward`), and the listener goes while the connection stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_remote_forward_closes_its_listener() {
    let s = server(Vec::new()).await;
    let (sock, c) = our_client(&s).await;
    let handle = connect(sock, c).await.unwrap();
    let mut fwd = handle.forward_remote("localhost", 0).await.unwrap();
    let port = fwd.port;
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (ends, session) = fwd.connections.recv().await.unwrap();
    assert_eq!(
        (ends.host.as_slice(), ends.port),
        (&b"localhost"[..], u32::from(port))
    );
    assert_eq!(ends.originator, b"127.0.0.1");
    // Half-close through the forwarded channel, then EOF back.
    let (mut stdin, mut stdout) = (session.stdin, session.stdout);
    sock.write_all(b"ping").await.unwrap();
    sock.shutdown().await.unwrap();
    let mut got = Vec::new();
    stdout.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"ping");
    stdin.write_all(b"pong").await.unwrap();
    stdin.shutdown().await.unwrap();
    let mut back = Vec::new();
    sock.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"pong");
    drop(fwd);
    wait_listening(port, false).await;
    assert!(handle.is_alive());
    // The same port again: granted, since the first is gone.
    let again = handle.forward_remote("localhost", port).await.unwrap();
    assert_eq!(again.port, port);
}

/// `examples/forward_server.rs` running with a fresh host key and one authorized user key
/// (`bob`), allowing `--connect` to the given targets and `--bind 127.0.0.1`; its stderr (one
/// line per decision) goes to `log`.
struct ExampleServer {
    child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl ExampleServer {
    async fn start(targets: &[u16]) -> Self {
        Self::start_with(targets, "").await
    }

    /// [`ExampleServer::start`] with bob's authorized_keys line prefixed by `options`.
    async fn start_with(targets: &[u16], options: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let write_key = |name: &str| {
            let key = portcullis::keys::PrivateKey::generate_ed25519(&mut os_rng().unwrap());
            let text = key_file::serialize(&key, name, &mut os_rng().unwrap());
            let path = dir.path().join(name);
            std::fs::write(&path, text.as_bytes()).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            key.public().to_openssh()
        };
        let host = write_key("host");
        let user = write_key("user");
        std::fs::write(
            dir.path().join("authorized_keys"),
            format!("{options} {user} bob\n").trim_start(),
        )
        .unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("known_hosts"),
            format!("[127.0.0.1]:{port} {host}\n"),
        )
        .unwrap();
        let mut cmd = tokio::process::Command::new(example_binary("forward_server"));
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--host-key")
            .arg(dir.path().join("host"))
            .arg("--authorized-keys")
            .arg(dir.path().join("authorized_keys"))
            .args(["--bind", "127.0.0.1"]);
        for t in targets {
            cmd.arg("--connect").arg(format!("127.0.0.1:{t}"));
        }
        let child = cmd
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_listening(port, true).await;
        Self { child, port, dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("log")).unwrap()
    }
}

/// The two examples together, as the README shows them: `tunnel -L/-R` through
/// `forward_server`, which allows one target and loopback binds and refuses the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnel_example_runs_through_the_forward_server_example() {
    let echo = echo_service().await;
    let mut server = ExampleServer::start(&[echo]).await;
    let (l, r, refused) = (free_port(), free_port(), free_port());
    let (fl, fr) = (
        format!("{l}:127.0.0.1:{echo}"),
        format!("127.0.0.1:{r}:127.0.0.1:{echo}"),
    );
    let no = format!("{refused}:127.0.0.1:22");
    let mut tunnel = tunnel_to(&server, &["-L", &fl, "-L", &no, "-R", &fr], None)
        .spawn()
        .unwrap();
    wait_listening(l, true).await;
    wait_listening(r, true).await;
    echo_through(l, 8, 1).await;
    echo_through(r, 8, 2).await;
    // The refused target: the connection is closed without a byte.
    assert!(closed_without_a_byte(refused).await);
    let _ = tunnel.kill().await;
    // A privileged port: refused (as sshd refuses it to anyone but root), and the tunnel
    // example says which forwarding failed.
    let low = format!("127.0.0.1:1023:127.0.0.1:{echo}");
    let out = tunnel_to(&server, &["-R", &low], Some("true"))
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("-R 127.0.0.1:1023"), "{err}");
    let _ = server.child.kill().await;
    let said = server.log();
    for line in [
        format!("bob -L 127.0.0.1:{echo}: allowed"),
        format!("bob -R 127.0.0.1:{r}: allowed"),
        "bob -L 127.0.0.1:22: refused".to_string(),
        "bob -R 127.0.0.1:1023: refused".to_string(),
    ] {
        assert!(said.contains(&line), "{line}\n{said}");
    }
}

/// Whether a connection to the local forward on `port` ends (within 20 s) without a byte:
/// what a refused `-L` target looks like from the tunnel's side.
async fn closed_without_a_byte(port: u16) -> bool {
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), sock.read_to_end(&mut rest)).await;
    rest.is_empty()
}

/// `tunnel` with bob's key against `server`, forwarding `forwards` (`-L`/`-R` pairs) and
/// running `command` if given.
fn tunnel_to(
    server: &ExampleServer,
    forwards: &[&str],
    command: Option<&str>,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(example_binary("tunnel"));
    cmd.arg("-i")
        .arg(server.path("user"))
        .arg("-o")
        .arg(format!(
            "known_hosts={}",
            server.path("known_hosts").display()
        ))
        .args(forwards)
        .arg(format!("git@127.0.0.1:{}", server.port))
        .args(command)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// The key's own options narrow a server policy that would allow more: `permitopen=` keeps
/// `-L` to one of two allowed targets, and `restrict` (without `port-forwarding` after it)
/// refuses `-R` before the policy is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_forwarding_options_narrow_the_servers_policy() {
    let (echo, other) = (echo_service().await, echo_service().await);
    let options = format!(
        "restrict,port-forwarding,permitopen=\"127.0.0.1:{echo}\",permitlisten=\"127.0.0.1:*\""
    );
    let mut server = ExampleServer::start_with(&[echo, other], &options).await;
    let (l, refused, r) = (free_port(), free_port(), free_port());
    let (ok, no, back) = (
        format!("{l}:127.0.0.1:{echo}"),
        format!("{refused}:127.0.0.1:{other}"),
        format!("127.0.0.1:{r}:127.0.0.1:{echo}"),
    );
    let mut tunnel = tunnel_to(&server, &["-L", &ok, "-L", &no, "-R", &back], None)
        .spawn()
        .unwrap();
    wait_listening(l, true).await;
    wait_listening(r, true).await;
    echo_through(l, 1, 3).await;
    echo_through(r, 1, 4).await;
    assert!(
        closed_without_a_byte(refused).await,
        "permitopen= let another target through"
    );
    let _ = tunnel.kill().await;
    let _ = server.child.kill().await;
    let said = server.log();
    assert!(
        !said.contains(&format!("-L 127.0.0.1:{other}")),
        "the policy was asked about a target the key excludes:\n{said}"
    );

    let mut server = ExampleServer::start_with(&[echo], "restrict").await;
    let back = format!("127.0.0.1:{}:127.0.0.1:{echo}", free_port());
    let out = tunnel_to(&server, &["-R", &back], Some("true"))
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    let _ = server.child.kill().await;
    assert!(!server.log().contains("-R"), "{}", server.log());
}

/// Flow control through the server role: a service that sends 64 MiB into a `-L` tunnel
/// whose local reader stalls. The server stops reading the service once the channel's window
/// is spent, so its memory stays flat; then every byte arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_stops_the_service_not_the_servers_memory() {
    const MIB: usize = 64;
    let source = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = source.local_addr().unwrap().port();
    // Each MiB: its number, then the same pseudo-random bytes.
    let base: Arc<Vec<u8>> = Arc::new(
        (0..1u32 << 20)
            .map(|j| (j.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    );
    let mib = move |i: usize| {
        let mut chunk = base.to_vec();
        chunk[..8].copy_from_slice(&(i as u64).to_le_bytes());
        chunk
    };
    let made = mib.clone();
    tokio::spawn(async move {
        let (mut sock, _) = source.accept().await.unwrap();
        for i in 0..MIB {
            sock.write_all(&made(i)).await.unwrap();
        }
        sock.shutdown().await.unwrap();
    });
    let server = ExampleServer::start(&[target]).await;
    let local = free_port();
    let mut ssh = ssh_to(
        server.port,
        &server.path("known_hosts"),
        &server.path("user"),
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            &format!("{local}:127.0.0.1:{target}"),
        ],
    );
    let mut ssh = ssh.stdin(Stdio::null()).spawn().unwrap();
    let mut sock = loop {
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", local)).await {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut first = vec![0u8; 1 << 20];
    sock.read_exact(&mut first).await.unwrap();
    let pid = server.child.id().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid);
    assert!(
        after < before + 16 * 1024,
        "forward_server grew from {before} KiB to {after} KiB while nobody read"
    );
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), sock.read_to_end(&mut rest))
        .await
        .expect("the transfer did not end")
        .unwrap();
    eprintln!("forward_server RSS: {before} KiB, {after} KiB after 3 s of a stalled reader");
    assert_eq!(first.len() + rest.len(), MIB << 20);
    first.extend_from_slice(&rest);
    for (i, got) in first.chunks(1 << 20).enumerate() {
        assert!(got == mib(i), "MiB {i} differs");
    }
    let _ = ssh.kill().await;
}
