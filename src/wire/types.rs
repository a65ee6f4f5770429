//! The composite wire types with validation rules of their own [RFC4251 §5].

use crate::error::{DecodeError, DecodeErrorKind};
use crate::limits::{MAX_NAME_LEN, MAX_NAMES_PER_LIST};

/// A validated `name-list`: US-ASCII names, none holding a comma, space or control character
/// [RFC4251 §5, §6]. Borrowed from the packet; iterating allocates nothing.
///
/// Leniency (RFC-NOTES.md, "Where we are lenient"): RFC 4251 §5 says a name MUST have a non-zero
/// length, but libssh 0.10 sends a trailing comma (`…,aes128-ctr,`) and OpenSSH and x/crypto
/// skip empty elements. So do we: an empty element is accepted and never yielded by
/// [`NameList::iter`]; it still counts towards [`MAX_NAMES_PER_LIST`]. Lists we send never hold
/// one (`Writer::name_list` skips them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NameList<'a> {
    raw: &'a str,
}

impl<'a> NameList<'a> {
    /// Validates the contents of a name-list string.
    pub fn parse(raw: &'a [u8]) -> Result<Self, DecodeError> {
        const BAD: DecodeError = DecodeError::new(DecodeErrorKind::BadNameList);
        // Printable US-ASCII only: algorithm names MUST NOT contain whitespace or controls.
        if !raw.iter().all(|&b| (0x21..0x7f).contains(&b)) {
            return Err(BAD);
        }
        let raw = std::str::from_utf8(raw).map_err(|_| BAD)?;
        if raw.is_empty() {
            return Ok(Self { raw });
        }
        let mut count = 0usize;
        for name in raw.split(',') {
            if name.len() > MAX_NAME_LEN {
                return Err(DecodeError::new(DecodeErrorKind::TooLong));
            }
            count = count.saturating_add(1);
        }
        if count > MAX_NAMES_PER_LIST {
            return Err(DecodeError::new(DecodeErrorKind::TooLong));
        }
        Ok(Self { raw })
    }

    /// The names in order, empty elements skipped.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.raw.split(',').filter(|name| !name.is_empty())
    }

    /// Whether `name` is one of the names (exact, case-sensitive match [RFC4251 §6]).
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }

    /// The comma-separated text as received.
    pub const fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether the list has no names (empty elements do not count).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// A canonical `mpint`: two's complement, big-endian, no redundant leading 0x00/0xff byte, zero
/// as the empty string [RFC4251 §5]. Borrowed from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mpint<'a> {
    raw: &'a [u8],
}

impl<'a> Mpint<'a> {
    /// Validates the contents of an mpint string.
    pub fn parse(raw: &'a [u8]) -> Result<Self, DecodeError> {
        let non_minimal = match raw {
            [] => false,
            [0x00] => true,
            [0x00, next, ..] => next & 0x80 == 0,
            [0xff, next, ..] => next & 0x80 != 0,
            _ => false,
        };
        if non_minimal {
            return Err(DecodeError::new(DecodeErrorKind::NonCanonicalMpint));
        }
        Ok(Self { raw })
    }

