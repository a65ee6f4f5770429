//! [`ServerConnection`]: transport, authentication and channels of one accepted connection,
//! with the ordering rules between them [RFC4252 §6, RFC4254] and the server's liveness checks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::server::{AuthConfig, AuthOutcome, AuthRequest, AuthServer, Verified};
use crate::connection::keepalive::Keepalive;
use crate::connection::{ChannelEvent, ChannelRequest, Connection, ConnectionConfig};
use crate::crypto::rng::SecureRandom;
use crate::error::{AuthError, DisconnectReason, Error, ProtocolError};
use crate::keys::{PrivateKey, PublicKey, SigAlg};
use crate::msg::{MsgNum, Ping, Pong, Unimplemented};
use crate::transport::{Transport, TransportConfig, TransportEvent};
use crate::wire::Decode;

/// Everything a listener configures once for all its connections.
#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    /// Transport settings.
    pub transport: Arc<TransportConfig>,
    /// Authentication policy.
    pub auth: AuthConfig,
    /// Channel settings.
    pub connection: ConnectionConfig,
    /// Send `keepalive@openssh.com` after this long without input (OpenSSH's
    /// ClientAliveInterval); `None` disables it.
    pub keepalive_interval: Option<Duration>,
    /// Unanswered keepalives before disconnecting (ClientAliveCountMax).
    pub keepalive_max: u32,
}

/// What the application must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A public key request: decide with [`ServerConnection::accept_auth`] or `reject_auth`.
    /// Input is paused until then.
    AuthRequest(AuthRequest),
    /// USERAUTH_SUCCESS was sent for this user and key.
    Authenticated {
        /// User name.
        user: String,
        /// The key whose signature verified.
        key: PublicKey,
        /// The algorithm the request named.
        algorithm: SigAlg,
        /// What the signature used, and a security key's flags.
        verified: Verified,
    },
    /// A channel event.
    Channel(ChannelEvent),
    /// A transport event (kex finished, debug, …), for logging.
    Transport(TransportEvent),
}

/// One server-side connection, sans-IO.
#[derive(Debug)]
pub struct ServerConnection {
    t: Transport,
    auth: AuthServer,
    conn: Connection,
    events: VecDeque<ServerEvent>,
    keepalive: Keepalive,
    pending: Option<AuthRequest>,
}

impl ServerConnection {
    /// A connection accepted at `now`.
    pub fn new(
        config: &ServerConfig,
        host_keys: Arc<[PrivateKey]>,
        rng: Box<dyn SecureRandom>,
        now: Instant,
    ) -> Self {
        Self {
            t: Transport::new_server(config.transport.clone(), host_keys, rng, now),
            auth: AuthServer::new(config.auth.clone(), now),
            conn: Connection::new(config.connection.clone()),
            events: VecDeque::new(),
            keepalive: Keepalive::new(config.keepalive_interval, config.keepalive_max),
            pending: None,
        }
    }

    /// The transport, for inspection (session id, peer version, …).
    pub fn transport(&self) -> &Transport {
        &self.t
    }

    /// The channel table, for inspection.
    pub fn channels(&self) -> &Connection {
        &self.conn
    }

