//! The configuration file (see `portcullis.example.toml`, which is also the embedded default).
//! Parsing refuses unknown keys and names the key and the problem for every bad value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::auth::server::AuthConfig;
use crate::client::ClientConfig;
use crate::connection::ConnectionConfig;
use crate::driver::proxy_header::{Cidr, ProxyMode, ProxyPolicy};
use crate::keys::SigAlg;
use crate::keys::key_file;
use crate::proxy::{HostKeyCheck, Upstream, UpstreamConfig, parse_pinned};
use crate::route::policy::Rule;
use crate::route::router::{RouteConfig, Router};
use crate::server::ServerConfig;
use crate::transport::{CipherAlg, KexAlg, MacAlg, Preferences, TransportConfig};

/// The embedded default configuration.
pub const DEFAULT: &str = include_str!("../../portcullis.example.toml");

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen addresses (no PROXY protocol).
    pub listen: Vec<String>,
    /// Listeners with settings of their own (PROXY protocol).
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// State directory.
    pub data_dir: PathBuf,
    /// The pid file (relative to data_dir): `portcullis upgrade` and `reload` signal it.
    pub pid_file: PathBuf,
    /// Host key files (relative to data_dir).
    pub host_keys: Vec<PathBuf>,
    /// OpenSSH host certificates of those keys (`*-cert.pub`, relative to data_dir).
    #[serde(default)]
    pub host_certificates: Vec<PathBuf>,
    /// Repository root (relative to data_dir).
    pub repos_root: PathBuf,
    /// Required SSH user name.
    pub user: String,
    /// git binary.
    pub git: PathBuf,
    /// Create repositories on first push.
    pub create_on_push: bool,
    /// Key lookup.
    pub keys: Keys,
    /// Access rules.
    #[serde(default)]
    pub access: Vec<Rule>,
    /// Upstream hosts for proxy mode.
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// Storage hosts' git daemons (`git://` on a private network, no re-encryption).
    #[serde(default)]
    pub git_daemons: Vec<crate::git_daemon::GitDaemonConfig>,
    /// Which repositories go to which upstream or git daemon.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// svn servers for svn+ssh sessions (`svnserve -t`).
    #[serde(default)]
    pub svn_servers: Vec<crate::svn::SvnServerConfig>,
    /// Algorithm lists.
    #[serde(default)]
    pub algorithms: Algorithms,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Limits.
    pub limits: Limits,
    /// Logging.
    pub log: Log,
    /// Metrics and probes.
    pub monitoring: Monitoring,
}

/// `[monitoring]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// ADDRESS:PORT of the HTTP listener for `/metrics`, `/health`, `/start`; "" turns it off.
    pub listen: String,
}

/// `[[listeners]]`: an address with its PROXY protocol policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// ADDRESS:PORT.
    pub address: String,
    /// "off", "optional" or "required".
    #[serde(default)]
    pub proxy_protocol: ProxyMode,
    /// CIDRs allowed to send a PROXY header (the balancers).
    #[serde(default)]
    pub trusted_sources: Vec<String>,
}

/// `[keys]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// "file", "command" or "http".
    pub backend: String,
    /// authorized_keys path.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Command argv.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Command time limit.
    #[serde(default = "five")]
    pub command_timeout_secs: u64,
    /// HTTP backend: its base URL (`http://host:port/path`); keys are asked at `URL/key`.
    #[serde(default)]
    pub url: Option<String>,
    /// HTTP backend: the file holding the shared secret its tokens are signed with (relative
    /// to `data_dir`; readable by the owner only).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// HTTP backend: time limit per request.
    #[serde(default = "three_thousand")]
    pub http_timeout_ms: u64,
    /// HTTP backend: how long an answer (a key's identity, or "unknown key") is reused.
    #[serde(default = "thirty")]
    pub cache_secs: u64,
    /// User certificates signed by a CA in this file are accepted (sshd's TrustedUserCAKeys).
    #[serde(default)]
    pub trusted_user_ca_keys: Option<PathBuf>,
    /// `principal [identity]` lines: the principals accepted and the identity each maps to
    /// (sshd's AuthorizedPrincipalsFile); without it a certificate's first principal is the
    /// identity.
    #[serde(default)]
    pub authorized_principals: Option<PathBuf>,
    /// Keys, certificates and CAs refused whatever else says (sshd's RevokedKeys).
    #[serde(default)]
    pub revoked_keys: Option<PathBuf>,
}

