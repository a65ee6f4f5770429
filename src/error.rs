//! One error type for the whole stack. What reaches the peer stays generic (a disconnect reason
//! code and a short text); the variants carry the detail for logs.

use std::fmt;

/// What went wrong while decoding bytes from the wire. `Copy` and allocation-free so the hot
/// parse path can return it cheaply; `context` names the field or message being decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The kind of malformation.
    pub kind: DecodeErrorKind,
    /// The message or field being decoded when it happened ("" when unknown).
    pub context: &'static str,
}

/// The kinds of malformed input the wire codec recognises [RFC4251 §5].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Fewer bytes remain than the field needs.
    Truncated,
    /// A message was fully decoded but bytes were left over.
    TrailingBytes,
    /// An mpint with a redundant leading 0x00/0xff byte, or zero not encoded as empty.
    NonCanonicalMpint,
    /// An mpint was negative where only non-negative values are meaningful.
    NegativeMpint,
    /// A name-list with an empty name, a non-US-ASCII byte, or a control/space character.
    BadNameList,
    /// A string that must be UTF-8 is not.
    BadUtf8,
    /// A length or count above the cap this field allows.
    TooLong,
    /// A value outside the set the field allows.
    BadValue,
}

impl DecodeError {
    /// An error of `kind` with no context yet.
    pub const fn new(kind: DecodeErrorKind) -> Self {
        Self { kind, context: "" }
    }

    /// Names what was being decoded, unless an inner decoder already did.
    pub const fn context(mut self, context: &'static str) -> Self {
        if self.context.is_empty() {
            self.context = context;
        }
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            DecodeErrorKind::Truncated => "truncated",
            DecodeErrorKind::TrailingBytes => "trailing bytes",
            DecodeErrorKind::NonCanonicalMpint => "non-canonical mpint",
            DecodeErrorKind::NegativeMpint => "negative mpint",
            DecodeErrorKind::BadNameList => "malformed name-list",
            DecodeErrorKind::BadUtf8 => "invalid UTF-8",
            DecodeErrorKind::TooLong => "length above limit",
            DecodeErrorKind::BadValue => "value out of range",
        };
        if self.context.is_empty() {
            f.write_str(what)
        } else {
            write!(f, "{what} in {}", self.context)
        }
    }
}

impl std::error::Error for DecodeError {}

/// A rule of the protocol broken by the peer; one variant per rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// `packet_length` above our maximum [RFC4253 §6.1].
    #[error("packet length {len} exceeds the maximum {max}")]
    PacketTooLarge {
        /// The length the peer announced.
        len: u32,
        /// Our cap.
        max: u32,
    },
    /// `packet_length` below the minimum packet size [RFC4253 §6].
    #[error("packet length {len} is below the minimum")]
    PacketTooSmall {
        /// The length the peer announced.
        len: u32,
    },
    /// The packet is not a multiple of the cipher block size [RFC4253 §6].
    #[error("packet length {len} is not a multiple of the block size {block}")]
    BadAlignment {
        /// The length the peer announced.
        len: u32,
        /// The block size the length must be a multiple of.
        block: usize,
    },
    /// `padding_length` below 4, or leaving no payload [RFC4253 §6].
    #[error("bad padding length {padding} for packet length {len}")]
    BadPadding {
        /// The padding length the peer sent.
        padding: u8,
        /// The packet length it came with.
        len: u32,
    },
    /// A malformed identification line [RFC4253 §4.2].
    #[error("bad identification string: {0}")]
    BadVersion(&'static str),
    /// The peer speaks a protocol version other than 2.0 [RFC4253 §4.2, §5].
    #[error("unsupported protocol version")]
    UnsupportedVersion,
    /// Strict kex: a non-kex message during the first exchange, or a KEXINIT that was not
    /// the first packet [PROTOCOL §1.10].
    #[error("strict kex violation: message {msg} at sequence number {seq}")]
    StrictKexViolation {
        /// Sequence number of the offending packet.
        seq: u32,
        /// Its message number.
        msg: u8,
    },
    /// A message named a channel that does not exist.
    #[error("unknown channel {id}")]
    UnknownChannel {
        /// The recipient channel named.
        id: u32,
    },
    /// A WINDOW_ADJUST would take the window past 2^32-1 [RFC4254 §5.2].
    #[error("window overflow on channel {id}")]
    WindowOverflow {
        /// Our channel id.
        id: u32,
    },
    /// Data beyond the window we granted, or above our maximum packet [RFC4254 §5.2].
    #[error("window exceeded on channel {id}")]
    WindowExceeded {
        /// Our channel id.
        id: u32,
    },
    /// A message that is not allowed in the current phase.
    #[error("unexpected message {msg} in {phase}")]
    UnexpectedMessage {
        /// The protocol phase we were in.
        phase: &'static str,
        /// The message number received.
        msg: u8,
    },
    /// More of the peer's global requests await our reply than we queue [RFC4254 §4].
    #[error("more than {limit} global requests awaiting a reply")]
    TooManyGlobalRequests {
        /// `limits::GLOBAL_REPLIES_QUEUED`.
        limit: usize,
    },
}

