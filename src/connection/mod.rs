//! The connection protocol \[RFC4254\], for either role: channels with flow-controlled windows,
//! channel and global requests. Sans-IO like the rest: messages come in through
//! [`Connection::handle`], the application acts through explicit calls, and everything it
//! should know arrives as [`ChannelEvent`]s.

mod channel;
mod global;
pub mod keepalive;

pub use crate::msg::ChannelRequest;
pub use channel::{ChanState, Channel};

use std::collections::VecDeque;

use crate::error::{ChannelError, Error, ProtocolError};
use crate::limits::{MIN_CHANNEL_WINDOW, WINDOW_GRACE_DIVISOR};
use crate::msg::{
    ChannelClose, ChannelData, ChannelEof, ChannelExtendedData, ChannelFailure, ChannelKind,
    ChannelOpen, ChannelOpenConfirmation, ChannelOpenFailure, ChannelRequestMsg, ChannelSuccess,
    ChannelWindowAdjust, GlobalRequestKind, Message, MsgNum, Rest,
};
use crate::transport::Transport;

/// Channel open failure reasons [RFC4254 §5.1].
pub mod reason {
    /// SSH_OPEN_ADMINISTRATIVELY_PROHIBITED.
    pub const PROHIBITED: u32 = 1;
    /// SSH_OPEN_CONNECT_FAILED.
    pub const CONNECT_FAILED: u32 = 2;
    /// SSH_OPEN_UNKNOWN_CHANNEL_TYPE.
    pub const UNKNOWN_CHANNEL_TYPE: u32 = 3;
    /// SSH_OPEN_RESOURCE_SHORTAGE.
    pub const RESOURCE_SHORTAGE: u32 = 4;
}

/// Channel-layer settings.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// Window we grant per channel (OpenSSH's session default: 2 MiB).
    pub window: u32,
    /// Largest data payload we accept in one message (≥ 32768 [RFC4254 §5.2]).
    pub max_packet: u32,
    /// Channels open at once, counting ones still closing.
    pub max_channels: usize,
    /// The most window all channels of the connection may hold between them: a new channel
    /// gets `window` while this allows, else what is left, but never less than
    /// [`MIN_CHANNEL_WINDOW`] (or `window`, if smaller). So the data a peer can make one
    /// connection buffer is bounded by 1.1 × (this + `max_channels` × the floor), not by
    /// `max_channels` × `window`.
    pub window_budget: u32,
    /// Whether the peer's `tcpip-forward` and `cancel-tcpip-forward` reach the application
    /// as [`ChannelEvent::GlobalRequest`] (a server that forwards ports); off, they are
    /// refused here, as every other global request is.
    pub forwarding_requests: bool,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            window: crate::limits::CHANNEL_WINDOW,
            max_packet: crate::limits::CHANNEL_MAX_PACKET,
            max_channels: crate::limits::MAX_CHANNELS,
            window_budget: crate::limits::WINDOW_BUDGET,
            forwarding_requests: false,
        }
    }
}