    /// Whether authentication succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.auth.is_done()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Consumes input; stops early (returns fewer bytes) while an authentication decision is
    /// pending, so the decision applies before anything the client sent after it.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<usize, Error> {
        let mut used = 0usize;
        while used < bytes.len() && self.pending.is_none() && !self.t.is_closed() {
            // Events first: a read may finish an exchange and then fail on what follows.
            let read = self.t.read(bytes.get(used..).unwrap_or_default(), now);
            self.drain_transport_events();
            let (n, pkt) = read?;
            used = used.saturating_add(n);
            if let Some(p) = pkt {
                let seq = p.seq;
                let result = self.dispatch(p.payload(), seq, now);
                self.t.recycle(p);
                if let Err(e) = result {
                    self.t.fail(&e);
                    return Err(e);
                }
            } else if n == 0 {
                break;
            }
        }
        if self.auth.is_done() {
            self.keepalive.input(now);
        }
        Ok(used)
    }

    fn drain_transport_events(&mut self) {
        while let Some(e) = self.t.poll_event() {
            self.events.push_back(ServerEvent::Transport(e));
        }
    }

    fn dispatch(&mut self, payload: &[u8], seq: u32, now: Instant) -> Result<(), Error> {
        let num = MsgNum(payload.first().copied().unwrap_or(0));
        match num.0 {
            5 | 50..=79 => match self.auth.handle(&mut self.t, payload)? {
                AuthOutcome::Nothing => Ok(()),
                AuthOutcome::Decide(req) => {
                    self.pending = Some(req.clone());
                    self.events.push_back(ServerEvent::AuthRequest(req));
                    Ok(())
                }
            },
            80..=127 => {
                // The connection protocol starts only after success [RFC4252 §6].
                if !self.auth.is_done() {
                    return Err(ProtocolError::UnexpectedMessage {
                        phase: "authentication",
                        msg: num.0,
                    }
                    .into());
                }
                self.conn.handle(&mut self.t, payload)?;
                while let Some(e) = self.conn.poll_event() {
                    if let ChannelEvent::GlobalReply { .. } = e {
                        // Any answer proves the client alive.
                        continue;
                    }
                    self.events.push_back(ServerEvent::Channel(e));
                }
                Ok(())
            }
            // ping@openssh.com: answered only after authentication [PROTOCOL §1.9]; a reply
            // sent during a key exchange waits in the transport's queue until it ends.
            192 => {
                let Ping { data } = Ping::decode_exact(payload.get(1..).unwrap_or_default())?;
                if self.auth.is_done() {
                    self.t.send_msg(&Pong { data })?;
                }
                Ok(())
            }
            _ => {
                let _ = now;
                self.t.send_msg(&Unimplemented { seq })
            }
        }
    }

    /// Accepts the pending authentication request: PK_OK for a query, USERAUTH_SUCCESS for a
    /// verified signature (the key in that request is the authenticated identity).
    pub fn accept_auth(&mut self) -> Result<(), Error> {
        self.accept_auth_if(|_| true)
    }

    /// [`ServerConnection::accept_auth`], requiring `flags_ok` of a security key's signature
    /// flags (the key's `no-touch-required` / `verify-required` policy). A signature that does
    /// not verify, or whose flags are refused, fails the request instead.
    pub fn accept_auth_if(
        &mut self,
        flags_ok: impl FnOnce(Option<u8>) -> bool,
    ) -> Result<(), Error> {
        let req = self
            .pending
            .take()
            .ok_or(Error::Auth(AuthError::NoPendingRequest))?;
        match self.auth.accept(&mut self.t, flags_ok) {
            Ok(Some(verified)) => {
                self.events.push_back(ServerEvent::Authenticated {
                    user: req.user,
                    key: req.key,
                    algorithm: req.algorithm,
                    verified,
                });
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                self.t.fail(&e);
                Err(e)
            }
        }
    }

    /// Rejects the pending authentication request.
    pub fn reject_auth(&mut self) -> Result<(), Error> {
        self.pending
            .take()
            .ok_or(Error::Auth(AuthError::NoPendingRequest))?;
        let r = self.auth.reject(&mut self.t);
        if let Err(e) = &r {
            self.t.fail(e);
        }
        r
    }

    /// Accepts a channel the client opened.
    pub fn accept_open(&mut self, id: u32) -> Result<(), Error> {
        self.conn.accept_open(&mut self.t, id)
    }

    /// Refuses a channel the client opened.
    pub fn reject_open(&mut self, id: u32, reason: u32, description: &str) -> Result<(), Error> {
        self.conn.reject_open(&mut self.t, id, reason, description)
    }

    /// Answers the oldest pending want-reply request on `id`.
    pub fn reply_request(&mut self, id: u32, ok: bool) -> Result<(), Error> {
        self.conn.reply_request(&mut self.t, id, ok)
    }

    /// Writes stdout (`ext` None) or stderr (`Some(1)`) data; returns bytes taken.
    pub fn write(&mut self, id: u32, ext: Option<u32>, data: &[u8]) -> Result<usize, Error> {
        self.conn.write(&mut self.t, id, ext, data)
    }

    /// How many stdout bytes [`ServerConnection::write`] would take now.
    pub fn write_room(&self, id: u32) -> usize {
        self.conn.write_room(&self.t, id)
    }

    /// Reads channel data the client sent (its stdin).
    pub fn read(&mut self, id: u32, buf: &mut [u8]) -> Result<usize, Error> {
        self.conn.read(&mut self.t, id, false, buf)
    }

    /// Hands up to `max` bytes of the client's data to `sink` without a copy of our own.
    pub fn read_with(
        &mut self,
        id: u32,
        max: usize,
        sink: impl FnMut(&[u8]),
    ) -> Result<usize, Error> {
        self.conn.read_with(&mut self.t, id, false, max, sink)
    }

    /// Drops extended data the client sent on `id` (a server session has no use for it),
    /// returning its window credit: unread, it would pin up to a window per channel.
    pub fn discard_extended(&mut self, id: u32) -> Result<usize, Error> {
        self.conn
            .read_with(&mut self.t, id, true, usize::MAX, |_| {})
    }

    /// Sends `exit-status` [RFC4254 §6.10].
    pub fn exit_status(&mut self, id: u32, code: u32) -> Result<(), Error> {
        self.conn
            .request(&mut self.t, id, &ChannelRequest::ExitStatus(code), false)
    }

    /// Sends `exit-signal` [RFC4254 §6.10].
    pub fn exit_signal(&mut self, id: u32, signal: &str, message: &str) -> Result<(), Error> {
        let req = ChannelRequest::ExitSignal {
            signal: signal.as_bytes().to_vec(),
            core_dumped: false,
            message: message.as_bytes().to_vec(),
        };
        self.conn.request(&mut self.t, id, &req, false)
    }

    /// Sends EOF on `id`.
    pub fn send_eof(&mut self, id: u32) -> Result<(), Error> {
        self.conn.send_eof(&mut self.t, id)
    }

    /// Closes `id`.
    pub fn close(&mut self, id: u32) -> Result<(), Error> {
        self.conn.close(&mut self.t, id)
    }

    /// Whether writers should pause (transport backpressure).
    pub fn send_blocked(&self) -> bool {
        self.t.send_blocked()
    }

    /// Disconnects with `reason`.
    pub fn disconnect(&mut self, reason: DisconnectReason, description: &str) {
        self.t.disconnect(reason, description);
    }

    /// Bytes ready for the socket.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.t.poll_transmit(out);
    }

    /// The earliest timer: login grace, keepalive, rekey.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.t.poll_timeout(),
            self.auth.poll_timeout(),
            self.keepalive.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires expired timers.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.auth.handle_timeout(&mut self.t, now)?;
        self.keepalive
            .handle_timeout(&mut self.conn, &mut self.t, now)?;
        self.t.handle_timeout(now)
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.t.is_closed()
    }
}

impl crate::driver::Connection for ServerConnection {
    fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<usize, Error> {
        ServerConnection::handle_input(self, bytes, now)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        ServerConnection::poll_transmit(self, out);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ServerConnection::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        ServerConnection::handle_timeout(self, now)
    }
    fn is_closed(&self) -> bool {
        ServerConnection::is_closed(self)
    }
}