fn three_thousand() -> u64 {
    3000
}

fn thirty() -> u64 {
    30
}

fn five() -> u64 {
    5
}

/// `[algorithms]`: a preset and each list optional; a list given replaces the preset's.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Algorithms {
    /// "default" (compatible with every client we test) or "hardened" (what ssh-audit grades
    /// with no failure and no warning: post-quantum key exchange only, etm MACs, no NIST curves).
    pub preset: Option<String>,
    /// Key exchange methods.
    pub kex: Option<Vec<String>>,
    /// Ciphers.
    pub ciphers: Option<Vec<String>>,
    /// MACs.
    pub macs: Option<Vec<String>>,
    /// Host key algorithms.
    pub host_keys: Option<Vec<String>>,
    /// User key signature algorithms.
    pub user_keys: Option<Vec<String>>,
}

/// `[timeouts]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Login grace.
    pub login_grace_secs: u64,
    /// git idle kill.
    pub idle_secs: u64,
    /// Keepalive interval (0 = off).
    pub keepalive_interval_secs: u64,
    /// Unanswered keepalives allowed.
    pub keepalive_max: u32,
    /// Shutdown grace.
    pub shutdown_grace_secs: u64,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Authentication attempts.
    pub max_auth_attempts: u32,
    /// Channels per connection.
    pub max_channels: usize,
    /// Concurrent connections.
    pub max_connections: usize,
    /// Unauthenticated connections, OpenSSH's `MaxStartups start:rate:full`: random early
    /// drop from `start` (rate % rising to 100 %), all refused at `full`.
    pub max_startups: String,
    /// Unauthenticated connections per source network (0: off), OpenSSH's
    /// `PerSourceMaxStartups`.
    pub per_source_max_startups: usize,
    /// Prefix lengths that make a source network: IPv4, IPv6 (`PerSourceNetBlockSize`).
    pub per_source_prefix_v4: u8,
    /// See `per_source_prefix_v4`.
    pub per_source_prefix_v6: u8,
}

