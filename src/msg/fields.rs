//! The wire field types messages are made of, and [`message!`], which turns a field list into
//! a struct with its one decoder and one encoder.

use crate::error::DecodeError;
use crate::wire::{Mpint, NameList, Reader, Writer};

/// One field of a message: read from and written to the wire the same way.
pub trait Field<'a>: Sized {
    /// Reads the field.
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
    /// Writes the field.
    fn write(&self, w: &mut Writer<'_>);
}

impl<'a> Field<'a> for u32 {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.u32()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(*self);
    }
}

impl<'a> Field<'a> for bool {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.bool()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.bool(*self);
    }
}

/// `string` [RFC4251 §5]: bytes, not necessarily UTF-8.
impl<'a> Field<'a> for &'a [u8] {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.string()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.string(self);
    }
}

impl<'a> Field<'a> for NameList<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.name_list()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.string(self.as_str().as_bytes());
    }
}

impl<'a> Field<'a> for Mpint<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.mpint()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.string(self.as_bytes());
    }
}

/// Reads one field of message `msg`; an error names the message.
pub fn read<'a, T: Field<'a>>(r: &mut Reader<'a>, msg: &'static str) -> Result<T, DecodeError> {
    T::read(r).map_err(|e| e.context(msg))
}

/// The rest of the payload, as is: the type-specific tail of a request or channel open, which
/// the layer above parses by type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rest<'a>(pub &'a [u8]);

impl<'a> Field<'a> for Rest<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Rest(r.rest()))
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.raw(self.0);
    }
}

/// Declares messages: each a struct of [`Field`]s with a `Decode` reading the body (after the
/// number) and an `Encode` writing the number and the body. A struct that borrows from the
/// payload is written `Name<'a>`.
macro_rules! message {
    ($(
        $(#[$doc:meta])*
        $name:ident $(<$lt:lifetime>)? = $num:ident {
            $( $(#[$fdoc:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    )*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name $(<$lt>)? {
            $( $(#[$fdoc])* pub $field: $ty, )*
        }

        impl<'a> $crate::wire::Decode<'a> for $name $(<$lt>)? {
            #[allow(unused_variables)]
            fn decode(
                r: &mut $crate::wire::Reader<'a>,
            ) -> Result<Self, $crate::error::DecodeError> {
                Ok(Self {
                    $( $field: $crate::msg::fields::read::<$ty>(r, stringify!($num))?, )*
                })
            }
        }

        impl $(<$lt>)? $crate::wire::Encode for $name $(<$lt>)? {
            fn encode(&self, w: &mut $crate::wire::Writer<'_>) {
                w.u8($crate::msg::MsgNum::$num.0);
                $( $crate::msg::fields::Field::write(&self.$field, w); )*
            }
        }
    )*};
}

pub(crate) use message;
