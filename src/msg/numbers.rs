//! Message numbers [RFC4250 §4.1] and the ranges they are dispatched by [RFC4251 §7].

use std::fmt;

/// A message number: an open newtype, since peers may send numbers we do not know.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgNum(pub u8);

macro_rules! msg_nums {
    ($($name:ident = $v:expr),* $(,)?) => {
        impl MsgNum {
            $(
                #[allow(missing_docs)]
                pub const $name: MsgNum = MsgNum($v);
            )*

            /// The RFC name without the `SSH_MSG_` prefix, if this number has one we know.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($v => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

msg_nums! {
    DISCONNECT = 1,
    IGNORE = 2,
    UNIMPLEMENTED = 3,
    DEBUG = 4,
    SERVICE_REQUEST = 5,
    SERVICE_ACCEPT = 6,
    EXT_INFO = 7,
    KEXINIT = 20,
    NEWKEYS = 21,
    KEX_ECDH_INIT = 30,
    KEX_ECDH_REPLY = 31,
    KEX_DH_GEX_INIT = 32,
    KEX_DH_GEX_REPLY = 33,
    KEX_DH_GEX_REQUEST = 34,
    USERAUTH_REQUEST = 50,
    USERAUTH_FAILURE = 51,
    USERAUTH_SUCCESS = 52,
    USERAUTH_BANNER = 53,
    USERAUTH_PK_OK = 60,
    GLOBAL_REQUEST = 80,
    REQUEST_SUCCESS = 81,
    REQUEST_FAILURE = 82,
    CHANNEL_OPEN = 90,
    CHANNEL_OPEN_CONFIRMATION = 91,
    CHANNEL_OPEN_FAILURE = 92,
    CHANNEL_WINDOW_ADJUST = 93,
    CHANNEL_DATA = 94,
    CHANNEL_EXTENDED_DATA = 95,
    CHANNEL_EOF = 96,
    CHANNEL_CLOSE = 97,
    CHANNEL_REQUEST = 98,
    CHANNEL_SUCCESS = 99,
    CHANNEL_FAILURE = 100,
    PING = 192,
    PONG = 193,
}

impl MsgNum {
    /// GEX reuses 31 for the server's group [RFC4419 §5]; the kex phase tells the two apart.
    pub const KEX_DH_GEX_GROUP: MsgNum = MsgNum(31);
}

/// The protocol layer a message number belongs to [RFC4251 §7].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// 1–19: disconnect, ignore, debug, service and extension messages.
    TransportGeneric,
    /// 20–29: KEXINIT, NEWKEYS.
    Negotiation,
    /// 30–49: messages of the negotiated key exchange method.
    KexMethod,
    /// 50–79: user authentication.
    Userauth,
    /// 80–127: connection protocol.
    Connection,
    /// 128–191: reserved for client protocols.
    Reserved,
    /// 192–255: local extensions.
    LocalExtension,
    /// 0: never valid.
    Invalid,
}

impl MsgNum {
    /// The layer this number is dispatched to.
    pub const fn layer(self) -> Layer {
        match self.0 {
            0 => Layer::Invalid,
            1..=19 => Layer::TransportGeneric,
            20..=29 => Layer::Negotiation,
            30..=49 => Layer::KexMethod,
            50..=79 => Layer::Userauth,
            80..=127 => Layer::Connection,
            128..=191 => Layer::Reserved,
            _ => Layer::LocalExtension,
        }
    }
}

impl fmt::Debug for MsgNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({})", self.0),
            None => write!(f, "MsgNum({})", self.0),
        }
    }
}

impl fmt::Display for MsgNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_rfc_names() {
        assert_eq!(format!("{:?}", MsgNum::KEXINIT), "KEXINIT(20)");
        assert_eq!(format!("{:?}", MsgNum(200)), "MsgNum(200)");
    }

    #[test]
    fn ranges_follow_rfc4251_section_7() {
        assert_eq!(MsgNum(0).layer(), Layer::Invalid);
        assert_eq!(MsgNum(19).layer(), Layer::TransportGeneric);
        assert_eq!(MsgNum(21).layer(), Layer::Negotiation);
        assert_eq!(MsgNum(49).layer(), Layer::KexMethod);
        assert_eq!(MsgNum(60).layer(), Layer::Userauth);
        assert_eq!(MsgNum(127).layer(), Layer::Connection);
        assert_eq!(MsgNum(128).layer(), Layer::Reserved);
        assert_eq!(MsgNum(255).layer(), Layer::LocalExtension);
    }
}
