//! Runs one accepted connection: a [`ServerConnection`] over a socket, authentication decided
//! by a [`KeyLookup`], and each `exec` handed to a [`SessionHandler`] that runs it as a task
//! reading and writing the channel through [`PipeReader`]/[`PipeWriter`], or handing a
//! process's output to the driver to read itself ([`PipeWriter::attach`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinSet;

use crate::auth::server::AuthRequest;
use crate::connection::{Channel, ChannelEvent, ChannelRequest, reason};
use crate::driver::attached;
use crate::driver::engine::{self, Role};
use crate::driver::inbuf::InBuf;
use crate::driver::pipe::{Pipe, PipeReader, PipeWriter};
use crate::driver::tcp::QuickAck;
use crate::driver::{Ended, stopped};
use crate::error::{AuthError, ChannelError, Error};
use crate::keys::PublicKey;
use crate::limits::MAX_ENV_REQUESTS;
use crate::log_safe::{LogSafe, log_safe};
use crate::lookup::{Identity, KeyLookup};
use crate::monitoring::METRICS;
use crate::msg::ChannelKind;
use crate::server::{ServerConnection, ServerEvent};
use crate::session::{ExecDecision, ExitStatus, SessionContext, SessionHandler, SessionIo};
use crate::transport::TransportEvent;

mod forward;

struct Session {
    /// Tells a finished task's status apart from a later channel that reused the id.
    serial: u64,
    /// Dropped with the session: the task's `gone` fires.
    _alive: Option<oneshot::Sender<()>>,
    stdin: Pipe,
    stdout: Pipe,
    stderr: Pipe,
    env: Vec<(Vec<u8>, Vec<u8>)>,
    /// `env` requests seen, allowed or not (capped at `MAX_ENV_REQUESTS`).
    env_requests: u32,
    /// Closed unless a command starts by then.
    start_by: Instant,
    started: bool,
    exit: Option<ExitStatus>,
    done: bool,
}

impl Session {
    /// Ends a session that runs nothing: `message` on stderr, exit status 1 (a refused command,
    /// the greeting of a `shell` request).
    fn finish_with(&mut self, message: &str) {
        self.stderr.push(format!("{message}\n").as_bytes());
        self.stdout.close_write();
        self.stderr.close_write();
        self.exit = Some(ExitStatus::Code(1));
    }
}

struct Driver {
    s: ServerConnection,
    lookup: Arc<dyn KeyLookup>,
    handler: Arc<dyn SessionHandler>,
    peer: SocketAddr,
    notify: Arc<Notify>,
    sessions: HashMap<u32, Session>,
    /// Sessions whose channel the client closed while their task still runs (by serial): the
    /// task gets what the client sent before closing, then EOF, and its output is discarded —
    /// as sshd lets a command run on after the channel went. Killed with the connection.
    detached: HashMap<u64, Session>,
    next_serial: u64,
    tasks: JoinSet<(u64, ExitStatus)>,
    /// Scratch list of session ids for `pump`.
    ids: Vec<u32>,
    /// Where attached output sources are read to (see [`attached::poll_sources`]); empty while none
    /// streams.
    scratch: Vec<u8>,
    identity: Option<(String, Identity, PublicKey)>,
    candidate: Option<Identity>,
    /// Lookup answers of this connection, by (user, key blob).
    looked_up: Vec<LookedUp>,
    /// The caller's place among unauthenticated connections, given back at authentication.
    unauthenticated: Option<crate::driver::admission::Ticket>,
    /// When the connection began (for the handshake time).
    started: Instant,
    /// Becomes `true` when the server's drain period is over: the connection is closed with a
    /// DISCONNECT saying so. `None` once acted on (or for a connection nobody stops).
    stop: Option<watch::Receiver<bool>>,
    /// Port forwardings the policy allowed: listeners, connects, tunnels.
    fwd: forward::Forwarding,
}

type LookedUp = ((String, Vec<u8>), Option<Identity>);

