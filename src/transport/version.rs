//! Protocol version exchange [RFC4253 §4.2, §5]: our identification line out, the peer's in.

use crate::error::{Error, ProtocolError};
use crate::limits::{MAX_LINE, MAX_PRE_BYTES, MAX_PRE_LINES};
use crate::transport::Role;

/// Our identification string, without CR LF.
pub const OUR_VERSION: &str = concat!("SSH-2.0-portcullis_", env!("CARGO_PKG_VERSION"));

/// Reads the peer's identification line, bounded in length and in preceding lines.
#[derive(Debug)]
pub struct VersionReader {
    role: Role,
    line: Vec<u8>,
    pre_lines: usize,
    pre_bytes: usize,
}

fn bad(why: &'static str) -> Error {
    ProtocolError::BadVersion(why).into()
}

impl VersionReader {
    /// A reader for a connection in `role` (our role, not the peer's).
    pub fn new(role: Role) -> Self {
        Self {
            role,
            line: Vec::new(),
            pre_lines: 0,
            pre_bytes: 0,
        }
    }

    /// Consumes input up to the end of the identification line. Returns bytes consumed and,
    /// once complete, the peer's identification string without CR LF; what follows it belongs
    /// to the binary packet protocol.
    pub fn read(&mut self, input: &[u8]) -> Result<(usize, Option<String>), Error> {
        let mut used = 0usize;
        for &b in input {
            used = used.saturating_add(1);
            if b != b'\n' {
                if self.line.len() >= MAX_LINE {
                    return Err(bad("line too long"));
                }
                self.line.push(b);
                continue;
            }
            // LF alone is accepted, as OpenSSH does [RFC4253 §4.2 allows for it].
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = std::mem::take(&mut self.line);
            if line.starts_with(b"SSH-") {
                return Ok((used, Some(parse(&line)?)));
            }
            // Only a server may send other lines first [RFC4253 §4.2].
            if self.role == Role::Server {
                return Err(bad("not an SSH identification line"));
            }
            self.pre_lines = self.pre_lines.saturating_add(1);
            self.pre_bytes = self.pre_bytes.saturating_add(line.len());
            if self.pre_lines > MAX_PRE_LINES || self.pre_bytes > MAX_PRE_BYTES {
                return Err(bad("too many lines before the identification"));
            }
        }
        Ok((used, None))
    }
}

/// Validates `SSH-protoversion-softwareversion[ SP comments]`.
fn parse(line: &[u8]) -> Result<String, Error> {
    if line.contains(&0) {
        return Err(bad("NUL in identification"));
    }
    let text = std::str::from_utf8(line).map_err(|_| bad("identification is not UTF-8"))?;
    let rest = text
        .strip_prefix("SSH-")
        .ok_or_else(|| bad("missing SSH- prefix"))?;
    let (proto, software) = rest
        .split_once('-')
        .ok_or_else(|| bad("missing software version"))?;
    // "1.99" announces a 2.0-capable peer [RFC4253 §5.1].
    if proto != "2.0" && proto != "1.99" {
        return Err(ProtocolError::UnsupportedVersion.into());
    }
    let software = software.split(' ').next().unwrap_or_default();
    if software.is_empty() || !software.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("malformed software version"));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(role: Role, input: &[u8]) -> Result<(usize, Option<String>), Error> {
        VersionReader::new(role).read(input)
    }

    #[test]
    fn accepts_crlf_and_bare_lf_and_leaves_the_rest() {
        let (used, v) =
            read_all(Role::Server, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\x00\x00").unwrap();
        assert_eq!(v.unwrap(), "SSH-2.0-OpenSSH_9.2p1 Debian-2");
        assert_eq!(used, 32);
        let (_, v) = read_all(Role::Server, b"SSH-2.0-dropbear_2022.83\n").unwrap();
        assert_eq!(v.unwrap(), "SSH-2.0-dropbear_2022.83");
    }

    #[test]
    fn byte_by_byte_is_the_same() {
        let mut r = VersionReader::new(Role::Client);
        let input = b"banner\r\nSSH-2.0-x\r\n";
        let mut got = None;
        for (i, b) in input.iter().enumerate() {
            let (used, v) = r.read(std::slice::from_ref(b)).unwrap();
            assert_eq!(used, 1);
            if v.is_some() {
                assert_eq!(i, input.len() - 1);
                got = v;
            }
        }
        assert_eq!(got.unwrap(), "SSH-2.0-x");
    }

    #[test]
    fn client_skips_banner_lines_server_does_not() {
        let input = b"Welcome\r\nto the host\nSSH-2.0-srv\r\n";
        assert_eq!(
            read_all(Role::Client, input).unwrap().1.unwrap(),
            "SSH-2.0-srv"
        );
        assert!(matches!(
            read_all(Role::Server, input),
            Err(Error::Protocol(ProtocolError::BadVersion(_)))
        ));
    }

    #[test]
    fn rejects_other_protocol_versions_and_accepts_1_99() {
        for v in [&b"SSH-1.5-old\r\n"[..], b"SSH-3.0-future\r\n"] {
            assert_eq!(
                read_all(Role::Server, v).unwrap_err(),
                Error::Protocol(ProtocolError::UnsupportedVersion)
            );
        }
        assert!(
            read_all(Role::Server, b"SSH-1.99-compat\r\n")
                .unwrap()
                .1
                .is_some()
        );
    }

    #[test]
    fn bounds_line_length_and_pre_lines() {
        let mut long = b"SSH-2.0-".to_vec();
        long.resize(300, b'a');
        assert!(read_all(Role::Server, &long).is_err());
        let ok = [b"SSH-2.0-".to_vec(), vec![b'a'; MAX_LINE - 8]].concat();
        assert!(
            read_all(Role::Server, &[ok.clone(), b"\n".to_vec()].concat())
                .unwrap()
                .1
                .is_some()
        );
        let spam = b"x\n".repeat(MAX_PRE_LINES + 1);
        assert!(read_all(Role::Client, &spam).is_err());
    }

    #[test]
    fn rejects_malformed_lines() {
        for v in [
            &b"SSH-2.0\r\n"[..],
            b"SSH-2.0-\r\n",
            b"SSH-2.0-a\x00b\r\n",
            b"SSH-2.0-\xff\r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            assert!(read_all(Role::Server, v).is_err(), "{v:?}");
        }
    }
}