    /// The two's complement bytes as on the wire.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.raw.first().is_some_and(|b| b & 0x80 != 0)
    }

    /// The big-endian magnitude of a non-negative value, without the sign byte (empty for zero).
    pub fn positive(&self) -> Result<&'a [u8], DecodeError> {
        match self.raw {
            _ if self.is_negative() => Err(DecodeError::new(DecodeErrorKind::NegativeMpint)),
            [0x00, rest @ ..] => Ok(rest),
            raw => Ok(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Reader, Writer};

    fn mpint_hex(h: &str) -> Result<Vec<u8>, DecodeErrorKind> {
        let raw = hex::decode(h).unwrap();
        Mpint::parse(&raw)
            .map(|m| m.as_bytes().to_vec())
            .map_err(|e| e.kind)
    }

    #[test]
    fn accepts_rfc4251_mpint_examples() {
        for h in [
            "",
            "09a378f9b2e332a7",
            "0080",
            "edcc",
            "ff21524111",
            "ff",
            "80",
            "7f",
        ] {
            assert_eq!(mpint_hex(h).unwrap(), hex::decode(h).unwrap(), "{h}");
        }
    }

    #[test]
    fn rejects_non_minimal_mpints() {
        for h in ["00", "0000", "007f", "0001", "ff80", "ffff", "ffff21"] {
            assert_eq!(mpint_hex(h), Err(DecodeErrorKind::NonCanonicalMpint), "{h}");
        }
    }

    #[test]
    fn positive_strips_sign_byte_and_refuses_negatives() {
        let m = Mpint::parse(&[0x00, 0x80]).unwrap();
        assert_eq!(m.positive().unwrap(), &[0x80]);
        assert!(!m.is_negative());
        let n = Mpint::parse(&[0xed, 0xcc]).unwrap();
        assert!(n.is_negative());
        assert_eq!(
            n.positive().unwrap_err().kind,
            DecodeErrorKind::NegativeMpint
        );
        assert_eq!(Mpint::parse(&[]).unwrap().positive().unwrap(), &[] as &[u8]);
    }

    #[test]
    fn mpint_unsigned_roundtrips_through_writer() {
        for (mag, wire) in [
            (&[][..], "00000000"),
            (&[0, 0, 0][..], "00000000"),
            (&[0x80][..], "000000020080"),
            (&[0, 0x7f][..], "000000017f"),
            (
                &[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7][..],
                "0000000809a378f9b2e332a7",
            ),
        ] {
            let mut out = Vec::new();
            Writer::new(&mut out).mpint_unsigned(mag);
            assert_eq!(hex::encode(&out), wire);
            let back = Reader::new(&out).mpint().unwrap().positive().unwrap();
            let trimmed: Vec<u8> = mag.iter().copied().skip_while(|&b| b == 0).collect();
            assert_eq!(back, &trimmed[..]);
        }
    }

    #[test]
    fn name_list_examples() {
        assert!(NameList::parse(b"").unwrap().is_empty());
        assert_eq!(NameList::parse(b"").unwrap().iter().count(), 0);
        let l = NameList::parse(b"zlib,none").unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), ["zlib", "none"]);
        assert!(l.contains("none"));
        assert!(!l.contains("None"));
        assert!(!l.contains("zli"));
    }

    #[test]
    fn skips_empty_elements_like_openssh() {
        // libssh 0.10's KEXINIT ends a list with a comma; OpenSSH and x/crypto skip the empty name.
        for (raw, names) in [
            (
                &b"aes256-ctr,aes128-ctr,"[..],
                &["aes256-ctr", "aes128-ctr"][..],
            ),
            (b",a", &["a"]),
            (b"a,,b", &["a", "b"]),
            (b",", &[]),
            (b",,,", &[]),
        ] {
            let l = NameList::parse(raw).unwrap();
            assert_eq!(l.iter().collect::<Vec<_>>(), names, "{raw:?}");
            assert_eq!(l.is_empty(), names.is_empty(), "{raw:?}");
            assert!(!l.contains(""), "{raw:?}");
            // Received text is kept as it came (a round trip re-encodes the same bytes).
            assert_eq!(l.as_str().as_bytes(), raw);
        }
        // Empty elements count towards the limit on elements.
        let many = ",".repeat(MAX_NAMES_PER_LIST);
        assert_eq!(
            NameList::parse(many.as_bytes()).unwrap_err().kind,
            DecodeErrorKind::TooLong
        );
    }

    #[test]
    fn rejects_malformed_name_lists() {
        for bad in [
            &b"a b"[..],
            b"a\x00",
            b"caf\xc3\xa9",
            b"tab\there",
            b"del\x7f",
        ] {
            assert_eq!(
                NameList::parse(bad).unwrap_err().kind,
                DecodeErrorKind::BadNameList,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn caps_name_length_and_count() {
        let long = vec![b'a'; MAX_NAME_LEN + 1];
        assert_eq!(
            NameList::parse(&long).unwrap_err().kind,
            DecodeErrorKind::TooLong
        );
        let many = vec!["x"; MAX_NAMES_PER_LIST + 1].join(",");
        assert_eq!(
            NameList::parse(many.as_bytes()).unwrap_err().kind,
            DecodeErrorKind::TooLong
        );
        let ok = vec!["x"; MAX_NAMES_PER_LIST].join(",");
        assert!(NameList::parse(ok.as_bytes()).is_ok());
    }
}
