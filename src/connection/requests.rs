//! Channel request types [RFC4254 §6, PROTOCOL §2.1], parsed into owned values so the
//! application can decide after the packet buffer is gone.

use crate::error::DecodeError;
use crate::wire::{Reader, Writer};

/// A channel request, by type; unknown ones keep their name so they can be refused.
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
    /// Parses the type-specific part of a CHANNEL_REQUEST (after `want reply`).
    pub fn parse(name: &[u8], r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let req = match name {
            b"exec" => ChannelRequest::Exec(r.string()?.to_vec()),
            b"env" => ChannelRequest::Env {
                name: r.string()?.to_vec(),
                value: r.string()?.to_vec(),
            },
            b"shell" => ChannelRequest::Shell,
            b"subsystem" => ChannelRequest::Subsystem(r.string()?.to_vec()),
            b"signal" => ChannelRequest::Signal(r.string()?.to_vec()),
            b"exit-status" => ChannelRequest::ExitStatus(r.u32()?),
            b"exit-signal" => ChannelRequest::ExitSignal {
                signal: r.string()?.to_vec(),
                core_dumped: r.bool()?,
                message: r.string()?.to_vec(),
            },
            // Requests we only ever refuse: their fields are not needed, skip them.
            b"pty-req" => {
                r.rest();
                ChannelRequest::PtyReq
            }
            b"x11-req" => {
                r.rest();
                ChannelRequest::X11Req
            }
            b"auth-agent-req@openssh.com" => ChannelRequest::AgentForwarding,
            b"window-change" => {
                r.rest();
                ChannelRequest::WindowChange
            }
            b"eow@openssh.com" => ChannelRequest::Eow,
            other => {
                r.rest();
                ChannelRequest::Other(other.to_vec())
            }
        };
        // exit-signal carries a language tag after the message.
        if let ChannelRequest::ExitSignal { .. } = req {
            r.string()?;
        }
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

    /// Appends the type-specific fields (for requests we send).
    pub fn write_fields(&self, w: &mut Writer<'_>) {
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
    }
}
