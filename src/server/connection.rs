//! [`ServerConnection`]: transport, authentication and channels of one accepted connection,
//! with the ordering rules between them [RFC4252 §6, RFC4254] and the server's liveness checks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::server::{AuthConfig, AuthOutcome, AuthRequest, AuthServer, Verified};
use crate::connection::keepalive::Keepalive;
use crate::connection::{ChannelEvent, ChannelRequest, Connection, ConnectionConfig};
use crate::crypto::rng::SecureRandom;
use crate::endpoint::{Endpoint, Side};
use crate::error::{AuthError, Error};
use crate::keys::{PrivateKey, PublicKey, SigAlg};
use crate::msg::MsgNum;
use crate::transport::{Transport, TransportConfig, TransportEvent};

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

/// The server's side of a connection: authentication decided by the application.
#[derive(Debug)]
pub struct ServerSide {
    auth: AuthServer,
    pending: Option<AuthRequest>,
}

impl Side for ServerSide {
    type Event = ServerEvent;

    fn is_auth(num: MsgNum) -> bool {
        matches!(num.0, 5 | 50..=79)
    }

    fn auth(
        &mut self,
        t: &mut Transport,
        payload: &[u8],
        events: &mut VecDeque<ServerEvent>,
    ) -> Result<(), Error> {
        if let AuthOutcome::Decide(req) = self.auth.handle(t, payload)? {
            self.pending = Some(req.clone());
            events.push_back(ServerEvent::AuthRequest(req));
        }
        Ok(())
    }

    fn authenticated(&self) -> bool {
        self.auth.is_done()
    }

    fn paused(&self) -> bool {
        self.pending.is_some()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.auth.poll_timeout()
    }

    fn handle_timeout(&mut self, t: &mut Transport, now: Instant) -> Result<(), Error> {
        self.auth.handle_timeout(t, now)
    }

    fn transport_event(e: TransportEvent) -> ServerEvent {
        ServerEvent::Transport(e)
    }

    fn channel_event(e: ChannelEvent) -> ServerEvent {
        ServerEvent::Channel(e)
    }
}

/// One server-side connection, sans-IO.
pub type ServerConnection = Endpoint<ServerSide>;

impl Endpoint<ServerSide> {
    /// A connection accepted at `now`.
    pub fn new(
        config: &ServerConfig,
        host_keys: Arc<[PrivateKey]>,
        rng: Box<dyn SecureRandom>,
        now: Instant,
    ) -> Self {
        Self::with(
            Transport::new_server(config.transport.clone(), host_keys, rng, now),
            ServerSide {
                auth: AuthServer::new(config.auth.clone(), now),
                pending: None,
            },
            Connection::new(config.connection.clone()),
            Keepalive::new(config.keepalive_interval, config.keepalive_max),
        )
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
            .side
            .pending
            .take()
            .ok_or(Error::Auth(AuthError::NoPendingRequest))?;
        match self.side.auth.accept(&mut self.t, flags_ok) {
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
        self.side
            .pending
            .take()
            .ok_or(Error::Auth(AuthError::NoPendingRequest))?;
        let r = self.side.auth.reject(&mut self.t);
        if let Err(e) = &r {
            self.t.fail(e);
        }
        r
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
        sink: impl FnMut(&[u8]) -> usize,
    ) -> Result<usize, Error> {
        self.conn.read_with(&mut self.t, id, false, max, sink)
    }

    /// Drops extended data the client sent on `id` (a server session has no use for it),
    /// returning its window credit: unread, it would pin up to a window per channel.
    pub fn discard_extended(&mut self, id: u32) -> Result<usize, Error> {
        self.conn
            .read_with(&mut self.t, id, true, usize::MAX, <[u8]>::len)
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
}