impl Limits {
    /// The admission limits (validated by `Config::parse`).
    pub fn startups(&self) -> crate::driver::admission::Startups {
        use crate::driver::admission::Startups;
        let (begin, rate, full) =
            Startups::parse_max_startups(&self.max_startups).unwrap_or((100, 30, 200));
        Startups {
            begin,
            rate,
            full,
            per_source: self.per_source_max_startups,
            v4_prefix: self.per_source_prefix_v4,
            v6_prefix: self.per_source_prefix_v6,
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// "human" or "json".
    pub format: String,
    /// tracing filter.
    pub level: String,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    /// The offending key.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

fn bad(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        problem: problem.into(),
    }
}

/// `over` merged into `base`: tables key by key, anything else (values, arrays, arrays of
/// tables) replaced whole.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Reads an unencrypted OpenSSH private key file (a host key, an upstream client key): refused
/// if group or others may read it (as sshd refuses such host keys and ssh such identities); the
/// text is wiped from memory after parsing.
pub fn load_private_key(path: &Path) -> Result<crate::keys::PrivateKey, String> {
    let text = zeroize::Zeroizing::new(read_secret(path, "private key")?);
    key_file::parse(&text, None).map_err(|e| format!("{}: {e}", path.display()))
}

/// A secret file's text (`what` names it in errors), refused if others may read it.
pub fn read_secret(path: &Path, what: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{}: {what} is accessible by others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The "hardened" preset, as wire names. What it shuts out is in `portcullis.example.toml`
/// and held by `tests/interop/clients.rs` (`hardened_preset_admits_exactly_the_documented_clients`).
pub mod hardened {
    /// Hybrid post-quantum key exchange only: every classical method draws an ssh-audit warning.
    pub const KEX: &[&str] = &[
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512",
        "sntrup761x25519-sha512@openssh.com",
    ];
    /// Every cipher we have is graded clean (strict kex answers Terrapin for ChaCha20).
    pub const CIPHERS: &[&str] = &[
        "chacha20-poly1305@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-ctr",
        "aes192-ctr",
        "aes128-ctr",
    ];
    /// Encrypt-then-MAC only.
    pub const MACS: &[&str] = &[
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
    ];
    /// No NIST-curve ECDSA host keys.
    pub const HOST_KEYS: &[&str] = &["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"];
    /// User keys as the default: users bring the keys they have (security keys are ECDSA too).
    pub const USER_KEYS: Option<&[&str]> = None;
}

/// The preset's list for one category, or None for the built-in default.
fn preset_list(preset: Option<&str>, hardened: Option<&[&str]>) -> Option<Vec<String>> {
    match preset {
        Some("hardened") => hardened.map(|l| l.iter().map(|n| (*n).to_owned()).collect()),
        _ => None,
    }
}

fn names<T: Copy>(
    key: &str,
    list: &Option<Vec<String>>,
    parse: impl Fn(&str) -> Option<T>,
    default: &[T],
) -> Result<Vec<T>, ConfigError> {
    match list {
        None => Ok(default.to_vec()),
        Some(v) if v.is_empty() => Err(bad(key, "must not be empty")),
        Some(v) => v
            .iter()
            .map(|n| {
                parse(n)
                    .ok_or_else(|| bad(key, format!("unknown or unsupported algorithm \"{n}\"")))
            })
            .collect(),
    }
}

impl Config {
    /// Parses and validates TOML text.
    /// Every key the text omits takes its value from the embedded default ([`DEFAULT`]):
    /// sections merge key by key, a list of tables (`[[access]]`, `[[upstreams]]`,
    /// `[[routes]]`) given in the file replaces the default's whole list. Unknown keys are
    /// still refused, with the key named.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let c: Config = Self::effective(text)?
            .try_into()
            .map_err(|e: toml::de::Error| bad("config", e.message()))?;
        c.validate()?;
        Ok(c)
    }

    /// The file merged over the embedded default, as a TOML table (what `check-config` prints).
    pub fn effective(text: &str) -> Result<toml::Table, ConfigError> {
        let table = |text: &str| {
            toml::from_str::<toml::Table>(text).map_err(|e| {
                let span = e
                    .span()
                    .map(|s| format!(" (at byte {})", s.start))
                    .unwrap_or_default();
                bad("config", format!("{}{span}", e.message()))
            })
        };
        let mut merged = table(DEFAULT)?;
        merge(&mut merged, table(text)?);
        Ok(merged)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(p) = &self.algorithms.preset
            && !matches!(p.as_str(), "default" | "hardened")
        {
            return Err(bad(
                "algorithms.preset",
                format!("\"{p}\" is not \"default\" or \"hardened\""),
            ));
        }
        self.validate_listeners()?;
        if self.host_keys.is_empty() {
            return Err(bad("host_keys", "at least one host key is needed"));
        }
        if self.user.is_empty() {
            return Err(bad("user", "must not be empty"));
        }
        self.validate_keys()?;
        for (i, r) in self.access.iter().enumerate() {
            if r.who.is_empty() || r.repos.is_empty() {
                return Err(bad(
                    &format!("access[{i}]"),
                    "who and repos must not be empty",
                ));
            }
        }
        self.preferences()?;
        self.user_sig_algs()?;
        self.validate_limits()?;
        if !self.monitoring.listen.is_empty()
            && self.monitoring.listen.parse::<SocketAddr>().is_err()
        {
            return Err(bad(
                "monitoring.listen",
                format!(
                    "\"{}\" is not an ADDRESS:PORT (or \"\" for none)",
                    self.monitoring.listen
                ),
            ));
        }
        if !matches!(self.log.format.as_str(), "human" | "json") {
            return Err(bad(
                "log.format",
                format!("\"{}\" is not \"human\" or \"json\"", self.log.format),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| bad("log.level", e.to_string()))?;
        self.validate_proxy()
    }

    /// `listen` and `[[listeners]]`: addresses, trusted sources, PROXY protocol.
    fn validate_listeners(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() && self.listeners.is_empty() {
            return Err(bad(
                "listen",
                "at least one address is needed (in listen or [[listeners]])",
            ));
        }
        for a in &self.listen {
            a.parse::<SocketAddr>()
                .map_err(|_| bad("listen", format!("\"{a}\" is not an ADDRESS:PORT")))?;
        }
        for l in &self.listeners {
            l.address.parse::<SocketAddr>().map_err(|_| {
                bad(
                    "listeners.address",
                    format!("\"{}\" is not an ADDRESS:PORT", l.address),
                )
            })?;
            if let Some(t) = l.trusted_sources.iter().find(|t| Cidr::parse(t).is_none()) {
                return Err(bad(
                    "listeners.trusted_sources",
                    format!("\"{t}\" is not an address or ADDRESS/BITS"),
                ));
            }
            if l.proxy_protocol != ProxyMode::Off && l.trusted_sources.is_empty() {
                return Err(bad(
                    "listeners.trusted_sources",
                    format!(
                        "{}: a PROXY protocol listener needs the balancers' addresses",
                        l.address
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `[keys]`: the backend and what it needs.
    fn validate_keys(&self) -> Result<(), ConfigError> {
        match self.keys.backend.as_str() {
            "file" if self.keys.file.is_none() => {
                return Err(bad("keys.file", "needed with backend = \"file\""));
            }
            "command" if self.keys.command.as_ref().is_none_or(Vec::is_empty) => {
                return Err(bad("keys.command", "needed with backend = \"command\""));
            }
            "http"
                if !self
                    .keys
                    .url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("http://")) =>
            {
                return Err(bad(
                    "keys.url",
                    "needed with backend = \"http\", as http://host:port/path (no TLS: an internal address)",
                ));
            }
            "http" if self.keys.secret_file.is_none() => {
                return Err(bad("keys.secret_file", "needed with backend = \"http\""));
            }
            "http" if self.keys.http_timeout_ms == 0 => {
                return Err(bad("keys.http_timeout_ms", "must be at least 1"));
            }
            "file" | "command" | "http" => {}
            other => {
                return Err(bad(
                    "keys.backend",
                    format!("\"{other}\" is not \"file\", \"command\" or \"http\""),
                ));
            }
        }
        if self.keys.command_timeout_secs == 0 {
            return Err(bad("keys.command_timeout_secs", "must be at least 1"));
        }
        Ok(())
    }

    /// `[timeouts]` and `[limits]`.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        let t = &self.timeouts;
        if t.login_grace_secs == 0 || t.idle_secs == 0 {
            return Err(bad(
                "timeouts",
                "login_grace_secs and idle_secs must be at least 1",
            ));
        }
        if t.keepalive_interval_secs > 0 && t.keepalive_max == 0 {
            return Err(bad(
                "timeouts.keepalive_max",
                "must be at least 1 when keepalives are on",
            ));
        }
        let l = &self.limits;
        if l.max_auth_attempts == 0 || l.max_channels == 0 || l.max_connections == 0 {
            return Err(bad("limits", "every limit must be at least 1"));
        }
        match crate::driver::admission::Startups::parse_max_startups(&l.max_startups) {
            None => {
                return Err(bad(
                    "limits.max_startups",
                    format!(
                        "\"{}\" is not \"start:rate:full\" (start <= full, rate <= 100) or \"full\"",
                        l.max_startups
                    ),
                ));
            }
            Some((_, _, full)) if full > l.max_connections => {
                return Err(bad(
                    "limits.max_startups",
                    "full cannot exceed limits.max_connections",
                ));
            }
            Some(_) => {}
        }
        if l.per_source_prefix_v4 > 32 || l.per_source_prefix_v6 > 128 {
            return Err(bad(
                "limits.per_source_prefix_v4",
                "prefixes are at most 32 (IPv4) and 128 (IPv6) bits",
            ));
        }
        Ok(())
    }

    fn validate_proxy(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for u in &self.upstreams {
            let key = |k: &str| format!("upstreams.{}.{k}", u.name);
            if u.name.is_empty() || !names.insert(u.name.as_str()) {
                return Err(bad(
                    "upstreams.name",
                    format!("\"{}\" is empty or used twice", u.name),
                ));
            }
            if u.address
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
            {
                return Err(bad(
                    &key("address"),
                    format!("\"{}\" is not host:port", u.address),
                ));
            }
            match (&u.host_key, &u.known_hosts) {
                (Some(h), None) => {
                    if parse_pinned(h).is_none() {
                        return Err(bad(
                            &key("host_key"),
                            "not an OpenSSH public key line or SHA256: fingerprint",
                        ));
                    }
                }
                (None, Some(_)) => {}
                _ => {
                    return Err(bad(
                        &key("host_key"),
                        "set exactly one of host_key and known_hosts: the upstream's host key is always verified",
                    ));
                }
            }
            if u.max_sessions == 0 {
                return Err(bad(&key("max_sessions"), "must be at least 1"));
            }
            if u.connect_timeout_secs == 0 {
                return Err(bad(&key("connect_timeout_secs"), "must be at least 1"));
            }
        }
        for d in &self.git_daemons {
            if d.name.is_empty() || !names.insert(d.name.as_str()) {
                return Err(bad(
                    "git_daemons.name",
                    format!("\"{}\" is empty or used twice (upstreams included)", d.name),
                ));
            }
            crate::git_daemon::GitDaemon::new(d)
                .map_err(|e| bad(&format!("git_daemons.{}", d.name), e))?;
        }
        for r in &self.routes {
            if !names.contains(r.upstream.as_str()) {
                return Err(bad(
                    "routes.upstream",
                    format!("no upstream or git daemon is called \"{}\"", r.upstream),
                ));
            }
            if r.repos.is_empty() {
                return Err(bad("routes.repos", "must not be empty"));
            }
        }
        Ok(())
    }

    /// The upstreams and routes, with client keys loaded from disk.
    pub fn router(&self) -> Result<Router, ConfigError> {
        let mut upstreams = Vec::new();
        for u in &self.upstreams {
            let key_path = self.in_data(&u.key);
            let key = load_private_key(&key_path)
                .map_err(|e| bad(&format!("upstreams.{}.key", u.name), e))?;
            let check =
                match (&u.host_key, &u.known_hosts) {
                    (Some(h), _) => HostKeyCheck::Pinned(parse_pinned(h).ok_or_else(|| {
                        bad(&format!("upstreams.{}.host_key", u.name), "unparsable")
                    })?),
                    (None, Some(path)) => HostKeyCheck::KnownHosts(self.in_data(path)),
                    (None, None) => {
                        return Err(bad(&format!("upstreams.{}.host_key", u.name), "missing"));
                    }
                };
            let mut transport = TransportConfig::default();
            transport.preferences.ciphers = CipherAlg::client_preference();
            let client = ClientConfig {
                transport: Arc::new(transport),
                keepalive_interval: Some(Duration::from_secs(15)),
                keepalive_max: 3,
                ..ClientConfig::default()
            };
            upstreams.push(Arc::new(Upstream::new(u, key, check, client)));
        }
        let daemons = self
            .git_daemons
            .iter()
            .map(|d| {
                crate::git_daemon::GitDaemon::new(d)
                    .map(Arc::new)
                    .map_err(|e| bad(&format!("git_daemons.{}", d.name), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Router::new(upstreams, daemons, &self.routes))
    }

    /// `[algorithms]` with the preset's lists filled in where no list was given.
    fn effective_algorithms(&self) -> Algorithms {
        let a = &self.algorithms;
        let p = a.preset.as_deref();
        let pick = |given: &Option<Vec<String>>, hardened: Option<&[&str]>| {
            given.clone().or_else(|| preset_list(p, hardened))
        };
        Algorithms {
            preset: a.preset.clone(),
            kex: pick(&a.kex, Some(hardened::KEX)),
            ciphers: pick(&a.ciphers, Some(hardened::CIPHERS)),
            macs: pick(&a.macs, Some(hardened::MACS)),
            host_keys: pick(&a.host_keys, Some(hardened::HOST_KEYS)),
            user_keys: pick(&a.user_keys, hardened::USER_KEYS),
        }
    }

    fn preferences(&self) -> Result<Preferences, ConfigError> {
        let a = &self.effective_algorithms();

        Ok(Preferences {
            kex: names(
                "algorithms.kex",
                &a.kex,
                KexAlg::from_wire_name,
                &KexAlg::SUPPORTED,
            )?,
            ciphers: names(
                "algorithms.ciphers",
                &a.ciphers,
                CipherAlg::from_wire_name,
                &CipherAlg::SUPPORTED,
            )?,
            macs: names(
                "algorithms.macs",
                &a.macs,
                MacAlg::from_wire_name,
                &MacAlg::SUPPORTED,
            )?,
            host_key: names(
                "algorithms.host_keys",
                &a.host_keys,
                |n| SigAlg::from_wire_name(n).filter(|a| SigAlg::HOST_ALL.contains(a)),
                &SigAlg::SUPPORTED,
            )?,
        })
    }

    fn user_sig_algs(&self) -> Result<Vec<SigAlg>, ConfigError> {
        names(
            "algorithms.user_keys",
            &self.effective_algorithms().user_keys,
            SigAlg::from_wire_name,
            &SigAlg::DEFAULT_USER,
        )
    }

    /// A path from the file, relative to `data_dir` unless absolute.
    pub fn in_data(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.data_dir.join(p)
        }
    }

    /// The listen addresses.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.listeners_with_policy()
            .into_iter()
            .map(|(a, _)| a)
            .collect()
    }

    /// Every listener with its PROXY protocol policy (`listen` entries have none).
    pub fn listeners_with_policy(&self) -> Vec<(SocketAddr, ProxyPolicy)> {
        let plain = self
            .listen
            .iter()
            .filter_map(|a| a.parse().ok())
            .map(|a| (a, ProxyPolicy::default()));
        let full = self.listeners.iter().filter_map(|l| {
            let policy = ProxyPolicy {
                mode: l.proxy_protocol,
                trusted: l
                    .trusted_sources
                    .iter()
                    .filter_map(|t| Cidr::parse(t))
                    .collect(),
            };
            l.address.parse().ok().map(|a| (a, policy))
        });
        plain.chain(full).collect()
    }

    /// The protocol settings for every connection.
    pub fn server_config(&self) -> Result<ServerConfig, ConfigError> {
        let user_algs = self.user_sig_algs()?;
        let transport = TransportConfig {
            preferences: self.preferences()?,
            server_sig_algs: user_algs.clone(),
            ..Default::default()
        };
        let t = &self.timeouts;
        Ok(ServerConfig {
            transport: Arc::new(transport),
            auth: AuthConfig {
                sig_algs: user_algs,
                max_attempts: self.limits.max_auth_attempts,
                login_grace: Duration::from_secs(t.login_grace_secs),
                ..Default::default()
            },
            connection: ConnectionConfig {
                max_channels: self.limits.max_channels,
                ..Default::default()
            },
            keepalive_interval: (t.keepalive_interval_secs > 0)
                .then(|| Duration::from_secs(t.keepalive_interval_secs)),
            keepalive_max: t.keepalive_max,
        })
    }
}

#[cfg(test)]
mod tests;
