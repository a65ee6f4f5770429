//! Shared helpers: locating peer binaries, a loopback test server built on our transport, and
//! an OpenSSH sshd started per test with a temporary configuration.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::driver::{Connection, drive, os_rng};
use portcullis::error::Error;
use portcullis::keys::{PrivateKey, PublicKey};
use portcullis::transport::{Transport, TransportConfig, TransportEvent};
use portcullis::wire::Writer;

/// Waits up to 10 s for `child` to accept connections on 127.0.0.1:`port`; kills and reaps
/// it (returning false) if it exits or never does.
pub fn listening(child: &mut std::process::Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// The path of a peer binary, or a failure naming the Debian package that provides it.
pub fn require(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` not found: install the Debian package {package} (apt-get install -y {package}), or run `bash .ci/run`, which does"
    );
}

/// What the test server saw, for assertions.
#[derive(Default)]
pub struct ServerLog {
    pub kex_done: AtomicUsize,
    pub strict_kex: AtomicUsize,
    pub errors: Mutex<Vec<String>>,
}

/// Test-only upper layer: accepts the `ssh-userauth` service and refuses every authentication
/// with "publickey" as the method that can continue. With `rekey_after_auth` it instead lets
/// any request in, starts a re-exchange, and refuses the session channel only after a delay,
/// so the client's own time-based re-exchange gets to run too.
struct RefuseAuth {
    t: Transport,
    log: Arc<ServerLog>,
    rekey_after_auth: bool,
    refuse_channel: Option<(u32, Instant)>,
}

/// How long the channel refusal waits in the re-key test.
const CHANNEL_REFUSAL_DELAY: Duration = Duration::from_millis(2500);

impl Connection for RefuseAuth {
    fn handle_input(&mut self, bytes: &mut [u8], now: Instant) -> Result<usize, Error> {
        // Events first: a read can finish an exchange and then hit the peer's DISCONNECT.
        let read = self.t.read(bytes, now);
        while let Some(ev) = self.t.poll_event() {
            if let TransportEvent::KexDone { strict, .. } = ev {
                self.log.kex_done.fetch_add(1, Ordering::SeqCst);
                if strict {
                    self.log.strict_kex.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        let (used, pkt) = read?;
        if let Some(p) = pkt {
            let payload = p.payload().to_vec();
            self.t.recycle(p);
            match payload.first() {
                Some(5) => {
                    let name = &payload[5..];
                    self.t.send_with(|w| {
                        w.u8(6).string(name);
                    })?;
                }
                Some(50) if self.rekey_after_auth => {
                    self.t.send_with(|w| {
                        w.u8(52);
                    })?;
                    self.t.set_authenticated();
                    self.t.start_rekey(now)?;
                }
                Some(50) => self.t.send_with(|w| {
                    w.u8(51).name_list(["publickey"]).bool(false);
                })?,
                Some(90) => {
                    let mut r = portcullis::wire::Reader::new(&payload[1..]);
                    r.string()?;
                    self.refuse_channel = Some((r.u32()?, now + CHANNEL_REFUSAL_DELAY));
                }
                _ => {}
            }
        }
        Ok(used)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.t.poll_transmit(out);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        let refusal = self.refuse_channel.map(|(_, at)| at);
        [self.t.poll_timeout(), refusal].into_iter().flatten().min()
    }
    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if let Some((id, at)) = self.refuse_channel
            && now >= at
        {
            self.refuse_channel = None;
            self.t.send_with(|w| {
                w.u8(92)
                    .u32(id)
                    .u32(1)
                    .string(b"test server opens no channels")
                    .string(b"");
            })?;
        }
        self.t.handle_timeout(now)
    }
    fn is_closed(&self) -> bool {
        self.t.is_closed()
    }
}

/// Our transport behind [`RefuseAuth`] on 127.0.0.1, one task per connection.
pub struct TestServer {
    pub port: u16,
    pub host_key: PublicKey,
    pub log: Arc<ServerLog>,
}

impl TestServer {
    pub async fn start(config: TransportConfig, rekey_after_auth: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let key = PrivateKey::generate_ed25519(&mut os_rng().unwrap());
        let host_key = key.public();
        let keys: Arc<[PrivateKey]> = Arc::from(vec![key]);
        let config = Arc::new(config);
        let log = Arc::new(ServerLog::default());
        let log2 = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let t = Transport::new_server(
                    config.clone(),
                    keys.clone(),
                    Box::new(os_rng().unwrap()),
                    Instant::now(),
                );
                let log = log2.clone();
                tokio::spawn(async move {
                    let mut conn = RefuseAuth {
                        t,
                        log: log.clone(),
                        rekey_after_auth,
                        refuse_channel: None,
                    };
                    if let portcullis::driver::Ended::Error(e) = drive(&mut sock, &mut conn).await {
                        log.errors.lock().unwrap().push(e.to_string());
                    }
                });
            }
        });
        Self {
            port,
            host_key,
            log,
        }
    }

    /// A known_hosts file pinning this server's key.
    pub fn known_hosts(&self, dir: &Path) -> PathBuf {
        let path = dir.join("known_hosts");
        std::fs::write(
            &path,
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_key.to_openssh()),
        )
        .unwrap();
        path
    }
}

/// Runs the OpenSSH client against 127.0.0.1:`port` with `-v`, isolated from the user's
/// configuration; returns (exit code, stderr).
pub async fn run_ssh(port: u16, known_hosts: &Path, extra: &[&str]) -> (i32, String) {
    run_ssh_with(port, known_hosts, extra, &["-o", "IdentityFile=/dev/null"]).await
}

/// [`run_ssh`] with explicit identity options.
pub async fn run_ssh_with(
    port: u16,
    known_hosts: &Path,
    extra: &[&str],
    identity: &[&str],
) -> (i32, String) {
    let ssh = require("ssh", "openssh-client");
    let mut cmd = tokio::process::Command::new(ssh);
    cmd.args([
        "-v",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
    ])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
    .args([
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
    ])
    .args(identity)
    .args(["-o", "ConnectTimeout=10", "-p", &port.to_string()])
    .args(extra)
    .args(["git@127.0.0.1", "true"])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("ssh hung")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An OpenSSH sshd on 127.0.0.1 with a temporary configuration and host key; killed on drop.
pub struct Sshd {
    pub port: u16,
    pub host_key: PublicKey,
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Sshd {
    /// Authorizes `key` (the only line of authorized_keys) and logs our client in with it.
    pub async fn logged_in(
        &self,
        key: Arc<PrivateKey>,
    ) -> portcullis::driver::client::ClientHandle {
        use portcullis::client::{ClientConfig, ClientConnection};
        std::fs::write(
            self.dir.path().join("authorized_keys"),
            key.public().to_openssh() + "\n",
        )
        .unwrap();
        let sock = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let c = ClientConnection::new(
            &ClientConfig::default(),
            Box::new(portcullis::transport::Pinned::Key(self.host_key.clone())),
            &self.user(),
            vec![key],
            Box::new(os_rng().unwrap()),
            Instant::now(),
        )
        .unwrap();
        portcullis::driver::client::connect(sock, c).await.unwrap()
    }

    pub fn start(extra_config: &str) -> Self {
        let sshd = require("sshd", "openssh-server");
        let keygen = require("ssh-keygen", "openssh-client");
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("host_ed25519");
        let st = std::process::Command::new(keygen)
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success(), "ssh-keygen failed");
        let host_key =
            PublicKey::from_openssh(&std::fs::read_to_string(key.with_extension("pub")).unwrap())
                .unwrap();
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        for _ in 0..20 {
            let port = free_port();
            let cfg = dir.path().join("sshd_config");
            std::fs::write(
                &cfg,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}/sshd.pid\n\
                     AuthorizedKeysFile {}/authorized_keys\nStrictModes no\nUsePAM no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel DEBUG1\n{extra_config}\n",
                    key.display(),
                    dir.path().display(),
                    dir.path().display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
            let mut child = std::process::Command::new(&sshd)
                .args(["-D", "-e", "-f"])
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            if listening(&mut child, port) {
                return Self {
                    port,
                    host_key,
                    dir,
                    child,
                };
            }
        }
        panic!(
            "sshd did not start; log:\n{}",
            std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// What a test needs of an SSH server our client talks to.
pub trait SshServer {
    fn port(&self) -> u16;
    fn host_key(&self) -> PublicKey;
    /// The account our client logs in as.
    fn user(&self) -> String;
    fn log(&self) -> String;
}

impl SshServer for Sshd {
    fn port(&self) -> u16 {
        self.port
    }
    fn host_key(&self) -> PublicKey {
        self.host_key.clone()
    }
    fn user(&self) -> String {
        let out = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
    fn log(&self) -> String {
        Sshd::log(self)
    }
}

/// dropbear's server on 127.0.0.1 with an Ed25519 host key; killed on drop. dropbear reads
/// `~/.ssh/authorized_keys` of the account and has no option to look elsewhere, so it runs in
/// its own mount namespace (`unshare -m`; `-rm` when not root) as "root" with `dir` bound over /root:
/// write the keys to `dir/.ssh/authorized_keys`.
pub struct Dropbear {
    pub port: u16,
    pub host_key: PublicKey,
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Dropbear {
    pub fn start() -> Self {
        let dropbear = require("dropbear", "dropbear-bin");
        let dropbearkey = require("dropbearkey", "dropbear-bin");
        let unshare = require("unshare", "util-linux");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".ssh")).unwrap();
        let key = dir.path().join("host_ed25519");
        let out = std::process::Command::new(&dropbearkey)
            .args(["-t", "ed25519", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "dropbearkey failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("ssh-ed25519 "))
            .expect("dropbearkey printed no public key");
        let host_key = PublicKey::from_openssh(line).unwrap();
        for _ in 0..20 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("dropbear.log")).unwrap();
            let script = format!(
                "mount --bind {dir} /root && exec {dropbear} -F -E -s -m -r {key} -p 127.0.0.1:{port} -P {dir}/dropbear.pid",
                dir = dir.path().display(),
                dropbear = dropbear.display(),
                key = key.display()
            );
            // As root a mount namespace is enough (and dropbear can set groups); otherwise a user
            // namespace maps us to root first.
            let root = std::process::Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
            let mut child = std::process::Command::new(&unshare)
                .arg(if root { "-m" } else { "-rm" })
                .args(["sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            if listening(&mut child, port) {
                return Self {
                    port,
                    host_key,
                    dir,
                    child,
                };
            }
        }
        panic!(
            "dropbear did not start (needs user namespaces for `unshare -rm`); log:\n{}",
            std::fs::read_to_string(dir.path().join("dropbear.log")).unwrap_or_default()
        );
    }

    /// Replaces the authorized keys.
    pub fn authorize(&self, lines: &str) {
        let path = self.dir.path().join(".ssh/authorized_keys");
        std::fs::write(path, lines).unwrap();
    }
}

impl SshServer for Dropbear {
    fn port(&self) -> u16 {
        self.port
    }
    fn host_key(&self) -> PublicKey {
        self.host_key.clone()
    }
    fn user(&self) -> String {
        "root".into()
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dropbear.log")).unwrap_or_default()
    }
}

impl Drop for Dropbear {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An example's binary (built by `cargo test --all-targets`; built here if missing).
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(name);
    if !path.exists() {
        let st = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", name])
            .status()
            .unwrap();
        assert!(st.success(), "cargo build --example {name}");
    }
    path
}

/// A port on 127.0.0.1 that refuses connections for as long as the value lives: a socket is
/// bound to it without listening and without `SO_REUSEADDR`, so no other test (nor another
/// server's `free_port`) can take it. A port from `free_port` is only free for a moment: a
/// test that wants "nothing listens here" and uses one can find another test's server there.
pub struct ClosedPort {
    _held: socket2::Socket,
    pub port: u16,
}

pub fn closed_port() -> ClosedPort {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    sock.bind(&any.into()).unwrap();
    let port = sock.local_addr().unwrap().as_socket().unwrap().port();
    ClosedPort { _held: sock, port }
}

/// A port on 127.0.0.1 nothing listens on now, for a server a test is about to start. Never
/// the same one twice in a run: once released, a port handed out earlier may come back from
/// the kernel while the server it was meant for is still starting.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed.contains(&port) {
            handed.push(port);
            return port;
        }
    }
}

/// Appends a USERAUTH_REQUEST for the "none" method [RFC4252 §5.2].
pub fn userauth_none(w: &mut Writer<'_>, user: &str) {
    w.u8(50)
        .string(user.as_bytes())
        .string(b"ssh-connection")
        .string(b"none");
}

/// The key exchange methods the installed OpenSSH implements (`ssh -Q kex`).
pub fn openssh_kex() -> Vec<String> {
    let out = std::process::Command::new(require("ssh", "openssh-client"))
        .args(["-Q", "kex"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A file of `mib` MiB of incompressible bytes (xorshift); returns its SHA-256 in hex.
pub fn random_file(path: &Path, mib: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut data = vec![0u8; mib << 20];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for c in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
    std::fs::write(path, &data).unwrap();
    hex::encode(Sha256::digest(&data))
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}
