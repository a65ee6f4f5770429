//! The `portcullis` server process: start (binding or inheriting its sockets), serve, and the
//! life cycle an operator drives with signals —
//!
//! - **SIGHUP** reloads: the configuration, access rules, key backend and host keys are read
//!   again and new connections get them; connections already open keep what they started with.
//!   A configuration that does not load is refused, naming the key, and the old one stays.
//! - **SIGUSR2** upgrades: a new process (the binary at the same path) starts with the
//!   listening sockets, and once it is ready this one stops accepting and drains until its last
//!   session ends ([`upgrade`]).
//! - **SIGTERM / SIGINT** drain: not ready (the probe answers 503), no new connections, open
//!   sessions get `timeouts.shutdown_grace_secs`, then each is closed with a DISCONNECT and a
//!   log line; a second signal ends at once.
//!
//! Under systemd: socket activation (`LISTEN_FDS`, [`sockets`]) and `sd_notify` (READY,
//! RELOADING, STOPPING, MAINPID after an upgrade).

pub mod site;
pub mod sockets;
pub mod upgrade;

mod lifecycle;

use std::path::PathBuf;

use crate::config::{self, Config};

/// Where the configuration comes from: what `load` reads again on every reload.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The configuration file (none: the embedded default).
    pub config: Option<PathBuf>,
    /// `--listen`: replaces the configured listen list.
    pub listen: Vec<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

impl Options {
    /// The configuration file's text (or the embedded default).
    pub fn config_text(&self) -> Result<String, String> {
        match &self.config {
            Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display())),
            None => Ok(config::DEFAULT.to_owned()),
        }
    }

    /// The configuration with the command line's overrides.
    pub fn load(&self) -> Result<Config, String> {
        let text = self.config_text()?;
        let mut c = Config::parse(&text).map_err(|e| e.to_string())?;
        if !self.listen.is_empty() {
            for a in &self.listen {
                a.parse::<std::net::SocketAddr>()
                    .map_err(|_| format!("--listen: \"{a}\" is not an ADDRESS:PORT"))?;
            }
            c.listen = self.listen.clone();
        }
        if let Some(d) = &self.data_dir {
            c.data_dir = d.clone();
        }
        Ok(c)
    }
}

/// Runs the server on `c` until it has drained after a signal (or handed over to a successor).
pub fn run(opts: Options, c: Config) -> Result<(), String> {
    // Before any thread exists: taking the inherited sockets unsets LISTEN_FDS.
    let inherited = sockets::Inherited::from_env()?;
    // Resolved now: after an upgrade installed a new binary at this path, /proc/self/exe names
    // the deleted old one.
    let exe = std::env::current_exe().map_err(|e| format!("the path of this binary: {e}"))?;
    init_logging(&c);
    raise_descriptor_limit(c.limits.max_connections)?;
    let site = site::build(&c)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(lifecycle::serve(opts, c, site, inherited, exe));
    // Tasks still running (sessions cut by a second signal) are dropped, their git killed.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

fn init_logging(c: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&c.log.level);
    // Colour only for a person at a terminal, never into log files.
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(tty);
    if c.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Raises the soft descriptor limit to what `max_connections` needs: a socket each, and the
/// three pipes of a running git (more sessions per connection are rare and are refused with
/// EMFILE, not a crash). Refuses to start if the hard limit cannot even give every connection
/// its socket.
fn raise_descriptor_limit(max_connections: usize) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let conns = u64::try_from(max_connections).unwrap_or(u64::MAX);
    let need = conns.saturating_mul(4).saturating_add(64);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    if hard < conns.saturating_add(64) {
        return Err(format!(
            "limits.max_connections = {max_connections} needs at least {} file descriptors, \
             but the hard limit (ulimit -Hn, systemd LimitNOFILE) is {hard}",
            conns.saturating_add(64)
        ));
    }
    if soft < need {
        let target = need.min(hard);
        setrlimit(Resource::RLIMIT_NOFILE, target, hard).map_err(|e| format!("setrlimit: {e}"))?;
        if target < need {
            tracing::warn!(
                limit = target,
                wanted = need,
                "file descriptor limit below what max_connections may use"
            );
        }
    }
    Ok(())
}

/// A line on stdout; a closed stdout (a supervisor that stopped reading) is not fatal.
fn say(line: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// `d` from now (a year at most: a configured grace of u64::MAX seconds means "very long").
fn after(d: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    let capped = d.min(std::time::Duration::from_secs(365 * 86_400));
    now.checked_add(capped).unwrap_or(now)
}
