//! User-authentication messages [RFC4252 §5, §7] and the `publickey` method's fields.

use crate::error::DecodeError;
use crate::msg::MsgNum;
use crate::msg::fields::{Rest, message};
use crate::wire::{NameList, Reader, Writer};

message! {
    /// SSH_MSG_USERAUTH_REQUEST [RFC4252 §5]; `data` holds the method-specific fields
    /// ([`Publickey::parse`] for `publickey`).
    UserauthRequest<'a> = USERAUTH_REQUEST {
        /// User name (UTF-8 by the RFC; checked by the server, not here).
        user: &'a [u8],
        /// Service to start (`ssh-connection`).
        service: &'a [u8],
        /// Method name.
        method: &'a [u8],
        /// Method-specific fields.
        data: Rest<'a>,
    }

    /// SSH_MSG_USERAUTH_FAILURE [RFC4252 §5.1].
    UserauthFailure<'a> = USERAUTH_FAILURE {
        /// Methods that can continue.
        methods: NameList<'a>,
        /// Partial success.
        partial: bool,
    }

    /// SSH_MSG_USERAUTH_SUCCESS [RFC4252 §5.1].
    UserauthSuccess = USERAUTH_SUCCESS {}

    /// SSH_MSG_USERAUTH_BANNER [RFC4252 §5.4].
    UserauthBanner<'a> = USERAUTH_BANNER {
        /// The text.
        message: &'a [u8],
        /// Language tag.
        language: &'a [u8],
    }

    /// SSH_MSG_USERAUTH_PK_OK [RFC4252 §7]: number 60 means this only in answer to a
    /// `publickey` query, so it is decoded by the client that sent one, not by
    /// [`crate::msg::Message::decode`].
    UserauthPkOk<'a> = USERAUTH_PK_OK {
        /// The algorithm of the query.
        algorithm: &'a [u8],
        /// The key blob of the query.
        key: &'a [u8],
    }
}

/// The host-bound variant's method name [PROTOCOL §3.1].
pub const HOSTBOUND_METHOD: &[u8] = b"publickey-hostbound-v00@openssh.com";

/// The `publickey` method's fields of a USERAUTH_REQUEST [RFC4252 §7], and those of
/// `publickey-hostbound-v00@openssh.com`, which adds the server's host key after the user's
/// [PROTOCOL §3.1].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publickey<'a> {
    /// Public key algorithm name (e.g. `ssh-ed25519`, `rsa-sha2-256`).
    pub algorithm: &'a [u8],
    /// Public key blob.
    pub key: &'a [u8],
    /// Host-bound requests: the host key blob the client saw in the first key exchange.
    pub host_key: Option<&'a [u8]>,
    /// The signature; `None` for a query ("would this key do?").
    pub signature: Option<&'a [u8]>,
}

impl<'a> Publickey<'a> {
    /// Parses `data` of a `publickey` [`UserauthRequest`] (`hostbound`: of a
    /// `publickey-hostbound-v00@openssh.com` one); every byte must be used.
    pub fn parse(data: &'a [u8], hostbound: bool) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        (|| {
            let signed = r.bool()?;
            let algorithm = r.string()?;
            let key = r.string()?;
            let host_key = if hostbound { Some(r.string()?) } else { None };
            let signature = if signed { Some(r.string()?) } else { None };
            r.finish()?;
            Ok(Self {
                algorithm,
                key,
                host_key,
                signature,
            })
        })()
        .map_err(|e: DecodeError| e.context("USERAUTH_REQUEST publickey"))
    }

    /// The method name these fields belong to.
    pub fn method(&self) -> &'static [u8] {
        if self.host_key.is_some() {
            HOSTBOUND_METHOD
        } else {
            b"publickey"
        }
    }

    /// The method-specific fields, as [`Publickey::parse`] reads them.
    pub fn data(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.bool(self.signature.is_some())
            .string(self.algorithm)
            .string(self.key);
        if let Some(h) = self.host_key {
            w.string(h);
        }
        if let Some(sig) = self.signature {
            w.string(sig);
        }
        out
    }

    /// What the signature covers: session_id ‖ USERAUTH_REQUEST ‖ user ‖ service ‖ method ‖
    /// TRUE ‖ algorithm ‖ key [‖ host key] [RFC4252 §7, PROTOCOL §3.1] — built in one place, so
    /// the server verifies exactly what a client signs.
    pub fn signed_data(&self, session_id: &[u8], user: &[u8], service: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            session_id
                .len()
                .saturating_add(self.key.len())
                .saturating_add(self.host_key.map_or(0, <[u8]>::len))
                .saturating_add(128),
        );
        let mut w = Writer::new(&mut out);
        w.string(session_id)
            .u8(MsgNum::USERAUTH_REQUEST.0)
            .string(user)
            .string(service)
            .string(self.method())
            .bool(true)
            .string(self.algorithm)
            .string(self.key);
        if let Some(h) = self.host_key {
            w.string(h);
        }
        out
    }
}
