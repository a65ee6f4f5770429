//! [`ClientConnection`]: transport, authentication and channels of one outgoing connection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::client::{AuthClient, AuthProgress};
use crate::connection::keepalive::Keepalive;
use crate::connection::{ChannelEvent, ChannelRequest, Connection, ConnectionConfig};
use crate::crypto::rng::SecureRandom;
use crate::endpoint::{Endpoint, Side};
use crate::error::{DisconnectReason, Error};
use crate::keys::PrivateKey;
use crate::msg::{ChannelKind, GlobalRequestKind, MsgNum, ServiceRequest, TcpipEnds};
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

/// The client's side of a connection: authentication with our keys, in order.
#[derive(Debug)]
pub struct ClientSide {
    auth: AuthClient,
}

impl Side for ClientSide {
    type Event = ClientEvent;

    fn is_auth(num: MsgNum) -> bool {
        matches!(num.0, 6 | 50..=79)
    }

    fn auth(
        &mut self,
        t: &mut Transport,
        payload: &[u8],
        events: &mut VecDeque<ClientEvent>,
    ) -> Result<(), Error> {
        let before = self.auth.progress();
        let now = self.auth.handle(t, payload)?;
        if before != now {
            match now {
                AuthProgress::Succeeded => events.push_back(ClientEvent::Authenticated),
                AuthProgress::Failed => {
                    events.push_back(ClientEvent::AuthFailed);
                    t.disconnect(
                        DisconnectReason::NoMoreAuthMethodsAvailable,
                        "no more authentication methods",
                    );
                }
                AuthProgress::Pending => {}
            }
        }
        Ok(())
    }

    fn authenticated(&self) -> bool {
        self.auth.progress() == AuthProgress::Succeeded
    }

    fn on_transport(&mut self, e: &TransportEvent) {
        if let TransportEvent::ServerSigAlgs(list) = e {
            self.auth.set_server_sig_algs(list);
        }
    }

    fn transport_event(e: TransportEvent) -> ClientEvent {
        ClientEvent::Transport(e)
    }

    fn channel_event(e: ChannelEvent) -> ClientEvent {
        ClientEvent::Channel(e)
    }
}

/// One client-side connection, sans-IO.
pub type ClientConnection = Endpoint<ClientSide>;

impl Endpoint<ClientSide> {
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
        Ok(Self::with(
            t,
            ClientSide {
                auth: AuthClient::new(user.to_owned(), keys, config.allow_ssh_rsa),
            },
            Connection::new(config.connection.clone()),
            Keepalive::new(config.keepalive_interval, config.keepalive_max),
        ))
    }

    /// Opens a session channel; wait for [`ChannelEvent::Opened`].
    pub fn open_session(&mut self) -> Result<u32, Error> {
        self.conn.open(&mut self.t, &ChannelKind::Session)
    }

    /// Opens a `direct-tcpip` channel: the server connects to `host:port` for us and the
    /// channel carries that connection [RFC4254 §7.2] (ssh's `-L`). `originator` is where the
    /// connection came from on our side. Wait for [`ChannelEvent::Opened`] or `OpenFailed`.
    pub fn open_direct_tcpip(
        &mut self,
        host: &str,
        port: u16,
        originator: &str,
        originator_port: u16,
    ) -> Result<u32, Error> {
        self.open_channel(&ChannelKind::DirectTcpip(TcpipEnds {
            host: host.as_bytes().to_vec(),
            port: u32::from(port),
            originator: originator.as_bytes().to_vec(),
            originator_port: u32::from(originator_port),
        }))
    }

    /// Asks the server to listen on `address:port` (port 0: any; the reply names it) and to
    /// open a `forwarded-tcpip` channel to us per connection [RFC4254 §7.1] (ssh's `-R`). The
    /// answer arrives as [`ChannelEvent::GlobalReply`].
    pub fn tcpip_forward(&mut self, address: &str, port: u16) -> Result<(), Error> {
        self.global_request(
            &GlobalRequestKind::TcpipForward {
                address: address.as_bytes().to_vec(),
                port: u32::from(port),
            },
            true,
        )
    }

    /// Cancels a [`tcpip_forward`](Self::tcpip_forward) [RFC4254 §7.1].
    pub fn cancel_tcpip_forward(&mut self, address: &str, port: u16) -> Result<(), Error> {
        self.global_request(
            &GlobalRequestKind::CancelTcpipForward {
                address: address.as_bytes().to_vec(),
                port: u32::from(port),
            },
            true,
        )
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
        sink: impl FnMut(&[u8]) -> usize,
    ) -> Result<usize, Error> {
        self.conn.read_with(&mut self.t, id, ext, max, sink)
    }
}
