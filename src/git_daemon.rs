//! The route that does not re-encrypt: a git command carried to a storage host's `git daemon`
//! (the `git://` transport of gitprotocol-pack, "Git Transport") on a private network, the third
//! backend of a session beside local git and an SSH upstream.
//!
//! The front door has already authenticated the user and authorized this command on this
//! repository; it opens a TCP connection to the daemon, sends the one request line
//! (`git-upload-pack /path\0host=…\0`, plus `GIT_PROTOCOL`'s items as extra parameters) and then
//! hands both directions of the socket to the connection's driver, which reads the daemon's
//! bytes straight into the client's channel (in batches while the pack streams, see
//! [`BatchReader::socket`]) and writes the client's straight into the socket: no second SSH
//! connection, no second cipher, no task in between.
//!
//! What the storage side cannot know: who the user is. `git daemon` runs its service without an
//! identity, so hooks on the storage host (pre-receive, post-receive) see no user, key or client
//! address; whatever needs them (audit logs, per-user rules in hooks) stays on the front door
//! (its `session` log line) or on the SSH route. Nor can the daemon tell the front door from
//! anyone else who reaches its port: it must listen only on an interface of a private network
//! that clients cannot reach (or behind a firewall that admits only the front doors), with
//! `--enable=receive-pack` only there. An address outside private, loopback and link-local
//! ranges is refused unless `allow_public_address` says it is on purpose.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::driver::batch_read::BatchReader;
use crate::driver::relay::idle_watch;
use crate::git::command::Service;
use crate::proxy::forward::ForwardReport;
use crate::session::{ExitStatus, SessionIo};

/// `[[git_daemons]]` in the configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitDaemonConfig {
    /// Name used by routes, the HTTP backend's answers and logs (unique across upstreams).
    pub name: String,
    /// `host:port` of `git daemon` (port 9418 by default there).
    pub address: String,
    /// Prepended to the repository name in the request (`/` with the daemon's `--base-path`).
    #[serde(default = "slash")]
    pub path_prefix: String,
    /// Time limit for the TCP connect (the daemon answers as soon as the request arrives).
    #[serde(default = "ten")]
    pub connect_timeout_secs: u64,
    /// Allow an address outside private, loopback and link-local ranges (plaintext crosses
    /// whatever network lies between).
    #[serde(default)]
    pub allow_public_address: bool,
}

fn slash() -> String {
    "/".into()
}
fn ten() -> u64 {
    10
}

/// A storage host's git daemon, ready to be routed to.
#[derive(Debug)]
pub struct GitDaemon {
    /// Its configured name.
    pub name: String,
    address: String,
    /// The `host=` parameter: the address's host part.
    host: String,
    path_prefix: String,
    connect_timeout: Duration,
    allow_public: bool,
}

/// Whether plaintext to `ip` stays on a network a site controls: loopback, RFC 1918 private,
/// RFC 6598 shared (carrier-grade NAT, also used by overlay networks), link-local, IPv6 unique
/// local (fc00::/7) and link-local (fe80::/10); IPv4-mapped IPv6 by its IPv4 address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// One pkt-line: four hex digits of length (its own four included), then the data.
fn pkt_line(data: &[u8]) -> Result<Vec<u8>, String> {
    // gitprotocol-common: LARGE_PACKET_MAX is 65520 bytes, header included.
    let len = data.len().saturating_add(4);
    if len > 65520 {
        return Err("the request does not fit in one pkt-line".into());
    }
    let mut out = format!("{len:04x}").into_bytes();
    out.extend_from_slice(data);
    Ok(out)
}