/// Something on a channel the application should act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelEvent {
    /// The peer asks to open a channel of `kind`: answer with `accept_open` or `reject_open`.
    OpenRequest {
        /// Our id for it.
        id: u32,
        /// The channel type with its type-specific data (`session`, `direct-tcpip` with its
        /// target, …).
        kind: ChannelKind,
    },
    /// A channel we opened was confirmed.
    Opened {
        /// Our id.
        id: u32,
    },
    /// A channel we opened was refused.
    OpenFailed {
        /// Our id (now free).
        id: u32,
        /// The reason code.
        reason: u32,
        /// The peer's description.
        description: String,
    },
    /// A channel request; if `want_reply`, answer with `reply_request` (in order).
    Request {
        /// Channel.
        id: u32,
        /// What was asked.
        request: ChannelRequest,
        /// Whether an answer is expected.
        want_reply: bool,
    },
    /// The answer to one of our requests.
    Reply {
        /// Channel.
        id: u32,
        /// CHANNEL_SUCCESS or not.
        ok: bool,
    },
    /// Data (or stderr) arrived and waits in the channel to be read (not raised for bytes a
    /// [`Deliver`] took).
    Readable {
        /// Channel.
        id: u32,
    },
    /// The send window grew.
    Writable {
        /// Channel.
        id: u32,
    },
    /// The peer will send no more data.
    Eof {
        /// Channel.
        id: u32,
    },
    /// The peer closed the channel (our CLOSE has gone too); read what is left, then it is freed.
    Closed {
        /// Channel.
        id: u32,
    },
    /// The peer asks for a port forwarding (only with
    /// [`ConnectionConfig::forwarding_requests`]); if `want_reply`, answer with
    /// `reply_global`, in the order the requests came.
    GlobalRequest {
        /// `TcpipForward` or `CancelTcpipForward`.
        request: GlobalRequestKind,
        /// Whether an answer is expected.
        want_reply: bool,
    },
    /// The answer to one of our global requests (keepalives excepted: their answer only
    /// counts), in the order they were sent [RFC4254 §4].
    GlobalReply {
        /// The request answered.
        request: GlobalRequestKind,
        /// REQUEST_SUCCESS or not.
        ok: bool,
        /// The port the server bound for a `tcpip-forward` to port 0 [RFC4254 §7.1].
        bound_port: Option<u32>,
    },
}

/// All channels of one connection.
#[derive(Debug)]
pub struct Connection {
    config: ConnectionConfig,
    channels: Vec<Option<Channel>>,
    events: VecDeque<ChannelEvent>,
    /// Our global requests awaiting their reply, oldest first.
    awaiting: VecDeque<global::Awaiting>,
    /// Replies we owe to the peer's global requests, in the order they came.
    owed: VecDeque<global::Owed>,
    /// The peer promised to open no more sessions (`no-more-sessions@openssh.com`).
    no_more_sessions: bool,
}

/// Where channel data may go as it is decoded, before the channel buffers it: called with the
/// channel's id, whether the data is stderr (extended data type 1), and the bytes; returns how
/// many it took (the rest is buffered for [`Connection::read_with`]). It is only offered data
/// when nothing of that stream is buffered, so order is kept, and what it takes earns window
/// credit as a read does. A driver that moves bytes into a pipe saves one copy per byte.
pub type Deliver<'a> = &'a mut dyn FnMut(u32, bool, &[u8]) -> usize;

/// Returns window credit once a channel's reader has taken enough [RFC4254 §5.2].
fn send_due_credit(t: &mut Transport, ch: &mut Channel) -> Result<(), Error> {
    if let Some(grant) = ch.due_credit() {
        ch.recv_window = ch.recv_window.saturating_add(grant);
        let recipient = ch.remote;
        t.send_msg(&ChannelWindowAdjust {
            recipient,
            bytes: grant,
        })?;
    }
    Ok(())
}

fn protocol(phase: &'static str, num: MsgNum) -> Error {
    ProtocolError::UnexpectedMessage { phase, msg: num.0 }.into()
}

/// Bytes of a CHANNEL_DATA message around its data: number, recipient, length.
const DATA_OVERHEAD: usize = 9;

/// The language tag we send: an empty `string` [RFC4254 §5.1].
const EMPTY_LANGUAGE: Rest<'static> = Rest(&[0, 0, 0, 0]);

impl Connection {
    /// An empty channel table.
    pub fn new(config: ConnectionConfig) -> Self {
        Self {
            config,
            channels: Vec::new(),
            events: VecDeque::new(),
            awaiting: VecDeque::new(),
            owed: VecDeque::new(),
            no_more_sessions: false,
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ChannelEvent> {
        self.events.pop_front()
    }

    /// A channel's state, if the id is in use.
    pub fn channel(&self, id: u32) -> Option<&Channel> {
        self.channels
            .get(usize::try_from(id).ok()?)
            .and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, id: u32) -> Option<&mut Channel> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.channels.get_mut(i))
            .and_then(Option::as_mut)
    }

