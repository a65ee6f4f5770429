//! Runs one outgoing connection in its own task: authentication, then any number of `exec`
//! sessions and tunnels (`direct-tcpip`, ssh's `-L`; remote forwarding, ssh's `-R`, in
//! `forward.rs`), each a channel of that connection with its streams as tokio
//! `AsyncRead`/`AsyncWrite` (bounded pipes, so backpressure reaches the remote window both
//! ways). [`ClientHandle`] is what a pool keeps; [`spawn_exec`] is the one-command form.

mod forward;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::client::{ClientConnection, ClientEvent};
use crate::connection::{ChanState, ChannelEvent, ChannelRequest};
use crate::driver::Ended;
use crate::driver::engine::{self, Role};
use crate::driver::inbuf::InBuf;
use crate::driver::pipe::{Pipe, PipeReader, PipeWriter};
use crate::error::{DisconnectReason, Error};
use crate::msg::{ChannelKind, GlobalRequestKind, TcpipEnds};
use crate::session::ExitStatus;

use forward::Forward;
pub use forward::{Forwarded, RemoteForward};

/// How a remote command ended, or why it never ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteExit {
    /// `exit-status` / `exit-signal` arrived.
    Status(ExitStatus),
    /// The channel closed without an exit status.
    NoStatus,
    /// Authentication failed.
    AuthFailed,
    /// The server's host key was not the expected one (the message names both).
    HostKey(String),
    /// The server would not open a session channel (e.g. its MaxSessions was reached).
    OpenFailed {
        /// RFC 4254 §5.1 reason code.
        reason: u32,
        /// The server's description.
        description: String,
    },
    /// The server refused the command.
    Refused(String),
    /// The connection ended first; why.
    Disconnected(String),
}

impl std::fmt::Display for RemoteExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteExit::Status(ExitStatus::Code(c)) => write!(f, "exit status {c}"),
            RemoteExit::Status(ExitStatus::Signal(s)) => write!(f, "killed by signal {s}"),
            RemoteExit::NoStatus => f.write_str("ended without an exit status"),
            RemoteExit::AuthFailed => f.write_str("authentication refused"),
            RemoteExit::HostKey(why) => write!(f, "host key verification failed: {why}"),
            RemoteExit::OpenFailed { description, .. } => {
                write!(f, "session refused: {description}")
            }
            RemoteExit::Refused(why) => write!(f, "command refused: {why}"),
            RemoteExit::Disconnected(why) => write!(f, "connection lost: {why}"),
        }
    }
}

/// The streams of a remote command.
#[derive(Debug)]
pub struct RemoteSession {
    /// The command's standard input (shut it down for EOF).
    pub stdin: PipeWriter,
    /// Its standard output.
    pub stdout: PipeReader,
    /// Its standard error.
    pub stderr: PipeReader,
    /// Resolves once, when the command is over. Dropping every stream before the command's
    /// output ended closes the channel (the remote command sees its input end).
    pub exit: oneshot::Receiver<RemoteExit>,
}

/// What the connection task is asked to do.
enum Command {
    /// Open a channel of `kind`; for a session, run `command` (`Some`) with `env` on it.
    Open {
        kind: ChannelKind,
        command: Option<Vec<u8>>,
        env: Vec<(Vec<u8>, Vec<u8>)>,
        reply: oneshot::Sender<Result<RemoteSession, RemoteExit>>,
    },
    /// Ask the server to forward connections to `address:port` to us.
    Forward {
        address: String,
        port: u16,
        reply: oneshot::Sender<Result<RemoteForward, RemoteExit>>,
    },
    /// Stop a forwarding ([`RemoteForward`] dropped).
    Cancel { address: String, port: u16 },
}

/// State the task shares with its handles (read without a round trip).
#[derive(Debug)]
struct Shared {
    /// Sessions open or opening.
    sessions: AtomicUsize,
    /// Set when the task has ended.
    ended: AtomicBool,
    /// When the last session ended (or the connection was made).
    idle_since: Mutex<Instant>,
    /// Woken when the task ends.
    gone: Notify,
}

