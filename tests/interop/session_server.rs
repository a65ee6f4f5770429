//! A test-only application on `ServerConnection`: authorizes a fixed set of keys and runs
//! three fake commands on session channels: `echo` (stdin back to stdout), `sha256` (hex digest
//! of stdin), `fail N MESSAGE` (MESSAGE on stderr, exit status N). Everything else is refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use portcullis::connection::{ChannelEvent, ChannelRequest, ConnectionConfig, reason};
use portcullis::driver::{Connection, Ended, drive, os_rng};
use portcullis::error::Error;
use portcullis::keys::{PrivateKey, PublicKey, SigAlg};
use portcullis::msg::ChannelKind;
use portcullis::server::{ServerConfig, ServerConnection, ServerEvent};
use portcullis::transport::TransportEvent;
use sha2::{Digest, Sha256};

#[derive(Default)]
pub struct AppLog {
    pub authenticated: Mutex<Vec<(String, PublicKey)>>,
    pub auth_algs: Mutex<Vec<Option<SigAlg>>>,
    pub refused_requests: Mutex<Vec<String>>,
    pub refused_opens: Mutex<Vec<String>>,
    pub errors: Mutex<Vec<String>>,
    pub max_buffered: AtomicUsize,
    pub kex: AtomicUsize,
}

enum Mode {
    Waiting,
    Echo,
    Sha256(Sha256),
    Done,
}

struct Session {
    mode: Mode,
    out: Vec<u8>,
    /// Read at most this much per pump (a slow consumer).
    read_chunk: usize,
}

struct App {
    s: ServerConnection,
    allowed: Arc<Vec<PublicKey>>,
    log: Arc<AppLog>,
    sessions: HashMap<u32, Session>,
    read_chunk: usize,
    /// A slow consumer reads once per tick of this timer.
    slow_tick: Option<Instant>,
}

