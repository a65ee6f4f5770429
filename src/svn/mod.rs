//! svn+ssh through the front door, as Gitee's does: a client's `svnserve -t` session is
//! carried to an svn server (`svnserve -d`) that a route names, with the user's identity.
//!
//! The session is the `ra_svn` protocol (libsvn_ra_svn/protocol). The repository is named
//! only in the client's answer to the server's greeting, so the front door greets the client
//! itself, reads that answer (the URL), lets the policy above decide (route, write access),
//! then connects the svn server, passes the client's answer on unchanged (svnserve takes an
//! `svn+ssh://` URL as it is, so the repository root it reports matches the client's), and
//! authenticates there as the identity with CRAM-MD5. The client is told no authentication is
//! needed; from then on the bytes are relayed untouched.
//!
//! The password for identity `name` is `hex(HMAC-SHA256(secret, name))` with the secret of
//! `[[svn_servers]] secret_file`: the svn server's `passwd` lists it for each user
//! (`portcullis svn-password NAME` prints the line), so a client can never present it and the
//! server records the real author of every commit.

pub mod item;
mod tunnel;

pub use tunnel::{SvnServer, SvnServerConfig, repository, run};

/// Whether `command` asks for an svn tunnel (`ssh host svnserve -t`, what `svn+ssh://` runs).
pub fn is_svnserve(command: &[u8]) -> bool {
    let words: Vec<&[u8]> = command
        .split(|b| *b == b' ')
        .filter(|w| !w.is_empty())
        .collect();
    words == [&b"svnserve"[..], b"-t"]
}
