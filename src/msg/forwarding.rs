//! The type-specific parts of RFC 4254's channel opens and global requests: what a `session`,
//! `x11`, `direct-tcpip` or `forwarded-tcpip` CHANNEL_OPEN carries [RFC4254 §6.1, §6.3.2,
//! §7.2], the global requests [RFC4254 §4, §7.1, PROTOCOL §2.2, §2.5] and the port a
//! `tcpip-forward` reply names [RFC4254 §7.1]. One decoder and one encoder each, as for the
//! messages themselves ([`super::ChannelOpen::extra`], [`super::GlobalRequest::data`]).
//!
//! Decoding is as strict as OpenSSH's: a known type whose fields are missing is an error (sshd
//! ends the connection; see RFC-NOTES), bytes after the fields are tolerated (sshd does not look).

use crate::error::DecodeError;
use crate::wire::{Reader, Writer};

/// The four fields of both TCP/IP channel types [RFC4254 §7.2].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpipEnds {
    /// `direct-tcpip`: the host to connect to; `forwarded-tcpip`: the address that was
    /// connected (the one a `tcpip-forward` bound).
    pub host: Vec<u8>,
    /// The port on that host.
    pub port: u32,
    /// The address the connection came from.
    pub originator: Vec<u8>,
    /// Its port.
    pub originator_port: u32,
}

/// A CHANNEL_OPEN's type with its type-specific data, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelKind {
    /// `session` [RFC4254 §6.1]: no data.
    Session,
    /// `x11` [RFC4254 §6.3.2]: where the X11 connection came from.
    X11 {
        /// Originator address.
        originator: Vec<u8>,
        /// Originator port.
        originator_port: u32,
    },
    /// `direct-tcpip` [RFC4254 §7.2]: connect to `host:port` for the opener.
    DirectTcpip(TcpipEnds),
    /// `forwarded-tcpip` [RFC4254 §7.2]: a connection arrived on a port forwarded with
    /// `tcpip-forward`.
    ForwardedTcpip(TcpipEnds),
    /// Any other type (refused): its name; its data is not kept.
    Other(Vec<u8>),
}

impl ChannelKind {
    /// Decodes the type `kind` and its data (`extra` of [`super::ChannelOpen`]).
    pub fn parse(kind: &[u8], extra: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(extra);
        let r = &mut r;
        let ends = |r: &mut Reader<'_>| -> Result<TcpipEnds, DecodeError> {
            Ok(TcpipEnds {
                host: r.string()?.to_vec(),
                port: r.u32()?,
                originator: r.string()?.to_vec(),
                originator_port: r.u32()?,
            })
        };
        let context = |e: DecodeError| e.context("CHANNEL_OPEN type-specific data");
        Ok(match kind {
            b"session" => ChannelKind::Session,
            b"x11" => ChannelKind::X11 {
                originator: r.string().map_err(context)?.to_vec(),
                originator_port: r.u32().map_err(context)?,
            },
            b"direct-tcpip" => ChannelKind::DirectTcpip(ends(r).map_err(context)?),
            b"forwarded-tcpip" => ChannelKind::ForwardedTcpip(ends(r).map_err(context)?),
            other => ChannelKind::Other(other.to_vec()),
        })
    }

    /// The channel type name.
    pub fn name(&self) -> &[u8] {
        match self {
            ChannelKind::Session => b"session",
            ChannelKind::X11 { .. } => b"x11",
            ChannelKind::DirectTcpip(_) => b"direct-tcpip",
            ChannelKind::ForwardedTcpip(_) => b"forwarded-tcpip",
            ChannelKind::Other(name) => name,
        }
    }

    /// The type-specific data to send (the inverse of [`ChannelKind::parse`]; none for
    /// [`ChannelKind::Other`]).
    pub fn data(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        match self {
            ChannelKind::Session | ChannelKind::Other(_) => {}
            ChannelKind::X11 {
                originator,
                originator_port,
            } => {
                w.string(originator).u32(*originator_port);
            }
            ChannelKind::DirectTcpip(e) | ChannelKind::ForwardedTcpip(e) => {
                w.string(&e.host)
                    .u32(e.port)
                    .string(&e.originator)
                    .u32(e.originator_port);
            }
        }
        out
    }
}

/// A GLOBAL_REQUEST's name with its data, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GlobalRequestKind {
    /// `tcpip-forward` [RFC4254 §7.1]: listen on `address:port` (port 0: any, the reply names
    /// it) and open a `forwarded-tcpip` channel per connection.
    TcpipForward {
        /// Address to bind (`""`, `0.0.0.0`, `localhost`, …, as RFC 4254 §7.1 lists).
        address: Vec<u8>,
        /// Port to bind.
        port: u32,
    },
    /// `cancel-tcpip-forward` [RFC4254 §7.1].
    CancelTcpipForward {
        /// The address of the forwarding to cancel.
        address: Vec<u8>,
        /// Its port.
        port: u32,
    },
    /// `no-more-sessions@openssh.com` [PROTOCOL §2.2]: refuse further `session` opens.
    NoMoreSessions,
    /// `keepalive@openssh.com`: a probe; the answer is what counts.
    Keepalive,
    /// Any other request (refused): its name; its data is not kept.
    Other(Vec<u8>),
}