impl App {
    fn pump(&mut self) -> Result<(), Error> {
        while let Some(ev) = self.s.poll_event() {
            match ev {
                ServerEvent::AuthRequest(req) => {
                    if self.allowed.contains(&req.key) {
                        self.s.accept_auth()?;
                    } else {
                        self.s.reject_auth()?;
                    }
                }
                ServerEvent::Authenticated {
                    user,
                    key,
                    verified,
                    ..
                } => {
                    self.log
                        .auth_algs
                        .lock()
                        .unwrap()
                        .push(Some(verified.algorithm));
                    self.log.authenticated.lock().unwrap().push((user, key))
                }
                ServerEvent::Transport(TransportEvent::KexDone { .. }) => {
                    self.log.kex.fetch_add(1, Ordering::SeqCst);
                }
                ServerEvent::Transport(_) => {}
                ServerEvent::Channel(ChannelEvent::OpenRequest { id, kind }) => {
                    if kind == ChannelKind::Session {
                        self.s.accept_open(id)?;
                        let read_chunk = self.read_chunk;
                        self.sessions.insert(
                            id,
                            Session {
                                mode: Mode::Waiting,
                                out: Vec::new(),
                                read_chunk,
                            },
                        );
                    } else {
                        self.log
                            .refused_opens
                            .lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(kind.name()).into_owned());
                        self.s
                            .reject_open(id, reason::PROHIBITED, "only sessions")?;
                    }
                }
                ServerEvent::Channel(ChannelEvent::Request {
                    id,
                    request,
                    want_reply,
                }) => self.on_request(id, request, want_reply)?,
                ServerEvent::Channel(ChannelEvent::Closed { id }) => {
                    self.sessions.remove(&id);
                }
                ServerEvent::Channel(
                    ChannelEvent::Readable { id }
                    | ChannelEvent::Writable { id }
                    | ChannelEvent::Eof { id },
                ) => self.step(id)?,
                ServerEvent::Channel(_) => {}
                _ => {}
            }
        }
        let ids: Vec<u32> = self.sessions.keys().copied().collect();
        for id in ids {
            self.step(id)?;
        }
        Ok(())
    }

    fn on_request(
        &mut self,
        id: u32,
        request: ChannelRequest,
        want_reply: bool,
    ) -> Result<(), Error> {
        let ok = match &request {
            ChannelRequest::Exec(cmd) => {
                let cmd = String::from_utf8_lossy(cmd).into_owned();
                let session = self.sessions.get_mut(&id).unwrap();
                if cmd == "echo" {
                    session.mode = Mode::Echo;
                    true
                } else if cmd == "sha256" {
                    session.mode = Mode::Sha256(Sha256::new());
                    true
                } else if let Some(rest) = cmd.strip_prefix("fail ") {
                    let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                    session.mode = Mode::Done;
                    if want_reply {
                        self.s.reply_request(id, true)?;
                    }
                    self.s.write(id, Some(1), format!("{msg}\n").as_bytes())?;
                    self.s.exit_status(id, code.parse().unwrap_or(1))?;
                    self.s.send_eof(id)?;
                    self.s.close(id)?;
                    return Ok(());
                } else {
                    false
                }
            }
            _ => false,
        };
        if !ok {
            self.log
                .refused_requests
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(request.name()).into_owned());
        }
        if want_reply {
            self.s.reply_request(id, ok)?;
        }
        Ok(())
    }

    fn step(&mut self, id: u32) -> Result<(), Error> {
        let Some(session) = self.sessions.get_mut(&id) else {
            return Ok(());
        };
        if let Some(ch) = self.s.channels().channel(id) {
            self.log
                .max_buffered
                .fetch_max(ch.buffered(), Ordering::SeqCst);
        }
        let mut buf = vec![0u8; session.read_chunk];
        loop {
            match &mut session.mode {
                Mode::Waiting | Mode::Done => return Ok(()),
                Mode::Echo => {
                    if !session.out.is_empty() {
                        let n = self.s.write(id, None, &session.out)?;
                        session.out.drain(..n);
                        if !session.out.is_empty() {
                            return Ok(());
                        }
                    }
                    let n = self.s.read(id, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    session.out.extend_from_slice(&buf[..n]);
                }
                Mode::Sha256(h) => {
                    let n = self.s.read(id, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    if session.read_chunk < 16 * 1024 {
                        // A slow consumer: one small read per millisecond.
                        self.slow_tick = Some(Instant::now() + std::time::Duration::from_millis(1));
                        return Ok(());
                    }
                }
            }
        }
        let eof = self
            .s
            .channels()
            .channel(id)
            .is_some_and(|c| c.eof_received() && c.buffered() == 0);
        if eof && session.out.is_empty() {
            if let Mode::Sha256(h) = std::mem::replace(&mut session.mode, Mode::Done) {
                let hex = format!("{}\n", hex::encode(h.finalize()));
                self.s.write(id, None, hex.as_bytes())?;
            }
            session.mode = Mode::Done;
            self.s.exit_status(id, 0)?;
            self.s.send_eof(id)?;
            self.s.close(id)?;
        }
        Ok(())
    }
}

impl Connection for App {
    fn handle_input(&mut self, bytes: &mut [u8], now: Instant) -> Result<usize, Error> {
        let mut used = 0;
        while used < bytes.len() && !self.s.is_closed() {
            let n = self.s.handle_input(&bytes[used..], now)?;
            used += n;
            self.pump()?;
            if n == 0 {
                break;
            }
        }
        Ok(used)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.s.poll_transmit(out);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        [self.s.poll_timeout(), self.slow_tick]
            .into_iter()
            .flatten()
            .min()
    }
    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.slow_tick.is_some_and(|t| now >= t) {
            self.slow_tick = None;
        }
        self.s.handle_timeout(now)?;
        self.pump()
    }
    fn is_closed(&self) -> bool {
        self.s.is_closed()
    }
    fn handle_writable(&mut self, _now: Instant) -> Result<(), Error> {
        self.pump()
    }
}

pub struct SessionServer {
    pub port: u16,
    pub host_key: PublicKey,
    pub log: Arc<AppLog>,
}

impl SessionServer {
    pub async fn start(config: ServerConfig, allowed: Vec<PublicKey>, read_chunk: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let key = PrivateKey::generate_ed25519(&mut os_rng().unwrap());
        let host_key = key.public();
        let keys: Arc<[PrivateKey]> = Arc::from(vec![key]);
        let log = Arc::new(AppLog::default());
        let (log2, allowed) = (log.clone(), Arc::new(allowed));
        let config = Arc::new(config);
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let s = ServerConnection::new(
                    &config,
                    keys.clone(),
                    Box::new(os_rng().unwrap()),
                    Instant::now(),
                );
                let mut app = App {
                    s,
                    allowed: allowed.clone(),
                    log: log2.clone(),
                    sessions: HashMap::new(),
                    read_chunk,
                    slow_tick: None,
                };
                let log = log2.clone();
                tokio::spawn(async move {
                    if let Ended::Error(e) = drive(&mut sock, &mut app).await {
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

    pub fn known_hosts(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("known_hosts");
        std::fs::write(
            &path,
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_key.to_openssh()),
        )
        .unwrap();
        path
    }
}

/// A small window makes flow control do the work in the slow-consumer test.
pub fn small_window_config() -> ServerConfig {
    ServerConfig {
        connection: ConnectionConfig {
            window: 64 * 1024,
            ..Default::default()
        },
        ..Default::default()
    }
}
