//! One channel's state: lifecycle flags and both flow-control windows [RFC4254 §5].

use std::collections::VecDeque;

use crate::limits::BEHIND_MIN_WINDOW;

/// Where a channel is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChanState {
    /// We sent CHANNEL_OPEN and await the peer's answer.
    Opening,
    /// The peer asked to open it; the application has not decided.
    PendingAccept,
    /// Confirmed both ways.
    Open,
}

/// A channel. Buffered unread bytes never exceed what our window allowed the peer to send.
#[derive(Debug)]
pub struct Channel {
    pub(crate) remote: u32,
    pub(crate) kind: Vec<u8>,
    /// Lifecycle state.
    pub state: ChanState,
    pub(crate) eof_sent: bool,
    pub(crate) eof_rcvd: bool,
    pub(crate) close_sent: bool,
    pub(crate) close_rcvd: bool,
    /// Bytes we may still send [RFC4254 §5.2].
    pub(crate) send_window: u32,
    /// The largest `send_window` the peer ever gave us.
    pub(crate) send_peak: u32,
    /// The credit of the peer's latest WINDOW_ADJUST.
    pub(crate) last_credit: u32,
    /// Largest data payload the peer accepts in one message.
    pub(crate) peer_max_packet: u32,
    /// Bytes the peer may still send us.
    pub(crate) recv_window: u32,
    /// Our configured window size: the most we ever grant.
    pub(crate) recv_max: u32,
    /// Bytes the peer sent beyond the window since it last stayed within it (OpenSSH's
    /// `local_window_exceeded`): tolerated up to a tenth of `recv_max`.
    pub(crate) recv_excess: u32,
    /// Channel data not yet read by the application.
    pub(crate) data: VecDeque<u8>,
    /// Extended data type 1 (stderr) not yet read.
    pub(crate) ext: VecDeque<u8>,
    /// Peer requests with want-reply we still owe an answer to, in order [RFC4254 §4].
    pub(crate) replies_owed: u32,
    /// Our requests with want-reply still unanswered.
    pub(crate) replies_expected: u32,
}

impl Channel {
    pub(crate) fn new(kind: Vec<u8>, state: ChanState, window: u32) -> Self {
        Self {
            remote: 0,
            kind,
            state,
            eof_sent: false,
            eof_rcvd: false,
            close_sent: false,
            close_rcvd: false,
            send_window: 0,
            send_peak: 0,
            last_credit: 0,
            peer_max_packet: 0,
            recv_window: window,
            recv_max: window,
            recv_excess: 0,
            data: VecDeque::new(),
            ext: VecDeque::new(),
            replies_owed: 0,
            replies_expected: 0,
        }
    }

    /// The channel type.
    pub fn kind(&self) -> &[u8] {
        &self.kind
    }

    /// Whether the peer sent EOF.
    pub fn eof_received(&self) -> bool {
        self.eof_rcvd
    }

    /// Whether our CLOSE went out.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether the peer closed the channel.
    pub fn close_received(&self) -> bool {
        self.close_rcvd
    }

    /// Bytes we may send now.
    pub fn send_window(&self) -> u32 {
        self.send_window
    }

    /// Sets the window the peer gave us (at open, or after a WINDOW_ADJUST).
    pub(crate) fn set_send_window(&mut self, window: u32) {
        self.send_window = window;
        self.send_peak = self.send_peak.max(window);
    }

    /// Whether the peer is behind what we send and returns credit in small steps: more than
    /// half of the largest window it ever gave us is in flight, that window is at least
    /// [`BEHIND_MIN_WINDOW`], and its latest WINDOW_ADJUST gave less than one of its packets.
    /// Such a peer has half a window in hand, and none of its adjusts is urgent.
    pub fn peer_behind(&self) -> bool {
        self.send_peak >= BEHIND_MIN_WINDOW
            && self.send_window < self.send_peak / 2
            && self.last_credit < self.peer_max_packet
    }

    /// Extended-data bytes (type 1) buffered and unread.
    pub fn extended_buffered(&self) -> usize {
        self.ext.len()
    }

    /// Bytes received and not yet read (data and extended data).
    pub fn buffered(&self) -> usize {
        self.data.len().saturating_add(self.ext.len())
    }

    /// Credit to return to the peer: what it used and we consumed, sent once at least half the
    /// window is due, so adjusts stay rare but the peer never stalls on a draining reader.
    pub(crate) fn due_credit(&self) -> Option<u32> {
        if self.eof_rcvd || self.close_rcvd || self.state != ChanState::Open {
            return None;
        }
        let buffered = u32::try_from(self.buffered()).unwrap_or(u32::MAX);
        let grant = self
            .recv_max
            .saturating_sub(self.recv_window)
            .saturating_sub(buffered);
        (grant > 0 && grant >= self.recv_max / 2).then_some(grant)
    }

    /// Whether the slot can be reused: CLOSE went both ways and nothing is left to read.
    pub(crate) fn is_finished(&self) -> bool {
        self.close_sent && self.close_rcvd && self.data.is_empty() && self.ext.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_behind_only_past_half_a_large_window_and_crediting_in_small_steps() {
        let mut ch = Channel::new(b"session".to_vec(), ChanState::Open, 0);
        ch.peer_max_packet = 32 * 1024;
        ch.set_send_window(2 * 1024 * 1024);
        assert!(!ch.peer_behind(), "a full window");
        ch.send_window = 900 * 1024;
        assert!(ch.peer_behind(), "more than half in flight, no adjust yet");
        // An adjust worth a full packet: the peer is keeping up.
        ch.set_send_window(ch.send_window + 64 * 1024);
        ch.last_credit = 64 * 1024;
        assert!(!ch.peer_behind());
        ch.set_send_window(ch.send_window + 8 * 1024);
        ch.last_credit = 8 * 1024;
        assert!(ch.peer_behind());
        assert_eq!(
            ch.send_peak,
            2 * 1024 * 1024,
            "the peak is the largest window seen"
        );
        // A small window's peer is never paced: half of it would not last.
        let mut small = Channel::new(b"session".to_vec(), ChanState::Open, 0);
        small.peer_max_packet = 32 * 1024;
        small.set_send_window(256 * 1024);
        small.send_window = 0;
        assert!(!small.peer_behind());
    }
}