    /// A channel the peer named: an id not in use breaks the protocol.
    fn chan_mut(&mut self, id: u32) -> Result<&mut Channel, Error> {
        self.slot_mut(id)
            .ok_or(Error::Protocol(ProtocolError::UnknownChannel { id }))
    }

    /// A channel named by our own caller: an id that is not in use is the caller's mistake (a
    /// channel already freed, say), not the peer's, so it is a [`ChannelError`].
    fn ours(&mut self, id: u32) -> Result<&mut Channel, Error> {
        self.slot_mut(id)
            .ok_or(Error::Channel(ChannelError::NoSuchChannel { id }))
    }

    /// A channel of ours that is confirmed both ways, for sending what is only valid then.
    fn ours_open(&mut self, id: u32) -> Result<&mut Channel, Error> {
        let ch = self.ours(id)?;
        if ch.state != ChanState::Open {
            return Err(Error::Channel(ChannelError::NotOpen { id }));
        }
        Ok(ch)
    }

    /// The settings this layer runs with.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// Number of channels in use (open, opening or closing).
    pub fn open_channels(&self) -> usize {
        self.channels.iter().flatten().count()
    }

    /// The window a new channel gets: `window` while the connection's budget has room, what
    /// is left of it otherwise, never below the floor (see [`ConnectionConfig::window_budget`]).
    fn window_for_new(&self) -> u32 {
        let reserved = self
            .channels
            .iter()
            .flatten()
            .fold(0u32, |sum, ch| sum.saturating_add(ch.recv_max));
        let left = self.config.window_budget.saturating_sub(reserved);
        let floor = MIN_CHANNEL_WINDOW.min(self.config.window);
        self.config.window.min(left).max(floor)
    }

