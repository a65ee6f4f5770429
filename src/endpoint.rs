//! What a connection is in either role: a transport, the channel layer and keepalives, with
//! the role's authentication in between ([`Side`]). [`crate::server::ServerConnection`] and
//! [`crate::client::ClientConnection`] are this type with their side; everything here is
//! shared, so the two cannot drift (the ordering rules between the layers [RFC4252 §6], the
//! answer to an unknown message [RFC4253 §11.4], PING [PROTOCOL §1.9], keepalive).

use std::collections::VecDeque;
use std::time::Instant;

use crate::connection::keepalive::Keepalive;
use crate::connection::{ChannelEvent, Connection, Deliver};
use crate::error::{DisconnectReason, Error, ProtocolError};
use crate::msg::{ChannelKind, GlobalRequestKind, MsgNum, Ping, Pong, Unimplemented};
use crate::transport::{Input, Transport, TransportEvent};
use crate::wire::Decode;

/// What differs between the roles: authentication, and the events the application sees.
pub trait Side {
    /// What the application must act on.
    type Event;

    /// Whether `num` belongs to authentication: the service request (server) or acceptance
    /// (client), and 50–79.
    fn is_auth(num: MsgNum) -> bool;

    /// Handles an authentication message, queueing events.
    fn auth(
        &mut self,
        t: &mut Transport,
        payload: &[u8],
        events: &mut VecDeque<Self::Event>,
    ) -> Result<(), Error>;

    /// Whether authentication succeeded (the connection protocol may start).
    fn authenticated(&self) -> bool;

    /// Input pauses while this holds (a server's pending authentication decision), so the
    /// decision applies before anything the peer sent after the request.
    fn paused(&self) -> bool {
        false
    }

    /// Sees every transport event before the application does.
    fn on_transport(&mut self, e: &TransportEvent) {
        let _ = e;
    }

    /// A timer of authentication's own (the login grace time).
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Fires authentication's timer.
    fn handle_timeout(&mut self, t: &mut Transport, now: Instant) -> Result<(), Error> {
        let _ = (t, now);
        Ok(())
    }

    /// A transport event, as this side's event.
    fn transport_event(e: TransportEvent) -> Self::Event;

    /// A channel event, as this side's event.
    fn channel_event(e: ChannelEvent) -> Self::Event;
}

/// One connection, sans-IO: bytes in ([`Endpoint::handle_input`]), bytes out
/// ([`Endpoint::poll_transmit`]), events ([`Endpoint::poll_event`]) and timers.
#[derive(Debug)]
pub struct Endpoint<S: Side> {
    pub(crate) t: Transport,
    pub(crate) side: S,
    pub(crate) conn: Connection,
    pub(crate) events: VecDeque<S::Event>,
    pub(crate) keepalive: Keepalive,
}

impl<S: Side> Endpoint<S> {
    pub(crate) fn with(t: Transport, side: S, conn: Connection, keepalive: Keepalive) -> Self {
        Self {
            t,
            side,
            conn,
            events: VecDeque::new(),
            keepalive,
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
        self.side.authenticated()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<S::Event> {
        self.events.pop_front()
    }

    /// Consumes input; returns how many bytes were taken. Stops early while input is paused
    /// ([`Side::paused`]). From a mutable slice (the drivers' input buffer), a packet that
    /// arrived whole is decrypted where it lies: the bytes taken are overwritten, the rest are
    /// left as they were.
    pub fn handle_input<'a>(
        &mut self,
        bytes: impl Input<'a>,
        now: Instant,
    ) -> Result<usize, Error> {
        self.input(bytes, now, false, None)
    }

    /// [`Endpoint::handle_input`], offering channel data to `deliver` before the channel
    /// buffers it (see [`Deliver`]).
    pub fn handle_input_with<'a>(
        &mut self,
        bytes: impl Input<'a>,
        now: Instant,
        deliver: Deliver<'_>,
    ) -> Result<usize, Error> {
        self.input(bytes, now, false, Some(deliver))
    }

