//! Proxy mode, the upstream backend: repositories that live on another SSH host. Each
//! [`Upstream`] dials (or reuses, see [`pool`]) an authenticated client connection and runs the
//! command there; [`forward`] pipes the session through ([`backend::run`] does both). Which
//! repository goes where is decided above, by [`crate::route`]. A consumer of the client role
//! of the stack, as local git ([`crate::git`]) is the other backend of the server role.

pub mod backend;
pub mod forward;
pub mod pool;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::client::known_hosts::KnownHosts;
use crate::client::{ClientConfig, ClientConnection};
use crate::driver::client::{ClientHandle, RemoteExit, RemoteSession, connect};
use crate::driver::os_rng;
use crate::keys::{PrivateKey, PublicKey};
use crate::transport::{HostKeyVerifier, Pinned};

pub use pool::Pool;

/// `[[upstreams]]` in the configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Name used by routes and logs.
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// SSH user on the upstream.
    pub user: String,
    /// Our client key (OpenSSH private key file, unencrypted; relative to data_dir).
    pub key: PathBuf,
    /// The upstream's host key, pinned: an OpenSSH public key line or a `SHA256:` fingerprint.
    #[serde(default)]
    pub host_key: Option<String>,
    /// Or a known_hosts file listing it (relative to data_dir), read at every dial.
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// Prepended to the repository name in the upstream command (e.g. `/srv/git/`).
    #[serde(default)]
    pub path_prefix: String,
    /// Keep authenticated connections and open each session as a channel on one of them.
    #[serde(default = "yes")]
    pub pool: bool,
    /// Idle pooled connections kept at most.
    #[serde(default = "four")]
    pub pool_size: usize,
    /// Sessions per pooled connection (OpenSSH's MaxSessions defaults to 10).
    #[serde(default = "ten")]
    pub max_sessions: usize,
    /// Close a pooled connection after this long without a session.
    #[serde(default = "sixty")]
    pub idle_timeout_secs: u64,
    /// Time limit for TCP connect plus SSH handshake and authentication.
    #[serde(default = "ten_u64")]
    pub connect_timeout_secs: u64,
    /// Send the front side's identity as `PORTCULLIS_USER` / `PORTCULLIS_KEY_FINGERPRINT` env
    /// requests (the upstream's sshd accepts them only if its AcceptEnv names them).
    #[serde(default)]
    pub send_identity: bool,
}

fn yes() -> bool {
    true
}
fn four() -> usize {
    4
}
fn ten() -> usize {
    10
}
fn ten_u64() -> u64 {
    10
}
fn sixty() -> u64 {
    60
}

/// How the upstream's host key is checked; verification is never skipped.
#[derive(Clone, Debug)]
pub enum HostKeyCheck {
    /// Exactly this key or fingerprint.
    Pinned(Pinned),
    /// A known_hosts file, read at every dial (so edits apply without a restart).
    KnownHosts(PathBuf),
}

/// Why an upstream session could not start. The `Display` text is what the git client sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamError {
    /// TCP connect failed or timed out.
    Unreachable(String),
    /// Handshake, authentication or starting the command took too long.
    Timeout,
    /// The host key did not match (the detail, with both fingerprints, goes to the log).
    HostKey(String),
    /// Our key was refused.
    AuthFailed,
    /// The upstream refused the session or the command.
    Refused(String),
    /// The connection broke before the command started.
    Lost(String),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Unreachable(why) => write!(f, "unreachable ({why})"),
            UpstreamError::Timeout => f.write_str("did not answer in time"),
            UpstreamError::HostKey(_) => f.write_str("failed host key verification"),
            UpstreamError::AuthFailed => f.write_str("refused our key"),
            UpstreamError::Refused(why) => write!(f, "refused the session ({why})"),
            UpstreamError::Lost(why) => write!(f, "connection lost ({why})"),
        }
    }
}

impl From<RemoteExit> for UpstreamError {
    fn from(e: RemoteExit) -> Self {
        match e {
            RemoteExit::AuthFailed => UpstreamError::AuthFailed,
            RemoteExit::HostKey(why) => UpstreamError::HostKey(why),
            RemoteExit::OpenFailed { description, .. } => UpstreamError::Refused(description),
            RemoteExit::Refused(why) => UpstreamError::Refused(why),
            other => UpstreamError::Lost(other.to_string()),
        }
    }
}

/// One upstream host: where it is, how we authenticate, and its connection pool.
#[derive(Debug)]
pub struct Upstream {
    /// Its configured name.
    pub name: String,
    address: String,
    user: String,
    key: Arc<PrivateKey>,
    host_key: HostKeyCheck,
    client: ClientConfig,
    connect_timeout: Duration,
    /// Prepended to repository names upstream.
    pub path_prefix: String,
    /// Whether the front identity goes along as env requests.
    pub send_identity: bool,
    pool: Pool,
}

/// A path prefix as a directory: "/srv/git" means "/srv/git/", so "team/app.git" cannot become
/// "/srv/gitteam/app.git", a sibling of the intended directory. Empty stays empty (names then
/// go as they are, relative to the upstream account's home).
fn directory_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

impl Upstream {
    /// An upstream from its configuration, with `key` already loaded.
    pub fn new(
        c: &UpstreamConfig,
        key: PrivateKey,
        host_key: HostKeyCheck,
        client: ClientConfig,
    ) -> Self {
        Self {
            name: c.name.clone(),
            address: c.address.clone(),
            user: c.user.clone(),
            key: Arc::new(key),
            host_key,
            client,
            connect_timeout: Duration::from_secs(c.connect_timeout_secs),
            path_prefix: directory_prefix(&c.path_prefix),
            send_identity: c.send_identity,
            pool: Pool::new(
                c.pool,
                c.pool_size,
                c.max_sessions,
                Duration::from_secs(c.idle_timeout_secs),
            ),
        }
    }

