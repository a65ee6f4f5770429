//! The async server path end to end with ssh: `driver::server::serve` with an authorized_keys
//! lookup and a handler whose tasks use tokio's AsyncRead/AsyncWrite on the channel.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::connection::ChannelRequest;
use portcullis::driver::os_rng;
use portcullis::driver::server::{echo, serve};
use portcullis::keys::PrivateKey;
use portcullis::lookup::FileLookup;
use portcullis::server::{ServerConfig, ServerConnection};
use portcullis::session::{ExecDecision, ExitStatus, SessionContext, SessionHandler, SessionIo};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::common::require;

/// (identity, command, allowed env) of each exec.
type Seen = (String, String, Vec<(String, String)>);

#[derive(Default)]
pub struct Handler {
    seen: Mutex<Vec<Seen>>,
    refused: Mutex<Vec<String>>,
    /// Bytes of stdin each `slowcount` read.
    counted: Arc<Mutex<Vec<usize>>>,
}

impl SessionHandler for Handler {
    fn env_allowed(&self, name: &[u8], _value: &[u8]) -> bool {
        name == b"GIT_PROTOCOL"
    }

    fn exec(&self, ctx: &SessionContext, command: &[u8], io: SessionIo) -> ExecDecision {
        let cmd = String::from_utf8_lossy(command).into_owned();
        let env = ctx
            .env
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        self.seen
            .lock()
            .unwrap()
            .push((ctx.identity.name.clone(), cmd.clone(), env));
        match cmd.as_str() {
            "cat" => ExecDecision::Run(Box::pin(echo(io))),
            "slowcount" => {
                let me = self.counted.clone();
                ExecDecision::Run(Box::pin(async move {
                    use tokio::io::AsyncReadExt;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let mut stdin = io.stdin;
                    let mut all = Vec::new();
                    let _ = stdin.read_to_end(&mut all).await;
                    me.lock().unwrap().push(all.len());
                    ExitStatus::Code(0)
                }))
            }
            "fail" => ExecDecision::Run(Box::pin(async move {
                let mut err = io.stderr;
                let _ = err.write_all(b"it went wrong\n").await;
                ExitStatus::Code(5)
            })),
            _ => ExecDecision::Refuse(format!("portcullis: `{cmd}` is not allowed")),
        }
    }

    fn refused(&self, _ctx: &SessionContext, request: &ChannelRequest) {
        self.refused
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(request.name()).into_owned());
    }
}

/// A server on 127.0.0.1 built on `serve`, with a key of ours authorized as `alice`.
pub struct Served<H = Handler> {
    pub port: u16,
    pub known_hosts: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub handler: Arc<H>,
    pub _dir: tempfile::TempDir,
}

async fn start() -> Served {
    start_with(Arc::new(Handler::default()), ServerConfig::default()).await
}

/// A [`Served`] with `handler` as its policy and `config`.
pub async fn start_with<H: SessionHandler + 'static>(
    handler: Arc<H>,
    config: ServerConfig,
) -> Served<H> {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    assert!(
        std::process::Command::new(require("ssh-keygen", "openssh-client"))
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut parts = public.split_whitespace();
    std::fs::write(
        dir.path().join("authorized_keys"),
        format!(
            "restrict,port-forwarding {} {} alice\n",
            parts.next().unwrap(),
            parts.next().unwrap()
        ),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let host = PrivateKey::generate_ed25519(&mut os_rng().unwrap());
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{port} {}\n", host.public().to_openssh()),
    )
    .unwrap();
    let keys: Arc<[PrivateKey]> = Arc::from(vec![host]);
    let lookup = Arc::new(FileLookup::new(dir.path().join("authorized_keys")));
    let h2 = handler.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, peer)) = listener.accept().await else {
                return;
            };
            let s = ServerConnection::new(
                &config,
                keys.clone(),
                Box::new(os_rng().unwrap()),
                Instant::now(),
            );
            tokio::spawn(serve(sock, peer, s, lookup.clone(), h2.clone()));
        }
    });
    Served {
        port,
        known_hosts,
        key,
        handler,
        _dir: dir,
    }
}