/// `peer` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) turned into the IPv4 one.
pub fn canonical(peer: SocketAddr) -> SocketAddr {
    SocketAddr::new(peer.ip().to_canonical(), peer.port())
}

/// Serves one connection until it ends. The caller spawned it and owns the socket.
pub fn serve<S>(
    stream: S,
    peer: SocketAddr,
    s: ServerConnection,
    lookup: Arc<dyn KeyLookup>,
    handler: Arc<dyn SessionHandler>,
) -> impl std::future::Future<Output = Ended>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    serve_with(stream, peer, s, lookup, handler, Held::default(), None)
}

/// What a listener holds over one connection besides its socket.
#[derive(Debug, Default)]
pub struct Held {
    /// A slot of the caller's limit on connections that have not logged in, given back when the
    /// client authenticates or the connection ends.
    pub unauthenticated: Option<crate::driver::admission::Ticket>,
    /// The server's stop signal: when it turns `true` the connection is closed with a
    /// DISCONNECT ("server shutting down"), whatever it is doing.
    pub stop: Option<watch::Receiver<bool>>,
}

/// [`serve`] over TCP, with what the listener holds over the connection ([`Held`]); the
/// socket's reads are paced while the client is behind a stream ([`QuickAck::pace`]).
pub fn serve_limited(
    stream: QuickAck,
    peer: SocketAddr,
    s: ServerConnection,
    lookup: Arc<dyn KeyLookup>,
    handler: Arc<dyn SessionHandler>,
    held: Held,
) -> impl std::future::Future<Output = Ended> {
    serve_with(stream, peer, s, lookup, handler, held, Some(QuickAck::pace))
}

/// Serves one connection: [`serve`] and [`serve_limited`].
///
/// Not an `async fn`: one would keep its arguments (the connection, ~1 KiB) in the future
/// beside the driver they are moved into, for the connection's whole life. The driver is
/// built here and the future owns only it (and the stream): a held connection's task is that
/// much smaller.
fn serve_with<S>(
    mut stream: S,
    peer: SocketAddr,
    s: ServerConnection,
    lookup: Arc<dyn KeyLookup>,
    handler: Arc<dyn SessionHandler>,
    held: Held,
    pace: Option<fn(&mut S)>,
) -> impl std::future::Future<Output = Ended>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d: compare, log and
    // export it as the IPv4 address it is (a `from="!10.0.0.0/8"` must match it).
    let peer = canonical(peer);
    let mut d = Driver {
        s,
        lookup,
        handler,
        peer,
        notify: Arc::new(Notify::new()),
        sessions: HashMap::new(),
        detached: HashMap::new(),
        next_serial: 0,
        tasks: JoinSet::new(),
        ids: Vec::new(),
        scratch: Vec::new(),
        identity: None,
        candidate: None,
        looked_up: Vec::new(),
        unauthenticated: held.unauthenticated,
        started: Instant::now(),
        stop: held.stop,
        fwd: forward::Forwarding::default(),
    };
    async move {
        let ended = engine::run(&mut stream, &mut d, pace).await;
        // Whatever still runs sees its input end (EOF on stdin), while its output stays open
        // until the task ended: a git stopping on EOF can still write its last words instead
        // of dying of SIGPIPE (a receive-pack killed by a signal leaves its quarantine behind).
        let mut outputs = Vec::new();
        for sess in d.sessions.values().chain(d.detached.values()) {
            sess.stdin.close_write();
            sess.stdin.release_sink();
            outputs.push(sess.stdout.clone());
            outputs.push(sess.stderr.clone());
        }
        // Then the sessions go, so each task's `gone` fires, and the tasks get to finish: a git
        // task kills its process group (hooks, pack-objects) and logs its session line.
        // Dropping the tasks instead would abort them mid-await and skip both. Bounded: a
        // handler that ignores `gone` is aborted after TASK_CLEANUP.
        d.sessions.clear();
        d.detached.clear();
        let drained = tokio::time::timeout(crate::limits::TASK_CLEANUP, async {
            while d.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(peer = %d.peer, tasks = d.tasks.len(), "session tasks did not end in time; aborted");
        }
        for p in outputs {
            p.close_read();
        }
        ended
    }
}

