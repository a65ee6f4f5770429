//! Port forwarding for the server role [RFC4254 §7], each case decided by the policy
//! ([`SessionHandler::direct_tcpip`], [`SessionHandler::tcpip_forward`]): a `direct-tcpip`
//! channel is connected to its target before it is confirmed; a `tcpip-forward` binds a
//! listener whose connections come back as `forwarded-tcpip` channels. Either way the socket
//! is attached to the channel like a process's pipes ([`PipeWriter::attach`],
//! [`PipeReader::attach`]): the driver reads it only while the channel's window has room and
//! returns window credit only for what the socket took, so a tunnel holds at most one window
//! of data; EOF travels each way on its own (half-close). Listeners close when cancelled or
//! with the connection.
//!
//! [`SessionHandler::direct_tcpip`]: crate::session::SessionHandler::direct_tcpip
//! [`SessionHandler::tcpip_forward`]: crate::session::SessionHandler::tcpip_forward

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::Driver;
use crate::connection::reason;
use crate::driver::pipe::{Pipe, PipeReader, PipeWriter};
use crate::error::{ChannelError, Error};
use crate::limits::{FORWARD_BIND_TIMEOUT, FORWARD_CONNECT_TIMEOUT, FORWARD_LISTENERS};
use crate::log_safe::LogSafe;
use crate::msg::{ChannelKind, GlobalRequestKind, TcpipEnds};

/// The connection's forwardings: listeners, connects under way, channels opened for accepted
/// connections, and the running tunnels.
#[derive(Default)]
pub(super) struct Forwarding {
    pub(super) listeners: Vec<Listener>,
    /// `direct-tcpip` connects under way, by channel.
    pub(super) connecting: JoinSet<(u32, io::Result<TcpStream>)>,
    /// `forwarded-tcpip` channels we opened, awaiting the client's confirmation.
    opening: HashMap<u32, TcpStream>,
    pub(super) tunnels: HashMap<u32, Tunnel>,
    /// The socket sides of tunnels whose channel is gone, still writing what the client sent
    /// before its CLOSE (at most one window each, and at most `max_channels` of them), then
    /// shut down.
    pub(super) closing: Vec<Pipe>,
}

/// A `tcpip-forward` that was granted: the address as the client asked, the port bound, and
/// one socket per address it resolved to.
pub(super) struct Listener {
    address: Vec<u8>,
    port: u16,
    sockets: Vec<TcpListener>,
}

/// A channel carrying a TCP connection.
pub(super) struct Tunnel {
    /// The socket's data: its read half, attached, read by the driver into the channel.
    pub(super) from_socket: Pipe,
    /// The channel's data: the socket's write half, attached, written by the driver.
    pub(super) to_socket: Pipe,
    /// Our EOF went (the socket's peer stopped sending).
    pub(super) eof_sent: bool,
    closed: bool,
}

/// A connection accepted on a forwarded port: the listener's address and port, the socket and
/// who connected.
pub(super) type Accepted = (Vec<u8>, u16, TcpStream, SocketAddr);

/// The next connection to one of `listeners`' ports.
pub(super) fn poll_accept(listeners: &[Listener], cx: &mut Context<'_>) -> Poll<Accepted> {
    for l in listeners {
        for socket in &l.sockets {
            match socket.poll_accept(cx) {
                Poll::Ready(Ok((stream, from))) => {
                    return Poll::Ready((l.address.clone(), l.port, stream, from));
                }
                // A failed accept (the connection reset first, out of descriptors) is
                // that connection's problem; the listener stays.
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "accept on a forwarded port failed")
                }
                Poll::Pending => {}
            }
        }
    }
    Poll::Pending
}

