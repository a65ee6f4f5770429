//! Typed SSH messages, one struct per RFC message, each with one decoder and one encoder
//! (written by the `message!` macro of `fields`). [`Message::decode`] dispatches on the message number and
//! demands that the whole payload is consumed; the numbers whose meaning depends on context
//! (key exchange, USERAUTH_PK_OK) arrive as [`Message::Other`] and are decoded by the layer
//! that knows the context, with the structs of [`kex`] and [`userauth`].

pub mod connection;
pub(crate) mod fields;
pub mod forwarding;
pub mod kex;
mod numbers;
pub mod transport;
pub mod userauth;

pub use connection::{
    ChannelClose, ChannelData, ChannelEof, ChannelExtendedData, ChannelFailure, ChannelOpen,
    ChannelOpenConfirmation, ChannelOpenFailure, ChannelRequest, ChannelRequestMsg, ChannelSuccess,
    ChannelWindowAdjust, GlobalRequest, Ping, Pong, RequestFailure, RequestSuccess,
};
pub use fields::Rest;
pub use forwarding::{ChannelKind, GlobalRequestKind, TcpipEnds};
pub use kex::{KexEcdhInit, KexEcdhReply, KexGexGroup, KexGexInit, KexGexReply, KexGexRequest};
pub use numbers::{Layer, MsgNum};
pub use transport::{
    Debug, Disconnect, ExtInfo, Ignore, KexInit, ServiceAccept, ServiceRequest, Unimplemented,
};
pub use userauth::{
    HOSTBOUND_METHOD, Publickey, UserauthBanner, UserauthFailure, UserauthPkOk, UserauthRequest,
    UserauthSuccess,
};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::wire::{Decode, Encode, Reader, Writer};

macro_rules! message_enum {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $num:ident, )*) => {
        /// A decoded payload. Numbers whose meaning depends on context arrive as
        /// [`Message::Other`] with their body, and unknown numbers round-trip that way too.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Message<'a> {
            $( $(#[$doc])* $variant($ty), )*
            /// SSH_MSG_NEWKEYS.
            NewKeys,
            /// Any other number: its body (the payload after the number byte).
            Other {
                /// The message number.
                num: MsgNum,
                /// Everything after the number.
                body: &'a [u8],
            },
        }

        impl<'a> Message<'a> {
            /// Decodes one packet payload.
            pub fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
                let mut r = Reader::new(payload);
                let num = MsgNum(r.u8().map_err(|e| e.context("message number"))?);
                let msg = match num {
                    $( MsgNum::$num => Message::$variant(<$ty>::decode(&mut r)?), )*
                    MsgNum::NEWKEYS => Message::NewKeys,
                    MsgNum(0) => {
                        return Err(
                            DecodeError::new(DecodeErrorKind::BadValue).context("message number")
                        );
                    }
                    num => Message::Other {
                        num,
                        body: r.rest(),
                    },
                };
                r.finish().map_err(|e| e.context("message"))?;
                Ok(msg)
            }

            /// The message number.
            pub fn num(&self) -> MsgNum {
                match self {
                    $( Message::$variant(_) => MsgNum::$num, )*
                    Message::NewKeys => MsgNum::NEWKEYS,
                    Message::Other { num, .. } => *num,
                }
            }
        }

        impl Encode for Message<'_> {
            fn encode(&self, w: &mut Writer<'_>) {
                match self {
                    $( Message::$variant(m) => m.encode(w), )*
                    Message::NewKeys => {
                        w.u8(MsgNum::NEWKEYS.0);
                    }
                    Message::Other { num, body } => {
                        w.u8(num.0).raw(body);
                    }
                }
            }
        }
    };
}

