//! Loads built on our own client role: many idle authenticated connections (more than `ssh`
//! processes fit), and the transport ceiling (our client against our server, no git).

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::client::{ClientConfig, ClientConnection};
use portcullis::driver::client::{ClientHandle, connect};
use portcullis::driver::os_rng;
use portcullis::driver::server::serve;
use portcullis::keys::{PrivateKey, PublicKey, key_file};
use portcullis::lookup::FileLookup;
use portcullis::server::{ServerConfig, ServerConnection};
use portcullis::session::{ExecDecision, ExitStatus, SessionContext, SessionHandler, SessionIo};
use portcullis::transport::{CipherAlg, MacAlg, Pinned, TransportConfig};
use tokio::io::AsyncReadExt;

use crate::efficiency::{Sides, ThreadSet};

fn load_key(path: &Path) -> PrivateKey {
    key_file::parse(&std::fs::read_to_string(path).unwrap(), None).unwrap()
}

fn load_public(path: &Path) -> PublicKey {
    PublicKey::from_openssh(&std::fs::read_to_string(path.with_extension("pub")).unwrap()).unwrap()
}

async fn dial(
    port: u16,
    source: Option<Ipv4Addr>,
    user: &str,
    key: Arc<PrivateKey>,
    host: PublicKey,
    config: &ClientConfig,
) -> Option<ClientHandle> {
    let s = tokio::net::TcpSocket::new_v4().ok()?;
    if let Some(src) = source {
        s.bind((src, 0).into()).ok()?;
    }
    let sock = s.connect((Ipv4Addr::LOCALHOST, port).into()).await.ok()?;
    let _ = sock.set_nodelay(true);
    let c = ClientConnection::new(
        config,
        Box::new(Pinned::Key(host)),
        user,
        vec![key],
        Box::new(os_rng().ok()?),
        Instant::now(),
    )
    .ok()?;
    connect(sock, c).await.ok()
}

/// Loopback sources the held connections come from: 127.0.1.1 … 127.0.1.16, so that 100,000
/// fit in the ephemeral port range (about 28,000 per source and destination).
const SOURCES: u8 = 16;

/// Opens `k` authenticated connections without sessions (like `ssh -N`), 64 handshakes at a
/// time, from [`SOURCES`] addresses in turn; returns them (held until dropped) and how many
/// failed.
pub fn hold_idle(
    port: u16,
    user: &str,
    user_key: &Path,
    host_key: &Path,
    k: usize,
) -> (tokio::runtime::Runtime, Vec<ClientHandle>, usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = Arc::new(load_key(user_key));
    let host = load_public(host_key);
    let user = user.to_owned();
    let (handles, failed) = rt.block_on(async move {
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = Vec::with_capacity(k);
        for i in 0..k {
            let (sem, key, host, user) = (sem.clone(), key.clone(), host.clone(), user.clone());
            let source = Ipv4Addr::new(127, 0, 1, 1 + (i % usize::from(SOURCES)) as u8);
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.ok()?;
                tokio::time::timeout(
                    Duration::from_secs(60),
                    dial(
                        port,
                        Some(source),
                        &user,
                        key,
                        host,
                        &ClientConfig::default(),
                    ),
                )
                .await
                .ok()
                .flatten()
            }));
        }
        let mut held = Vec::with_capacity(k);
        let mut failed = 0;
        for t in tasks {
            match t.await.ok().flatten() {
                Some(h) => held.push(h),
                None => failed += 1,
            }
        }
        (held, failed)
    });
    (rt, handles, failed)
}

struct Zeros;

impl SessionHandler for Zeros {
    fn exec(&self, _: &SessionContext, command: &[u8], io: SessionIo) -> ExecDecision {
        let n: u64 = String::from_utf8_lossy(command).parse().unwrap_or(0);
        // As git's output is sent: the driver reads the producer itself.
        ExecDecision::Run(Box::pin(async move {
            let out = io.stdout.attach(tokio::io::repeat(0).take(n));
            out.ended().await;
            if out.moved() == n {
                ExitStatus::Code(0)
            } else {
                ExitStatus::Code(1)
            }
        }))
    }
}

/// Our client reading `bytes` from our server over loopback with `cipher` (and `mac`), both in
/// this process, each side on its own one-worker runtime: MB/s of the server → client stream,
/// and each side's CPU per GiB (all of its runtime's threads, from the first byte asked for).
pub fn ceiling(
    work: &Path,
    user_key: &Path,
    host_key: &Path,
    cipher: CipherAlg,
    mac: Option<MacAlg>,
    bytes: u64,
) -> (f64, Sides) {
    let runtime = |name: &str, threads: &ThreadSet| {
        let threads = threads.clone();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .on_thread_start(move || threads.register())
            .enable_all()
            .build()
            .unwrap()
    };
    let (server_threads, client_threads) = (ThreadSet::default(), ThreadSet::default());
    let srt = runtime("bench-server", &server_threads);
    let crt = runtime("bench-client", &client_threads);
    let ak = work.join("ceiling_authorized_keys");
    std::fs::write(
        &ak,
        std::fs::read_to_string(user_key.with_extension("pub")).unwrap(),
    )
    .unwrap();
    let host = load_key(host_key);
    let host_pub = host.public();
    let key = Arc::new(load_key(user_key));
    let listener = srt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let keys: Arc<[PrivateKey]> = Arc::from(vec![host]);
    let lookup = Arc::new(FileLookup::new(ak));
    srt.spawn(async move {
        let (sock, peer) = listener.accept().await.unwrap();
        let _ = sock.set_nodelay(true);
        let s = ServerConnection::new(
            &ServerConfig::default(),
            keys,
            Box::new(os_rng().unwrap()),
            Instant::now(),
        );
        serve(sock, peer, s, lookup, Arc::new(Zeros)).await;
    });
    let mut t = TransportConfig::default();
    t.preferences.ciphers = vec![cipher];
    if let Some(m) = mac {
        t.preferences.macs = vec![m];
    }
    let config = ClientConfig {
        transport: Arc::new(t),
        ..ClientConfig::default()
    };
    let (st, ct) = (server_threads.clone(), client_threads.clone());
    let task = crt.spawn(async move {
        let h = dial(port, None, "bench", key, host_pub, &config)
            .await
            .unwrap();
        let (s0, c0, sk0, ck0) = (st.cpu(), ct.cpu(), st.system(), ct.system());
        let start = Instant::now();
        let s = h
            .exec(bytes.to_string().into_bytes(), Vec::new())
            .await
            .unwrap();
        let mut out = s.stdout;
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            let n = out.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        assert_eq!(got, bytes);
        let wall = start.elapsed().as_secs_f64();
        let gib = got as f64 / (1u64 << 30) as f64;
        let sides = Sides {
            send: (st.cpu() - s0) / gib,
            recv: (ct.cpu() - c0) / gib,
            send_kernel: (st.system() - sk0) / gib,
            recv_kernel: (ct.system() - ck0) / gib,
        };
        (got as f64 / wall / 1e6, sides)
    });
    let r = crt.block_on(task).unwrap();
    drop(crt);
    drop(srt);
    r
}
