//! Remote forwarding for the client role (ssh's `-R`) [RFC4254 §7.1, §7.2]: the server
//! listens for us, and each connection to it comes back as a `forwarded-tcpip` channel that is
//! handed to the application as a stream, like a `direct-tcpip` one.

use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use super::{Chan, ClientHandle, Command, RemoteExit, RemoteSession, Task};
use crate::error::Error;
use crate::limits::FORWARD_BACKLOG;
use crate::msg::TcpipEnds;

/// A forwarded connection: where it arrived and who made it, and its streams (`stdout`: what
/// the connecting peer sends, `stdin`: to it; `exit` resolves when the channel closed).
pub type Forwarded = (TcpipEnds, RemoteSession);

/// A port the server listens on for us (ssh's `-R`): each connection to it arrives on
/// `connections`. Dropping it cancels the forwarding (`cancel-tcpip-forward`).
#[derive(Debug)]
pub struct RemoteForward {
    /// The port the server bound (the one asked for, or the one it chose for port 0).
    pub port: u16,
    /// The connections, as they arrive.
    pub connections: mpsc::Receiver<Forwarded>,
    address: String,
    tx: mpsc::Sender<Command>,
}

impl Drop for RemoteForward {
    fn drop(&mut self) {
        let _ = self.tx.try_send(Command::Cancel {
            address: std::mem::take(&mut self.address),
            port: self.port,
        });
    }
}

/// A forwarding of ours: asked for (`to` still `None`, the reply pending) or running.
pub(super) struct Forward {
    pub(super) address: String,
    pub(super) port: u16,
    pub(super) reply: Option<oneshot::Sender<Result<RemoteForward, RemoteExit>>>,
    pub(super) to: Option<mpsc::Sender<Forwarded>>,
}

impl ClientHandle {
    /// Asks the server to listen on `address:port` (port 0: any) and forward each connection
    /// to us (ssh's `-R`) [RFC4254 §7.1]. Resolves once the server agreed, with the port it
    /// bound, or with [`RemoteExit::Refused`].
    pub async fn forward_remote(
        &self,
        address: &str,
        port: u16,
    ) -> Result<RemoteForward, RemoteExit> {
        let (reply, answer) = oneshot::channel();
        let gone = || RemoteExit::Disconnected("connection closed".into());
        let asked = Command::Forward {
            address: address.to_owned(),
            port,
            reply,
        };
        self.tx.send(asked).await.map_err(|_| gone())?;
        answer.await.unwrap_or_else(|_| Err(gone()))
    }
}

impl Task {
    /// Where connections arriving for `ends` (the address and port the server bound) go.
    pub(super) fn forwarded_to(&self, ends: &TcpipEnds) -> Option<&mpsc::Sender<Forwarded>> {
        self.forwards
            .iter()
            .find(|f| {
                f.address.as_bytes() == ends.host.as_slice() && u32::from(f.port) == ends.port
            })
            .and_then(|f| f.to.as_ref())
    }

    /// A connection to one of our forwarded ports: accepted, and its streams queued for the
    /// application (refused when it does not keep up).
    pub(super) fn accept_forwarded(&mut self, id: u32, ends: TcpipEnds) -> Result<(), Error> {
        let Some(to) = self.forwarded_to(&ends).cloned() else {
            return Ok(());
        };
        let (reply, _) = oneshot::channel();
        let mut ch = Chan::new(&self.notify, None, Vec::new(), reply);
        ch.reply = None;
        ch.running = true;
        let Some(session) = ch.session.take() else {
            return Ok(());
        };
        if to.try_send((ends, session)).is_err() {
            return self.c.reject_open(
                id,
                crate::connection::reason::RESOURCE_SHORTAGE,
                "forwarded connections are not taken",
            );
        }
        self.c.accept_open(id)?;
        self.shared.sessions.fetch_add(1, Ordering::SeqCst);
        self.chans.insert(id, ch);
        Ok(())
    }

    /// The answer to our oldest pending `tcpip-forward`.
    pub(super) fn forward_answered(&mut self, ok: bool, bound_port: Option<u32>) {
        let Some(f) = self.forwards.iter_mut().find(|f| f.reply.is_some()) else {
            return;
        };
        let Some(reply) = f.reply.take() else { return };
        if !ok {
            let _ = reply.send(Err(RemoteExit::Refused("tcpip-forward refused".into())));
            let (address, port) = (f.address.clone(), f.port);
            self.forwards
                .retain(|f| !(f.address == address && f.port == port && f.to.is_none()));
            return;
        }
        if let Some(p) = bound_port.and_then(|p| u16::try_from(p).ok()) {
            f.port = p;
        }
        let Some(tx) = self.tx.upgrade() else { return };
        let (to, connections) = mpsc::channel(FORWARD_BACKLOG);
        f.to = Some(to);
        let forward = RemoteForward {
            port: f.port,
            connections,
            address: f.address.clone(),
            tx,
        };
        if let Err(Ok(unwanted)) = reply.send(Ok(forward)) {
            drop(unwanted);
        }
    }
}
