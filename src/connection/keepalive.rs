//! `keepalive@openssh.com` liveness probes, for either role (sshd's ClientAlive*, ssh's
//! ServerAlive*): after `interval` without input, a global request wanting a reply; any reply,
//! even a refusal, proves the peer alive [PROTOCOL §2.2 keepalive, RFC4254 §4].

use std::time::{Duration, Instant};

use crate::connection::Connection;
use crate::error::{ChannelError, DisconnectReason, Error};
use crate::transport::Transport;

/// The probe timer of one connection.
#[derive(Clone, Debug)]
pub struct Keepalive {
    interval: Option<Duration>,
    max: u32,
    due: Option<Instant>,
}

impl Keepalive {
    /// Probes after `interval` of silence (`None`: never); gives up after `max` unanswered.
    pub fn new(interval: Option<Duration>, max: u32) -> Self {
        Self {
            interval,
            max,
            due: None,
        }
    }

    /// Input arrived (on an authenticated connection): the peer is alive, restart the wait.
    pub fn input(&mut self, now: Instant) {
        self.due = self.interval.and_then(|i| now.checked_add(i));
    }

    /// When [`Keepalive::handle_timeout`] next needs calling.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due
    }

    /// Sends a probe if one is due; fails once `max` probes went unanswered.
    pub fn handle_timeout(
        &mut self,
        conn: &mut Connection,
        t: &mut Transport,
        now: Instant,
    ) -> Result<(), Error> {
        let Some(due) = self.due else {
            return Ok(());
        };
        if now < due {
            return Ok(());
        }
        if conn.keepalives_unanswered() >= self.max {
            t.disconnect(DisconnectReason::ByApplication, "keepalive timeout");
            return Err(Error::Channel(ChannelError::KeepaliveTimeout));
        }
        conn.global_request(t, &crate::msg::GlobalRequestKind::Keepalive, true)?;
        self.due = self.interval.and_then(|i| now.checked_add(i));
        Ok(())
    }
}