impl GlobalRequestKind {
    /// Decodes the request `name` and its data (`data` of [`super::GlobalRequest`]).
    pub fn parse(name: &[u8], data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let context = |e: DecodeError| e.context("GLOBAL_REQUEST request-specific data");
        Ok(match name {
            b"tcpip-forward" => GlobalRequestKind::TcpipForward {
                address: r.string().map_err(context)?.to_vec(),
                port: r.u32().map_err(context)?,
            },
            b"cancel-tcpip-forward" => GlobalRequestKind::CancelTcpipForward {
                address: r.string().map_err(context)?.to_vec(),
                port: r.u32().map_err(context)?,
            },
            b"no-more-sessions@openssh.com" => GlobalRequestKind::NoMoreSessions,
            b"keepalive@openssh.com" => GlobalRequestKind::Keepalive,
            other => GlobalRequestKind::Other(other.to_vec()),
        })
    }

    /// The request name.
    pub fn name(&self) -> &[u8] {
        match self {
            GlobalRequestKind::TcpipForward { .. } => b"tcpip-forward",
            GlobalRequestKind::CancelTcpipForward { .. } => b"cancel-tcpip-forward",
            GlobalRequestKind::NoMoreSessions => b"no-more-sessions@openssh.com",
            GlobalRequestKind::Keepalive => b"keepalive@openssh.com",
            GlobalRequestKind::Other(name) => name,
        }
    }

    /// The request-specific data to send (the inverse of [`GlobalRequestKind::parse`]).
    pub fn data(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        if let GlobalRequestKind::TcpipForward { address, port }
        | GlobalRequestKind::CancelTcpipForward { address, port } = self
        {
            w.string(address).u32(*port);
        }
        out
    }
}

/// The port a REQUEST_SUCCESS to a `tcpip-forward` names [RFC4254 §7.1]: present only when
/// the request asked for port 0; `None` for an empty reply.
pub fn bound_port(reply: &[u8]) -> Result<Option<u32>, DecodeError> {
    if reply.is_empty() {
        return Ok(None);
    }
    let mut r = Reader::new(reply);
    let port = r
        .u32()
        .map_err(|e| e.context("REQUEST_SUCCESS bound port"))?;
    Ok(Some(port))
}

/// The data of a REQUEST_SUCCESS naming `port` (the inverse of [`bound_port`]).
pub fn bound_port_data(port: u32) -> Vec<u8> {
    port.to_be_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpip_kinds_round_trip_and_missing_fields_are_errors() {
        let ends = TcpipEnds {
            host: b"db.internal".to_vec(),
            port: 5432,
            originator: b"127.0.0.1".to_vec(),
            originator_port: 40000,
        };
        for kind in [
            ChannelKind::DirectTcpip(ends.clone()),
            ChannelKind::ForwardedTcpip(ends),
            ChannelKind::X11 {
                originator: b"::1".to_vec(),
                originator_port: 6010,
            },
            ChannelKind::Session,
        ] {
            let data = kind.data();
            assert_eq!(ChannelKind::parse(kind.name(), &data), Ok(kind.clone()));
            if !data.is_empty() {
                assert!(ChannelKind::parse(kind.name(), &data[..data.len() - 1]).is_err());
            }
        }
        // Trailing bytes are tolerated, as sshd tolerates them; unknown types keep their name.
        assert_eq!(
            ChannelKind::parse(b"session", b"junk"),
            Ok(ChannelKind::Session)
        );
        assert_eq!(
            ChannelKind::parse(b"tun@openssh.com", b"\0\0\0\x01"),
            Ok(ChannelKind::Other(b"tun@openssh.com".to_vec()))
        );
    }

    #[test]
    fn global_requests_and_the_bound_port_round_trip() {
        for req in [
            GlobalRequestKind::TcpipForward {
                address: b"localhost".to_vec(),
                port: 0,
            },
            GlobalRequestKind::CancelTcpipForward {
                address: b"".to_vec(),
                port: 8080,
            },
            GlobalRequestKind::NoMoreSessions,
            GlobalRequestKind::Keepalive,
        ] {
            assert_eq!(
                GlobalRequestKind::parse(req.name(), &req.data()),
                Ok(req.clone())
            );
        }
        assert!(GlobalRequestKind::parse(b"tcpip-forward", b"\0\0\0\x01a").is_err());
        assert_eq!(bound_port(&bound_port_data(34567)), Ok(Some(34567)));
        assert_eq!(bound_port(b""), Ok(None));
        assert!(bound_port(b"\0\x01").is_err());
    }
}