/// Cryptographic failures. Deliberately coarse: which check failed is never sent to the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A MAC or AEAD tag did not verify [RFC4253 §6.4].
    #[error("message authentication failed")]
    BadMac,
}

/// A per-connection resource cap was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// An outgoing payload is larger than the packet size we may send.
    #[error("outgoing payload of {len} bytes exceeds the packet limit")]
    OutgoingPacketTooLarge {
        /// The payload length.
        len: usize,
    },
    /// Output held during a key exchange passed its cap: the writer ignored backpressure.
    #[error("send queue full ({len} bytes) during key exchange")]
    SendQueueFull {
        /// Bytes that would be queued.
        len: usize,
    },
    /// Too many packets before the first key exchange finished (sequence number would wrap).
    #[error("too many packets before the first key exchange")]
    InitialKexPackets,
}

/// Why a key exchange failed: one variant per rule, named so tests and logs match the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KexError {
    /// The client's ephemeral public value is invalid [RFC8731 §3, RFC5656 §4, RFC4253 §8].
    #[error("bad client ephemeral key")]
    BadClientPublic,
    /// The server's ephemeral public value is invalid.
    #[error("bad server ephemeral key")]
    BadServerPublic,
    /// The server's signature of H does not verify with its host key [RFC4253 §8].
    #[error("bad host key signature")]
    BadHostKeySignature,
    /// The server's host key blob does not decode.
    #[error("unusable server host key")]
    UnusableHostKey,
    /// The server's host key is not of the negotiated type [RFC4253 §7.1].
    #[error("host key type differs from the negotiated one")]
    HostKeyTypeMismatch,
    /// Negotiation picked a host key algorithm we hold no key for.
    #[error("no host key for the negotiated algorithm")]
    NoHostKeyForAlgorithm,
    /// Our host key cannot sign with the negotiated algorithm.
    #[error("host key cannot sign with the negotiated algorithm")]
    HostKeyCannotSign,
    /// The derived keys do not fit the negotiated ciphers and MACs.
    #[error("key derivation produced unusable keys")]
    KeyDerivation,
    /// A group-exchange request no group of ours satisfies [RFC4419 §3].
    #[error("no DH group within the requested size range")]
    NoGroupInRange,
    /// The server's group is not a usable safe-prime group [RFC4419 §3].
    #[error("unusable DH group from server")]
    UnusableGroup,
    /// The server's group is outside the size range we asked for [RFC4419 §3].
    #[error("DH group outside the requested size range")]
    GroupOutsideRequest,
    /// Our DH exponent could not be generated.
    #[error("DH exponent generation failed")]
    ExponentGeneration,
    /// The peer answered our KEXINIT with something else [RFC4253 §7.1].
    #[error("peer refused our key re-exchange")]
    ReexchangeRefused,
    /// A re-exchange did not finish in time.
    #[error("re-exchange timed out")]
    ReexchangeTimeout,
    /// A key-exchange step ran in the wrong role (a bug, not the peer's doing).
    #[error("key exchange step in the wrong role")]
    WrongRole,
}

