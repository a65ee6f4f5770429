//! [`ClientConnection`]: transport, authentication and channels of one outgoing connection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::client::{AuthClient, AuthProgress};
use crate::connection::keepalive::Keepalive;
use crate::connection::{ChannelEvent, ChannelRequest, Connection, ConnectionConfig};
use crate::crypto::rng::SecureRandom;
use crate::error::{DisconnectReason, Error, ProtocolError};
use crate::keys::PrivateKey;
use crate::msg::{MsgNum, ServiceRequest, Unimplemented};
use crate::transport::{HostKeyVerifier, Transport, TransportConfig, TransportEvent};

/// Settings for outgoing connections.
#[derive(Clone, Debug, Default)]
pub struct ClientConfig {
    /// Transport settings.
    pub transport: Arc<TransportConfig>,
    /// Channel settings.
    pub connection: ConnectionConfig,
    /// Also try `ssh-rsa` (SHA-1) signatures with RSA keys.
    pub allow_ssh_rsa: bool,
    /// Probe the server after this long without input (ssh's ServerAliveInterval); `None`
    /// never probes.
    pub keepalive_interval: Option<Duration>,
    /// Unanswered probes before giving up (ServerAliveCountMax).
    pub keepalive_max: u32,
}

/// What the application must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Authentication succeeded: channels can be opened.
    Authenticated,
    /// Every key was refused (the connection is being closed).
    AuthFailed,
    /// A channel event.
    Channel(ChannelEvent),
    /// A transport event, for logging.
    Transport(TransportEvent),
}

/// One client-side connection, sans-IO.
#[derive(Debug)]
pub struct ClientConnection {
    t: Transport,
    auth: AuthClient,
    conn: Connection,
    events: VecDeque<ClientEvent>,
    keepalive: Keepalive,
}

impl ClientConnection {
    /// Starts a connection as `user`, offering `keys` in order; the host key is judged by
    /// `verifier`. The `ssh-userauth` request is queued at once.
    pub fn new(
        config: &ClientConfig,
        verifier: Box<dyn HostKeyVerifier>,
        user: &str,
        keys: Vec<Arc<PrivateKey>>,
        rng: Box<dyn SecureRandom>,
        now: Instant,
    ) -> Result<Self, Error> {
        let mut t = Transport::new_client(config.transport.clone(), verifier, rng, now);
        t.send_msg(&ServiceRequest {
            service: b"ssh-userauth",
        })?;
        Ok(Self {
            t,
            auth: AuthClient::new(user.to_owned(), keys, config.allow_ssh_rsa),
            conn: Connection::new(config.connection.clone()),
            events: VecDeque::new(),
            keepalive: Keepalive::new(config.keepalive_interval, config.keepalive_max),
        })
    }

    /// The transport, for inspection.
    pub fn transport(&self) -> &Transport {
        &self.t
    }

    /// The channel table, for inspection.
    pub fn channels(&self) -> &Connection {
        &self.conn
    }

    /// Whether authentication succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.auth.progress() == AuthProgress::Succeeded
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Consumes input from the server.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<usize, Error> {
        let mut used = 0usize;
        while used < bytes.len() && !self.t.is_closed() {
            // Events first: a read may finish an exchange and then fail on what follows.
            let read = self.t.read(bytes.get(used..).unwrap_or_default(), now);
            while let Some(e) = self.t.poll_event() {
                if let TransportEvent::ServerSigAlgs(list) = &e {
                    self.auth.set_server_sig_algs(list);
                }
                self.events.push_back(ClientEvent::Transport(e));
            }
            let (n, pkt) = read?;
            used = used.saturating_add(n);
            if let Some(p) = pkt {
                let r = self.dispatch(p.payload(), p.seq);
                self.t.recycle(p);
                if let Err(e) = r {
                    self.t.fail(&e);
                    return Err(e);
                }
            } else if n == 0 {
                break;
            }
        }
        if self.is_authenticated() {
            self.keepalive.input(now);
        }
        Ok(used)
    }

