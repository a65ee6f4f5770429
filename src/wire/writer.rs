//! Appending encoder. Nested strings (key blobs inside messages) are written in place and their
//! length patched afterwards, so building a message copies each byte once.

/// Appends SSH wire types to a borrowed buffer.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut Vec<u8>,
}

/// Lengths on the wire are uint32; larger values only arise from local bugs, and the packet size
/// cap rejects any payload that could hold one, so clamping never reaches the peer.
fn wire_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl<'b> Writer<'b> {
    /// A writer appending to `buf`.
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        Self { buf }
    }

    /// Bytes in the underlying buffer (including what was there before).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the underlying buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// `byte[n]` as is.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// `byte`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// `boolean`: only 0 and 1 are ever stored [RFC4251 §5].
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// `uint32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// `uint64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// `string`.
    pub fn string(&mut self, s: &[u8]) -> &mut Self {
        self.u32(wire_len(s.len())).raw(s)
    }

    /// `string` whose contents `f` writes in place; the length is patched afterwards.
    pub fn nested(&mut self, f: impl FnOnce(&mut Writer<'_>)) -> &mut Self {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        f(&mut Writer::new(self.buf));
        let len = wire_len(self.buf.len().saturating_sub(at).saturating_sub(4));
        if let Some(slot) = self.buf.get_mut(at..at.saturating_add(4)) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
        self
    }

    /// `name-list` from names; the caller supplies valid names.
    pub fn name_list<'n>(&mut self, names: impl IntoIterator<Item = &'n str>) -> &mut Self {
        self.nested(|w| {
            // Never send an empty name [RFC4251 §5]; we only tolerate receiving one.
            for (i, name) in names.into_iter().filter(|n| !n.is_empty()).enumerate() {
                if i > 0 {
                    w.u8(b',');
                }
                w.raw(name.as_bytes());
            }
        })
    }

    /// `mpint` of a non-negative big-endian magnitude [RFC4251 §5] (see [`unsigned_mpint`]).
    pub fn mpint_unsigned(&mut self, magnitude: &[u8]) -> &mut Self {
        self.string(&unsigned_mpint(magnitude))
    }
}

/// The contents of the `mpint` of a non-negative big-endian magnitude: leading zeros dropped, a
/// zero byte added when the top bit is set, zero as the empty string [RFC4251 §5].
pub fn unsigned_mpint(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let digits = magnitude.get(start..).unwrap_or_default();
    let mut out = Vec::with_capacity(digits.len().saturating_add(1));
    if digits.first().is_some_and(|b| b & 0x80 != 0) {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_rfc4251_examples() {
        let mut out = Vec::new();
        Writer::new(&mut out)
            .u32(699_921_578)
            .string(b"testing")
            .bool(true)
            .bool(false);
        assert_eq!(hex::encode(&out), "29b7f4aa0000000774657374696e670100");
    }

    #[test]
    fn name_lists() {
        let mut out = Vec::new();
        Writer::new(&mut out)
            .name_list([])
            .name_list(["zlib"])
            .name_list(["zlib", "", "none"]);
        assert_eq!(
            hex::encode(&out),
            "00000000000000047a6c696200000009zlib,none".replace("zlib,none", "7a6c69622c6e6f6e65")
        );
    }

    #[test]
    fn nested_patches_length() {
        let mut out = vec![0xaa];
        Writer::new(&mut out).nested(|w| {
            w.string(b"ab").u8(1);
        });
        assert_eq!(hex::encode(&out), "aa0000000700000002616201");
    }
}