/// The server's part of the connection loop: authentication decided as requests come, session
/// tasks and their pipes, the stop signal.
impl Role for Driver {
    type Conn = ServerConnection;
    fn conn(&self) -> &ServerConnection {
        &self.s
    }
    fn conn_mut(&mut self) -> &mut ServerConnection {
        &mut self.s
    }
    fn pump(&mut self) -> Result<(), Error> {
        self.pump_sessions()?;
        self.pump_tunnels()
    }
    fn deadline(&self) -> Option<Instant> {
        // (A session's start deadline is handled by the next `pump`.)
        [self.s.poll_timeout(), self.next_start_deadline()]
            .into_iter()
            .flatten()
            .min()
    }
    async fn input(&mut self, inbuf: &mut InBuf) -> Result<(), Error> {
        self.feed(inbuf).await
    }
    fn peer_behind(&self) -> bool {
        self.sessions.iter().any(|(&id, sess)| {
            !sess.done
                && self
                    .s
                    .channels()
                    .channel(id)
                    .is_some_and(Channel::peer_behind)
                && sess.stdout.remote_output()
        })
    }
    async fn wake(&mut self, writing: bool) -> Result<(), Error> {
        tokio::select! {
            () = self.notify.notified() => {}
            () = stopped(&mut self.stop) => {
                tracing::info!(peer = %self.peer, identity = %log_safe(self.identity.as_ref().map_or("-", |i| i.1.name.as_str())), "disconnecting: the shutdown grace period is over");
                self.stop = None;
                // OpenSSH's sshd has nothing to compare (its children outlive a restart);
                // "by application" is the RFC's closest reason.
                self.s.disconnect(crate::error::DisconnectReason::ByApplication, "server shutting down");
            }
            moved = std::future::poll_fn(|cx| {
                // Client → process (always: it only frees window), process → client (only
                // while no output waits for the socket).
                let live = self.sessions.iter().map(|(&id, s)| (Some(id), &s.stdin));
                let detached = self.detached.values().map(|s| (None, &s.stdin));
                let tunnels = self.fwd.tunnels.iter().map(|(&id, t)| (Some(id), &t.to_socket));
                let closing = self.fwd.closing.iter().map(|p| (None, p));
                let inputs = live.chain(detached).chain(tunnels).chain(closing);
                let written = attached::poll_sinks(&mut self.s, inputs, cx);
                if let Poll::Ready(Err(e)) = written {
                    return Poll::Ready(Err(e));
                }
                let read = if writing {
                    Poll::Pending
                } else {
                    let outputs = self.sessions.iter().filter(|(_, s)| !s.done);
                    let outputs = outputs.map(|(&id, s)| (id, &s.stdout));
                    let tunnels = self.fwd.tunnels.iter().filter(|(_, t)| !t.eof_sent);
                    let outputs = outputs.chain(tunnels.map(|(&id, t)| (id, &t.from_socket)));
                    attached::poll_sources(&mut self.s, outputs, &mut self.scratch, cx)
                };
                if written.is_ready() || read.is_ready() {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            }) => return moved,
            // (A connect task cannot panic; one aborted has nobody waiting.)
            Some(Ok((id, stream))) = self.fwd.connecting.join_next() => {
                self.direct_connected(id, stream)?;
            }
            accepted = std::future::poll_fn(|cx| forward::poll_accept(&self.fwd.listeners, cx)),
                if !self.fwd.listeners.is_empty()
                    && self.s.channels().open_channels() < self.s.channels().config().max_channels =>
            {
                self.forwarded(accepted)?;
            }
            Some(done) = self.tasks.join_next() => {
                if let Ok((serial, status)) = done
                    && self.detached.remove(&serial).is_none()
                    && let Some(sess) =
                        self.sessions.values_mut().find(|s| s.serial == serial)
                {
                    sess.exit = Some(status);
                }
            }
        }
        Ok(())
    }
}

impl Driver {
    /// Feeds buffered input, deciding authentication requests (awaiting the lookup) as they come.
    async fn feed(&mut self, inbuf: &mut InBuf) -> Result<(), Error> {
        let mut at = 0;
        while at < inbuf.data().len() && !self.s.is_closed() {
            let input = inbuf.data_mut().get_mut(at..).unwrap_or_default();
            // Only a packet that may cost expensive exchange work goes off the I/O worker;
            // light input (KEXINIT, X25519 with Ed25519, NEWKEYS, …) runs inline: a hand-off
            // to another thread costs more than it does.
            let n = if self.s.transport().kex_may_be_heavy() {
                let s = &mut self.s;
                crate::driver::kex_work(|| s.handle_input(input, Instant::now())).await?
            } else {
                self.s.handle_input_light(input, Instant::now())?
            };
            at = at.saturating_add(n);
            let progressed = self.events().await?;
            if n == 0 && !progressed {
                break;
            }
        }
        inbuf.consume(at);
        Ok(())
    }