/// Why authentication ended the connection or refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No success within the login grace time [RFC4252 §4].
    #[error("login grace time exceeded")]
    LoginGraceExceeded,
    /// `max_auth_attempts` failures [RFC4252 §4].
    #[error("too many authentication failures")]
    TooManyFailures,
    /// More requests than `MAX_AUTH_REQUESTS`, queries included.
    #[error("too many authentication requests")]
    TooManyRequests,
    /// A service other than `ssh-userauth` was requested [RFC4253 §10].
    #[error("unknown service requested")]
    UnknownService,
    /// The user name is not UTF-8 [RFC4252 §5].
    #[error("user name is not UTF-8")]
    UserNameNotUtf8,
    /// The user name is longer than we accept.
    #[error("user name too long")]
    UserNameTooLong,
    /// `accept`/`reject` without a request waiting for a decision (a caller's mistake).
    #[error("no pending request")]
    NoPendingRequest,
    /// Authentication before the first key exchange set a session identifier.
    #[error("no session")]
    NoSession,
    /// One of our keys cannot sign with the algorithm chosen for it.
    #[error("key cannot sign")]
    KeyCannotSign,
    /// A session opened on a connection whose identity is unknown (a bug).
    #[error("session without identity")]
    NoIdentity,
}

/// Why a channel-layer rule or limit ended the connection or refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// `keepalive_max` keepalives went unanswered.
    #[error("peer stopped answering keepalives")]
    KeepaliveTimeout,
    /// `accept_open`/`reject_open` for a channel that is not waiting for one.
    #[error("channel is not awaiting a decision")]
    NotAwaitingDecision,
    /// `reply_request` with no want-reply request outstanding.
    #[error("no request awaits a reply")]
    NoRequestAwaitsReply,
    /// A request on a channel we closed.
    #[error("request after close")]
    RequestAfterClose,
    /// A `session` opened after `no-more-sessions@openssh.com` [PROTOCOL §2.2].
    #[error("session opened after no-more-sessions")]
    SessionAfterNoMoreSessions,
    /// `max_channels` are open.
    #[error("too many channels")]
    TooManyChannels,
    /// Data after our EOF or CLOSE [RFC4254 §5.3].
    #[error("write after EOF or close")]
    WriteAfterEof,
    /// Our caller named a channel id that is not in use (never opened, or already freed).
    #[error("no channel {id}")]
    NoSuchChannel {
        /// The id.
        id: u32,
    },
    /// Our caller sent on a channel the peer has not confirmed (or one it refused).
    #[error("channel {id} is not open")]
    NotOpen {
        /// The id.
        id: u32,
    },
    /// `reply_global` with none of the peer's global requests awaiting the application's reply.
    #[error("no global request awaits a reply")]
    NoGlobalRequestAwaitsReply,
    /// A REQUEST_SUCCESS to our `tcpip-forward` for port 0 that names no port [RFC4254 §7.1].
    #[error("tcpip-forward reply without the bound port")]
    NoBoundPort,
    /// A session the driver tracks has no channel any more (a bug).
    #[error("session vanished")]
    SessionVanished,
}

