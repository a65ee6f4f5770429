//! `tunnel`: what `ssh -L` and `ssh -R` do, with this crate's client role.
//!
//! ```text
//! cargo run --example tunnel -- [-L [bind:]port:host:hostport]... [-R [bind:]port:host:hostport]...
//!     [-i key] user@host[:port] [command]
//! ```
//!
//! The server's host key must be in `~/.ssh/known_hosts` (`-o known_hosts=FILE` names another
//! file); the key is `-i FILE` (default `~/.ssh/id_ed25519`, an encrypted one asks for its
//! passphrase in `TUNNEL_PASSPHRASE`). `-L` listens here and carries each connection to
//! `host:hostport` as seen from the server (a `direct-tcpip` channel); `-R` asks the server to
//! listen and carries each connection back to `host:hostport` as seen from here (`tcpip-forward`).
//! With a command it runs it, prints its output and exits with its status; without one it holds
//! the tunnels until interrupted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use portcullis::client::known_hosts::KnownHosts;
use portcullis::client::{ClientConfig, ClientConnection};
use portcullis::driver::client::{ClientHandle, RemoteExit, RemoteSession, connect};
use portcullis::driver::os_rng;
use portcullis::keys::key_file;
use portcullis::session::ExitStatus;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Parser, Debug)]
#[command(about = "ssh -L / -R with the portcullis client")]
struct Args {
    /// Local forwarding: `[bind:]port:host:hostport`.
    #[arg(short = 'L', value_name = "SPEC")]
    local: Vec<String>,
    /// Remote forwarding: `[bind:]port:host:hostport`.
    #[arg(short = 'R', value_name = "SPEC")]
    remote: Vec<String>,
    /// Private key file (OpenSSH format).
    #[arg(short = 'i', value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Options: `known_hosts=FILE`.
    #[arg(short = 'o', value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// `user@host[:port]`.
    destination: String,
    /// A command to run (its words are joined with spaces, as ssh does).
    command: Vec<String>,
}

/// `[bind:]port:host:hostport`.
#[derive(Debug)]
struct Spec {
    bind: String,
    port: u16,
    host: String,
    host_port: u16,
}

fn parse_spec(s: &str) -> Result<Spec, String> {
    let parts: Vec<&str> = s.rsplitn(4, ':').collect();
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{s}: \"{p}\" is not a port"))
    };
    match parts.as_slice() {
        [host_port, host, port_, bind] => Ok(Spec {
            bind: (*bind).to_owned(),
            port: port(port_)?,
            host: (*host).to_owned(),
            host_port: port(host_port)?,
        }),
        [host_port, host, port_] => Ok(Spec {
            bind: "127.0.0.1".to_owned(),
            port: port(port_)?,
            host: (*host).to_owned(),
            host_port: port(host_port)?,
        }),
        _ => Err(format!("{s}: expected [bind:]port:host:hostport")),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Copies both ways until each side has ended (EOF travels as a half-close).
async fn splice_streams<S>(sock: S, session: RemoteSession)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut r, mut w) = tokio::io::split(sock);
    let (mut stdin, mut stdout) = (session.stdin, session.stdout);
    let up = async {
        let _ = tokio::io::copy(&mut r, &mut stdin).await;
        let _ = stdin.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut stdout, &mut w).await;
        let _ = w.shutdown().await;
    };
    tokio::join!(up, down);
}

