//! A session as the policy above the driver sees it: who asks ([`SessionContext`]), the
//! streams a backend reads and writes ([`SessionIo`]), how it ended ([`ExitStatus`]), and the
//! trait a server's policy implements ([`SessionHandler`]).
//!
//! The driver defines what it asks of the policy and the policy implements it (`route::FrontDoor`
//! for the git server, a library user's own type otherwise): the driver never imports the
//! policy, and the backends (`git/`, `proxy/`) need only this module, not the driver's loop.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::connection::ChannelRequest;
use crate::driver::pipe::{PipeReader, PipeWriter};
use crate::keys::PublicKey;
use crate::lookup::Identity;

/// Who is asking, for the policy.
#[derive(Clone, Debug)]
pub struct SessionContext {
    /// The SSH user name.
    pub user: String,
    /// The identity the key lookup returned.
    pub identity: Identity,
    /// The key that authenticated.
    pub key: PublicKey,
    /// The client's address.
    pub peer: SocketAddr,
    /// `env` requests the handler allowed, in order.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A session's standard streams.
#[derive(Debug)]
pub struct SessionIo {
    /// What the client sends (channel data).
    pub stdin: PipeReader,
    /// Channel data to the client.
    pub stdout: PipeWriter,
    /// Extended data type 1 to the client.
    pub stderr: PipeWriter,
    /// Resolves when the channel or the connection is gone: stop the work (kill the process).
    pub gone: oneshot::Receiver<()>,
}

/// A running command: resolves to its exit status.
pub type SessionTask = Pin<Box<dyn Future<Output = ExitStatus> + Send>>;

/// How a session ended, for `exit-status` / `exit-signal` [RFC4254 §6.10].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(u32),
    /// Killed by this signal (name without "SIG").
    Signal(String),
}

/// The policy layer's answer to an `exec`.
pub enum ExecDecision {
    /// Run this task with the session's streams.
    Run(SessionTask),
    /// Refuse: the message goes to the client's stderr, with exit status 1.
    Refuse(String),
}

/// What a server does with authenticated sessions.
pub trait SessionHandler: Send + Sync {
    /// Whether to accept an `env` request (default: none).
    fn env_allowed(&self, name: &[u8], value: &[u8]) -> bool {
        let _ = (name, value);
        false
    }

    /// Decides an `exec`, and if it runs, starts it with `io`.
    fn exec(&self, ctx: &SessionContext, command: &[u8], io: SessionIo) -> ExecDecision;

    /// A `shell` request: `Some(message)` accepts it only to print the message on stderr and
    /// exit with status 1 (how hosting sites greet `ssh git@host`); `None` refuses it.
    fn shell(&self, ctx: &SessionContext) -> Option<String> {
        let _ = ctx;
        None
    }

    /// Called for every other channel request (refused), for logging.
    fn refused(&self, ctx: &SessionContext, request: &ChannelRequest) {
        let _ = (ctx, request);
    }

    /// A `direct-tcpip` channel (ssh's `-L`) [RFC4254 §7.2]: whether this client may have the
    /// server connect to `host:port` and carry the connection. Default: no, refused as
    /// "administratively prohibited" (the git server keeps that). Asked only within the key's
    /// own limits (`ctx.identity.forwarding`: `restrict`, `no-port-forwarding`, `permitopen=`).
    fn direct_tcpip(&self, ctx: &SessionContext, host: &str, port: u16) -> bool {
        let _ = (ctx, host, port);
        false
    }

    /// A `tcpip-forward` request (ssh's `-R`) [RFC4254 §7.1]: whether this client may have
    /// the server listen on `address:port` (port 0: a free one) and send each connection back
    /// as a `forwarded-tcpip` channel. `address` as the client sent it: `""` (every address),
    /// `localhost`, `0.0.0.0`, a name or an address; restricting it (as sshd's `GatewayPorts`
    /// does) is this policy's call, and so are ports below 1024 (sshd refuses them to users
    /// other than root; the server binds whatever this allows). Reached only with the
    /// connection's `forwarding_requests` on, and within the key's own limits
    /// (`restrict`, `no-port-forwarding`, `permitlisten=`). Default: no.
    fn tcpip_forward(&self, ctx: &SessionContext, address: &str, port: u16) -> bool {
        let _ = (ctx, address, port);
        false
    }

    /// How long a session channel may stay open without a command (`exec` or `shell`) before
    /// it is closed: an authenticated client cannot park channels for ever.
    fn start_timeout(&self) -> Duration {
        crate::limits::SESSION_START_TIMEOUT
    }
}
