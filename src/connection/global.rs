//! Global requests [RFC4254 §4]: the peer's, answered in arrival order, and ours, whose replies
//! come back in the order we sent them and are matched to them here (a `tcpip-forward` to port 0
//! learns its port from its reply [RFC4254 §7.1]).

use super::{ChannelEvent, Connection, protocol};
use crate::error::{ChannelError, Error};
use crate::msg::forwarding::bound_port;
use crate::msg::{GlobalRequest, GlobalRequestKind, MsgNum, RequestFailure, Rest};
use crate::transport::Transport;

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
        if let Ok(GlobalRequestKind::NoMoreSessions) = GlobalRequestKind::parse(m.name, m.data.0) {
            self.no_more_sessions = true;
        }
        // We offer no global services (port forwarding included): refuse, in arrival order.
        if m.want_reply {
            t.send_msg(&RequestFailure {})?;
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
