//! The `publickey` method [RFC4252 §7] as both roles use it: what a request is about, what its
//! signature covers and the request itself — the wire forms are [`crate::msg::Publickey`]'s,
//! so the server verifies exactly what a client signs.

use crate::msg::{Publickey, Rest, UserauthRequest};
use crate::wire::{Encode, Writer};

/// The fields a `publickey` request is about.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// User name.
    pub user: &'a [u8],
    /// Service name (`ssh-connection`).
    pub service: &'a [u8],
    /// Public key algorithm name (e.g. `ssh-ed25519`, `rsa-sha2-256`).
    pub algorithm: &'a [u8],
    /// Public key blob.
    pub key_blob: &'a [u8],
    /// `publickey-hostbound-v00@openssh.com`: the server's host key blob [PROTOCOL §3.1].
    pub host_key: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    fn method(&self, signature: Option<&'a [u8]>) -> Publickey<'a> {
        Publickey {
            algorithm: self.algorithm,
            key: self.key_blob,
            host_key: self.host_key,
            signature,
        }
    }
}

/// session_id ‖ USERAUTH_REQUEST ‖ user ‖ service ‖ "publickey" ‖ TRUE ‖ alg ‖ key [RFC4252 §7].
pub fn signed_data(session_id: &[u8], req: &Request<'_>) -> Vec<u8> {
    req.method(None)
        .signed_data(session_id, req.user, req.service)
}

/// Appends the USERAUTH_REQUEST itself, signed or (without `signature`) a query [RFC4252 §7].
pub fn write_request(w: &mut Writer<'_>, req: &Request<'_>, signature: Option<&[u8]>) {
    let fields = req.method(signature);
    let data = fields.data();
    UserauthRequest {
        user: req.user,
        service: req.service,
        method: fields.method(),
        data: Rest(&data),
    }
    .encode(w);
}