    /// [`Endpoint::handle_input`] that stops before input that may cost expensive
    /// key-exchange work ([`Transport::kex_may_be_heavy`]); the driver feeds the rest through
    /// `handle_input` off its I/O workers.
    pub fn handle_input_light<'a>(
        &mut self,
        bytes: impl Input<'a>,
        now: Instant,
    ) -> Result<usize, Error> {
        self.input(bytes, now, true, None)
    }

    fn input<'a>(
        &mut self,
        bytes: impl Input<'a>,
        now: Instant,
        light_only: bool,
        mut deliver: Option<Deliver<'_>>,
    ) -> Result<usize, Error> {
        let mut used = 0usize;
        let mut rest = bytes;
        while !rest.bytes().is_empty() && !self.side.paused() && !self.t.is_closed() {
            // (`read_light` takes nothing before an expensive packet: the loop ends below.)
            // Events first: a read may finish an exchange and then fail on what follows.
            let read = self.t.read_from(rest, now, light_only);
            while let Some(e) = self.t.poll_event() {
                self.side.on_transport(&e);
                self.events.push_back(S::transport_event(e));
            }
            let (n, pkt, tail) = read?;
            rest = tail;
            used = used.saturating_add(n);
            if let Some(p) = pkt {
                // A reborrow that also shortens the closure's lifetime (`as_deref_mut` cannot).
                let d: Option<Deliver<'_>> = match &mut deliver {
                    Some(d) => Some(&mut **d),
                    None => None,
                };
                let result = self.dispatch(p.payload(), p.seq, d);
                self.t.recycle(p);
                if let Err(e) = result {
                    self.t.fail(&e);
                    return Err(e);
                }
            } else if n == 0 {
                break;
            }
        }
        if self.side.authenticated() {
            self.keepalive.input(now);
        }
        Ok(used)
    }

    /// One message for the layers above the transport, by number [RFC4251 §7].
    fn dispatch(
        &mut self,
        payload: &[u8],
        seq: u32,
        deliver: Option<Deliver<'_>>,
    ) -> Result<(), Error> {
        let num = MsgNum(payload.first().copied().unwrap_or(0));
        if S::is_auth(num) {
            return self.side.auth(&mut self.t, payload, &mut self.events);
        }
        match num.0 {
            80..=127 => {
                // The connection protocol starts only after success [RFC4252 §6].
                if !self.side.authenticated() {
                    return Err(ProtocolError::UnexpectedMessage {
                        phase: "authentication",
                        msg: num.0,
                    }
                    .into());
                }
                self.conn.handle_into(&mut self.t, payload, deliver)?;
                while let Some(e) = self.conn.poll_event() {
                    self.events.push_back(S::channel_event(e));
                }
                Ok(())
            }
            // ping@openssh.com: answered only after authentication [PROTOCOL §1.9]; a reply
            // sent during a key exchange waits in the transport's queue until it ends.
            192 => {
                let Ping { data } = Ping::decode_exact(payload.get(1..).unwrap_or_default())?;
                if self.side.authenticated() {
                    self.t.send_msg(&Pong { data })?;
                }
                Ok(())
            }
            // Anything else: UNIMPLEMENTED [RFC4253 §11.4].
            _ => self.t.send_msg(&Unimplemented { seq }),
        }
    }

    /// Opens a channel of `kind` (with its type-specific data); wait for
    /// [`ChannelEvent::Opened`] or `OpenFailed`.
    pub fn open_channel(&mut self, kind: &ChannelKind) -> Result<u32, Error> {
        self.conn.open(&mut self.t, kind)
    }

    /// Accepts a channel the peer opened (an `OpenRequest`).
    pub fn accept_open(&mut self, id: u32) -> Result<(), Error> {
        self.conn.accept_open(&mut self.t, id)
    }

    /// Refuses a channel the peer opened, with a reason code ([`crate::connection::reason`]).
    pub fn reject_open(&mut self, id: u32, reason: u32, description: &str) -> Result<(), Error> {
        self.conn.reject_open(&mut self.t, id, reason, description)
    }

    /// Sends a global request; with `want_reply` its answer arrives as a `GlobalReply` event.
    pub fn global_request(
        &mut self,
        request: &GlobalRequestKind,
        want_reply: bool,
    ) -> Result<(), Error> {
        self.conn.global_request(&mut self.t, request, want_reply)
    }

    /// Answers the peer's oldest unanswered `GlobalRequest` event (they are answered in the
    /// order they came); `bound_port` goes with a success to a `tcpip-forward` to port 0.
    pub fn reply_global(&mut self, ok: bool, bound_port: Option<u32>) -> Result<(), Error> {
        self.conn.reply_global(&mut self.t, ok, bound_port)
    }

    /// Sends EOF on `id`: we will write no more [RFC4254 §5.3].
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
            self.side.poll_timeout(),
            self.keepalive.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires expired timers.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.side.handle_timeout(&mut self.t, now)?;
        self.keepalive
            .handle_timeout(&mut self.conn, &mut self.t, now)?;
        self.t.handle_timeout(now)
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.t.is_closed()
    }
}