/// An authenticated connection that runs commands as channels. Clones share the connection;
/// it disconnects once every handle is dropped and its last session is over.
#[derive(Clone, Debug)]
pub struct ClientHandle {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl ClientHandle {
    /// Runs `command` with `env` requests on a new channel. Resolves once the server accepted
    /// the command (its `exec` reply), or with why not.
    pub async fn exec(
        &self,
        command: Vec<u8>,
        env: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<RemoteSession, RemoteExit> {
        self.ask(ChannelKind::Session, Some(command), env).await
    }

    /// Opens a `direct-tcpip` channel to `host:port` (ssh's `-L`): the server connects there
    /// and the streams carry that connection — `stdout` what the target sends, `stdin` what
    /// goes to it (shut it down for a half-close), `stderr` stays empty, and `exit` resolves
    /// with [`RemoteExit::NoStatus`] once the channel closed. `originator` names the
    /// connection's source on our side [RFC4254 §7.2]. Resolves once the server opened it, or
    /// with [`RemoteExit::OpenFailed`] and its reason (`connect failed`, `administratively
    /// prohibited`).
    pub async fn direct_tcpip(
        &self,
        host: &str,
        port: u16,
        originator: std::net::SocketAddr,
    ) -> Result<RemoteSession, RemoteExit> {
        let kind = ChannelKind::DirectTcpip(TcpipEnds {
            host: host.as_bytes().to_vec(),
            port: u32::from(port),
            originator: originator.ip().to_string().into_bytes(),
            originator_port: u32::from(originator.port()),
        });
        self.ask(kind, None, Vec::new()).await
    }

    async fn ask(
        &self,
        kind: ChannelKind,
        command: Option<Vec<u8>>,
        env: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<RemoteSession, RemoteExit> {
        let (reply, answer) = oneshot::channel();
        let gone = || RemoteExit::Disconnected("connection closed".into());
        self.shared.sessions.fetch_add(1, Ordering::SeqCst);
        let asked = Command::Open {
            kind,
            command,
            env,
            reply,
        };
        if self.tx.send(asked).await.is_err() {
            self.shared.sessions.fetch_sub(1, Ordering::SeqCst);
            return Err(gone());
        }
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Whether both handles drive the same connection.
    pub fn same(&self, other: &ClientHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Sessions open or opening on this connection.
    pub fn sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::SeqCst)
    }

    /// Whether the connection still runs.
    pub fn is_alive(&self) -> bool {
        !self.shared.ended.load(Ordering::SeqCst) && !self.tx.is_closed()
    }

    /// How long it has had no session; `None` while one runs.
    pub fn idle_for(&self, now: Instant) -> Option<Duration> {
        if self.sessions() > 0 {
            return None;
        }
        let since = *self
            .shared
            .idle_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(now.saturating_duration_since(since))
    }

    /// Resolves when the connection task has ended.
    pub async fn closed(&self) {
        let notified = self.shared.gone.notified();
        if self.shared.ended.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

/// Starts the task for `conn` over `stream` and waits for authentication.
pub async fn connect<S>(stream: S, conn: ClientConnection) -> Result<ClientHandle, RemoteExit>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    let shared = Arc::new(Shared {
        sessions: AtomicUsize::new(0),
        ended: AtomicBool::new(false),
        idle_since: Mutex::new(Instant::now()),
        gone: Notify::new(),
    });
    let (ready_tx, ready) = oneshot::channel();
    let task = Task {
        c: conn,
        rx: Some(rx),
        shared: shared.clone(),
        notify: Arc::new(Notify::new()),
        chans: HashMap::new(),
        ready: Some(ready_tx),
        ids: Vec::new(),
        forwards: Vec::new(),
        tx: tx.downgrade(),
    };
    tokio::spawn(task.run(stream));
    match ready.await {
        Ok(Ok(())) => Ok(ClientHandle { tx, shared }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(RemoteExit::Disconnected("connection task ended".into())),
    }
}

/// Runs `command` over a fresh connection that ends with it.
pub async fn spawn_exec<S>(
    stream: S,
    conn: ClientConnection,
    command: Vec<u8>,
    env: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<RemoteSession, RemoteExit>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handle = connect(stream, conn).await?;
    handle.exec(command, env).await
}

/// One session channel as the task sees it.
struct Chan {
    stdin: Pipe,
    stdout: Pipe,
    stderr: Pipe,
    /// The command to run once the session is open; `None` for a channel that is only a
    /// stream (`direct-tcpip`), handed over as soon as it is open.
    command: Option<Vec<u8>>,
    env: Vec<(Vec<u8>, Vec<u8>)>,
    /// Until the exec reply: where the streams (or the refusal) go.
    reply: Option<oneshot::Sender<Result<RemoteSession, RemoteExit>>>,
    /// The streams, built at open and handed over on the exec reply.
    session: Option<RemoteSession>,
    exit: Option<oneshot::Sender<RemoteExit>>,
    status: Option<ExitStatus>,
    running: bool,
    eof_sent: bool,
    /// The server closed the channel; what it sent before is still being handed over.
    closing: bool,
}

impl Chan {
    fn new(
        notify: &Arc<Notify>,
        command: Option<Vec<u8>>,
        env: Vec<(Vec<u8>, Vec<u8>)>,
        reply: oneshot::Sender<Result<RemoteSession, RemoteExit>>,
    ) -> Self {
        let (stdin, stdout, stderr) = (
            Pipe::new(notify.clone()),
            Pipe::new(notify.clone()),
            Pipe::new(notify.clone()),
        );
        let (exit_tx, exit) = oneshot::channel();
        let session = RemoteSession {
            stdin: PipeWriter(stdin.clone()),
            stdout: PipeReader(stdout.clone()),
            stderr: PipeReader(stderr.clone()),
            exit,
        };
        Self {
            stdin,
            stdout,
            stderr,
            command,
            env,
            reply: Some(reply),
            session: Some(session),
            exit: Some(exit_tx),
            status: None,
            running: false,
            eof_sent: false,
            closing: false,
        }
    }

    /// The channel runs: its streams go to whoever asked.
    fn start(&mut self) {
        if let (Some(reply), Some(session)) = (self.reply.take(), self.session.take()) {
            self.running = true;
            if let Err(Ok(session)) = reply.send(Ok(session)) {
                // Nobody waits any more: drop the streams, which closes the channel.
                drop(session);
            }
        }
    }

    /// Tells whoever waits how it ended and releases the streams.
    fn end(mut self, outcome: RemoteExit) {
        self.stdout.close_write();
        self.stderr.close_write();
        self.stdin.close_read();
        match self.reply.take() {
            Some(reply) => {
                let _ = reply.send(Err(outcome));
            }
            None => {
                if let Some(exit) = self.exit.take() {
                    let _ = exit.send(outcome);
                }
            }
        }
    }

    /// Whether the application dropped every stream (it no longer cares). Not after the
    /// server's EOF: then the exit status and CLOSE are on their way and must not be cut off.
    fn abandoned(&self) -> bool {
        self.session.is_none()
            && self.stdout.reader_gone()
            && self.stderr.reader_gone()
            && self.stdin.lock().write_closed
    }
}

struct Task {
    c: ClientConnection,
    /// `None` once every handle is gone.
    rx: Option<mpsc::Receiver<Command>>,
    shared: Arc<Shared>,
    notify: Arc<Notify>,
    chans: HashMap<u32, Chan>,
    ready: Option<oneshot::Sender<Result<(), RemoteExit>>>,
    /// Scratch list of channel ids for `pump`.
    ids: Vec<u32>,
    /// Our forwardings, in the order asked (replies come back in that order).
    forwards: Vec<Forward>,
    /// Where a forwarding's handle sends its cancel.
    tx: mpsc::WeakSender<Command>,
}

/// The client's part of the connection loop: commands from the handles, the sessions' pipes.
impl Role for Task {
    type Conn = ClientConnection;
    fn conn(&self) -> &ClientConnection {
        &self.c
    }
    fn conn_mut(&mut self) -> &mut ClientConnection {
        &mut self.c
    }
    fn pump(&mut self) -> Result<(), Error> {
        self.pump_channels()
    }
    async fn input(&mut self, inbuf: &mut InBuf) -> Result<(), Error> {
        engine::feed(inbuf, |bytes| {
            if self.c.is_closed() {
                return Ok(0);
            }
            // The server's output goes straight into its pipe as each packet is decoded,
            // while the pipe has room (one copy less than through the channel's buffer).
            let chans = &self.chans;
            let mut deliver = |id: u32, ext: bool, data: &[u8]| {
                chans.get(&id).map_or(0, |ch| {
                    if ext { &ch.stderr } else { &ch.stdout }.offer(data)
                })
            };
            let n = self
                .c
                .handle_input_with(bytes, Instant::now(), &mut deliver)?;
            self.events()?;
            Ok(n)
        })
    }
    async fn wake(&mut self, _writing: bool) -> Result<(), Error> {
        let command = async {
            match self.rx.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.notify.notified() => Ok(()),
            cmd = command => match cmd {
                Some(asked) => self.command(asked),
                None => {
                    self.rx = None;
                    Ok(())
                }
            },
        }
    }
}

impl Task {
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(mut self, mut stream: S) {
        let ended = engine::run(&mut stream, &mut self, None).await;
        let why = ended.to_string();
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(match ended {
                Ended::Error(Error::HostKeyRejected(m)) => RemoteExit::HostKey(m),
                _ => RemoteExit::Disconnected(why.clone()),
            }));
        }
        for (_, ch) in self.chans.drain() {
            let outcome = match ch.status.clone() {
                Some(s) if ch.closing => RemoteExit::Status(s),
                _ => RemoteExit::Disconnected(why.clone()),
            };
            ch.end(outcome);
        }
        // Late requests find the receiver closed and fail fast.
        if let Some(rx) = self.rx.as_mut() {
            rx.close();
            while let Some(asked) = rx.recv().await {
                let gone = RemoteExit::Disconnected(why.clone());
                match asked {
                    Command::Open { reply, .. } => drop(reply.send(Err(gone))),
                    Command::Forward { reply, .. } => drop(reply.send(Err(gone))),
                    Command::Cancel { .. } => {}
                }
            }
        }
        for f in self.forwards.drain(..) {
            if let Some(reply) = f.reply {
                let _ = reply.send(Err(RemoteExit::Disconnected(why.clone())));
            }
        }
        self.shared.sessions.store(0, Ordering::SeqCst);
        self.shared.ended.store(true, Ordering::SeqCst);
        self.shared.gone.notify_waiters();
    }

    fn command(&mut self, asked: Command) -> Result<(), Error> {
        match asked {
            Command::Open {
                kind,
                command,
                env,
                reply,
            } => self.open(&kind, command, env, reply),
            Command::Forward {
                address,
                port,
                reply,
            } => {
                self.c.tcpip_forward(&address, port)?;
                self.forwards.push(Forward {
                    address,
                    port,
                    reply: Some(reply),
                    to: None,
                });
                Ok(())
            }
            Command::Cancel { address, port } => {
                self.forwards
                    .retain(|f| !(f.address == address && f.port == port));
                self.c.cancel_tcpip_forward(&address, port)
            }
        }
    }

    fn open(
        &mut self,
        kind: &ChannelKind,
        command: Option<Vec<u8>>,
        env: Vec<(Vec<u8>, Vec<u8>)>,
        reply: oneshot::Sender<Result<RemoteSession, RemoteExit>>,
    ) -> Result<(), Error> {
        match self.c.open_channel(kind) {
            Ok(id) => {
                self.chans
                    .insert(id, Chan::new(&self.notify, command, env, reply));
                Ok(())
            }
            // Our own channel limit: this connection is full, not broken.
            Err(Error::Channel(why)) => {
                self.session_ended();
                let _ = reply.send(Err(RemoteExit::OpenFailed {
                    reason: crate::connection::reason::RESOURCE_SHORTAGE,
                    description: why.to_string(),
                }));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn session_ended(&self) {
        if self.shared.sessions.fetch_sub(1, Ordering::SeqCst) == 1 {
            *self
                .shared
                .idle_since
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        }
    }

    fn events(&mut self) -> Result<(), Error> {
        while let Some(ev) = self.c.poll_event() {
            match ev {
                ClientEvent::Authenticated => {
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Ok(()));
                    }
                }
                ClientEvent::AuthFailed => {
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Err(RemoteExit::AuthFailed));
                    }
                }
                ClientEvent::Channel(ev) => self.channel_event(ev)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn channel_event(&mut self, ev: ChannelEvent) -> Result<(), Error> {
        match ev {
            ChannelEvent::OpenRequest {
                id,
                kind: ChannelKind::ForwardedTcpip(ends),
            } if self.forwarded_to(&ends).is_some() => self.accept_forwarded(id, ends)?,
            ChannelEvent::GlobalReply {
                request: GlobalRequestKind::TcpipForward { .. },
                ok,
                bound_port,
            } => self.forward_answered(ok, bound_port),
            // What we did not ask for (x11, agent, a port we do not forward) is refused at
            // once, as ssh refuses it.
            ChannelEvent::OpenRequest { id, kind } => {
                tracing::debug!(kind = %crate::log_safe::LogSafe(kind.name()), "upstream opened a channel; refused");
                self.c.reject_open(
                    id,
                    crate::connection::reason::PROHIBITED,
                    "no channels are accepted",
                )?;
            }
            ChannelEvent::Opened { id } => {
                if let Some(ch) = self.chans.get_mut(&id) {
                    for (name, value) in std::mem::take(&mut ch.env) {
                        self.c
                            .request(id, &ChannelRequest::Env { name, value }, false)?;
                    }
                    match ch.command.take() {
                        Some(command) => {
                            self.c.request(id, &ChannelRequest::Exec(command), true)?;
                        }
                        // A stream channel runs from its confirmation.
                        None => ch.start(),
                    }
                }
            }
            ChannelEvent::OpenFailed {
                id,
                reason,
                description,
            } => {
                if let Some(ch) = self.chans.remove(&id) {
                    self.session_ended();
                    ch.end(RemoteExit::OpenFailed {
                        reason,
                        description,
                    });
                }
            }
            ChannelEvent::Reply { id, ok } => {
                if let Some(ch) = self.chans.get_mut(&id) {
                    if ok && ch.reply.is_some() {
                        ch.start();
                    } else if let Some(reply) = ch.reply.take() {
                        ch.session = None;
                        let _ = reply.send(Err(RemoteExit::Refused("exec refused".into())));
                        self.c.close(id)?;
                    }
                }
            }
            ChannelEvent::Request { id, request, .. } => {
                if let Some(ch) = self.chans.get_mut(&id) {
                    match request {
                        ChannelRequest::ExitStatus(code) => {
                            ch.status = Some(ExitStatus::Code(code));
                        }
                        ChannelRequest::ExitSignal { signal, .. } => {
                            ch.status = Some(ExitStatus::Signal(
                                String::from_utf8_lossy(&signal).into_owned(),
                            ));
                        }
                        _ => {}
                    }
                }
            }
            // Not done yet: the channel may still hold more output than the pipes take.
            ChannelEvent::Closed { id } => {
                if let Some(ch) = self.chans.get_mut(&id) {
                    ch.closing = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Channel → stdout/stderr pipes, only into free space (window credit follows
    /// consumption); output nobody reads any more is discarded.
    fn drain_output(&mut self, id: u32) -> Result<(), Error> {
        let Some(ch) = self.chans.get(&id) else {
            return Ok(());
        };
        for (pipe, ext) in [(&ch.stdout, false), (&ch.stderr, true)] {
            // A pipe nobody reads any more has unbounded room and drops what it is given.
            let room = pipe.room();
            if room > 0 && self.c.channels().channel(id).is_some() {
                self.c.read_with(id, ext, room, |chunk| pipe.push(chunk))?;
            }
        }
        if self
            .c
            .channels()
            .channel(id)
            .is_none_or(|c| c.eof_received() && c.buffered() == 0)
        {
            ch.stdout.close_write();
            ch.stderr.close_write();
        }
        Ok(())
    }

    /// stdin pipe → channel as far as the window allows; EOF once the writer is done.
    fn send_input(&mut self, id: u32) -> Result<(), Error> {
        let Some(ch) = self.chans.get_mut(&id) else {
            return Ok(());
        };
        if ch.eof_sent
            || !ch.running
            || self
                .c
                .channels()
                .channel(id)
                .is_none_or(|c| c.state != ChanState::Open || c.close_sent())
        {
            return Ok(());
        }
        loop {
            let mut err = None;
            let c = &mut self.c;
            let used = ch.stdin.drain(|data| match c.write(id, data) {
                Ok(n) => n,
                Err(e) => {
                    err = Some(e);
                    0
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
            if used == 0 {
                break;
            }
        }
        if ch.stdin.finished() {
            ch.eof_sent = true;
            self.c.send_eof(id)?;
        }
        Ok(())
    }

    fn pump_channels(&mut self) -> Result<(), Error> {
        self.events()?;
        // A reused list of ids: this runs once per batch of packets.
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        ids.extend(self.chans.keys().copied());
        for &id in &ids {
            self.drain_output(id)?;
            let Some(ch) = self.chans.get(&id) else {
                continue;
            };
            if ch.closing {
                // Finished once everything the server sent is in the pipes.
                if self
                    .c
                    .channels()
                    .channel(id)
                    .is_none_or(|c| c.buffered() == 0)
                    && let Some(ch) = self.chans.remove(&id)
                {
                    self.session_ended();
                    let outcome = ch
                        .status
                        .clone()
                        .map_or(RemoteExit::NoStatus, RemoteExit::Status);
                    ch.end(outcome);
                }
                continue;
            }
            self.send_input(id)?;
            // Nobody holds the streams: input already written goes out as far as the window
            // allows now (EOF after it if all went), then the channel closes, so a stalled
            // server cannot pin it.
            if let Some(ch) = self.chans.get(&id)
                && ch.running
                && ch.abandoned()
                && !self
                    .c
                    .channels()
                    .channel(id)
                    .is_some_and(|c| c.eof_received())
            {
                self.c.close(id)?;
            }
        }
        self.ids = ids;
        if self.rx.is_none() && self.chans.is_empty() && !self.c.is_closed() {
            self.c.disconnect(DisconnectReason::ByApplication, "done");
        }
        Ok(())
    }
}