    /// Handles queued events; returns whether an authentication decision was made.
    async fn events(&mut self) -> Result<bool, Error> {
        let mut decided = false;
        while let Some(ev) = self.s.poll_event() {
            match ev {
                ServerEvent::AuthRequest(req) => {
                    // The key is looked up first; the core verifies a signature only after
                    // we accepted the key, so an unknown key costs no verification.
                    let Ok(found) = self.lookup_cached(&req).await else {
                        // The backend could not answer: not a refusal of the key. The client
                        // is told to come back (ssh prints the reason) instead of being denied.
                        METRICS.auth("publickey", "backend_unavailable");
                        self.s.disconnect(
                            crate::error::DisconnectReason::ServiceNotAvailable,
                            "key lookup temporarily unavailable, try again later",
                        );
                        return Ok(true);
                    };
                    match found {
                        Some(id) => {
                            // Security keys: the signature's flags must satisfy the key's options.
                            self.s.accept_auth_if(|flags| id.accepts_flags(flags))?;
                            // Read when the `Authenticated` event this may queue comes next.
                            self.candidate = Some(id);
                            if !req.signed {
                                METRICS.auth("publickey", "query_accepted");
                            } else if !self.s.is_authenticated() {
                                METRICS.auth("publickey", "bad_signature");
                            }
                        }
                        None => {
                            let result = if req.signed {
                                "unknown_key"
                            } else {
                                "query_refused"
                            };
                            METRICS.auth("publickey", result);
                            if req.signed {
                                tracing::info!(peer = %self.peer, user = %log_safe(&req.user), key = %req.key.fingerprint(), "key not authorized");
                            }
                            self.s.reject_auth()?;
                        }
                    }
                    decided = true;
                }
                ServerEvent::Authenticated {
                    user,
                    key,
                    algorithm,
                    verified,
                } => {
                    METRICS.auth("publickey", "success");
                    if verified.algorithm != algorithm {
                        tracing::info!(peer = %self.peer, named = algorithm.wire_name(), "client signed with ssh-rsa under an rsa-sha2 name");
                    }
                    if let Some(id) = self.candidate.take() {
                        // sshd's "Accepted publickey for …" line.
                        tracing::info!(peer = %self.peer, user = %log_safe(&user), identity = %log_safe(&id.name), key = %key.fingerprint(), "authenticated");
                        self.identity = Some((user, id, key));
                    }
                    self.unauthenticated = None;
                    // No request is looked up after success [RFC4252 §5.1]: a held
                    // connection keeps no cache.
                    self.looked_up = Vec::new();
                }
                ServerEvent::Channel(ChannelEvent::GlobalRequest {
                    request,
                    want_reply,
                }) => self.global_request(request, want_reply).await?,
                ServerEvent::Channel(ev) => self.channel_event(ev)?,
                ServerEvent::Transport(TransportEvent::KexDone {
                    algorithms: a,
                    initial,
                    strict,
                }) => {
                    if initial {
                        METRICS.handshake(
                            self.started.elapsed().as_secs_f64(),
                            a.kex.wire_name(),
                            a.cipher_c2s.wire_name(),
                        );
                    }
                    tracing::debug!(
                        peer = %self.peer,
                        kex = a.kex.wire_name(),
                        host_key = a.host_key.wire_name(),
                        cipher = a.cipher_c2s.wire_name(),
                        mac = a.mac_c2s.map_or("(aead)", |m| m.wire_name()),
                        initial,
                        strict,
                        "key exchange done"
                    );
                }
                ServerEvent::Transport(_) => {}
            }
        }
        Ok(decided)
    }