impl Driver {
    /// A `direct-tcpip` open: connected in the background if the policy allows it, else
    /// refused as "administratively prohibited" (what ssh prints for sshd's refusals too).
    pub(super) fn open_direct(&mut self, id: u32, ends: &TcpipEnds) -> Result<(), Error> {
        let target = std::str::from_utf8(&ends.host)
            .ok()
            .zip(u16::try_from(ends.port).ok());
        let allowed = match (target, self.context(Vec::new())) {
            // The key's own limits (`restrict`, `permitopen=`) first: the policy decides within.
            (Some((host, port)), Some(ctx)) => {
                ctx.identity.forwarding.permits_open(host, port)
                    && self.handler.direct_tcpip(&ctx, host, port)
            }
            _ => false,
        };
        let Some((host, port)) = target.filter(|_| allowed) else {
            tracing::info!(peer = %self.peer, target = %LogSafe(&ends.host), port = ends.port, "direct-tcpip refused");
            return self
                .s
                .reject_open(id, reason::PROHIBITED, "forwarding refused");
        };
        let host = host.to_owned();
        self.fwd.connecting.spawn(async move {
            let connect = TcpStream::connect((host.as_str(), port));
            let stream = tokio::time::timeout(FORWARD_CONNECT_TIMEOUT, connect)
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()));
            (id, stream)
        });
        Ok(())
    }

    /// A `direct-tcpip` connect finished: the channel is confirmed and carries the socket, or
    /// is refused with the reason ssh shows ("connect failed: …").
    pub(super) fn direct_connected(
        &mut self,
        id: u32,
        stream: io::Result<TcpStream>,
    ) -> Result<(), Error> {
        match stream {
            Ok(stream) => {
                self.s.accept_open(id)?;
                self.tunnel(id, stream);
                Ok(())
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, channel = id, error = %e, "direct-tcpip connect failed");
                let description = format!("connect failed: {e}");
                self.s.reject_open(id, reason::CONNECT_FAILED, &description)
            }
        }
    }

    /// A connection to a forwarded port: a `forwarded-tcpip` channel is opened for it (the
    /// loop accepts only while a channel is free).
    pub(super) fn forwarded(&mut self, accepted: Accepted) -> Result<(), Error> {
        let (address, port, stream, from) = accepted;
        let from = super::canonical(from);
        let kind = ChannelKind::ForwardedTcpip(TcpipEnds {
            host: address,
            port: u32::from(port),
            originator: from.ip().to_string().into_bytes(),
            originator_port: u32::from(from.port()),
        });
        match self.s.open_channel(&kind) {
            Ok(id) => {
                self.fwd.opening.insert(id, stream);
                Ok(())
            }
            Err(Error::Channel(ChannelError::TooManyChannels)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The client's answer to a `forwarded-tcpip` open: the socket is carried or dropped.
    pub(super) fn forwarded_answered(&mut self, id: u32, ok: bool) {
        if let Some(stream) = self.fwd.opening.remove(&id)
            && ok
        {
            self.tunnel(id, stream);
        }
    }

    /// Attaches both halves of `stream` to channel `id`.
    fn tunnel(&mut self, id: u32, stream: TcpStream) {
        // Interactive traffic goes through tunnels too (ssh sets TCP_NODELAY on them).
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let from_socket = Pipe::new(self.notify.clone());
        let to_socket = Pipe::new(self.notify.clone());
        let _ = PipeWriter(from_socket.clone()).attach(read);
        let _ = PipeReader(to_socket.clone()).attach(write);
        self.fwd.tunnels.insert(
            id,
            Tunnel {
                from_socket,
                to_socket,
                eof_sent: false,
                closed: false,
            },
        );
    }

    /// The client closed channel `id`: a tunnel on it stops reading its socket, and writes
    /// what the channel still holds to it before shutting it down.
    pub(super) fn tunnel_closed(&mut self, id: u32) {
        if let Some(t) = self.fwd.tunnels.remove(&id) {
            t.from_socket.close_read();
            let to = &t.to_socket;
            // Bounded like the channels: a client that fills windows towards a target that
            // does not read and closes them cannot pile up data past the limit; beyond it
            // the leftovers are dropped with the socket.
            // (Read either way: the channel is freed once its buffer is empty.)
            if self.fwd.closing.len() >= self.s.channels().config().max_channels {
                to.close_read();
            }
            let _ = self.s.read_with(id, usize::MAX, |chunk| to.push(chunk));
            to.close_write();
            if to.has_sink() {
                self.fwd.closing.push(t.to_socket);
            }
        }
    }

    /// Half-closes and closes tunnels: the client's EOF (once its data is written) shuts the
    /// socket's sending side; the socket's EOF sends ours; with both, or the socket gone, the
    /// channel closes.
    pub(super) fn pump_tunnels(&mut self) -> Result<(), Error> {
        self.fwd.closing.retain(Pipe::has_sink);
        for (&id, t) in &mut self.fwd.tunnels {
            if t.closed {
                continue;
            }
            let ch = self.s.channels().channel(id);
            let extended = ch.is_some_and(|c| c.extended_buffered() > 0);
            if ch.is_some_and(|c| c.eof_received() && c.buffered() == 0) {
                t.to_socket.close_write();
            }
            if extended {
                self.s.discard_extended(id)?;
            }
            // What the socket gave beyond the window's room at the time.
            super::send_pipe(&mut self.s, id, None, &t.from_socket);
            if !t.eof_sent && t.from_socket.finished() {
                self.s.send_eof(id)?;
                t.eof_sent = true;
            }
            if t.eof_sent && !t.to_socket.has_sink() {
                self.s.close(id)?;
                t.closed = true;
            }
        }
        Ok(())
    }

    /// The client's `tcpip-forward` or `cancel-tcpip-forward`, answered if it wants a reply.
    pub(super) async fn global_request(
        &mut self,
        request: GlobalRequestKind,
        want_reply: bool,
    ) -> Result<(), Error> {
        let (ok, bound) = match request {
            GlobalRequestKind::TcpipForward { address, port } => {
                match self.listen(address, port).await {
                    // The port goes back only when the client let us choose [RFC4254 §7.1].
                    Some(bound) => (true, (port == 0).then_some(u32::from(bound))),
                    None => (false, None),
                }
            }
            GlobalRequestKind::CancelTcpipForward { address, port } => {
                let before = self.fwd.listeners.len();
                self.fwd
                    .listeners
                    .retain(|l| !(l.address == address && u32::from(l.port) == port));
                (self.fwd.listeners.len() < before, None)
            }
            _ => (false, None),
        };
        if want_reply {
            self.s.reply_global(ok, bound)
        } else {
            Ok(())
        }
    }

    /// Binds `address:port` if the policy allows it; the port bound.
    async fn listen(&mut self, address: Vec<u8>, port: u32) -> Option<u16> {
        let asked = std::str::from_utf8(&address)
            .ok()
            .zip(u16::try_from(port).ok());
        let allowed = match (asked, self.context(Vec::new())) {
            // The key's own limits (`restrict`, `permitlisten=`) first.
            (Some((addr, port)), Some(ctx)) => {
                ctx.identity.forwarding.permits_listen(addr, port)
                    && self.handler.tcpip_forward(&ctx, addr, port)
            }
            _ => false,
        };
        let taken = self
            .fwd
            .listeners
            .iter()
            .any(|l| l.address == address && u32::from(l.port) == port);
        let Some((addr, port)) = asked.filter(|_| allowed && !taken) else {
            tracing::info!(peer = %self.peer, address = %LogSafe(&address), port, "tcpip-forward refused");
            return None;
        };
        if self.fwd.listeners.len() >= FORWARD_LISTENERS {
            tracing::info!(peer = %self.peer, limit = FORWARD_LISTENERS, "tcpip-forward refused: too many");
            return None;
        }
        let bound = tokio::time::timeout(FORWARD_BIND_TIMEOUT, bind(addr, port)).await;
        match bound {
            Ok(Ok((port, sockets))) => {
                tracing::info!(peer = %self.peer, address = %LogSafe(&address), port, "listening for a tcpip-forward");
                self.fwd.listeners.push(Listener {
                    address,
                    port,
                    sockets,
                });
                Some(port)
            }
            Ok(Err(e)) => {
                tracing::info!(peer = %self.peer, address = %LogSafe(&address), port, error = %e, "tcpip-forward bind failed");
                None
            }
            Err(_) => None,
        }
    }
}

/// Listens on `address:port` as RFC 4254 §7.1 reads the address: `""` every address of both
/// families, `localhost` the loopback ones, anything else what it resolves to. The first
/// address picks the port (port 0: any free one); the others get the same one where they
/// can (`[::]` may be taken by a dual-stack `0.0.0.0` already).
async fn bind(address: &str, port: u16) -> io::Result<(u16, Vec<TcpListener>)> {
    let addrs: Vec<SocketAddr> = match address {
        "" | "*" => vec![
            (Ipv4Addr::UNSPECIFIED, port).into(),
            (Ipv6Addr::UNSPECIFIED, port).into(),
        ],
        "localhost" => vec![
            (Ipv4Addr::LOCALHOST, port).into(),
            (Ipv6Addr::LOCALHOST, port).into(),
        ],
        other => tokio::net::lookup_host((other, port)).await?.collect(),
    };
    let (mut port, mut sockets, mut first_error) = (port, Vec::new(), None);
    for mut addr in addrs {
        addr.set_port(port);
        match TcpListener::bind(addr).await {
            Ok(l) => {
                port = l.local_addr()?.port();
                sockets.push(l);
            }
            Err(e) if sockets.is_empty() => {
                first_error.get_or_insert(e);
            }
            Err(_) => {}
        }
    }
    if sockets.is_empty() {
        Err(first_error.unwrap_or_else(|| io::ErrorKind::AddrNotAvailable.into()))
    } else {
        Ok((port, sockets))
    }
}
