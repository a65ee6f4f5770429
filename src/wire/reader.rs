//! Bounds-checked cursor over borrowed bytes. Every length read from the input is checked against
//! what remains before it is used, so nothing here allocates or slices from an unchecked length.

use crate::error::{DecodeError, DecodeErrorKind};
use crate::wire::{Mpint, NameList};

/// A cursor over one buffer; returned slices borrow from it, so parsing copies nothing.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

const TRUNCATED: DecodeError = DecodeError::new(DecodeErrorKind::Truncated);

impl<'a> Reader<'a> {
    /// A reader over all of `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    /// Bytes not yet read.
    pub const fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Takes everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(DecodeErrorKind::TrailingBytes))
        }
    }

    /// `byte[n]`: the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(TRUNCATED);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// `byte[N]` as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N)?;
        <[u8; N]>::try_from(b).map_err(|_| TRUNCATED)
    }

    /// `byte`.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// `boolean`: any non-zero value is TRUE [RFC4251 §5].
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? != 0)
    }

    /// `uint32`, network byte order.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// `uint64`, network byte order.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// `string`: a uint32 length, then that many bytes. The length is checked against what is
    /// left in the buffer before it is used.
    pub fn string(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()?;
        let len = usize::try_from(len).map_err(|_| TRUNCATED)?;
        self.bytes(len)
    }

    /// A `string` that must hold UTF-8 text (descriptions, user names).
    pub fn utf8(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.string()?).map_err(|_| DecodeError::new(DecodeErrorKind::BadUtf8))
    }

    /// A `string` no longer than `max` bytes.
    pub fn string_max(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let s = self.string()?;
        if s.len() > max {
            return Err(DecodeError::new(DecodeErrorKind::TooLong));
        }
        Ok(s)
    }

    /// A `string` whose contents are parsed by a nested reader (key and signature blobs).
    pub fn sub(&mut self) -> Result<Reader<'a>, DecodeError> {
        Ok(Reader::new(self.string()?))
    }

    /// `name-list`, validated [RFC4251 §5].
    pub fn name_list(&mut self) -> Result<NameList<'a>, DecodeError> {
        NameList::parse(self.string()?)
    }

    /// `mpint`, canonical encoding enforced [RFC4251 §5].
    pub fn mpint(&mut self) -> Result<Mpint<'a>, DecodeError> {
        Mpint::parse(self.string()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fixed_width_integers_big_endian() {
        let mut r = Reader::new(&[0x29, 0xb7, 0xf4, 0xaa, 0, 0, 0, 0, 0, 0, 1, 2, 7]);
        assert_eq!(r.u32().unwrap(), 699_921_578);
        assert_eq!(r.u64().unwrap(), 0x102);
        assert_eq!(r.u8().unwrap(), 7);
        r.finish().unwrap();
    }

    #[test]
    fn any_nonzero_boolean_is_true() {
        let mut r = Reader::new(&[0, 1, 2, 0xff]);
        assert!(!r.bool().unwrap());
        assert!(r.bool().unwrap());
        assert!(r.bool().unwrap());
        assert!(r.bool().unwrap());
    }

    #[test]
    fn reads_string_borrowing_input() {
        let buf = b"\x00\x00\x00\x07testing";
        let mut r = Reader::new(buf);
        let s = r.string().unwrap();
        assert_eq!(s, b"testing");
        assert!(std::ptr::eq(s.as_ptr(), buf[4..].as_ptr()));
    }

    #[test]
    fn rejects_truncated_fields() {
        assert_eq!(
            Reader::new(&[1, 2, 3]).u32().unwrap_err().kind,
            DecodeErrorKind::Truncated
        );
        assert_eq!(
            Reader::new(&[1; 7]).u64().unwrap_err().kind,
            DecodeErrorKind::Truncated
        );
        assert_eq!(
            Reader::new(&[]).u8().unwrap_err().kind,
            DecodeErrorKind::Truncated
        );
        let e = Reader::new(b"\x00\x00\x00\x08short").string().unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::Truncated);
    }

    #[test]
    fn huge_string_length_is_an_error_not_an_allocation() {
        let e = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0])
            .string()
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::Truncated);
    }

    #[test]
    fn finish_rejects_trailing_bytes() {
        let mut r = Reader::new(&[0, 0, 0, 0, 9]);
        r.string().unwrap();
        assert_eq!(r.finish().unwrap_err().kind, DecodeErrorKind::TrailingBytes);
    }

    #[test]
    fn utf8_and_length_caps() {
        assert_eq!(
            Reader::new(b"\x00\x00\x00\x02\xc3\x28")
                .utf8()
                .unwrap_err()
                .kind,
            DecodeErrorKind::BadUtf8
        );
        assert_eq!(
            Reader::new(b"\x00\x00\x00\x02\xc3\xa9").utf8().unwrap(),
            "é"
        );
        assert_eq!(
            Reader::new(b"\x00\x00\x00\x03abc")
                .string_max(2)
                .unwrap_err()
                .kind,
            DecodeErrorKind::TooLong
        );
    }

    #[test]
    fn sub_reader_is_confined_to_its_string() {
        let mut r = Reader::new(b"\x00\x00\x00\x02\x00\x01\x05");
        let mut sub = r.sub().unwrap();
        assert_eq!(sub.u8().unwrap(), 0);
        assert_eq!(sub.u8().unwrap(), 1);
        assert!(sub.u8().is_err());
        assert_eq!(r.u8().unwrap(), 5);
    }
}
