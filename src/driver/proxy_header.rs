//! The PROXY protocol (HAProxy's `haproxy-proxy-protocol.txt`, v1 text and v2 binary) in front
//! of SSH: a load balancer tells us the client's real address before the SSH bytes. Parsing is
//! the `ppp` crate's; this module decides whom to believe and bounds what it reads: the header
//! is read exactly (v1 up to its CR LF, at most 107 bytes; v2 its 16-byte prefix and then the
//! announced length, at most [`MAX_PROXY_HEADER_LEN`]), within [`PROXY_HEADER_TIMEOUT`], so
//! nothing of the SSH stream is consumed and nothing is allocated from an unchecked length.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::limits::{MAX_PROXY_HEADER_LEN, PROXY_HEADER_TIMEOUT};

/// Whether a listener expects a PROXY header.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    /// No header: the TCP peer is the client (a header makes the SSH handshake fail).
    #[default]
    Off,
    /// Trusted sources may send one; connections without one are direct clients.
    Optional,
    /// Trusted sources must send one; every other source is refused.
    Required,
}

/// An address block, `10.0.0.0/8` or `2001:db8::/32` (a bare address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    /// Parses `addr[/len]`.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let net: IpAddr = addr.trim().parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l.trim().parse::<u8>().ok().filter(|l| *l <= max)?,
            None => max,
        };
        Some(Self { net, len })
    }

    /// Whether `ip` (IPv4-mapped counts as IPv4) lies in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32u32.saturating_sub(u32::from(self.len)))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(u32::from(self.len)))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// A listener's PROXY protocol policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyPolicy {
    /// The mode.
    pub mode: ProxyMode,
    /// Who may send a header (the balancers).
    pub trusted: Vec<Cidr>,
}

/// Why a connection was refused while its PROXY header was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderRefusal {
    /// A header from a source not in `trusted_sources`.
    Untrusted,
    /// `required`, and the connection started with something else (or with nothing in time).
    Missing,
    /// The header did not parse, or was longer than we read.
    Malformed(String),
    /// The connection closed or failed before the header was complete.
    Io(String),
}

impl HeaderRefusal {
    /// A short name for metrics.
    pub const fn kind(&self) -> &'static str {
        match self {
            HeaderRefusal::Untrusted => "proxy_header_untrusted",
            HeaderRefusal::Missing => "proxy_header_missing",
            HeaderRefusal::Malformed(_) => "proxy_header_malformed",
            HeaderRefusal::Io(_) => "proxy_header_io",
        }
    }

    /// For the log.
    pub fn reason(&self) -> String {
        match self {
            HeaderRefusal::Untrusted => "PROXY header from an untrusted source".into(),
            HeaderRefusal::Missing => "PROXY header required but missing".into(),
            HeaderRefusal::Malformed(why) => format!("malformed PROXY header: {why}"),
            HeaderRefusal::Io(why) => format!("PROXY header not read: {why}"),
        }
    }
}

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The client's address for a connection from `peer`: the one its PROXY header names, if the
/// policy expects and trusts one, else `peer`. A `LOCAL` header (the balancer's own health
/// check), `UNKNOWN` or a non-IP family keep `peer`, as the specification says.
pub async fn client_address(
    sock: &mut TcpStream,
    peer: SocketAddr,
    policy: &ProxyPolicy,
) -> Result<SocketAddr, HeaderRefusal> {
    if policy.mode == ProxyMode::Off {
        return Ok(peer);
    }
    let trusted = policy.trusted.iter().any(|c| c.contains(peer.ip()));
    match tokio::time::timeout(PROXY_HEADER_TIMEOUT, read_header(sock, peer)).await {
        // Nothing (or an SSH version line) in time: a direct client.
        Err(_) | Ok(Ok(None)) => match (policy.mode, trusted) {
            (ProxyMode::Required, true) => Err(HeaderRefusal::Missing),
            // Untrusted sources of a `required` listener are refused whatever they send.
            (ProxyMode::Required, false) => Err(HeaderRefusal::Untrusted),
            _ => Ok(peer),
        },
        Ok(Ok(Some(_))) if !trusted => Err(HeaderRefusal::Untrusted),
        Ok(Ok(Some(addr))) => Ok(addr.unwrap_or(peer)),
        Ok(Err(e)) => Err(e),
    }
}

