//! `forward_server`: an SSH server that does only port forwarding, for the keys in an
//! `authorized_keys` file, with this crate's server role — the other half of `tunnel`.
//!
//! ```text
//! cargo run --example forward_server -- --host-key FILE --authorized-keys FILE
//!     [--listen 127.0.0.1:2222] [--connect host:port]... [--bind address]...
//! ```
//!
//! `--connect host:port` lets clients reach that target with `ssh -L` (`direct-tcpip`);
//! `--connect '*'` any target. `--bind address` lets clients have the server listen on that
//! address with `ssh -R` (`tcpip-forward`; `localhost`, `127.0.0.1`, `""` for every address),
//! on port 0 or a port from 1024 up: like sshd, ports below 1024 are refused (a server run as
//! root could otherwise be made to listen on them).
//! Everything else — commands, shells, other targets and addresses — is refused, and ssh
//! shows "administratively prohibited" as it does for sshd's `PermitOpen`/`PermitListen`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use portcullis::driver::os_rng;
use portcullis::driver::server::serve;
use portcullis::keys::{PrivateKey, key_file};
use portcullis::lookup::FileLookup;
use portcullis::server::{ServerConfig, ServerConnection};
use portcullis::session::{ExecDecision, SessionContext, SessionHandler, SessionIo};

#[derive(Parser, Debug)]
#[command(about = "an SSH server for ssh -L / -R only, on the portcullis server role")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2222")]
    listen: SocketAddr,
    /// The host's private key (OpenSSH format, unencrypted).
    #[arg(long, value_name = "FILE")]
    host_key: PathBuf,
    /// The clients' keys, in OpenSSH's `authorized_keys` format.
    #[arg(long, value_name = "FILE")]
    authorized_keys: PathBuf,
    /// A target clients may reach (`host:port`, or `*` for any).
    #[arg(long = "connect", value_name = "HOST:PORT")]
    connect: Vec<String>,
    /// An address clients may have us listen on.
    #[arg(long = "bind", value_name = "ADDRESS")]
    bind: Vec<String>,
}

/// The policy: the two lists, and a log line per decision.
struct Policy {
    connect: Vec<String>,
    bind: Vec<String>,
}

impl SessionHandler for Policy {
    fn exec(&self, _ctx: &SessionContext, _command: &[u8], _io: SessionIo) -> ExecDecision {
        ExecDecision::Refuse("this server only forwards ports".into())
    }

    fn direct_tcpip(&self, ctx: &SessionContext, host: &str, port: u16) -> bool {
        let target = format!("{host}:{port}");
        let ok = self.connect.iter().any(|c| c == "*" || *c == target);
        eprintln!("{} -L {target}: {}", ctx.identity.name, verdict(ok));
        ok
    }

    fn tcpip_forward(&self, ctx: &SessionContext, address: &str, port: u16) -> bool {
        let ok = self.bind.iter().any(|b| b == address) && (port == 0 || port >= 1024);
        eprintln!("{} -R {address}:{port}: {}", ctx.identity.name, verdict(ok));
        ok
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "allowed" } else { "refused" }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("forward_server: {what}: {e}");
        std::process::exit(1);
    };
    let text = std::fs::read_to_string(&args.host_key)
        .unwrap_or_else(|e| fail(&args.host_key.display().to_string(), &e));
    let key = key_file::parse(&text, None)
        .unwrap_or_else(|e| fail(&args.host_key.display().to_string(), &e));
    let keys: Arc<[PrivateKey]> = Arc::from(vec![key]);
    let lookup = Arc::new(FileLookup::new(args.authorized_keys));
    let policy = Arc::new(Policy {
        connect: args.connect,
        bind: args.bind,
    });
    // The connection layer hands `tcpip-forward` requests to the policy only when asked to.
    let mut config = ServerConfig::default();
    config.connection.forwarding_requests = true;
    config.connection.max_channels = 1024;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .unwrap_or_else(|e| fail(&args.listen.to_string(), &e));
    eprintln!("forward_server: listening on {}", args.listen);
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("forward_server: accept: {e}");
                continue;
            }
        };
        let rng = os_rng().unwrap_or_else(|e| fail("random numbers", &e));
        let s = ServerConnection::new(&config, keys.clone(), Box::new(rng), Instant::now());
        tokio::spawn(serve(sock, peer, s, lookup.clone(), policy.clone()));
    }
}
