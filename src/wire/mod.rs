//! The SSH data types of [RFC4251 §5]: a borrowing, bounds-checked [`Reader`], an appending
//! [`Writer`], and the two composite types with validation rules, [`NameList`] and [`Mpint`].

mod reader;
mod types;
mod writer;

pub use reader::Reader;
pub use types::{Mpint, NameList};
pub use writer::{Writer, unsigned_mpint};

use crate::error::DecodeError;

/// A value parsed from borrowed wire bytes; `'a` lets strings point into the packet buffer.
pub trait Decode<'a>: Sized {
    /// Reads one value, advancing `r` past it.
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError>;

    /// Decodes a whole buffer, failing if any byte is left over.
    fn decode_exact(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// A value that can be appended to a [`Writer`].
pub trait Encode {
    /// Appends the wire form of `self`.
    fn encode(&self, w: &mut Writer<'_>);

    /// The wire form in a fresh buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut Writer::new(&mut out));
        out
    }
}