/// Every error the core can return.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed encoding.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// A protocol rule was broken.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// A cryptographic check failed.
    #[error("crypto error: {0}")]
    Crypto(#[from] CryptoError),
    /// A resource cap was reached.
    #[error("limit exceeded: {0}")]
    Limit(#[from] LimitExceeded),
    /// Key exchange found no algorithm both sides support in one category.
    #[error("no matching {kind} found. Client offer: {client}; server offer: {server}")]
    Negotiation {
        /// The category: kex, host key, cipher, MAC, compression.
        kind: &'static str,
        /// The client's list.
        client: String,
        /// The server's list.
        server: String,
    },
    /// Key exchange failed: a bad peer value or signature.
    #[error("key exchange failed: {0}")]
    Kex(#[from] KexError),
    /// The peer's host key was not accepted by the verifier.
    #[error("host key not accepted: {0}")]
    HostKeyRejected(String),
    /// The peer sent SSH_MSG_DISCONNECT.
    #[error("peer disconnected (reason {reason}): {description}")]
    PeerDisconnected {
        /// The reason code.
        reason: u32,
        /// The peer's description, lossily decoded.
        description: String,
    },
    /// The connection is already closed.
    #[error("connection closed")]
    Closed,
    /// Authentication ended the connection (attempts, grace time, bad user name).
    #[error("authentication: {0}")]
    Auth(#[from] AuthError),
    /// A channel-layer limit or rule ended the connection.
    #[error("channel: {0}")]
    Channel(#[from] ChannelError),
}

/// SSH_MSG_DISCONNECT reason codes [RFC4253 §11.1, RFC4250 §4.2.2].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum DisconnectReason {
    HostNotAllowedToConnect = 1,
    ProtocolError = 2,
    KeyExchangeFailed = 3,
    Reserved = 4,
    MacError = 5,
    CompressionError = 6,
    ServiceNotAvailable = 7,
    ProtocolVersionNotSupported = 8,
    HostKeyNotVerifiable = 9,
    ConnectionLost = 10,
    ByApplication = 11,
    TooManyConnections = 12,
    AuthCancelledByUser = 13,
    NoMoreAuthMethodsAvailable = 14,
    IllegalUserName = 15,
}

impl DisconnectReason {
    /// The wire value.
    pub const fn code(self) -> u32 {
        self as u32
    }
}

impl Error {
    /// The reason code to put in SSH_MSG_DISCONNECT for this error.
    pub fn disconnect_reason(&self) -> DisconnectReason {
        match self {
            Error::Crypto(CryptoError::BadMac) => DisconnectReason::MacError,
            Error::Limit(_) | Error::Closed | Error::PeerDisconnected { .. } => {
                DisconnectReason::ByApplication
            }
            Error::Protocol(ProtocolError::UnsupportedVersion) => {
                DisconnectReason::ProtocolVersionNotSupported
            }
            Error::Decode(_) | Error::Protocol(_) => DisconnectReason::ProtocolError,
            Error::Negotiation { .. } | Error::Kex(_) => DisconnectReason::KeyExchangeFailed,
            Error::HostKeyRejected(_) => DisconnectReason::HostKeyNotVerifiable,
            Error::Auth(_) => DisconnectReason::NoMoreAuthMethodsAvailable,
            Error::Channel(_) => DisconnectReason::ProtocolError,
        }
    }

    /// A negotiation failure in `kind`, naming both offers as OpenSSH does.
    pub fn no_common(kind: &'static str, client: &str, server: &str) -> Self {
        Error::Negotiation {
            kind,
            client: client.to_owned(),
            server: server.to_owned(),
        }
    }

    /// The description sent to the peer: generic on purpose, the detail goes to the log.
    pub fn peer_message(&self) -> String {
        match self {
            Error::Crypto(_) => "message authentication failed".into(),
            Error::Limit(_) => "resource limit reached".into(),
            Error::Decode(_) | Error::Protocol(_) => "protocol error".into(),
            // Naming both offers is what lets an operator fix a mismatch; neither is secret.
            Error::Negotiation { .. } => self.to_string(),
            Error::Kex(_) => "key exchange failed".into(),
            Error::HostKeyRejected(_) => "host key not accepted".into(),
            Error::PeerDisconnected { .. } | Error::Closed => "connection closed".into(),
            Error::Auth(why) => why.to_string(),
            Error::Channel(_) => "protocol error".into(),
        }
    }
}

/// Shorthand for results of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
