//! Transport-layer messages [RFC4253 §7.1, §7.3, §10, §11; RFC8308 §2.3].

use crate::error::{DecodeError, DecodeErrorKind};
use crate::limits::MAX_EXTENSIONS;
use crate::msg::MsgNum;
use crate::wire::{Decode, Encode, NameList, Reader, Writer};

/// SSH_MSG_DISCONNECT [RFC4253 §11.1]. Text fields stay bytes: peers do send non-UTF-8, and it
/// is only ever logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disconnect<'a> {
    /// Reason code (see [`crate::error::DisconnectReason`]).
    pub reason: u32,
    /// Human-readable description.
    pub description: &'a [u8],
    /// Language tag.
    pub language: &'a [u8],
}

/// SSH_MSG_IGNORE [RFC4253 §11.2].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignore<'a> {
    /// Arbitrary data.
    pub data: &'a [u8],
}

/// SSH_MSG_UNIMPLEMENTED [RFC4253 §11.4].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unimplemented {
    /// Sequence number of the rejected packet.
    pub seq: u32,
}

/// SSH_MSG_DEBUG [RFC4253 §11.3].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Debug<'a> {
    /// Whether the peer asked for the message to be shown.
    pub always_display: bool,
    /// The text.
    pub message: &'a [u8],
    /// Language tag.
    pub language: &'a [u8],
}

/// SSH_MSG_SERVICE_REQUEST [RFC4253 §10].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRequest<'a> {
    /// Service name, e.g. `ssh-userauth`.
    pub service: &'a [u8],
}

/// SSH_MSG_SERVICE_ACCEPT [RFC4253 §10].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccept<'a> {
    /// Service name echoed back.
    pub service: &'a [u8],
}

/// SSH_MSG_KEXINIT [RFC4253 §7.1].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KexInit<'a> {
    /// 16 random bytes.
    pub cookie: [u8; 16],
    /// kex_algorithms.
    pub kex: NameList<'a>,
    /// server_host_key_algorithms.
    pub host_key: NameList<'a>,
    /// encryption_algorithms_client_to_server.
    pub cipher_c2s: NameList<'a>,
    /// encryption_algorithms_server_to_client.
    pub cipher_s2c: NameList<'a>,
    /// mac_algorithms_client_to_server.
    pub mac_c2s: NameList<'a>,
    /// mac_algorithms_server_to_client.
    pub mac_s2c: NameList<'a>,
    /// compression_algorithms_client_to_server.
    pub compression_c2s: NameList<'a>,
    /// compression_algorithms_server_to_client.
    pub compression_s2c: NameList<'a>,
    /// languages_client_to_server.
    pub lang_c2s: NameList<'a>,
    /// languages_server_to_client.
    pub lang_s2c: NameList<'a>,
    /// first_kex_packet_follows.
    pub first_kex_packet_follows: bool,
    /// Reserved for future extension; kept so the message round-trips.
    pub reserved: u32,
}

/// SSH_MSG_EXT_INFO [RFC8308 §2.3]: validated on decode, iterated lazily.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtInfo<'a> {
    count: u32,
    body: &'a [u8],
}

impl<'a> ExtInfo<'a> {
    /// The `(extension-name, extension-value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let mut r = Reader::new(self.body);
        std::iter::from_fn(move || Some((r.string().ok()?, r.string().ok()?)))
    }

    /// Encodes a list of extensions into a message.
    pub fn write(w: &mut Writer<'_>, exts: &[(&str, &[u8])]) {
        w.u8(MsgNum::EXT_INFO.0)
            .u32(u32::try_from(exts.len()).unwrap_or(u32::MAX));
        for (name, value) in exts {
            w.string(name.as_bytes()).string(value);
        }
    }
}

fn ctx<T>(r: Result<T, DecodeError>, what: &'static str) -> Result<T, DecodeError> {
    r.map_err(|e| e.context(what))
}

impl<'a> Decode<'a> for Disconnect<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        ctx(
            (|| {
                Ok(Self {
                    reason: r.u32()?,
                    description: r.string()?,
                    language: r.string()?,
                })
            })(),
            "DISCONNECT",
        )
    }
}

impl<'a> Decode<'a> for Ignore<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        ctx(r.string().map(|data| Self { data }), "IGNORE")
    }
}

impl<'a> Decode<'a> for Unimplemented {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        ctx(r.u32().map(|seq| Self { seq }), "UNIMPLEMENTED")
    }
}

impl<'a> Decode<'a> for Debug<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        ctx(
            (|| {
                Ok(Self {
                    always_display: r.bool()?,
                    message: r.string()?,
                    language: r.string()?,
                })
            })(),
            "DEBUG",
        )
    }
}

impl<'a> Decode<'a> for ServiceRequest<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        ctx(
            r.string().map(|service| Self { service }),
            "SERVICE_REQUEST",
        )
    }
}

impl<'a> Decode<'a> for ServiceAccept<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        ctx(r.string().map(|service| Self { service }), "SERVICE_ACCEPT")
    }
}

impl<'a> Decode<'a> for KexInit<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        ctx(
            (|| {
                Ok(Self {
                    cookie: r.array()?,
                    kex: r.name_list()?,
                    host_key: r.name_list()?,
                    cipher_c2s: r.name_list()?,
                    cipher_s2c: r.name_list()?,
                    mac_c2s: r.name_list()?,
                    mac_s2c: r.name_list()?,
                    compression_c2s: r.name_list()?,
                    compression_s2c: r.name_list()?,
                    lang_c2s: r.name_list()?,
                    lang_s2c: r.name_list()?,
                    first_kex_packet_follows: r.bool()?,
                    reserved: r.u32()?,
                })
            })(),
            "KEXINIT",
        )
    }
}

impl<'a> Decode<'a> for ExtInfo<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        ctx(
            (|| {
                let count = r.u32()?;
                if count > MAX_EXTENSIONS {
                    return Err(DecodeError::new(DecodeErrorKind::TooLong));
                }
                let body = r.rest();
                let mut check = Reader::new(body);
                for _ in 0..count {
                    check.string()?;
                    check.string()?;
                }
                check.finish()?;
                Ok(Self { count, body })
            })(),
            "EXT_INFO",
        )
    }
}

impl Encode for Disconnect<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(MsgNum::DISCONNECT.0)
            .u32(self.reason)
            .string(self.description)
            .string(self.language);
    }
}

impl Encode for Ignore<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(MsgNum::IGNORE.0).string(self.data);
    }
}

impl Encode for Unimplemented {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(MsgNum::UNIMPLEMENTED.0).u32(self.seq);
    }
}

impl Encode for Debug<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(MsgNum::DEBUG.0)
            .bool(self.always_display)
            .string(self.message)
            .string(self.language);
    }
}

impl Encode for ServiceRequest<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(MsgNum::SERVICE_REQUEST.0).string(self.service);
    }
}

impl Encode for ServiceAccept<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(MsgNum::SERVICE_ACCEPT.0).string(self.service);
    }
}

impl Encode for KexInit<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(MsgNum::KEXINIT.0).raw(&self.cookie);
        for list in [
            &self.kex,
            &self.host_key,
            &self.cipher_c2s,
            &self.cipher_s2c,
            &self.mac_c2s,
            &self.mac_s2c,
            &self.compression_c2s,
            &self.compression_s2c,
            &self.lang_c2s,
            &self.lang_s2c,
        ] {
            w.string(list.as_str().as_bytes());
        }
        w.bool(self.first_kex_packet_follows).u32(self.reserved);
    }
}

impl Encode for ExtInfo<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(MsgNum::EXT_INFO.0).u32(self.count).raw(self.body);
    }
}