message_enum! {
    /// SSH_MSG_DISCONNECT.
    Disconnect(Disconnect<'a>) = DISCONNECT,
    /// SSH_MSG_IGNORE.
    Ignore(Ignore<'a>) = IGNORE,
    /// SSH_MSG_UNIMPLEMENTED.
    Unimplemented(Unimplemented) = UNIMPLEMENTED,
    /// SSH_MSG_DEBUG.
    Debug(Debug<'a>) = DEBUG,
    /// SSH_MSG_SERVICE_REQUEST.
    ServiceRequest(ServiceRequest<'a>) = SERVICE_REQUEST,
    /// SSH_MSG_SERVICE_ACCEPT.
    ServiceAccept(ServiceAccept<'a>) = SERVICE_ACCEPT,
    /// SSH_MSG_EXT_INFO.
    ExtInfo(ExtInfo<'a>) = EXT_INFO,
    /// SSH_MSG_KEXINIT.
    KexInit(KexInit<'a>) = KEXINIT,
    /// SSH_MSG_USERAUTH_REQUEST.
    UserauthRequest(UserauthRequest<'a>) = USERAUTH_REQUEST,
    /// SSH_MSG_USERAUTH_FAILURE.
    UserauthFailure(UserauthFailure<'a>) = USERAUTH_FAILURE,
    /// SSH_MSG_USERAUTH_SUCCESS.
    UserauthSuccess(UserauthSuccess) = USERAUTH_SUCCESS,
    /// SSH_MSG_USERAUTH_BANNER.
    UserauthBanner(UserauthBanner<'a>) = USERAUTH_BANNER,
    /// SSH_MSG_GLOBAL_REQUEST.
    GlobalRequest(GlobalRequest<'a>) = GLOBAL_REQUEST,
    /// SSH_MSG_REQUEST_SUCCESS.
    RequestSuccess(RequestSuccess<'a>) = REQUEST_SUCCESS,
    /// SSH_MSG_REQUEST_FAILURE.
    RequestFailure(RequestFailure) = REQUEST_FAILURE,
    /// SSH_MSG_CHANNEL_OPEN.
    ChannelOpen(ChannelOpen<'a>) = CHANNEL_OPEN,
    /// SSH_MSG_CHANNEL_OPEN_CONFIRMATION.
    ChannelOpenConfirmation(ChannelOpenConfirmation<'a>) = CHANNEL_OPEN_CONFIRMATION,
    /// SSH_MSG_CHANNEL_OPEN_FAILURE.
    ChannelOpenFailure(ChannelOpenFailure<'a>) = CHANNEL_OPEN_FAILURE,
    /// SSH_MSG_CHANNEL_WINDOW_ADJUST.
    ChannelWindowAdjust(ChannelWindowAdjust) = CHANNEL_WINDOW_ADJUST,
    /// SSH_MSG_CHANNEL_DATA.
    ChannelData(ChannelData<'a>) = CHANNEL_DATA,
    /// SSH_MSG_CHANNEL_EXTENDED_DATA.
    ChannelExtendedData(ChannelExtendedData<'a>) = CHANNEL_EXTENDED_DATA,
    /// SSH_MSG_CHANNEL_EOF.
    ChannelEof(ChannelEof) = CHANNEL_EOF,
    /// SSH_MSG_CHANNEL_CLOSE.
    ChannelClose(ChannelClose) = CHANNEL_CLOSE,
    /// SSH_MSG_CHANNEL_REQUEST.
    ChannelRequest(ChannelRequestMsg<'a>) = CHANNEL_REQUEST,
    /// SSH_MSG_CHANNEL_SUCCESS.
    ChannelSuccess(ChannelSuccess) = CHANNEL_SUCCESS,
    /// SSH_MSG_CHANNEL_FAILURE.
    ChannelFailure(ChannelFailure) = CHANNEL_FAILURE,
    /// SSH2_MSG_PING (OpenSSH).
    Ping(Ping<'a>) = PING,
    /// SSH2_MSG_PONG (OpenSSH).
    Pong(Pong<'a>) = PONG,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(hex_payload: &str) -> Message<'static> {
        let bytes: &'static [u8] = Box::leak(hex::decode(hex_payload).unwrap().into_boxed_slice());
        let m = Message::decode(bytes).unwrap();
        assert_eq!(hex::encode(m.to_bytes()), hex_payload);
        m
    }

    #[test]
    fn decodes_transport_messages() {
        match roundtrip("010000000b0000000362796500000000") {
            Message::Disconnect(d) => {
                assert_eq!(d.reason, 11);
                assert_eq!(d.description, b"bye");
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(
            roundtrip("0200000000"),
            Message::Ignore(Ignore { data: b"" })
        );
        assert_eq!(
            roundtrip("0300000007"),
            Message::Unimplemented(Unimplemented { seq: 7 })
        );
        assert_eq!(roundtrip("15"), Message::NewKeys);
        assert_eq!(
            roundtrip("5e00000001000000026869"),
            Message::ChannelData(ChannelData {
                recipient: 1,
                data: b"hi"
            })
        );
        assert!(matches!(
            roundtrip("3c00000001"),
            Message::Other {
                num: MsgNum::USERAUTH_PK_OK,
                ..
            }
        ));
    }

    #[test]
    fn rejects_trailing_bytes_and_zero() {
        assert_eq!(
            Message::decode(&hex::decode("1500").unwrap())
                .unwrap_err()
                .kind,
            DecodeErrorKind::TrailingBytes
        );
        assert_eq!(
            Message::decode(&[0]).unwrap_err().kind,
            DecodeErrorKind::BadValue
        );
        assert_eq!(
            Message::decode(&[]).unwrap_err().kind,
            DecodeErrorKind::Truncated
        );
    }

    #[test]
    fn ext_info_validates_count_and_iterates() {
        let mut out = Vec::new();
        ExtInfo::write(
            &mut Writer::new(&mut out),
            &[
                ("server-sig-algs", b"ssh-ed25519"),
                ("ping@openssh.com", b"0"),
            ],
        );
        let Message::ExtInfo(e) = Message::decode(&out).unwrap() else {
            panic!()
        };
        let v: Vec<_> = e.iter().collect();
        assert_eq!(
            v,
            [
                (&b"server-sig-algs"[..], &b"ssh-ed25519"[..]),
                (&b"ping@openssh.com"[..], &b"0"[..])
            ]
        );
        // A count larger than what follows is truncation, and a huge count is refused up front.
        assert_eq!(
            Message::decode(&hex::decode("0700000002").unwrap())
                .unwrap_err()
                .kind,
            DecodeErrorKind::Truncated
        );
        assert_eq!(
            Message::decode(&hex::decode("07ffffffff").unwrap())
                .unwrap_err()
                .kind,
            DecodeErrorKind::TooLong
        );
    }

    #[test]
    fn kexinit_roundtrips_and_rejects_bad_lists() {
        let mut payload = vec![20u8];
        payload.extend_from_slice(&[7; 16]);
        let mut w_buf = Vec::new();
        {
            let mut w = Writer::new(&mut w_buf);
            w.name_list(["curve25519-sha256", "ext-info-s"])
                .name_list(["ssh-ed25519"]);
            for _ in 0..2 {
                w.name_list(["chacha20-poly1305@openssh.com"]);
            }
            for _ in 0..2 {
                w.name_list(["hmac-sha2-256-etm@openssh.com"]);
            }
            for _ in 0..2 {
                w.name_list(["none"]);
            }
            for _ in 0..2 {
                w.name_list([]);
            }
            w.bool(false).u32(0);
        }
        payload.extend_from_slice(&w_buf);
        let m = Message::decode(&payload).unwrap();
        let Message::KexInit(k) = &m else { panic!() };
        assert!(k.kex.contains("ext-info-s"));
        assert_eq!(m.to_bytes(), payload);
        // An empty name ("a,,b", libssh's trailing comma) is skipped, as OpenSSH does.
        let mut empty = payload.clone();
        empty[17 + 4 + 16] = b',';
        let Message::KexInit(k) = Message::decode(&empty).unwrap() else {
            panic!()
        };
        assert_eq!(
            k.kex.iter().collect::<Vec<_>>(),
            ["curve25519-sha25", "ext-info-s"]
        );
        // A space inside a name stays fatal.
        let mut bad = payload.clone();
        bad[17 + 4 + 16] = b' ';
        assert_eq!(
            Message::decode(&bad).unwrap_err().kind,
            DecodeErrorKind::BadNameList
        );
        assert_eq!(Message::decode(&bad).unwrap_err().context, "KEXINIT");
    }

    #[test]
    fn userauth_and_connection_messages_are_typed() {
        macro_rules! seed {
            ($name:literal) => {
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/fuzz/corpus/msg_roundtrip/",
                    $name
                ))
                .to_vec()
            };
        }
        let bytes = seed!("seed-userauth-publickey-signed");
        let Message::UserauthRequest(req) = Message::decode(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!((req.user, req.method), (&b"git"[..], &b"publickey"[..]));
        let pk = Publickey::parse(req.data.0, false).unwrap();
        assert_eq!(pk.algorithm, b"ssh-ed25519");
        assert!(pk.signature.is_some());
        assert_eq!(pk.data(), req.data.0);
        let bytes = seed!("seed-userauth-publickey-hostbound");
        let Message::UserauthRequest(req) = Message::decode(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(req.method, HOSTBOUND_METHOD);
        let pk = Publickey::parse(req.data.0, true).unwrap();
        assert_eq!(pk.host_key.map(<[u8]>::len), Some(51));
        assert!(pk.signature.is_some());
        assert_eq!(
            (pk.data().as_slice(), pk.method()),
            (req.data.0, req.method)
        );
        assert!(Publickey::parse(req.data.0, false).is_err());
        let bytes = seed!("seed-channel-request-exec");
        let Message::ChannelRequest(m) = Message::decode(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(
            ChannelRequest::parse(m.kind, m.data.0).unwrap(),
            ChannelRequest::Exec(b"git-upload-pack 'repo.git'".to_vec())
        );
        let bytes = seed!("seed-channel-open-direct-tcpip");
        let Message::ChannelOpen(open) = Message::decode(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(
            (open.kind, open.window),
            (&b"direct-tcpip"[..], 2 * 1024 * 1024)
        );
        assert_eq!(open.to_bytes(), bytes);
        let ChannelKind::DirectTcpip(ends) = ChannelKind::parse(open.kind, open.extra.0).unwrap()
        else {
            panic!()
        };
        assert_eq!(ChannelKind::DirectTcpip(ends).data(), open.extra.0);
        let bytes = seed!("seed-global-tcpip-forward");
        let Message::GlobalRequest(g) = Message::decode(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(
            GlobalRequestKind::parse(g.name, g.data.0).unwrap(),
            GlobalRequestKind::TcpipForward {
                address: b"localhost".to_vec(),
                port: 0
            }
        );
        // Context-dependent numbers stay Other and decode with the context's struct.
        let bytes = seed!("seed-kex-gex-request");
        let Message::Other { body, .. } = Message::decode(&bytes).unwrap() else {
            panic!()
        };
        let req = KexGexRequest::decode_exact(body).unwrap();
        assert_eq!((req.min, req.n, req.max), (2048, 4096, 8192));
        // A boolean is any non-zero byte [RFC4251 §5] and is sent back as 1.
        let mut nine = seed!("seed-channel-request-exec");
        let at = 1 + 4 + 4 + 4;
        nine[at] = 9;
        let Message::ChannelRequest(m) = Message::decode(&nine).unwrap() else {
            panic!()
        };
        assert!(m.want_reply);
        assert_eq!(m.to_bytes()[at], 1);
    }
}
