//! Our ClientConnection against OpenSSH sshd: authentication with keys from `ssh-keygen` files
//! of every type (one encrypted), `exec` with stdout/stderr/exit status, 256 MiB through `cat`.

use std::sync::Arc;
use std::time::Instant;

use portcullis::client::{ClientConfig, ClientConnection, ClientEvent};
use portcullis::connection::{ChannelEvent, ChannelRequest};
use portcullis::driver::{Connection, Ended, drive, os_rng};
use portcullis::error::{DisconnectReason, Error};
use portcullis::keys::key_file;
use portcullis::keys::{KeyType, PrivateKey};
use portcullis::transport::Pinned;
use sha2::{Digest, Sha256};

use crate::common::{Dropbear, SshServer, Sshd, require};

pub struct Exec {
    c: ClientConnection,
    /// Open the session but never send a command.
    park: bool,
    /// When the server closed the channel.
    pub closed_at: Option<Instant>,
    command: String,
    input: Vec<u8>,
    sent: usize,
    id: Option<u32>,
    started: bool,
    stdout: Sha256,
    stdout_len: usize,
    stderr: Vec<u8>,
    exit: Option<u32>,
    auth_failed: bool,
}

impl Exec {
    fn pump(&mut self) -> Result<(), Error> {
        while let Some(ev) = self.c.poll_event() {
            match ev {
                ClientEvent::Authenticated => self.id = Some(self.c.open_session()?),
                ClientEvent::AuthFailed => self.auth_failed = true,
                ClientEvent::Channel(ChannelEvent::Opened { .. }) if self.park => {}
                ClientEvent::Channel(ChannelEvent::Opened { id }) => {
                    self.c.request(
                        id,
                        &ChannelRequest::Exec(self.command.clone().into_bytes()),
                        true,
                    )?;
                }
                ClientEvent::Channel(ChannelEvent::Reply { ok, .. }) => {
                    assert!(ok, "exec refused");
                    self.started = true;
                }
                ClientEvent::Channel(ChannelEvent::Request {
                    request: ChannelRequest::ExitStatus(code),
                    ..
                }) => self.exit = Some(code),
                ClientEvent::Channel(ChannelEvent::Closed { .. }) => {
                    self.closed_at = Some(Instant::now());
                    self.c.disconnect(DisconnectReason::ByApplication, "done");
                }
                _ => {}
            }
        }
        let Some(id) = self.id else { return Ok(()) };
        // Reply, exit-status and CLOSE can come in one read (dropbear is that quick): read what
        // is buffered, but once the channel is closed there is nothing left to send on it.
        let closed = self.closed_at.is_some();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.c.read(id, false, &mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            self.stdout.update(&buf[..n]);
            self.stdout_len += n;
        }
        loop {
            let n = self.c.read(id, true, &mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            self.stderr.extend_from_slice(&buf[..n]);
        }
        if closed || !self.started {
            return Ok(());
        }
        if self.sent < self.input.len() {
            let n = self.c.write(id, &self.input[self.sent..])?;
            self.sent += n;
            if self.sent == self.input.len() {
                self.c.send_eof(id)?;
            }
        } else if self.input.is_empty() && self.sent == 0 {
            self.sent = 1;
            self.c.send_eof(id)?;
        }
        Ok(())
    }
}

impl Connection for Exec {
    fn handle_input(&mut self, bytes: &mut [u8], now: Instant) -> Result<usize, Error> {
        let n = self.c.handle_input(bytes, now)?;
        self.pump()?;
        Ok(n)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.c.poll_transmit(out);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.c.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.c.handle_timeout(now)
    }
    fn is_closed(&self) -> bool {
        self.c.is_closed()
    }
    fn handle_writable(&mut self, _now: Instant) -> Result<(), Error> {
        self.pump()
    }
}

fn current_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Generates a key with ssh-keygen and loads it with our parser.
fn keygen(dir: &std::path::Path, kind: &str, bits: &str, pass: &str) -> Arc<PrivateKey> {
    let path = dir.join(format!(
        "{kind}{bits}{}",
        if pass.is_empty() { "" } else { "-enc" }
    ));
    let st = std::process::Command::new(require("ssh-keygen", "openssh-client"))
        .args(["-q", "-t", kind, "-b", bits, "-N", pass, "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&path).unwrap();
    let key = key_file::parse(&text, (!pass.is_empty()).then_some(pass.as_bytes()))
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    assert_eq!(
        key.public(),
        portcullis::keys::PublicKey::from_openssh(&public).unwrap(),
        "{kind}"
    );
    Arc::new(key)
}

async fn exec(
    sshd: &dyn SshServer,
    keys: Vec<Arc<PrivateKey>>,
    command: &str,
    input: Vec<u8>,
) -> Exec {
    run(sshd, keys, Some(command), input).await
}

/// Opens a session channel and sends no command; returns once the server closed it.
pub async fn park_session(sshd: &dyn SshServer, key: Arc<PrivateKey>) -> Exec {
    run(sshd, vec![key], None, Vec::new()).await
}

async fn run(
    sshd: &dyn SshServer,
    keys: Vec<Arc<PrivateKey>>,
    command: Option<&str>,
    input: Vec<u8>,
) -> Exec {
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", sshd.port()))
        .await
        .unwrap();
    let c = ClientConnection::new(
        &ClientConfig::default(),
        Box::new(Pinned::Key(sshd.host_key())),
        &sshd.user(),
        keys,
        Box::new(os_rng().unwrap()),
        Instant::now(),
    )
    .unwrap();
    let mut app = Exec {
        c,
        park: command.is_none(),
        closed_at: None,
        command: command.unwrap_or_default().into(),
        input,
        sent: 0,
        id: None,
        started: false,
        stdout: Sha256::new(),
        stdout_len: 0,
        stderr: Vec::new(),
        exit: None,
        auth_failed: false,
    };
    let ended = match tokio::time::timeout(
        std::time::Duration::from_secs(120),
        drive(&mut sock, &mut app),
    )
    .await
    {
        Ok(e) => e,
        Err(_) => panic!("client hung; sshd log:\n{}", sshd.log()),
    };
    assert!(
        matches!(ended, Ended::Closed | Ended::Eof),
        "{ended:?}\n{}",
        sshd.log()
    );
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_authenticates_to_sshd_with_every_key_type() {
    let sshd = Sshd::start("");
    let dir = sshd.dir.path().to_owned();
    let keys = [
        keygen(&dir, "ed25519", "256", ""),
        keygen(&dir, "ed25519", "256", "correct horse"),
        keygen(&dir, "ecdsa", "256", ""),
        keygen(&dir, "ecdsa", "384", ""),
        keygen(&dir, "ecdsa", "521", ""),
        keygen(&dir, "rsa", "3072", ""),
    ];
    let authorized: String = keys
        .iter()
        .map(|k| k.public().to_openssh() + "\n")
        .collect();
    std::fs::write(dir.join("authorized_keys"), authorized).unwrap();
    for key in &keys {
        let run = exec(
            &sshd,
            vec![key.clone()],
            "echo out; echo err >&2; exit 3",
            Vec::new(),
        )
        .await;
        assert!(
            !run.auth_failed,
            "{:?} refused:\n{}",
            key.public().key_type(),
            sshd.log()
        );
        assert_eq!(run.exit, Some(3));
        // (sshd at LogLevel DEBUG1 also forwards its own debug lines to stderr.)
        assert!(
            run.stderr.ends_with(b"err\n"),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(
            hex::encode(run.stdout.finalize()),
            hex::encode(Sha256::digest(b"out\n"))
        );
    }
    // RSA went through rsa-sha2-512, the best sshd lists in server-sig-algs.
    assert!(
        sshd.log().contains("Accepted publickey for") && sshd.log().contains("RSA SHA256:"),
        "{}",
        sshd.log()
    );
    assert_eq!(keys[5].public().key_type(), KeyType::Rsa);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_is_refused_with_an_unknown_key() {
    let sshd = Sshd::start("");
    let key = keygen(sshd.dir.path(), "ed25519", "256", "");
    let run = exec(&sshd, vec![key], "true", Vec::new()).await;
    assert!(run.auth_failed);
    assert_eq!(run.exit, None);
}

/// Our client against a server that is not OpenSSH: dropbear, with its own default algorithms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_authenticates_to_dropbear_and_runs_commands() {
    let db = Dropbear::start();
    let dir = db.dir.path().to_owned();
    let keys = [
        keygen(&dir, "ed25519", "256", ""),
        keygen(&dir, "ecdsa", "256", ""),
        keygen(&dir, "rsa", "2048", ""),
    ];
    db.authorize(
        &keys
            .iter()
            .map(|k| k.public().to_openssh() + "\n")
            .collect::<String>(),
    );
    for key in &keys {
        let run = exec(
            &db,
            vec![key.clone()],
            "echo out; echo err >&2; exit 3",
            Vec::new(),
        )
        .await;
        let kind = key.public().key_type();
        assert!(!run.auth_failed, "{kind:?} refused:\n{}", db.log());
        assert_eq!(
            run.exit,
            Some(3),
            "{kind:?} {}\n{}",
            String::from_utf8_lossy(&run.stderr),
            db.log()
        );
        assert_eq!(run.stderr, b"err\n");
        assert_eq!(
            hex::encode(run.stdout.finalize()),
            hex::encode(Sha256::digest(b"out\n"))
        );
    }
    // 16 MiB through cat: windows and EOF both ways with dropbear's flow control.
    let input: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let want = hex::encode(Sha256::digest(&input));
    let run = exec(&db, vec![keys[0].clone()], "cat", input).await;
    assert_eq!(run.exit, Some(0), "{}", db.log());
    assert_eq!(run.stdout_len, 16 << 20);
    assert_eq!(hex::encode(run.stdout.finalize()), want);
    // An unknown key is refused.
    let stranger = keygen(&dir.join(".ssh"), "ed25519", "256", "");
    let run = exec(&db, vec![stranger], "true", Vec::new()).await;
    assert!(run.auth_failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_pipes_256_mib_through_cat_on_sshd() {
    let sshd = Sshd::start("");
    let key = keygen(sshd.dir.path(), "ed25519", "256", "");
    std::fs::write(
        sshd.dir.path().join("authorized_keys"),
        key.public().to_openssh() + "\n",
    )
    .unwrap();
    let mut input = vec![0u8; 256 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in input.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let want = hex::encode(Sha256::digest(&input));
    let run = exec(&sshd, vec![key], "cat", input).await;
    assert_eq!(
        run.exit,
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(run.stdout_len, 256 << 20);
    assert_eq!(hex::encode(run.stdout.finalize()), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_streams_of_a_remote_command_on_sshd() {
    use portcullis::driver::client::{RemoteExit, spawn_exec};
    use portcullis::session::ExitStatus;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let sshd = Sshd::start("");
    let key = keygen(sshd.dir.path(), "ecdsa", "256", "");
    std::fs::write(
        sshd.dir.path().join("authorized_keys"),
        key.public().to_openssh() + "\n",
    )
    .unwrap();
    let connect = |command: &str| {
        let command = command.as_bytes().to_vec();
        let key = key.clone();
        let host = sshd.host_key.clone();
        let port = sshd.port;
        async move {
            let sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let c = ClientConnection::new(
                &ClientConfig::default(),
                Box::new(Pinned::Key(host)),
                &current_user(),
                vec![key],
                Box::new(os_rng().unwrap()),
                Instant::now(),
            )
            .unwrap();
            spawn_exec(sock, c, command, Vec::new()).await.unwrap()
        }
    };
    let data: Vec<u8> = (0..(32u32 << 20)).map(|i| (i % 251) as u8).collect();
    let mut s = connect("cat; echo done >&2; exit 7").await;
    let input = data.clone();
    let mut stdin = s.stdin;
    let writer = tokio::spawn(async move {
        stdin.write_all(&input).await.unwrap();
        stdin.shutdown().await.unwrap();
    });
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (a, b) = tokio::join!(
        s.stdout.read_to_end(&mut out),
        s.stderr.read_to_end(&mut err)
    );
    a.unwrap();
    b.unwrap();
    writer.await.unwrap();
    assert_eq!(out.len(), data.len());
    assert!(out == data);
    assert!(
        err.ends_with(b"done\n"),
        "{}",
        String::from_utf8_lossy(&err)
    );
    assert!(matches!(
        s.exit.await.unwrap(),
        RemoteExit::Status(ExitStatus::Code(7))
    ));
}

/// One connection, many channels: concurrent commands each get their own streams and exit
/// status, and sshd's MaxSessions shows as an open failure, not a broken connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_share_one_connection_to_sshd() {
    use portcullis::driver::client::RemoteExit;
    use portcullis::session::ExitStatus;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let sshd = Sshd::start("MaxSessions 4\n");
    let key = keygen(sshd.dir.path(), "ed25519", "256", "");
    let handle = sshd.logged_in(key).await;
    let mut runs = Vec::new();
    for i in 0..4u8 {
        let s = handle
            .exec(format!("cat; exit {i}").into_bytes(), Vec::new())
            .await
            .unwrap();
        runs.push(tokio::spawn(async move {
            let data: Vec<u8> = (0..(1u32 << 20) + u32::from(i))
                .map(|j| (j % 253) as u8 ^ i)
                .collect();
            let mut stdin = s.stdin;
            let input = data.clone();
            let writer = tokio::spawn(async move {
                stdin.write_all(&input).await.unwrap();
                stdin.shutdown().await.unwrap();
            });
            let mut stdout = s.stdout;
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).await.unwrap();
            writer.await.unwrap();
            assert!(out == data, "session {i}: output differs");
            (s.exit.await.unwrap(), s.stderr)
        }));
    }
    assert_eq!(handle.sessions(), 4);
    // A fifth while four run: sshd refuses the channel; the connection is fine.
    match handle.exec(b"true".to_vec(), Vec::new()).await {
        Err(RemoteExit::OpenFailed { .. }) => {}
        other => panic!("expected an open failure, got {other:?}\n{}", sshd.log()),
    }
    for (i, r) in runs.into_iter().enumerate() {
        let (exit, _stderr) = r.await.unwrap();
        assert_eq!(exit, RemoteExit::Status(ExitStatus::Code(i as u32)));
    }
    assert_eq!(handle.sessions(), 0);
    assert!(handle.idle_for(Instant::now()).is_some());
    let s = handle.exec(b"exit 3".to_vec(), Vec::new()).await.unwrap();
    assert_eq!(
        s.exit.await.unwrap(),
        RemoteExit::Status(ExitStatus::Code(3))
    );
    assert!(handle.is_alive());
    drop(handle);
}