async fn run(args: Args) -> Result<i32, String> {
    let (user, hostport) = args
        .destination
        .split_once('@')
        .ok_or_else(|| format!("{}: expected user@host[:port]", args.destination))?;
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("bad port {p}"))?),
        None => (hostport, 22),
    };
    let locals: Vec<Spec> = args
        .local
        .iter()
        .map(|s| parse_spec(s))
        .collect::<Result<_, _>>()?;
    let remotes: Vec<Spec> = args
        .remote
        .iter()
        .map(|s| parse_spec(s))
        .collect::<Result<_, _>>()?;
    let known_hosts = args
        .options
        .iter()
        .find_map(|o| o.strip_prefix("known_hosts="))
        .map_or_else(|| home().join(".ssh/known_hosts"), PathBuf::from);
    let text = std::fs::read_to_string(&known_hosts)
        .map_err(|e| format!("{}: {e}", known_hosts.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let verifier = KnownHosts::parse(&text).verifier(host, port).at(now);
    let key_path = args
        .identity
        .unwrap_or_else(|| home().join(".ssh/id_ed25519"));
    let key_text =
        std::fs::read_to_string(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
    let pass = std::env::var("TUNNEL_PASSPHRASE").ok();
    let key = key_file::parse(&key_text, pass.as_deref().map(str::as_bytes))
        .map_err(|e| format!("{}: {e}", key_path.display()))?;

    let sock = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("{host}:{port}: {e}"))?;
    // A tunnel carries many connections at once: ssh's client has no channel limit of its
    // own; 1024 here (the server's own limit still applies), the window budget as it is.
    let mut config = ClientConfig::default();
    config.connection.max_channels = 1024;
    let conn = ClientConnection::new(
        &config,
        Box::new(verifier),
        user,
        vec![Arc::new(key)],
        Box::new(os_rng().map_err(|e| e.to_string())?),
        Instant::now(),
    )
    .map_err(|e| e.to_string())?;
    let handle = connect(sock, conn).await.map_err(|e| match e {
        RemoteExit::HostKey(why) => format!("{why} (see {})", known_hosts.display()),
        RemoteExit::AuthFailed => format!("{user}@{host}: authentication refused"),
        other => other.to_string(),
    })?;

    for spec in locals {
        let listener = tokio::net::TcpListener::bind((spec.bind.as_str(), spec.port))
            .await
            .map_err(|e| format!("-L {}:{}: {e}", spec.bind, spec.port))?;
        tokio::spawn(local_forward(listener, handle.clone(), spec));
    }
    for spec in remotes {
        let fwd = handle
            .forward_remote(&spec.bind, spec.port)
            .await
            .map_err(|e| format!("-R {}:{}: {e}", spec.bind, spec.port))?;
        eprintln!(
            "tunnel: the server listens on {}:{} for {}:{}",
            spec.bind, fwd.port, spec.host, spec.host_port
        );
        tokio::spawn(remote_forward(fwd, spec));
    }

    if args.command.is_empty() {
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
        return Ok(0);
    }
    let session = handle
        .exec(args.command.join(" ").into_bytes(), Vec::new())
        .await
        .map_err(|e| e.to_string())?;
    drop(session.stdin);
    tokio::join!(
        print_all(session.stdout, std::io::stdout()),
        print_all(session.stderr, std::io::stderr())
    );
    Ok(match session.exit.await {
        Ok(RemoteExit::Status(ExitStatus::Code(c))) => i32::try_from(c).unwrap_or(255),
        Ok(RemoteExit::Status(ExitStatus::Signal(s))) => {
            eprintln!("tunnel: remote command killed by signal {s}");
            255
        }
        Ok(other) => {
            eprintln!("tunnel: {other}");
            255
        }
        Err(_) => 255,
    })
}

/// Writes a remote stream to one of our own as it arrives.
async fn print_all(mut from: impl AsyncRead + Unpin, mut to: impl std::io::Write) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        if to.write_all(chunk).and_then(|()| to.flush()).is_err() {
            break;
        }
    }
}

async fn local_forward(listener: tokio::net::TcpListener, handle: ClientHandle, spec: Spec) {
    while let Ok((sock, from)) = listener.accept().await {
        let handle = handle.clone();
        let (host, port) = (spec.host.clone(), spec.host_port);
        tokio::spawn(async move {
            match handle.direct_tcpip(&host, port, from).await {
                Ok(session) => splice_streams(sock, session).await,
                Err(e) => eprintln!("tunnel: -L to {host}:{port}: {e}"),
            }
        });
    }
}

async fn remote_forward(mut fwd: portcullis::driver::client::RemoteForward, spec: Spec) {
    while let Some((_, session)) = fwd.connections.recv().await {
        let target = format!("{}:{}", spec.host, spec.host_port);
        tokio::spawn(async move {
            match tokio::net::TcpStream::connect(&target).await {
                Ok(sock) => splice_streams(sock, session).await,
                // Dropping the streams closes the channel: the remote peer sees the end.
                Err(e) => eprintln!("tunnel: -R to {target}: {e}"),
            }
        });
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("tunnel: {e}");
            std::process::exit(255);
        }
    }
}
