//! Connection-protocol messages [RFC4254 §4, §5, §6, §7], OpenSSH's transport-level ping
//! [PROTOCOL §1.9], and the typed channel requests [RFC4254 §6, PROTOCOL §2.1].

use crate::error::DecodeError;
use crate::msg::fields::{Rest, message};
use crate::wire::{Reader, Writer};

message! {
    /// SSH_MSG_GLOBAL_REQUEST [RFC4254 §4]; `data` is the request-specific tail.
    GlobalRequest<'a> = GLOBAL_REQUEST {
        /// Request name.
        name: &'a [u8],
        /// Whether the sender wants REQUEST_SUCCESS / REQUEST_FAILURE.
        want_reply: bool,
        /// Request-specific data.
        data: Rest<'a>,
    }

    /// SSH_MSG_REQUEST_SUCCESS [RFC4254 §4]; `data` is request-specific (a bound port).
    RequestSuccess<'a> = REQUEST_SUCCESS {
        /// Response-specific data.
        data: Rest<'a>,
    }

    /// SSH_MSG_REQUEST_FAILURE [RFC4254 §4].
    RequestFailure = REQUEST_FAILURE {}

    /// SSH_MSG_CHANNEL_OPEN [RFC4254 §5.1]; `extra` is the channel-type-specific tail.
    ChannelOpen<'a> = CHANNEL_OPEN {
        /// Channel type (`session`, `direct-tcpip`, …).
        kind: &'a [u8],
        /// The sender's channel number.
        sender: u32,
        /// Initial window size.
        window: u32,
        /// Maximum packet size.
        max_packet: u32,
        /// Channel-type-specific data.
        extra: Rest<'a>,
    }

    /// SSH_MSG_CHANNEL_OPEN_CONFIRMATION [RFC4254 §5.1].
    ChannelOpenConfirmation<'a> = CHANNEL_OPEN_CONFIRMATION {
        /// Our channel number.
        recipient: u32,
        /// The peer's channel number.
        sender: u32,
        /// Initial window size.
        window: u32,
        /// Maximum packet size.
        max_packet: u32,
        /// Channel-type-specific data.
        extra: Rest<'a>,
    }

    /// SSH_MSG_CHANNEL_OPEN_FAILURE [RFC4254 §5.1]. The language tag is taken as the rest:
    /// peers that leave it out are tolerated, as OpenSSH tolerates them.
    ChannelOpenFailure<'a> = CHANNEL_OPEN_FAILURE {
        /// Our channel number.
        recipient: u32,
        /// Reason code ([`crate::connection::reason`]).
        reason: u32,
        /// Description.
        description: &'a [u8],
        /// The language tag (a `string`) or nothing.
        language: Rest<'a>,
    }

    /// SSH_MSG_CHANNEL_WINDOW_ADJUST [RFC4254 §5.2].
    ChannelWindowAdjust = CHANNEL_WINDOW_ADJUST {
        /// Recipient channel.
        recipient: u32,
        /// Bytes to add.
        bytes: u32,
    }

    /// SSH_MSG_CHANNEL_DATA [RFC4254 §5.2].
    ChannelData<'a> = CHANNEL_DATA {
        /// Recipient channel.
        recipient: u32,
        /// The data.
        data: &'a [u8],
    }

    /// SSH_MSG_CHANNEL_EXTENDED_DATA [RFC4254 §5.2].
    ChannelExtendedData<'a> = CHANNEL_EXTENDED_DATA {
        /// Recipient channel.
        recipient: u32,
        /// Data type code (1: stderr).
        code: u32,
        /// The data.
        data: &'a [u8],
    }

    /// SSH_MSG_CHANNEL_EOF [RFC4254 §5.3].
    ChannelEof = CHANNEL_EOF {
        /// Recipient channel.
        recipient: u32,
    }

    /// SSH_MSG_CHANNEL_CLOSE [RFC4254 §5.3].
    ChannelClose = CHANNEL_CLOSE {
        /// Recipient channel.
        recipient: u32,
    }

    /// SSH_MSG_CHANNEL_REQUEST [RFC4254 §5.4]; `data` is parsed by [`ChannelRequest::parse`].
    ChannelRequestMsg<'a> = CHANNEL_REQUEST {
        /// Recipient channel.
        recipient: u32,
        /// Request type.
        kind: &'a [u8],
        /// Whether a CHANNEL_SUCCESS / CHANNEL_FAILURE is wanted.
        want_reply: bool,
        /// Type-specific data.
        data: Rest<'a>,
    }

    /// SSH_MSG_CHANNEL_SUCCESS [RFC4254 §5.4].
    ChannelSuccess = CHANNEL_SUCCESS {
        /// Recipient channel.
        recipient: u32,
    }

    /// SSH_MSG_CHANNEL_FAILURE [RFC4254 §5.4].
    ChannelFailure = CHANNEL_FAILURE {
        /// Recipient channel.
        recipient: u32,
    }

    /// SSH2_MSG_PING [PROTOCOL §1.9] (`ping@openssh.com`).
    Ping<'a> = PING {
        /// Data the peer echoes back.
        data: &'a [u8],
    }

    /// SSH2_MSG_PONG [PROTOCOL §1.9].
    Pong<'a> = PONG {
        /// The ping's data.
        data: &'a [u8],
    }
}

