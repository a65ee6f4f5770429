//! portcullis: a hand-written SSH-2 stack (RFC 4253 transport, RFC 4252 public-key auth,
//! RFC 4254 channels) and the git-only server and proxy built on it.
//!
//! # The layers
//!
//! Each layer uses only those below it. Everything from `server`/`client` down is sans-IO:
//! bytes in, bytes and events out, time and randomness passed in (`.ci/run` greps for I/O
//! there). `RFC-NOTES.md` maps each RFC section to the code; `limits.rs` holds every limit.
//!
//! ```text
//!  daemon            the server process: sockets (bound, inherited, handed over), reload,
//!                    upgrade, drain                                   [binary: main.rs]
//!  route             policy: which backend serves an `exec` (`route::FrontDoor`, the git
//!                    server's SessionHandler), access rules, the router
//!  git  proxy  svn   the backends of a session: local git, an upstream SSH host, an svn
//!                    server (svn+ssh's `svnserve -t` carried to `svnserve -d`)
//!  lookup            who a key or certificate belongs to (authorized_keys file, command,
//!                    HTTP API; CA keys, principals and revocations)
//!  session           what the driver asks of the policy above it (SessionHandler) and gives
//!                    a backend (SessionIo): the driver's upward contract, defined here so the
//!                    driver never imports the policy
//!  driver            one tokio loop per connection for both roles (`driver::engine`, with a
//!                    `Role` each: `server/`, `client/`), pipes to session tasks, port
//!                    forwarding's sockets, listener, limits before login, PROXY protocol
//!  ---------------------------------------------------------------------------- sans-IO
//!  server  client    one connection per role: transport + auth + channels + keepalive
//!  auth  connection  RFC 4252 (both roles), RFC 4254 channels and requests (both roles)
//!  transport         RFC 4253: version, packets, key exchange, rekey, strict kex, EXT_INFO
//!  msg               every message, typed: one decoder and one encoder each
//!  keys  crypto      key, certificate and signature blobs, key files, authorized_keys; the
//!                    only modules naming crypto crates
//!  wire              RFC 4251 data types
//! ```
//!
//! # One packet, from the socket to git and back
//!
//! 1. `driver::engine` reads the socket into its input buffer; the server's role
//!    (`driver::server`) hands the bytes, mutably, to
//!    [`server::ServerConnection::handle_input`].
//! 2. `transport::input` (`Transport::read_from`) finds one packet, which `transport::packet`
//!    authenticates and decrypts where it lies in that buffer (a packet split across two reads
//!    is first gathered in the decoder's own); transport messages (KEXINIT, IGNORE, …) stop
//!    here.
//! 3. `ServerConnection` dispatches the payload by number: 50–79 to `auth::server`, 80–127 to
//!    [`connection::Connection::handle`], which decodes it with [`msg::Message::decode`].
//!    CHANNEL_DATA is appended to the channel's buffer (window checked) and raises
//!    `ChannelEvent::Readable`.
//! 4. The driver writes the buffered bytes straight from the channel's buffer into git's
//!    stdin, which the git task attached to the session (`driver::attached::poll_sinks`,
//!    `PipeReader::attach`), returning window credit only for what git took: the decrypted
//!    payload is copied once, into the channel, and no task sits in between. (A session whose
//!    task reads its stdin itself gets the bytes through a bounded `driver::pipe` instead.)
//! 5. Back: git's stdout is attached to the driver (`driver::batch_read`), which reads it only
//!    when the channel window and the transport have room, straight into
//!    `Connection::write` → `Transport::send_with` → `transport::packet` seals it → the
//!    driver's outbox → the socket.
//!
//! The proxy is the same path with an upstream [`client::ClientConnection`] (`driver::client`)
//! in place of git: the session's pipes are spliced to the upstream channel's
//! (`driver::pipe::splice`), so each connection's driver writes into the other's pipe.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Peer input must never panic the library: no unwraps, no unchecked indexing or arithmetic.
// Unit tests may assert freely.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

pub mod auth;
pub mod client;
pub mod config;
pub mod connection;
pub mod crypto;
pub mod daemon;
pub mod driver;
pub mod endpoint;
pub mod error;
pub mod git;
pub mod git_daemon;
pub mod keys;
pub mod limits;
pub mod log_safe;
pub mod lookup;
pub mod monitoring;
pub mod msg;
pub mod proxy;
pub mod route;
pub mod server;
pub mod session;
pub mod svn;
pub mod transport;
pub mod wire;

pub use error::{Error, Result};

#[cfg(fuzzing)]
pub mod fuzzing;