/// Reads a header if the stream starts with one: `Ok(None)` when it starts otherwise (nothing
/// is consumed then), `Ok(Some(None))` for a header that names no address.
async fn read_header(
    sock: &mut TcpStream,
    peer: SocketAddr,
) -> Result<Option<Option<SocketAddr>>, HeaderRefusal> {
    let io = |e: std::io::Error| HeaderRefusal::Io(e.to_string());
    let mut first = [0u8; 1];
    if sock.peek(&mut first).await.map_err(io)? == 0 {
        return Err(HeaderRefusal::Io("closed before anything was sent".into()));
    }
    match first[0] {
        b'P' => {
            // v1: "PROXY … CR LF", 107 bytes at most; byte by byte so nothing more is taken.
            let mut line = Vec::with_capacity(108);
            while !line.ends_with(b"\r\n") {
                if line.len() >= 107 {
                    return Err(HeaderRefusal::Malformed(
                        "v1 line longer than 107 bytes".into(),
                    ));
                }
                line.push(sock.read_u8().await.map_err(io)?);
            }
            let header = ppp::v1::Header::try_from(line.as_slice())
                .map_err(|e| HeaderRefusal::Malformed(e.to_string()))?;
            Ok(Some(match header.addresses {
                ppp::v1::Addresses::Tcp4(a) => {
                    Some(SocketAddr::new(a.source_address.into(), a.source_port))
                }
                ppp::v1::Addresses::Tcp6(a) => {
                    Some(SocketAddr::new(a.source_address.into(), a.source_port))
                }
                ppp::v1::Addresses::Unknown => None,
            }))
        }
        b'\r' => {
            let mut head = [0u8; 16];
            sock.read_exact(&mut head).await.map_err(io)?;
            if head.get(..12) != Some(&V2_SIGNATURE[..]) {
                return Err(HeaderRefusal::Malformed("bad v2 signature".into()));
            }
            let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
            if len > MAX_PROXY_HEADER_LEN {
                return Err(HeaderRefusal::Malformed(format!(
                    "v2 header of {len} bytes, over {MAX_PROXY_HEADER_LEN}"
                )));
            }
            let mut whole = Vec::with_capacity(16usize.saturating_add(len));
            whole.extend_from_slice(&head);
            whole.resize(16usize.saturating_add(len), 0);
            sock.read_exact(whole.get_mut(16..).unwrap_or_default())
                .await
                .map_err(io)?;
            let header = ppp::v2::Header::try_from(whole.as_slice())
                .map_err(|e| HeaderRefusal::Malformed(e.to_string()))?;
            // TLVs are parsed by `ppp` within the announced length; none is needed here.
            if header.command == ppp::v2::Command::Local {
                tracing::debug!(addr = %peer, "PROXY v2 LOCAL (balancer health check)");
                return Ok(Some(None));
            }
            Ok(Some(match header.addresses {
                ppp::v2::Addresses::IPv4(a) => {
                    Some(SocketAddr::new(a.source_address.into(), a.source_port))
                }
                ppp::v2::Addresses::IPv6(a) => {
                    Some(SocketAddr::new(a.source_address.into(), a.source_port))
                }
                ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
            }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_match() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    async fn pair() -> (TcpStream, TcpStream, SocketAddr) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = l.accept().await.unwrap();
        (client, server, peer)
    }

    fn policy(mode: ProxyMode, trusted: &str) -> ProxyPolicy {
        ProxyPolicy {
            mode,
            trusted: vec![Cidr::parse(trusted).unwrap()],
        }
    }

    #[tokio::test]
    async fn v1_and_v2_headers_give_the_client_address_and_leave_the_ssh_bytes() {
        use tokio::io::AsyncWriteExt;
        let trusted = policy(ProxyMode::Required, "127.0.0.0/8");
        // v1, followed at once by the client's SSH line.
        let (mut c, mut s, peer) = pair().await;
        c.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 22\r\nSSH-2.0-x\r\n")
            .await
            .unwrap();
        let addr = client_address(&mut s, peer, &trusted).await.unwrap();
        assert_eq!(addr, "192.0.2.7:40000".parse().unwrap());
        let mut rest = [0u8; 11];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"SSH-2.0-x\r\n");
        // v2 with a TLV (type 0xEE, unknown: ignored), IPv6.
        let (mut c, mut s, peer) = pair().await;
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x21]);
        let mut body = Vec::new();
        body.extend_from_slice(
            &"2001:db8::9"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        body.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        body.extend_from_slice(&[0x9c, 0x40, 0, 22, 0xee, 0, 2, 1, 2]);
        h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        h.extend_from_slice(&body);
        h.extend_from_slice(b"SSH-");
        c.write_all(&h).await.unwrap();
        let addr = client_address(&mut s, peer, &trusted).await.unwrap();
        assert_eq!(addr, "[2001:db8::9]:40000".parse().unwrap());
        let mut rest = [0u8; 4];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"SSH-");
        // v2 LOCAL: the balancer itself; the real peer stays.
        let (mut c, mut s, peer) = pair().await;
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        c.write_all(&local).await.unwrap();
        assert_eq!(client_address(&mut s, peer, &trusted).await.unwrap(), peer);
    }

    #[tokio::test]
    async fn refusals_missing_untrusted_and_oversized() {
        use tokio::io::AsyncWriteExt;
        // required + trusted + an SSH line: missing.
        let (mut c, mut s, peer) = pair().await;
        c.write_all(b"SSH-2.0-x\r\n").await.unwrap();
        let required = policy(ProxyMode::Required, "127.0.0.0/8");
        assert_eq!(
            client_address(&mut s, peer, &required).await,
            Err(HeaderRefusal::Missing)
        );
        // optional + a header from an untrusted source: refused; an SSH line from it: direct.
        let optional = policy(ProxyMode::Optional, "10.0.0.0/8");
        let (mut c, mut s, peer) = pair().await;
        c.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 22\r\n")
            .await
            .unwrap();
        assert_eq!(
            client_address(&mut s, peer, &optional).await,
            Err(HeaderRefusal::Untrusted)
        );
        let (mut c, mut s, peer) = pair().await;
        c.write_all(b"SSH-2.0-x\r\n").await.unwrap();
        assert_eq!(client_address(&mut s, peer, &optional).await, Ok(peer));
        // A v2 header announcing more than we read.
        let (mut c, mut s, peer) = pair().await;
        let mut big = V2_SIGNATURE.to_vec();
        big.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        c.write_all(&big).await.unwrap();
        assert!(matches!(
            client_address(&mut s, peer, &required).await,
            Err(HeaderRefusal::Malformed(_))
        ));
        // A v1 line that never ends.
        let (mut c, mut s, peer) = pair().await;
        c.write_all(&[b'P'; 200]).await.unwrap();
        assert!(matches!(
            client_address(&mut s, peer, &required).await,
            Err(HeaderRefusal::Malformed(_))
        ));
    }
}