async fn ssh(
    s: &Served,
    extra: &[&str],
    remote: &str,
    stdin: Option<&Path>,
) -> (i32, Vec<u8>, String) {
    let mut cmd = ssh_command(s, extra);
    cmd.arg(remote);
    match stdin {
        Some(p) => cmd.stdin(std::fs::File::open(p).unwrap()),
        None => cmd.stdin(Stdio::null()),
    };
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("ssh hung")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// OpenSSH's `ssh` to `s` with our key and `extra` options, up to the destination (add the
/// command); output piped.
pub fn ssh_command<H>(s: &Served<H>, extra: &[&str]) -> tokio::process::Command {
    ssh_to(s.port, &s.known_hosts, &s.key, extra)
}

/// OpenSSH's `ssh` to `git@127.0.0.1:port` with this known_hosts file and key, and `extra`.
pub fn ssh_to(
    port: u16,
    known_hosts: &Path,
    key: &Path,
    extra: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(require("ssh", "openssh-client"));
    cmd.args([
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
    ])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
    .arg("-i")
    .arg(key)
    .args(["-p", &port.to_string()])
    .args(extra)
    .arg("git@127.0.0.1")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_copy_on_channel_streams_carries_64_mib() {
    let s = start().await;
    let data: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let input = s._dir.path().join("in");
    std::fs::write(&input, &data).unwrap();
    let (code, out, err) = ssh(
        &s,
        &["-o", "SetEnv=GIT_PROTOCOL=version=2 OTHER=x"],
        "cat",
        Some(&input),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.len(), data.len());
    assert_eq!(Sha256::digest(&out), Sha256::digest(&data));
    let seen = s.handler.seen.lock().unwrap();
    assert_eq!(
        seen[0].0, "alice",
        "identity from the authorized_keys comment"
    );
    assert_eq!(
        seen[0].2,
        vec![("GIT_PROTOCOL".to_string(), "version=2".to_string())],
        "only the allowed variable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_failures_reach_stderr_with_a_nonzero_status() {
    let s = start().await;
    let (code, out, err) = ssh(&s, &[], "fail", None).await;
    assert_eq!((code, out.is_empty()), (5, true), "{err}");
    assert!(err.contains("it went wrong"), "{err}");
    let (code, _, err) = ssh(&s, &[], "rm -rf /", None).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("portcullis: `rm -rf /` is not allowed"),
        "{err}"
    );
    // `-tt` makes OpenSSH treat the refused pty as fatal (exit 255): we only check it was refused.
    let (_, _, err) = ssh(&s, &["-tt"], "fail", None).await;
    assert!(err.contains("PTY allocation request failed"), "{err}");
    assert!(
        s.handler
            .refused
            .lock()
            .unwrap()
            .contains(&"pty-req".to_string())
    );
}

/// A client that sends its input, EOF and CLOSE at once, without waiting for output.
struct SendAndClose {
    c: portcullis::client::ClientConnection,
    id: Option<u32>,
    data: Vec<u8>,
    sent: usize,
    started: bool,
    closed: bool,
}

impl SendAndClose {
    fn pump(&mut self) -> Result<(), portcullis::error::Error> {
        use portcullis::client::ClientEvent;
        use portcullis::connection::ChannelEvent;
        while let Some(ev) = self.c.poll_event() {
            match ev {
                ClientEvent::Authenticated => self.id = Some(self.c.open_session()?),
                ClientEvent::Channel(ChannelEvent::Opened { id }) => {
                    self.c
                        .request(id, &ChannelRequest::Exec(b"slowcount".to_vec()), true)?;
                }
                ClientEvent::Channel(ChannelEvent::Reply { ok, .. }) => {
                    assert!(ok);
                    self.started = true;
                }
                // The connection stays: commands are killed with it.
                _ => {}
            }
        }
        if let Some(id) = self.id
            && self.started
            && !self.closed
        {
            self.sent += self.c.write(id, &self.data[self.sent..])?;
            if self.sent == self.data.len() {
                self.c.send_eof(id)?;
                self.c.close(id)?;
                self.closed = true;
            }
        }
        Ok(())
    }
}

impl portcullis::driver::Connection for SendAndClose {
    fn handle_input(
        &mut self,
        bytes: &mut [u8],
        now: Instant,
    ) -> Result<usize, portcullis::error::Error> {
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
    fn handle_timeout(&mut self, now: Instant) -> Result<(), portcullis::error::Error> {
        self.c.handle_timeout(now)
    }
    fn is_closed(&self) -> bool {
        self.c.is_closed()
    }
    fn handle_writable(&mut self, _now: Instant) -> Result<(), portcullis::error::Error> {
        self.pump()
    }
}

/// Input that arrived before the client's CLOSE still reaches the command, even when most of
/// it was still in the channel's buffer (the command had not read yet) when the CLOSE came;
/// the command runs on while the connection lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_sent_before_a_close_reaches_the_command() {
    let s = start().await;
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
    let (mut sock, c) = our_client(&s).await;
    let mut app = SendAndClose {
        c,
        id: None,
        data: data.clone(),
        sent: 0,
        started: false,
        closed: false,
    };
    let client = tokio::spawn(async move {
        portcullis::driver::drive(&mut sock, &mut app).await;
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(&n) = s.handler.counted.lock().unwrap().first() {
            assert_eq!(
                n,
                data.len(),
                "the command lost input sent before the CLOSE"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the command never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.abort();
}

/// Issue 15, item 4: `env` requests are capped per session (OpenSSH: 128) and an allowed name
/// keeps only its last value. Before, all 300 were appended and handed to the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_requests_are_capped_and_keep_only_the_last_value() {
    use portcullis::driver::client::spawn_exec;

    let s = start().await;
    let (sock, c) = our_client(&s).await;
    let env: Vec<(Vec<u8>, Vec<u8>)> = (1..=300)
        .map(|i| {
            (
                b"GIT_PROTOCOL".to_vec(),
                format!("version={i}").into_bytes(),
            )
        })
        .collect();
    let mut session = spawn_exec(sock, c, b"cat".to_vec(), env).await.unwrap();
    drop(session.stdin);
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut session.stdout, &mut Vec::new()).await;
    let seen = s.handler.seen.lock().unwrap().clone();
    let (_, command, env) = seen.last().expect("the command ran");
    assert_eq!(command, "cat");
    assert_eq!(
        env,
        &vec![("GIT_PROTOCOL".to_owned(), "version=128".to_owned())],
        "one entry, the last value accepted before the cap"
    );
}

/// A socket to the test server and our client for it (pinned host key, the test user key).
pub async fn our_client<H>(
    s: &Served<H>,
) -> (tokio::net::TcpStream, portcullis::client::ClientConnection) {
    use portcullis::client::{ClientConfig, ClientConnection};
    use portcullis::keys::{PublicKey, key_file};
    use portcullis::transport::Pinned;
    let known = std::fs::read_to_string(&s.known_hosts).unwrap();
    let host = PublicKey::from_openssh(known.split_once(' ').unwrap().1.trim()).unwrap();
    let key = key_file::parse(&std::fs::read_to_string(&s.key).unwrap(), None).unwrap();
    let sock = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .unwrap();
    let c = ClientConnection::new(
        &ClientConfig::default(),
        Box::new(Pinned::Key(host)),
        "git",
        vec![Arc::new(key)],
        Box::new(os_rng().unwrap()),
        Instant::now(),
    )
    .unwrap();
    (sock, c)
}