    /// Starts `command` upstream; says whether it rode on a pooled connection.
    pub async fn exec(
        &self,
        command: Vec<u8>,
        env: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(RemoteSession, bool), UpstreamError> {
        // An upstream that answers keepalives but never confirms the channel or the command
        // must not hold the session: the dial has its own limit, this bounds the whole start.
        let limit = self.connect_timeout.saturating_mul(2);
        tokio::time::timeout(limit, self.pool.exec(self, command, env))
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    }

    /// Where it is.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Closes pooled connections idle for too long (call now and then).
    pub fn reap(&self) {
        self.pool.reap(std::time::Instant::now());
    }

    /// Pooled connections, for tests and metrics.
    pub fn pooled(&self) -> usize {
        self.pool.len()
    }

    async fn verifier(&self) -> Result<Box<dyn HostKeyVerifier>, UpstreamError> {
        Ok(match &self.host_key {
            HostKeyCheck::Pinned(p) => Box::new(p.clone()),
            HostKeyCheck::KnownHosts(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                    UpstreamError::HostKey(format!("cannot read {}: {e}", path.display()))
                })?;
                let (host, port) = split_host_port(&self.address)
                    .ok_or_else(|| UpstreamError::Unreachable("bad address".into()))?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Box::new(KnownHosts::parse(&text).verifier(host, port).at(now))
            }
        })
    }

    /// A new authenticated connection, within the connect timeout.
    async fn dial(&self) -> Result<ClientHandle, UpstreamError> {
        let verifier = self.verifier().await?;
        let work = async {
            let sock = tokio::net::TcpStream::connect(&self.address)
                .await
                .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
            let _ = sock.set_nodelay(true);
            let rng = os_rng().map_err(|e| UpstreamError::Lost(e.to_string()))?;
            let conn = ClientConnection::new(
                &self.client,
                verifier,
                &self.user,
                vec![self.key.clone()],
                Box::new(rng),
                std::time::Instant::now(),
            )
            .map_err(|e| UpstreamError::Lost(e.to_string()))?;
            connect(crate::driver::tcp::QuickAck::batched(sock), conn)
                .await
                .map_err(UpstreamError::from)
        };
        let started = std::time::Instant::now();
        let dialed = tokio::time::timeout(self.connect_timeout, work)
            .await
            .unwrap_or(Err(UpstreamError::Timeout));
        let result = match &dialed {
            Ok(_) => "ok",
            Err(UpstreamError::Unreachable(_)) => "unreachable",
            Err(UpstreamError::Timeout) => "timeout",
            Err(UpstreamError::HostKey(_)) => "host_key",
            Err(UpstreamError::AuthFailed) => "auth_failed",
            Err(_) => "error",
        };
        crate::monitoring::METRICS.upstream_dial(&self.name, result, started.elapsed());
        dialed
    }
}

/// `host:port` or `[v6]:port`.
fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port.parse().ok()?))
}

/// Parses a `host_key` setting: an OpenSSH public key line or a `SHA256:` fingerprint.
pub fn parse_pinned(text: &str) -> Option<Pinned> {
    let text = text.trim();
    if text.starts_with("SHA256:") {
        return Some(Pinned::Fingerprint(text.to_owned()));
    }
    PublicKey::from_openssh(text).ok().map(Pinned::Key)
}

/// An upstream on 127.0.0.1:1, where nothing listens: a dial fails at once, naming it.
#[cfg(test)]
pub(crate) fn test_upstream(name: &str) -> Arc<Upstream> {
    let c = UpstreamConfig {
        name: name.into(),
        address: "127.0.0.1:1".into(),
        user: "git".into(),
        key: "k".into(),
        host_key: Some("SHA256:x".into()),
        known_hosts: None,
        path_prefix: String::new(),
        pool: true,
        pool_size: 1,
        max_sessions: 1,
        idle_timeout_secs: 1,
        connect_timeout_secs: 5,
        send_identity: false,
    };
    Arc::new(Upstream::new(
        &c,
        PrivateKey::generate_ed25519(
            &mut crate::driver::os_rng().unwrap_or_else(|e| panic!("no randomness: {e}")),
        ),
        HostKeyCheck::Pinned(Pinned::Fingerprint("SHA256:x".into())),
        ClientConfig::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("10.0.0.5:22"), Some(("10.0.0.5", 22)));
        assert_eq!(split_host_port("[::1]:2222"), Some(("::1", 2222)));
        assert_eq!(
            split_host_port("storage.example:22"),
            Some(("storage.example", 22))
        );
        assert_eq!(split_host_port("nohost"), None);
        assert_eq!(split_host_port("h:99999"), None);
    }

    #[test]
    fn pinned_forms() {
        assert!(matches!(
            parse_pinned("SHA256:abc"),
            Some(Pinned::Fingerprint(_))
        ));
        assert!(parse_pinned("ssh-ed25519 AAAA").is_none());
        let k = PrivateKey::generate_ed25519(&mut os_rng().unwrap()).public();
        assert!(matches!(
            parse_pinned(&format!("{} comment", k.to_openssh())),
            Some(Pinned::Key(p)) if p == k
        ));
    }

    #[test]
    fn a_path_prefix_is_a_directory() {
        assert_eq!(directory_prefix("/srv/git"), "/srv/git/");
        assert_eq!(directory_prefix("/srv/git/"), "/srv/git/");
        assert_eq!(directory_prefix(""), "");
    }
}