    fn dispatch(&mut self, payload: &[u8], seq: u32) -> Result<(), Error> {
        let num = MsgNum(payload.first().copied().unwrap_or(0));
        match num.0 {
            6 | 50..=79 => {
                let before = self.auth.progress();
                let now = self.auth.handle(&mut self.t, payload)?;
                if before != now {
                    match now {
                        AuthProgress::Succeeded => {
                            self.events.push_back(ClientEvent::Authenticated)
                        }
                        AuthProgress::Failed => {
                            self.events.push_back(ClientEvent::AuthFailed);
                            self.t.disconnect(
                                DisconnectReason::NoMoreAuthMethodsAvailable,
                                "no more authentication methods",
                            );
                        }
                        AuthProgress::Pending => {}
                    }
                }
                Ok(())
            }
            80..=127 => {
                if !self.is_authenticated() {
                    return Err(ProtocolError::UnexpectedMessage {
                        phase: "authentication",
                        msg: num.0,
                    }
                    .into());
                }
                self.conn.handle(&mut self.t, payload)?;
                while let Some(e) = self.conn.poll_event() {
                    // Replies to our keepalives: their arrival is all that counts.
                    if !matches!(e, ChannelEvent::GlobalReply { .. }) {
                        self.events.push_back(ClientEvent::Channel(e));
                    }
                }
                Ok(())
            }
            // PONG: an answer to a PING we never send; harmless.
            193 => Ok(()),
            // Anything else: UNIMPLEMENTED, as the RFC asks of both roles [RFC4253 §11.4].
            _ => self.t.send_msg(&Unimplemented { seq }),
        }
    }

    /// Opens a session channel; wait for [`ChannelEvent::Opened`].
    pub fn open_session(&mut self) -> Result<u32, Error> {
        self.conn.open(&mut self.t, b"session")
    }

    /// Sends a request on a channel (`exec`, `env`, …).
    pub fn request(
        &mut self,
        id: u32,
        req: &ChannelRequest,
        want_reply: bool,
    ) -> Result<(), Error> {
        self.conn.request(&mut self.t, id, req, want_reply)
    }

    /// Writes channel data; returns bytes taken.
    pub fn write(&mut self, id: u32, data: &[u8]) -> Result<usize, Error> {
        self.conn.write(&mut self.t, id, None, data)
    }

    /// Reads the server's stdout (`ext` false) or stderr (`ext` true).
    pub fn read(&mut self, id: u32, ext: bool, buf: &mut [u8]) -> Result<usize, Error> {
        self.conn.read(&mut self.t, id, ext, buf)
    }

    /// Hands up to `max` bytes of stdout or stderr to `sink` without a copy of our own.
    pub fn read_with(
        &mut self,
        id: u32,
        ext: bool,
        max: usize,
        sink: impl FnMut(&[u8]),
    ) -> Result<usize, Error> {
        self.conn.read_with(&mut self.t, id, ext, max, sink)
    }

    /// Sends EOF.
    pub fn send_eof(&mut self, id: u32) -> Result<(), Error> {
        self.conn.send_eof(&mut self.t, id)
    }

    /// Closes a channel.
    pub fn close(&mut self, id: u32) -> Result<(), Error> {
        self.conn.close(&mut self.t, id)
    }

    /// Whether writers should pause.
    pub fn send_blocked(&self) -> bool {
        self.t.send_blocked()
    }

    /// Ends the connection.
    pub fn disconnect(&mut self, reason: DisconnectReason, description: &str) {
        self.t.disconnect(reason, description);
    }

    /// Bytes ready for the socket.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.t.poll_transmit(out);
    }

    /// The next timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.t.poll_timeout(), self.keepalive.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires timers.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.keepalive
            .handle_timeout(&mut self.conn, &mut self.t, now)?;
        self.t.handle_timeout(now)
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.t.is_closed()
    }
}
