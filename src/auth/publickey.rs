//! The `publickey` method's signed data [RFC4252 §7]: built in one place so the server verifies
//! exactly what a client signs, session identifier first.

use crate::msg::MsgNum;
use crate::wire::Writer;

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
}

/// session_id ‖ USERAUTH_REQUEST ‖ user ‖ service ‖ "publickey" ‖ TRUE ‖ alg ‖ key [RFC4252 §7].
pub fn signed_data(session_id: &[u8], req: &Request<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        session_id
            .len()
            .saturating_add(req.key_blob.len())
            .saturating_add(128),
    );
    let mut w = Writer::new(&mut out);
    w.string(session_id).u8(MsgNum::USERAUTH_REQUEST.0);
    w.string(req.user)
        .string(req.service)
        .string(b"publickey")
        .bool(true);
    w.string(req.algorithm).string(req.key_blob);
    out
}

/// Appends the signed USERAUTH_REQUEST message itself [RFC4252 §7].
pub fn write_request(w: &mut Writer<'_>, req: &Request<'_>, signature: Option<&[u8]>) {
    w.u8(MsgNum::USERAUTH_REQUEST.0);
    w.string(req.user)
        .string(req.service)
        .string(b"publickey")
        .bool(signature.is_some());
    w.string(req.algorithm).string(req.key_blob);
    if let Some(sig) = signature {
        w.string(sig);
    }
}