    fn allocate(&mut self, ch: Channel) -> Option<u32> {
        if self.open_channels() >= self.config.max_channels {
            return None;
        }
        let slot = match self.channels.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.channels.push(None);
                self.channels.len().saturating_sub(1)
            }
        };
        let id = u32::try_from(slot).ok()?;
        if let Some(s) = self.channels.get_mut(slot) {
            *s = Some(ch);
        }
        Some(id)
    }

    fn release_if_finished(&mut self, id: u32) {
        if let Some(slot) = usize::try_from(id)
            .ok()
            .and_then(|i| self.channels.get_mut(i))
            && slot.as_ref().is_some_and(Channel::is_finished)
        {
            *slot = None;
        }
    }

    /// Handles one message of the connection range (80–127).
    pub fn handle(&mut self, t: &mut Transport, payload: &[u8]) -> Result<(), Error> {
        self.handle_into(t, payload, None)
    }

    /// [`Connection::handle`], offering channel data to `deliver` as it is decoded: see
    /// [`Deliver`].
    pub fn handle_into(
        &mut self,
        t: &mut Transport,
        payload: &[u8],
        deliver: Option<Deliver<'_>>,
    ) -> Result<(), Error> {
        match Message::decode(payload)? {
            Message::GlobalRequest(m) => self.on_global_request(t, &m),
            Message::RequestSuccess(m) => self.on_global_reply(MsgNum::REQUEST_SUCCESS, m.data.0),
            Message::RequestFailure(_) => self.on_global_reply(MsgNum::REQUEST_FAILURE, &[]),
            Message::ChannelOpen(m) => self.on_open(t, &m),
            Message::ChannelOpenConfirmation(m) => self.on_open_confirmation(&m),
            Message::ChannelOpenFailure(m) => self.on_open_failure(&m),
            Message::ChannelWindowAdjust(m) => {
                let ch = self.open_chan(m.recipient, MsgNum::CHANNEL_WINDOW_ADJUST)?;
                // The window MUST NOT pass 2^32-1 [RFC4254 §5.2]: an error, never a clamp.
                let window = ch
                    .send_window
                    .checked_add(m.bytes)
                    .ok_or(ProtocolError::WindowOverflow { id: m.recipient })?;
                ch.set_send_window(window);
                ch.last_credit = m.bytes;
                self.events
                    .push_back(ChannelEvent::Writable { id: m.recipient });
                Ok(())
            }
            Message::ChannelData(m) => self.on_data(t, m.recipient, None, m.data, deliver),
            Message::ChannelExtendedData(m) => {
                self.on_data(t, m.recipient, Some(m.code), m.data, deliver)
            }
            Message::ChannelEof(ChannelEof { recipient: id }) => {
                let ch = self.open_chan(id, MsgNum::CHANNEL_EOF)?;
                if !ch.eof_rcvd && !ch.close_sent {
                    ch.eof_rcvd = true;
                    self.events.push_back(ChannelEvent::Eof { id });
                }
                Ok(())
            }
            Message::ChannelClose(ChannelClose { recipient: id }) => self.on_close(t, id),
            Message::ChannelRequest(m) => self.on_request(&m),
            Message::ChannelSuccess(ChannelSuccess { recipient: id }) => {
                self.on_reply(id, MsgNum::CHANNEL_SUCCESS)
            }
            Message::ChannelFailure(ChannelFailure { recipient: id }) => {
                self.on_reply(id, MsgNum::CHANNEL_FAILURE)
            }
            other => Err(protocol("connection", other.num())),
        }
    }

    /// A channel that is open (confirmed both ways), for messages only valid then.
    fn open_chan(&mut self, id: u32, num: MsgNum) -> Result<&mut Channel, Error> {
        let ch = self.chan_mut(id)?;
        if ch.state != ChanState::Open || ch.close_rcvd {
            return Err(protocol("channel not open", num));
        }
        Ok(ch)
    }

    fn on_open(&mut self, t: &mut Transport, m: &ChannelOpen<'_>) -> Result<(), Error> {
        let kind = ChannelKind::parse(m.kind, m.extra.0)?;
        if kind == ChannelKind::Session && self.no_more_sessions {
            return Err(Error::Channel(ChannelError::SessionAfterNoMoreSessions));
        }
        let mut ch = Channel::new(
            m.kind.to_vec(),
            ChanState::PendingAccept,
            self.window_for_new(),
        );
        ch.remote = m.sender;
        ch.set_send_window(m.window);
        ch.peer_max_packet = m.max_packet;
        match self.allocate(ch) {
            Some(id) => {
                self.events
                    .push_back(ChannelEvent::OpenRequest { id, kind });
                Ok(())
            }
            None => t.send_msg(&ChannelOpenFailure {
                recipient: m.sender,
                reason: reason::RESOURCE_SHORTAGE,
                description: b"too many channels",
                language: EMPTY_LANGUAGE,
            }),
        }
    }

    fn on_open_confirmation(&mut self, m: &ChannelOpenConfirmation<'_>) -> Result<(), Error> {
        let id = m.recipient;
        let ch = self.chan_mut(id)?;
        if ch.state != ChanState::Opening {
            return Err(protocol(
                "channel already open",
                MsgNum::CHANNEL_OPEN_CONFIRMATION,
            ));
        }
        ch.state = ChanState::Open;
        ch.remote = m.sender;
        ch.set_send_window(m.window);
        ch.peer_max_packet = m.max_packet;
        self.events.push_back(ChannelEvent::Opened { id });
        Ok(())
    }

    fn on_open_failure(&mut self, m: &ChannelOpenFailure<'_>) -> Result<(), Error> {
        let id = m.recipient;
        if self.chan_mut(id)?.state != ChanState::Opening {
            return Err(protocol(
                "channel already open",
                MsgNum::CHANNEL_OPEN_FAILURE,
            ));
        }
        if let Some(slot) = usize::try_from(id)
            .ok()
            .and_then(|i| self.channels.get_mut(i))
        {
            *slot = None;
        }
        self.events.push_back(ChannelEvent::OpenFailed {
            id,
            reason: m.reason,
            description: String::from_utf8_lossy(m.description).into_owned(),
        });
        Ok(())
    }

    fn on_close(&mut self, t: &mut Transport, id: u32) -> Result<(), Error> {
        let ch = self.chan_mut(id)?;
        if ch.close_rcvd || ch.state == ChanState::PendingAccept {
            return Err(protocol("channel close", MsgNum::CHANNEL_CLOSE));
        }
        ch.close_rcvd = true;
        // Answer a CLOSE with ours unless already sent [RFC4254 §5.3].
        if !ch.close_sent {
            ch.close_sent = true;
            let recipient = ch.remote;
            t.send_msg(&ChannelClose { recipient })?;
        }
        self.events.push_back(ChannelEvent::Closed { id });
        self.release_if_finished(id);
        Ok(())
    }

    fn on_request(&mut self, m: &ChannelRequestMsg<'_>) -> Result<(), Error> {
        let id = m.recipient;
        let request = ChannelRequest::parse(m.kind, m.data.0)?;
        let ch = self.open_chan(id, MsgNum::CHANNEL_REQUEST)?;
        if ch.close_sent {
            return Ok(());
        }
        if m.want_reply {
            ch.replies_owed = ch.replies_owed.saturating_add(1);
        }
        self.events.push_back(ChannelEvent::Request {
            id,
            request,
            want_reply: m.want_reply,
        });
        Ok(())
    }

    fn on_reply(&mut self, id: u32, num: MsgNum) -> Result<(), Error> {
        let ch = self.open_chan(id, num)?;
        if ch.replies_expected == 0 {
            return Err(protocol("no channel request outstanding", num));
        }
        ch.replies_expected = ch.replies_expected.saturating_sub(1);
        self.events.push_back(ChannelEvent::Reply {
            id,
            ok: num == MsgNum::CHANNEL_SUCCESS,
        });
        Ok(())
    }

    fn on_data(
        &mut self,
        t: &mut Transport,
        id: u32,
        code: Option<u32>,
        data: &[u8],
        deliver: Option<Deliver<'_>>,
    ) -> Result<(), Error> {
        let num = if code.is_some() {
            MsgNum::CHANNEL_EXTENDED_DATA
        } else {
            MsgNum::CHANNEL_DATA
        };
        let ch = self.open_chan(id, num)?;
        if ch.close_sent {
            // In flight before our CLOSE reached the peer: nobody will read it.
            return Ok(());
        }
        if ch.eof_rcvd {
            return Err(protocol("data after EOF", num));
        }
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        // Tolerant where OpenSSH is (RFC-NOTES, leniency table): data above our maximum packet
        // size is only bounded by the transport's packet cap and the window, and a peer may
        // overrun the window by a tenth of it in all before we disconnect rather than drop
        // [RFC4254 §5.2]. So a channel never buffers more than 1.1 × the window.
        if len <= ch.recv_window {
            ch.recv_window = ch.recv_window.saturating_sub(len);
            ch.recv_excess = 0;
        } else {
            let over = len.saturating_sub(ch.recv_window);
            ch.recv_excess = ch.recv_excess.saturating_add(over);
            ch.recv_window = 0;
            if ch.recv_excess > ch.recv_max / WINDOW_GRACE_DIVISOR {
                return Err(ProtocolError::WindowExceeded { id }.into());
            }
        }
        let buf = match code {
            None => &mut ch.data,
            Some(1) => &mut ch.ext,
            // Unknown extended data types consume window and are dropped.
            Some(_) => return Ok(()),
        };
        // Nothing waits before these bytes: they may go straight to their reader.
        let taken = match deliver {
            Some(d) if buf.is_empty() && !data.is_empty() => {
                d(id, code.is_some(), data).min(data.len())
            }
            _ => 0,
        };
        let rest = data.get(taken..).unwrap_or_default();
        buf.extend(rest);
        if taken > 0 {
            send_due_credit(t, ch)?;
        }
        if !rest.is_empty() {
            self.events.push_back(ChannelEvent::Readable { id });
        }
        Ok(())
    }

    /// Opens a channel of `kind` (the client opens `session`s).
    pub fn open(&mut self, t: &mut Transport, kind: &ChannelKind) -> Result<u32, Error> {
        let window = self.window_for_new();
        let id = self
            .allocate(Channel::new(
                kind.name().to_vec(),
                ChanState::Opening,
                window,
            ))
            .ok_or(Error::Channel(ChannelError::TooManyChannels))?;
        let max_packet = self.config.max_packet;
        t.send_msg(&ChannelOpen {
            kind: kind.name(),
            sender: id,
            window,
            max_packet,
            extra: Rest(&kind.data()),
        })?;
        Ok(id)
    }

    /// Accepts a channel the peer asked for.
    pub fn accept_open(&mut self, t: &mut Transport, id: u32) -> Result<(), Error> {
        let max_packet = self.config.max_packet;
        let ch = self.ours(id)?;
        if ch.state != ChanState::PendingAccept {
            return Err(Error::Channel(ChannelError::NotAwaitingDecision));
        }
        ch.state = ChanState::Open;
        let (recipient, window) = (ch.remote, ch.recv_max);
        t.send_msg(&ChannelOpenConfirmation {
            recipient,
            sender: id,
            window,
            max_packet,
            extra: Rest::default(),
        })
    }

    /// Refuses a channel the peer asked for; its id is free again at once.
    pub fn reject_open(
        &mut self,
        t: &mut Transport,
        id: u32,
        code: u32,
        description: &str,
    ) -> Result<(), Error> {
        let ch = self.ours(id)?;
        if ch.state != ChanState::PendingAccept {
            return Err(Error::Channel(ChannelError::NotAwaitingDecision));
        }
        let remote = ch.remote;
        if let Some(slot) = usize::try_from(id)
            .ok()
            .and_then(|i| self.channels.get_mut(i))
        {
            *slot = None;
        }
        t.send_msg(&ChannelOpenFailure {
            recipient: remote,
            reason: code,
            description: description.as_bytes(),
            language: EMPTY_LANGUAGE,
        })
    }

    /// Sends a channel request (exec, env, exit-status, …).
    pub fn request(
        &mut self,
        t: &mut Transport,
        id: u32,
        req: &ChannelRequest,
        want_reply: bool,
    ) -> Result<(), Error> {
        let ch = self.ours_open(id)?;
        if ch.close_sent {
            return Err(Error::Channel(ChannelError::RequestAfterClose));
        }
        if want_reply {
            ch.replies_expected = ch.replies_expected.saturating_add(1);
        }
        let recipient = ch.remote;
        t.send_msg(&ChannelRequestMsg {
            recipient,
            kind: req.name(),
            want_reply,
            data: Rest(&req.data()),
        })
    }

    /// Answers the oldest unanswered want-reply request on `id` [RFC4254 §4 order].
    pub fn reply_request(&mut self, t: &mut Transport, id: u32, ok: bool) -> Result<(), Error> {
        let ch = self.ours(id)?;
        if ch.replies_owed == 0 {
            return Err(Error::Channel(ChannelError::NoRequestAwaitsReply));
        }
        ch.replies_owed = ch.replies_owed.saturating_sub(1);
        if ch.close_sent {
            return Ok(());
        }
        let recipient = ch.remote;
        if ok {
            t.send_msg(&ChannelSuccess { recipient })
        } else {
            t.send_msg(&ChannelFailure { recipient })
        }
    }

    /// Sends as much of `data` as the window, the peer's packet size and transport backpressure
    /// allow, as CHANNEL_DATA (or EXTENDED_DATA with `ext`); returns the bytes taken. Zero means
    /// wait for [`ChannelEvent::Writable`] or the transport to drain.
    pub fn write(
        &mut self,
        t: &mut Transport,
        id: u32,
        ext: Option<u32>,
        data: &[u8],
    ) -> Result<usize, Error> {
        let ch = self.ours_open(id)?;
        if ch.eof_sent || ch.close_sent {
            return Err(Error::Channel(ChannelError::WriteAfterEof));
        }
        let overhead = if ext.is_some() {
            DATA_OVERHEAD.saturating_add(4)
        } else {
            DATA_OVERHEAD
        };
        let chunk_max = usize::try_from(ch.peer_max_packet)
            .unwrap_or(usize::MAX)
            .min(t.max_payload_len().saturating_sub(overhead))
            .max(1);
        let mut sent = 0usize;
        while sent < data.len() && ch.send_window > 0 && !t.send_blocked() {
            let window = usize::try_from(ch.send_window).unwrap_or(usize::MAX);
            let n = data.len().saturating_sub(sent).min(window).min(chunk_max);
            let Some(chunk) = data.get(sent..sent.saturating_add(n)) else {
                break;
            };
            let recipient = ch.remote;
            match ext {
                None => t.send_msg(&ChannelData {
                    recipient,
                    data: chunk,
                })?,
                Some(code) => t.send_msg(&ChannelExtendedData {
                    recipient,
                    code,
                    data: chunk,
                })?,
            }
            ch.send_window = ch
                .send_window
                .saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
            sent = sent.saturating_add(n);
        }
        Ok(sent)
    }

    /// How much [`Connection::write`] takes now without stopping on the transport's limit:
    /// the window, bounded by what the transport still queues; 0 for an unknown channel.
    pub fn write_room(&self, t: &Transport, id: u32) -> usize {
        self.channel(id).map_or(0, |ch| {
            usize::try_from(ch.send_window())
                .unwrap_or(usize::MAX)
                .min(t.send_room())
        })
    }

    /// Reads buffered channel data (or stderr with `ext`) into `buf`; returns bytes read. Window
    /// credit goes back to the peer only for bytes read here.
    pub fn read(
        &mut self,
        t: &mut Transport,
        id: u32,
        ext: bool,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        let mut at = 0usize;
        self.read_with(t, id, ext, buf.len(), |chunk| {
            let end = at.saturating_add(chunk.len());
            if let Some(d) = buf.get_mut(at..end) {
                d.copy_from_slice(chunk);
            }
            at = end;
            chunk.len()
        })
    }

    /// Like [`Connection::read`], but hands up to `max` buffered bytes to `sink` as one or two
    /// slices instead of copying them into a buffer first; `sink` returns how many it took,
    /// and what it did not take stays buffered. The bulk path moves them straight into a
    /// session's pipe or a process's stdin.
    pub fn read_with(
        &mut self,
        t: &mut Transport,
        id: u32,
        ext: bool,
        max: usize,
        mut sink: impl FnMut(&[u8]) -> usize,
    ) -> Result<usize, Error> {
        let ch = self.ours(id)?;
        let src = if ext { &mut ch.ext } else { &mut ch.data };
        let want = src.len().min(max);
        let (front, back) = src.as_slices();
        let a = front.len().min(want);
        let mut n = 0usize;
        if let Some(f) = front.get(..a).filter(|f| !f.is_empty()) {
            n = sink(f).min(f.len());
        }
        if n == a
            && let Some(k) = back.get(..want.saturating_sub(a)).filter(|k| !k.is_empty())
        {
            n = n.saturating_add(sink(k).min(k.len()));
        }
        src.drain(..n);
        send_due_credit(t, ch)?;
        self.release_if_finished(id);
        Ok(n)
    }

    /// Sends EOF: we will write no more [RFC4254 §5.3].
    pub fn send_eof(&mut self, t: &mut Transport, id: u32) -> Result<(), Error> {
        let ch = self.ours_open(id)?;
        if ch.eof_sent || ch.close_sent {
            return Ok(());
        }
        ch.eof_sent = true;
        let recipient = ch.remote;
        t.send_msg(&ChannelEof { recipient })
    }

    /// Sends CLOSE; the id is reused only once the peer's CLOSE has arrived too [RFC4254 §5.3].
    pub fn close(&mut self, t: &mut Transport, id: u32) -> Result<(), Error> {
        let ch = self.ours(id)?;
        if ch.close_sent || ch.state != ChanState::Open {
            return Ok(());
        }
        ch.close_sent = true;
        // Whatever is unread will never be read now.
        ch.data.clear();
        ch.ext.clear();
        let recipient = ch.remote;
        t.send_msg(&ChannelClose { recipient })?;
        self.release_if_finished(id);
        Ok(())
    }
}