impl GitDaemon {
    /// The daemon of `c`, checked: `host:port`, a path prefix that starts with `/`, a connect
    /// timeout, and (unless allowed) no literal public address. The error names the field.
    pub fn new(c: &GitDaemonConfig) -> Result<Self, String> {
        let (host, port) = c
            .address
            .rsplit_once(':')
            .ok_or_else(|| format!("address: \"{}\" is not host:port", c.address))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("address: \"{}\" is not host:port", c.address));
        }
        if let Ok(ip) = host.parse::<IpAddr>()
            && !is_internal(ip)
            && !c.allow_public_address
        {
            return Err(format!(
                "address: {ip} is not a private address; git daemon traffic is plaintext (set allow_public_address = true if the network is yours)"
            ));
        }
        if !c.path_prefix.starts_with('/') || c.path_prefix.as_bytes().contains(&0) {
            return Err("path_prefix: must start with /".into());
        }
        if c.connect_timeout_secs == 0 {
            return Err("connect_timeout_secs: must be at least 1".into());
        }
        Ok(Self {
            name: c.name.clone(),
            address: c.address.clone(),
            host: host.to_owned(),
            path_prefix: c.path_prefix.clone(),
            connect_timeout: Duration::from_secs(c.connect_timeout_secs),
            allow_public: c.allow_public_address,
        })
    }

    /// The request for `service` on repository `name`: the command and path, the `host=`
    /// parameter, then each item of the client's `GIT_PROTOCOL` (already checked) as an extra
    /// parameter, which the daemon passes on to the service as `GIT_PROTOCOL` again.
    pub fn request(&self, service: Service, name: &str, protocol: &str) -> Result<Vec<u8>, String> {
        let mut data = format!("{service} {}{name}", self.path_prefix).into_bytes();
        data.push(0);
        data.extend_from_slice(format!("host={}", self.host).as_bytes());
        data.push(0);
        let items: Vec<&str> = protocol.split(':').filter(|i| !i.is_empty()).collect();
        if !items.is_empty() {
            data.push(0);
            for item in items {
                data.extend_from_slice(item.as_bytes());
                data.push(0);
            }
        }
        if data.contains(&b'\n') {
            return Err("a line break in the request".into());
        }
        pkt_line(&data)
    }

    /// A connection to the daemon, within the connect timeout, to an address that passes
    /// [`is_internal`] (a name is checked after it resolves) unless public ones are allowed.
    async fn connect(&self) -> Result<TcpStream, String> {
        let attempt = async {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&self.address)
                .await
                .map_err(|e| format!("unreachable ({e})"))?
                .collect();
            let mut last = "no address".to_owned();
            for addr in addrs {
                if !self.allow_public && !is_internal(addr.ip()) {
                    last = format!("{} is not a private address", addr.ip());
                    continue;
                }
                match TcpStream::connect(addr).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = format!("unreachable ({e})"),
                }
            }
            Err(last)
        };
        tokio::time::timeout(self.connect_timeout, attempt)
            .await
            .map_err(|_| "did not answer in time".to_owned())?
    }

    /// Runs `service` on repository `name` there and carries the session until the daemon
    /// closes, the client goes away, or nothing moves for `idle`. The daemon reports no exit
    /// status: a session it answered exits 0 when it closes, one it closed without a word (a
    /// repository it does not export) exits 1 with a line on stderr.
    pub async fn run(
        &self,
        service: Service,
        name: &str,
        protocol: &str,
        io: SessionIo,
        idle: Duration,
    ) -> ForwardReport {
        let start = Instant::now();
        let (mut stderr, mut gone) = (io.stderr, io.gone);
        let opened = async {
            let request = self.request(service, name, protocol)?;
            let stream = self.connect().await?;
            let _ = stream.set_nodelay(true);
            let lost = |e: std::io::Error| format!("connection lost ({e})");
            // Two descriptors of the one socket: the pack is read through the first in
            // batches, as git's pipe is on the local route (upload-pack writes 8 KiB at a
            // time), the client's data written through the second.
            let socket = stream.into_std().map_err(lost)?;
            let from_daemon = socket
                .try_clone()
                .and_then(|s| BatchReader::socket(s.into()))
                .map_err(lost)?;
            let mut to_daemon = TcpStream::from_std(socket).map_err(lost)?;
            // A fresh socket takes a request this small at once; bounded all the same.
            tokio::time::timeout(self.connect_timeout, to_daemon.write_all(&request))
                .await
                .map_err(|_| "did not take the request in time".to_owned())?
                .map_err(lost)?;
            Ok::<_, String>((from_daemon, to_daemon))
        };
        let (from_daemon, to_daemon) = match opened.await {
            Ok(halves) => halves,
            Err(why) => {
                tracing::warn!(upstream = %self.name, error = %why, "git daemon session failed to start");
                let _ = stderr
                    .write_all(format!("portcullis: storage host {} {why}\n", self.name).as_bytes())
                    .await;
                let _ = stderr.shutdown().await;
                return ForwardReport {
                    bytes_in: 0,
                    bytes_out: 0,
                    duration: start.elapsed(),
                    status: ExitStatus::Code(1),
                    failure: Some(why),
                    ended: "failed",
                };
            }
        };
        // From here on the connection's driver moves the bytes itself, both ways.
        let fed = io.stdin.attach(to_daemon);
        let out = io.stdout.attach_remote(from_daemon);
        let (watched_in, watched_out) = (fed.clone(), out.clone());
        let moved = move || watched_in.moved().saturating_add(watched_out.moved());
        let outcome: Result<(), (String, &'static str)> = tokio::select! {
            () = out.ended() => Ok(()),
            _ = &mut gone => Err(("client went away".into(), "client gone")),
            () = idle_watch(moved, idle) => Err((
                format!("no data moved for {}s", idle.as_secs()),
                "failed",
            )),
        };
        fed.close();
        let (status, failure, ended) = match outcome {
            Ok(()) if out.moved() > 0 => (ExitStatus::Code(0), None, "exited"),
            Ok(()) => {
                let why = "closed the connection without answering (is the repository exported?)";
                let _ = stderr
                    .write_all(format!("portcullis: storage host {} {why}\n", self.name).as_bytes())
                    .await;
                (ExitStatus::Code(1), Some(why.to_owned()), "failed")
            }
            Err((why, ended)) => (ExitStatus::Code(1), Some(why), ended),
        };
        let _ = stderr.shutdown().await;
        ForwardReport {
            bytes_in: fed.moved(),
            bytes_out: out.moved(),
            duration: start.elapsed(),
            status,
            failure,
            ended,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(address: &str) -> Result<GitDaemon, String> {
        GitDaemon::new(&GitDaemonConfig {
            name: "store1".into(),
            address: address.into(),
            path_prefix: "/".into(),
            connect_timeout_secs: 5,
            allow_public_address: false,
        })
    }

    #[test]
    fn the_request_is_one_pkt_line_with_host_and_protocol_items() {
        let d = daemon("10.1.2.3:9418").unwrap();
        assert_eq!(
            d.request(Service::UploadPack, "team/app.git", "").unwrap(),
            b"0030git-upload-pack /team/app.git\0host=10.1.2.3\0".to_vec()
        );
        let v2 = d
            .request(Service::ReceivePack, "a.git", "version=2:x=y")
            .unwrap();
        assert_eq!(
            v2,
            b"0039git-receive-pack /a.git\0host=10.1.2.3\0\0version=2\0x=y\0".to_vec()
        );
        assert!(d.request(Service::UploadPack, "a\nb", "").is_err());
        let long = "x".repeat(70_000);
        assert!(d.request(Service::UploadPack, &long, "").is_err());
    }

    #[test]
    fn only_private_addresses_unless_allowed() {
        for ok in [
            "127.0.0.1:9418",
            "10.0.0.1:9418",
            "172.16.5.5:1",
            "192.168.1.1:9418",
            "100.64.0.1:9418",
            "169.254.1.1:9418",
            "[fd00::1]:9418",
            "[fe80::1]:9418",
            "[::1]:9418",
            "[::ffff:10.0.0.1]:9418",
            "storage.internal:9418",
        ] {
            assert!(daemon(ok).is_ok(), "{ok}");
        }
        for bad in ["8.8.8.8:9418", "[2001:db8::1]:9418", "100.128.0.1:9418"] {
            let e = daemon(bad).unwrap_err();
            assert!(e.contains("not a private address"), "{bad}: {e}");
        }
        for bad in ["nohost", ":9418", "h:port", "h:70000"] {
            assert!(daemon(bad).unwrap_err().contains("host:port"), "{bad}");
        }
        let mut c = GitDaemonConfig {
            name: "pub".into(),
            address: "8.8.8.8:9418".into(),
            path_prefix: "srv".into(),
            connect_timeout_secs: 5,
            allow_public_address: true,
        };
        assert!(GitDaemon::new(&c).unwrap_err().contains("path_prefix"));
        c.path_prefix = "/srv/git/".into();
        assert!(GitDaemon::new(&c).is_ok());
    }
}
