//! The listening sockets: bound here, or inherited — from systemd (socket activation,
//! `LISTEN_FDS`) or from the process this one replaces (a binary upgrade hands its sockets over
//! the same way) — and handed on to a successor.
//!
//! Inherited sockets are matched to the configuration by address (a configured port 0 matches
//! any port on that address); the one named `monitoring` (`LISTEN_FDNAMES`, systemd's
//! `FileDescriptorName=`) serves the metrics and probes. An inherited socket that matches no
//! configured listener is an error that names it: serving it with a guessed PROXY policy could
//! let clients pass as the balancer, or the balancer as a client.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::{AsFd, OwnedFd};

use tokio::net::TcpListener;

use crate::config::Config;
use crate::driver::proxy_header::ProxyPolicy;

/// `LISTEN_FDNAMES` name of the monitoring socket.
pub const MONITORING: &str = "monitoring";

/// `LISTEN_FDNAMES` name of an SSH socket.
pub const SSH: &str = "ssh";

/// Sockets this process was given at start, with their names.
#[derive(Debug, Default)]
pub struct Inherited(Vec<(String, StdListener)>);

impl Inherited {
    /// Takes the sockets named in `LISTEN_FDS` (and `LISTEN_PID` if set). Call it before any
    /// thread starts: it unsets those variables.
    pub fn from_env() -> Result<Self, String> {
        let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
            .map(|n| n.split(':').map(str::to_owned).collect())
            .unwrap_or_default();
        let mut fds = listenfd::ListenFd::from_env();
        let mut got = Vec::new();
        for i in 0..fds.len() {
            let taken = fds.take_tcp_listener(i).map_err(|e| {
                format!(
                    "inherited socket {} of LISTEN_FDS: {e}",
                    i.saturating_add(1)
                )
            })?;
            if let Some(l) = taken {
                let name = names.get(i).cloned().unwrap_or_else(|| "unknown".into());
                got.push((name, l));
            }
        }
        Ok(Self(got))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One SSH listener and its PROXY-protocol policy.
#[derive(Debug)]
pub struct SshSocket {
    /// The socket.
    pub listener: TcpListener,
    /// What it expects of a PROXY header.
    pub policy: ProxyPolicy,
    /// Whether it came from the environment rather than bound here.
    pub inherited: bool,
}

/// Every socket this process listens on.
#[derive(Debug)]
pub struct Sockets {
    /// SSH, one per configured listener.
    pub ssh: Vec<SshSocket>,
    /// Metrics and probes, when configured.
    pub monitoring: Option<TcpListener>,
}

/// Whether a configured address is served by a socket bound to `actual`.
fn matches(configured: SocketAddr, actual: SocketAddr) -> bool {
    configured == actual || (configured.port() == 0 && configured.ip() == actual.ip())
}

fn adopt(l: StdListener, what: &str) -> Result<TcpListener, String> {
    l.set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(l))
        .map_err(|e| format!("{what}: {e}"))
}

/// The configured listeners: inherited sockets where one matches, the rest bound.
pub async fn open(c: &Config, inherited: Inherited) -> Result<Sockets, String> {
    let mut pool = inherited.0;
    let given_monitoring = pool
        .iter()
        .position(|(name, _)| name == MONITORING)
        .map(|i| pool.remove(i).1);
    let mut ssh = Vec::new();
    for (addr, policy) in c.listeners_with_policy() {
        let found = pool
            .iter()
            .position(|(_, l)| l.local_addr().is_ok_and(|a| matches(addr, a)));
        let (listener, inherited) = match found {
            Some(i) => (adopt(pool.remove(i).1, &format!("listen {addr}"))?, true),
            None => (
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("listen {addr}: {e}"))?,
                false,
            ),
        };
        ssh.push(SshSocket {
            listener,
            policy,
            inherited,
        });
    }
    if let Some((name, l)) = pool.first() {
        let addr = l
            .local_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string());
        return Err(format!(
            "inherited socket {addr} (named \"{name}\") matches no address in listen or \
             [[listeners]]: add it there, or remove it from the socket unit"
        ));
    }
    let monitoring = match c.monitoring.listen.parse::<SocketAddr>() {
        Ok(addr) => Some(match given_monitoring {
            Some(l) if l.local_addr().is_ok_and(|a| matches(addr, a)) => {
                adopt(l, "monitoring.listen")?
            }
            _ => TcpListener::bind(addr)
                .await
                .map_err(|e| format!("monitoring.listen {addr}: {e}"))?,
        }),
        // Disabled: an inherited monitoring socket is closed.
        Err(_) => None,
    };
    Ok(Sockets { ssh, monitoring })
}

/// Copies of the listening sockets for a successor, with their `LISTEN_FDNAMES` names, kept for
/// as long as this process may hand them over. Dropped when it stops listening: otherwise the
/// kernel would keep completing handshakes on a socket no one accepts from.
#[derive(Debug, Default)]
pub struct Handover(Vec<(&'static str, OwnedFd)>);

impl Handover {
    /// Duplicates the descriptors of `sockets` (close-on-exec, like every descriptor of ours).
    pub fn of(sockets: &Sockets) -> Result<Self, String> {
        let mut fds = Vec::new();
        for s in &sockets.ssh {
            fds.push((SSH, dup(&s.listener)?));
        }
        if let Some(m) = &sockets.monitoring {
            fds.push((MONITORING, dup(m)?));
        }
        Ok(Self(fds))
    }

    /// The descriptors in order (fd 3 onwards in the successor) and `LISTEN_FDNAMES`.
    pub fn for_child(&self) -> Result<(Vec<OwnedFd>, String), String> {
        let mut fds = Vec::new();
        for (_, fd) in &self.0 {
            fds.push(
                fd.try_clone()
                    .map_err(|e| format!("duplicating a listening socket: {e}"))?,
            );
        }
        let names: Vec<&str> = self.0.iter().map(|(n, _)| *n).collect();
        Ok((fds, names.join(":")))
    }
}

fn dup(l: &TcpListener) -> Result<OwnedFd, String> {
    l.as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("duplicating a listening socket: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_matches_any_port_on_its_address_only() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(matches(a("127.0.0.1:0"), a("127.0.0.1:4000")));
        assert!(matches(a("127.0.0.1:22"), a("127.0.0.1:22")));
        assert!(!matches(a("127.0.0.1:22"), a("127.0.0.1:23")));
        assert!(!matches(a("127.0.0.1:0"), a("127.0.0.2:4000")));
        assert!(!matches(a("0.0.0.0:22"), a("[::]:22")));
    }
}