    /// The lookup's answer for (user, key), asked once per connection: a client repeating a
    /// query (PK_OK ones are not failures) costs no second lookup. At most
    /// `MAX_AUTH_REQUESTS` entries; a backend error is not cached. `Err`: the backend failed.
    async fn lookup_cached(&mut self, req: &AuthRequest) -> Result<Option<Identity>, ()> {
        // A certificate is its own entry: the same key offered plain is another question.
        let blob = req
            .cert
            .as_ref()
            .map_or_else(|| req.key.to_blob(), |c| c.blob().to_vec());
        let k = (req.user.clone(), blob);
        if let Some(hit) = self.looked_up.iter().find(|(key, _)| *key == k) {
            return Ok(hit.1.clone());
        }
        let asked = Instant::now();
        let answer = match &req.cert {
            Some(cert) => {
                self.lookup
                    .lookup_cert(&req.user, cert, self.peer.ip())
                    .await
            }
            None => {
                self.lookup
                    .lookup(&req.user, &req.key, self.peer.ip())
                    .await
            }
        };
        METRICS.lookup(asked.elapsed(), answer.is_ok());
        match answer {
            Ok(who) => {
                self.looked_up.push((k, who.clone()));
                Ok(who)
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "key lookup failed; the client is told to retry later");
                Err(())
            }
        }
    }

    /// When the oldest session still without a command must have one.
    fn next_start_deadline(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter(|s| !s.started)
            .map(|s| s.start_by)
            .min()
    }

    fn context(&self, env: Vec<(Vec<u8>, Vec<u8>)>) -> Option<SessionContext> {
        let (user, identity, key) = self.identity.clone()?;
        Some(SessionContext {
            user,
            identity,
            key,
            peer: self.peer,
            env,
        })
    }

