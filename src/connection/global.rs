//! Global requests [RFC4254 §4]: the peer's, answered in arrival order, and ours, whose replies
//! come back in the order we sent them and are matched to them here (a `tcpip-forward` to port 0
//! learns its port from its reply [RFC4254 §7.1]).
//!
//! The peer's `tcpip-forward` and `cancel-tcpip-forward` reach the application only when
//! [`ConnectionConfig::forwarding_requests`](super::ConnectionConfig) asks for them; everything
//! else is refused here. A reply the application has not given yet holds back the replies to
//! later requests, so the peer sees them in the order it asked.

use super::{ChannelEvent, Connection, protocol};
use crate::error::ProtocolError;
use crate::error::{ChannelError, Error};
use crate::limits::GLOBAL_REPLIES_QUEUED;
use crate::msg::forwarding::{bound_port, bound_port_data};
use crate::msg::{GlobalRequest, GlobalRequestKind, MsgNum, RequestFailure, RequestSuccess, Rest};
use crate::transport::Transport;

/// A reply we owe the peer: decided (and waiting only for earlier ones) or still the
/// application's to give.
#[derive(Debug)]
pub(super) enum Owed {
    /// The application has not answered yet.
    Undecided,
    /// REQUEST_SUCCESS (with a bound port) or REQUEST_FAILURE.
    Decided { ok: bool, port: Option<u32> },
}

/// One of our global requests awaiting its reply.
#[derive(Debug)]
pub(super) enum Awaiting {
    /// A keepalive: only its arrival counts, the application never sees it.
    Keepalive,
    /// The application's: its reply becomes a [`ChannelEvent::GlobalReply`].
    Request(GlobalRequestKind),
}

impl Connection {
    pub(super) fn on_global_request(
        &mut self,
        t: &mut Transport,
        m: &GlobalRequest<'_>,
    ) -> Result<(), Error> {
        // A malformed request we would refuse anyway is refused, not a reason to disconnect.
        let request = match GlobalRequestKind::parse(m.name, m.data.0) {
            Ok(GlobalRequestKind::NoMoreSessions) => {
                self.no_more_sessions = true;
                None
            }
            Ok(
                r @ (GlobalRequestKind::TcpipForward { .. }
                | GlobalRequestKind::CancelTcpipForward { .. }),
            ) if self.config.forwarding_requests => Some(r),
            _ => None,
        };
        if m.want_reply {
            // Bounded: a peer that keeps asking while the application has not answered
            // cannot grow the queue (OpenSSH answers each at once, so queues none).
            if self.owed.len() >= GLOBAL_REPLIES_QUEUED {
                return Err(ProtocolError::TooManyGlobalRequests {
                    limit: GLOBAL_REPLIES_QUEUED,
                }
                .into());
            }
            self.owed.push_back(match request {
                Some(_) => Owed::Undecided,
                None => Owed::Decided {
                    ok: false,
                    port: None,
                },
            });
        }
        if let Some(request) = request {
            self.events.push_back(ChannelEvent::GlobalRequest {
                request,
                want_reply: m.want_reply,
            });
        }
        self.send_owed(t)
    }

    /// Answers the oldest of the peer's global requests the application still has to answer
    /// (a [`ChannelEvent::GlobalRequest`] with `want_reply`): answers go in the order the
    /// requests came [RFC4254 §4]. `bound_port` is sent with a success only: the port a
    /// `tcpip-forward` to port 0 got [RFC4254 §7.1].
    pub fn reply_global(
        &mut self,
        t: &mut Transport,
        ok: bool,
        bound_port: Option<u32>,
    ) -> Result<(), Error> {
        let slot = self
            .owed
            .iter_mut()
            .find(|o| matches!(o, Owed::Undecided))
            .ok_or(Error::Channel(ChannelError::NoGlobalRequestAwaitsReply))?;
        *slot = Owed::Decided {
            ok,
            port: bound_port.filter(|_| ok),
        };
        self.send_owed(t)
    }

    /// Sends the decided replies at the front of the queue.
    fn send_owed(&mut self, t: &mut Transport) -> Result<(), Error> {
        while let Some(Owed::Decided { ok, port }) = self.owed.front() {
            if !*ok {
                t.send_msg(&RequestFailure {})?;
            } else {
                let data = port.map(bound_port_data).unwrap_or_default();
                t.send_msg(&RequestSuccess { data: Rest(&data) })?;
            }
            self.owed.pop_front();
        }
        Ok(())
    }

    /// REQUEST_SUCCESS (with its `data`) or REQUEST_FAILURE: the answer to our oldest request.
    pub(super) fn on_global_reply(&mut self, num: MsgNum, data: &[u8]) -> Result<(), Error> {
        let Some(awaiting) = self.awaiting.pop_front() else {
            return Err(protocol("no global request outstanding", num));
        };
        let ok = num == MsgNum::REQUEST_SUCCESS;
        if let Awaiting::Request(request) = awaiting {
            // Only a forward to port 0 is answered with the port [RFC4254 §7.1]; a reply
            // that should carry it and does not is malformed, as OpenSSH's client finds it.
            let bound_port = match &request {
                GlobalRequestKind::TcpipForward { port: 0, .. } if ok => {
                    Some(bound_port(data)?.ok_or(Error::Channel(ChannelError::NoBoundPort))?)
                }
                _ => None,
            };
            self.events.push_back(ChannelEvent::GlobalReply {
                request,
                ok,
                bound_port,
            });
        }
        Ok(())
    }

    /// Sends a global request; with `want_reply`, its answer arrives as
    /// [`ChannelEvent::GlobalReply`] (for a keepalive: not at all, see
    /// [`Connection::keepalives_unanswered`]).
    pub fn global_request(
        &mut self,
        t: &mut Transport,
        request: &GlobalRequestKind,
        want_reply: bool,
    ) -> Result<(), Error> {
        if want_reply {
            self.awaiting.push_back(match request {
                GlobalRequestKind::Keepalive => Awaiting::Keepalive,
                other => Awaiting::Request(other.clone()),
            });
        }
        t.send_msg(&GlobalRequest {
            name: request.name(),
            want_reply,
            data: Rest(&request.data()),
        })
    }

    /// Global requests of ours still awaiting a reply.
    pub fn global_replies_expected(&self) -> u32 {
        u32::try_from(self.awaiting.len()).unwrap_or(u32::MAX)
    }

    /// Keepalives still awaiting a reply.
    pub fn keepalives_unanswered(&self) -> u32 {
        let n = self
            .awaiting
            .iter()
            .filter(|a| matches!(a, Awaiting::Keepalive))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}