/// A channel request, by type, parsed into owned values so the application can decide after
/// the packet buffer is gone; unknown ones keep their name so they can be refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelRequest {
    /// `exec` [RFC4254 §6.5]: the command, raw bytes (it need not be UTF-8).
    Exec(Vec<u8>),
    /// `env` [RFC4254 §6.4].
    Env {
        /// Variable name.
        name: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// `shell` [RFC4254 §6.5].
    Shell,
    /// `subsystem` [RFC4254 §6.5].
    Subsystem(Vec<u8>),
    /// `pty-req` [RFC4254 §6.2] (details dropped: we never allocate one).
    PtyReq,
    /// `x11-req` [RFC4254 §6.3.1].
    X11Req,
    /// `auth-agent-req@openssh.com`.
    AgentForwarding,
    /// `window-change` [RFC4254 §6.7].
    WindowChange,
    /// `signal` [RFC4254 §6.9].
    Signal(Vec<u8>),
    /// `exit-status` [RFC4254 §6.10].
    ExitStatus(u32),
    /// `exit-signal` [RFC4254 §6.10].
    ExitSignal {
        /// Signal name without "SIG".
        signal: Vec<u8>,
        /// Whether a core was dumped.
        core_dumped: bool,
        /// Error message.
        message: Vec<u8>,
    },
    /// `eow@openssh.com` [PROTOCOL §2.1].
    Eow,
    /// Anything else (`break`, `keepalive@openssh.com`, `xon-xoff`, …).
    Other(Vec<u8>),
}

impl ChannelRequest {
    /// Parses the type-specific part of a CHANNEL_REQUEST (`data` of [`ChannelRequestMsg`]);
    /// every byte must be used, except by requests we only ever refuse.
    pub fn parse(kind: &[u8], data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let r = &mut r;
        let req = match kind {
            b"exec" => ChannelRequest::Exec(r.string()?.to_vec()),
            b"env" => ChannelRequest::Env {
                name: r.string()?.to_vec(),
                value: r.string()?.to_vec(),
            },
            b"shell" => ChannelRequest::Shell,
            b"subsystem" => ChannelRequest::Subsystem(r.string()?.to_vec()),
            b"signal" => ChannelRequest::Signal(r.string()?.to_vec()),
            b"exit-status" => ChannelRequest::ExitStatus(r.u32()?),
            b"exit-signal" => {
                let req = ChannelRequest::ExitSignal {
                    signal: r.string()?.to_vec(),
                    core_dumped: r.bool()?,
                    message: r.string()?.to_vec(),
                };
                // The language tag.
                r.string()?;
                req
            }
            b"auth-agent-req@openssh.com" => ChannelRequest::AgentForwarding,
            b"eow@openssh.com" => ChannelRequest::Eow,
            // Requests we only ever refuse: their fields are not needed, skip them.
            b"pty-req" => skip(r, ChannelRequest::PtyReq),
            b"x11-req" => skip(r, ChannelRequest::X11Req),
            b"window-change" => skip(r, ChannelRequest::WindowChange),
            other => skip(r, ChannelRequest::Other(other.to_vec())),
        };
        r.finish()
            .map_err(|e| e.context("CHANNEL_REQUEST type-specific data"))?;
        Ok(req)
    }

    /// The request type name.
    pub fn name(&self) -> &[u8] {
        match self {
            ChannelRequest::Exec(_) => b"exec",
            ChannelRequest::Env { .. } => b"env",
            ChannelRequest::Shell => b"shell",
            ChannelRequest::Subsystem(_) => b"subsystem",
            ChannelRequest::PtyReq => b"pty-req",
            ChannelRequest::X11Req => b"x11-req",
            ChannelRequest::AgentForwarding => b"auth-agent-req@openssh.com",
            ChannelRequest::WindowChange => b"window-change",
            ChannelRequest::Signal(_) => b"signal",
            ChannelRequest::ExitStatus(_) => b"exit-status",
            ChannelRequest::ExitSignal { .. } => b"exit-signal",
            ChannelRequest::Eow => b"eow@openssh.com",
            ChannelRequest::Other(name) => name,
        }
    }

    /// The type-specific data of a request we send (the inverse of [`ChannelRequest::parse`]
    /// for the types we send).
    pub fn data(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        match self {
            ChannelRequest::Exec(cmd) => {
                w.string(cmd);
            }
            ChannelRequest::Env { name, value } => {
                w.string(name).string(value);
            }
            ChannelRequest::Subsystem(s) | ChannelRequest::Signal(s) => {
                w.string(s);
            }
            ChannelRequest::ExitStatus(code) => {
                w.u32(*code);
            }
            ChannelRequest::ExitSignal {
                signal,
                core_dumped,
                message,
            } => {
                w.string(signal)
                    .bool(*core_dumped)
                    .string(message)
                    .string(b"");
            }
            _ => {}
        }
        out
    }
}

fn skip(r: &mut Reader<'_>, req: ChannelRequest) -> ChannelRequest {
    r.rest();
    req
}