    fn channel_event(&mut self, ev: ChannelEvent) -> Result<(), Error> {
        match ev {
            ChannelEvent::OpenRequest { id, kind } => {
                let limit = self.s.channels().config().max_channels;
                if kind == ChannelKind::Session
                    && self.sessions.len().saturating_add(self.detached.len()) >= limit
                {
                    // Commands still running for closed channels count against the limit.
                    self.s
                        .reject_open(id, reason::RESOURCE_SHORTAGE, "too many sessions")?;
                } else if kind == ChannelKind::Session {
                    self.s.accept_open(id)?;
                    let n = || Pipe::new(self.notify.clone());
                    self.next_serial = self.next_serial.wrapping_add(1);
                    self.sessions.insert(
                        id,
                        Session {
                            serial: self.next_serial,
                            _alive: None,
                            stdin: n(),
                            stdout: n(),
                            stderr: n(),
                            env: Vec::new(),
                            env_requests: 0,
                            start_by: Instant::now()
                                .checked_add(self.handler.start_timeout())
                                .unwrap_or_else(Instant::now),
                            started: false,
                            exit: None,
                            done: false,
                        },
                    );
                } else if let ChannelKind::DirectTcpip(ends) = &kind {
                    self.open_direct(id, ends)?;
                } else {
                    tracing::info!(peer = %self.peer, kind = %LogSafe(kind.name()), "channel type refused");
                    self.s
                        .reject_open(id, reason::PROHIBITED, "only sessions are supported")?;
                }
            }
            ChannelEvent::Request {
                id,
                request,
                want_reply,
            } => self.request(id, request, want_reply)?,
            ChannelEvent::Opened { id } => self.forwarded_answered(id, true),
            ChannelEvent::OpenFailed { id, .. } => self.forwarded_answered(id, false),
            ChannelEvent::Closed { id } => {
                self.tunnel_closed(id);
                if let Some(sess) = self.sessions.remove(&id) {
                    // Data that arrived before the CLOSE is still the task's input [RFC4254
                    // §5.3 ends the channel, not what it carried]. It is bounded by our window,
                    // so it may overfill the pipe once. Nothing can have arrived yet on a new
                    // channel that reused the id.
                    let stdin = &sess.stdin;
                    let _ = self.s.read_with(id, usize::MAX, |chunk| stdin.push(chunk));
                    sess.stdin.close_write();
                    sess.stdout.close_read();
                    sess.stderr.close_read();
                    if sess._alive.is_some() && sess.exit.is_none() {
                        self.detached.insert(sess.serial, sess);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn request(&mut self, id: u32, request: ChannelRequest, want_reply: bool) -> Result<(), Error> {
        let ok = match &request {
            ChannelRequest::Exec(command) => self.start_exec(id, command, &request)?,
            _ => self.session_request(id, &request),
        };
        if want_reply {
            self.s.reply_request(id, ok)
        } else {
            Ok(())
        }
    }

    /// `env`, `shell` and the requests we refuse; whether it was accepted.
    fn session_request(&mut self, id: u32, request: &ChannelRequest) -> bool {
        let shell_message = match request {
            ChannelRequest::Shell => self
                .context(Vec::new())
                .and_then(|ctx| self.handler.shell(&ctx)),
            _ => None,
        };
        let Some(sess) = self.sessions.get_mut(&id) else {
            return false;
        };
        match request {
            // Counted whether allowed or not; past the cap refused without a word (OpenSSH: 128).
            ChannelRequest::Env { .. } if sess.env_requests >= MAX_ENV_REQUESTS => false,
            ChannelRequest::Env { name, value }
                if !sess.started && self.handler.env_allowed(name, value) =>
            {
                sess.env_requests = sess.env_requests.saturating_add(1);
                // The last value of a name wins; memory stays one entry per allowed name.
                match sess.env.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1.clone_from(value),
                    None => sess.env.push((name.clone(), value.clone())),
                }
                true
            }
            ChannelRequest::Shell if !sess.started => match shell_message {
                Some(message) => {
                    sess.started = true;
                    sess.finish_with(&message);
                    true
                }
                None => false,
            },
            other => {
                if let ChannelRequest::Env { .. } = other {
                    sess.env_requests = sess.env_requests.saturating_add(1);
                }
                self.refused(other);
                false
            }
        }
    }

    /// An `exec`: the handler runs it as a task or refuses it with a message (either way the
    /// request was taken); a second command on a session is refused.
    fn start_exec(
        &mut self,
        id: u32,
        command: &[u8],
        request: &ChannelRequest,
    ) -> Result<bool, Error> {
        let Some(sess) = self.sessions.get_mut(&id) else {
            return Ok(false);
        };
        if sess.started {
            self.refused(request);
            return Ok(false);
        }
        sess.started = true;
        let serial = sess.serial;
        let env = sess.env.clone();
        let (alive, gone) = oneshot::channel();
        sess._alive = Some(alive);
        let io = SessionIo {
            stdin: PipeReader(sess.stdin.clone()),
            stdout: PipeWriter(sess.stdout.clone()),
            stderr: PipeWriter(sess.stderr.clone()),
            gone,
        };
        let Some(ctx) = self.context(env) else {
            return Err(Error::Auth(AuthError::NoIdentity));
        };
        match self.handler.exec(&ctx, command, io) {
            ExecDecision::Run(task) => {
                self.tasks.spawn(async move { (serial, task.await) });
            }
            ExecDecision::Refuse(message) => self
                .sessions
                .get_mut(&id)
                .ok_or(Error::Channel(ChannelError::SessionVanished))?
                .finish_with(&message),
        }
        Ok(true)
    }

    /// Tells the policy about a request we refuse (for its log).
    fn refused(&self, request: &ChannelRequest) {
        if let Some(ctx) = self.context(Vec::new()) {
            self.handler.refused(&ctx, request);
        }
    }

    /// Moves bytes between channels and pipes as far as windows and pipe space allow, and
    /// finishes sessions whose task is done and whose output is delivered.
    fn pump_sessions(&mut self) -> Result<(), Error> {
        // A reused list of ids: this runs once per batch of packets.
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        ids.extend(self.sessions.keys().copied());
        let now = self.next_start_deadline().map(|_| Instant::now());
        for &id in &ids {
            let Some(sess) = self.sessions.get_mut(&id) else {
                continue;
            };
            if sess.done {
                continue;
            }
            if !sess.started && now.is_some_and(|now| now >= sess.start_by) {
                tracing::info!(peer = %self.peer, channel = id, "session closed: no command in time");
                sess.started = true;
                sess.done = true;
                self.s.send_eof(id)?;
                self.s.close(id)?;
                continue;
            }
            // Extended data from a client has no reader here: dropped, its credit returned
            // (only when some arrived: this runs once per batch of packets).
            if self
                .s
                .channels()
                .channel(id)
                .is_some_and(|c| c.extended_buffered() > 0)
            {
                self.s.discard_extended(id)?;
            }
            // Client → task, only into free pipe space: window credit follows consumption.
            let room = sess.stdin.room();
            if room > 0 {
                let stdin = &sess.stdin;
                self.s.read_with(id, room, |chunk| stdin.push(chunk))?;
            }
            if self
                .s
                .channels()
                .channel(id)
                .is_some_and(|c| c.eof_received() && c.buffered() == 0)
            {
                sess.stdin.close_write();
            }
            // Task → client, as far as the window and the transport take it.
            for (pipe, ext) in [(&sess.stdout, None), (&sess.stderr, Some(1))] {
                send_pipe(&mut self.s, id, ext, pipe);
            }
            if let Some(status) = sess.exit.clone()
                && sess.stdout.finished()
                && sess.stderr.finished()
            {
                sess.done = true;
                match status {
                    ExitStatus::Code(code) => self.s.exit_status(id, code)?,
                    ExitStatus::Signal(sig) => self.s.exit_signal(id, &sig, "")?,
                }
                self.s.send_eof(id)?;
                self.s.close(id)?;
            }
        }
        self.ids = ids;
        Ok(())
    }
}

/// Sends what waits in `pipe` on channel `id` (`ext`: as that extended data type), as far as
/// the window and the transport take it.
fn send_pipe(s: &mut ServerConnection, id: u32, ext: Option<u32>, pipe: &Pipe) {
    loop {
        let mut err = None;
        let used = pipe.drain(|data| match s.write(id, ext, data) {
            Ok(n) => n,
            Err(e) => {
                err = Some(e);
                0
            }
        });
        if let Some(e) = err {
            // The client closed the channel under us; stop writing to it.
            tracing::debug!(channel = id, error = %e, "write to channel failed");
            pipe.close_read();
            return;
        }
        if used == 0 {
            return;
        }
    }
}

/// Copies `stdin` to `stdout` (a test helper and an example of a handler's task).
pub async fn echo(mut io: SessionIo) -> ExitStatus {
    let ok = tokio::io::copy(&mut io.stdin, &mut io.stdout).await.is_ok()
        && io.stdout.shutdown().await.is_ok();
    ExitStatus::Code(if ok { 0 } else { 1 })
}
