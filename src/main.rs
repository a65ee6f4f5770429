//! The `portcullis` binary: a git-only SSH server. `portcullis` with no arguments serves on the
//! embedded default configuration (`portcullis.example.toml`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use portcullis::config::{self, Config};
use portcullis::driver::admission::Admission;
use portcullis::driver::listener::{Shared, accept_loop};
use portcullis::driver::os_rng;
use portcullis::driver::proxy_header::ProxyMode;
use portcullis::git::policy::RuleAuthorizer;
use portcullis::git::repo::RepoRoot;
use portcullis::git::session::GitServer;
use portcullis::keys::{PrivateKey, PublicKey, key_file};
use portcullis::lookup::{CommandLookup, FileLookup, KeyLookup, LookupFuture};
use portcullis::monitoring::{self, Readiness};
use tokio::sync::Semaphore;

#[derive(Parser)]
#[command(name = "portcullis", version, about = "A git-only SSH server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (default: the embedded one, see portcullis.example.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address; repeat for several (replaces the configured list).
    #[arg(long = "listen", global = true, value_name = "ADDR:PORT")]
    listen: Vec<String>,
    /// Data directory (host keys, authorized_keys, repositories).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Clone, Copy)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the host key fingerprints (generating missing keys).
    Fingerprints,
    /// Check the configuration and exit.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portcullis: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        // The effective configuration: the file merged over the embedded default.
        Command::CheckConfig => config_text(&cli)
            .and_then(|text| Config::effective(&text).map_err(|e| e.to_string()))
            .and_then(|table| toml::to_string(&table).map_err(|e| e.to_string()))
            .map(|text| {
                print!("{text}");
                eprintln!("configuration OK");
            }),
        Command::Fingerprints => host_keys(&config).map(|keys| print_fingerprints(&keys)),
        Command::Serve => run(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config_text(cli: &Cli) -> Result<String, String> {
    match &cli.config {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display())),
        None => Ok(config::DEFAULT.to_owned()),
    }
}

fn load(cli: &Cli) -> Result<Config, String> {
    let text = config_text(cli)?;
    let mut c = Config::parse(&text).map_err(|e| e.to_string())?;
    if !cli.listen.is_empty() {
        for a in &cli.listen {
            a.parse::<std::net::SocketAddr>()
                .map_err(|_| format!("--listen: \"{a}\" is not an ADDRESS:PORT"))?;
        }
        c.listen = cli.listen.clone();
    }
    if let Some(d) = &cli.data_dir {
        c.data_dir = d.clone();
    }
    Ok(c)
}

/// Loads the host keys, generating missing ones (Ed25519 or RSA-3072, by file name) with mode 0600.
fn host_keys(c: &Config) -> Result<Vec<PrivateKey>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(&c.data_dir).map_err(|e| format!("{}: {e}", c.data_dir.display()))?;
    let mut keys = Vec::new();
    for p in &c.host_keys {
        let path = c.in_data(p);
        if !path.exists() {
            let mut rng = os_rng().map_err(|e| e.to_string())?;
            let rsa = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("rsa"));
            let key = if rsa {
                eprintln!(
                    "portcullis: generating RSA-3072 host key {} (a few seconds)",
                    path.display()
                );
                PrivateKey::generate_rsa(&mut rng, 3072).ok_or("RSA key generation failed")?
            } else {
                PrivateKey::generate_ed25519(&mut rng)
            };
            let text = key_file::serialize(&key, "portcullis host key", &mut rng);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            std::io::Write::write_all(&mut f, text.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            std::fs::write(
                path.with_extension("pub"),
                key.public().to_openssh() + " portcullis host key\n",
            )
            .map_err(|e| e.to_string())?;
        }
        keys.push(portcullis::config::load_private_key(&path)?);
    }
    Ok(keys)
}

fn print_fingerprints(keys: &[PrivateKey]) {
    for k in keys {
        let p = k.public();
        println!("{} {}", p.fingerprint(), p.key_type().wire_name());
    }
}

/// First start: an authorized_keys file seeded from the invoking user's ~/.ssh/*.pub.
fn seed_authorized_keys(path: &Path) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    let mut lines = String::from(
        "# portcullis authorized_keys: one key per line; the comment names the identity.\n",
    );
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut seeded = Vec::new();
    if let Some(dir) = home
        .map(|h| h.join(".ssh"))
        .and_then(|d| std::fs::read_dir(d).ok())
    {
        let mut pubs: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        pubs.sort();
        for p in pubs {
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            let line = text.lines().next().unwrap_or_default().trim().to_owned();
            if PublicKey::from_openssh(&line).is_ok() {
                lines.push_str(&line);
                lines.push('\n');
                seeded.push(format!(
                    "{} ({})",
                    p.display(),
                    line.split_whitespace().take(1).collect::<String>()
                ));
            }
        }
    }
    std::fs::write(path, lines).map_err(|e| format!("{}: {e}", path.display()))?;
    if seeded.is_empty() {
        eprintln!(
            "portcullis: created {} (empty: add your public key to it)",
            path.display()
        );
    } else {
        for s in seeded {
            eprintln!("portcullis: authorized {s} in {}", path.display());
        }
    }
    Ok(())
}

/// Only the configured service account may log in; the identity comes from the key.
struct ServiceAccount {
    user: String,
    inner: Box<dyn KeyLookup>,
}

impl KeyLookup for ServiceAccount {
    fn lookup<'a>(&'a self, user: &'a str, key: &'a PublicKey, addr: IpAddr) -> LookupFuture<'a> {
        if user != self.user {
            tracing::info!(user, addr = %addr, "wrong user name");
            return Box::pin(async { Ok(None) });
        }
        self.inner.lookup(user, key, addr)
    }
}

fn find_git(git: &Path) -> Result<PathBuf, String> {
    if git.components().count() > 1 {
        return Ok(git.to_path_buf());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(git))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "`{}` not found in PATH: install the Debian package git",
                git.display()
            )
        })
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

/// What the readiness probe asks of the key backend.
type BackendCheck = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

fn run(c: Config) -> Result<(), String> {
    init_logging(&c);
    raise_descriptor_limit(c.limits.max_connections)?;
    let keys = host_keys(&c)?;
    let repos = c.in_data(&c.repos_root);
    std::fs::create_dir_all(&repos).map_err(|e| format!("{}: {e}", repos.display()))?;
    let root = RepoRoot::new(&repos).map_err(|e| format!("{}: {e}", repos.display()))?;
    // The key backend, and what the readiness probe checks of it on every probe.
    let (inner, backend_check): (Box<dyn KeyLookup>, BackendCheck) = match c.keys.backend.as_str() {
        "command" => {
            let argv = c.keys.command.clone().unwrap_or_default();
            let (program, args) = argv.split_first().ok_or("keys.command is empty")?;
            let exe = PathBuf::from(program);
            (
                Box::new(CommandLookup {
                    program: program.into(),
                    args: args.to_vec(),
                    timeout: Duration::from_secs(c.keys.command_timeout_secs),
                }),
                Box::new(move || {
                    std::fs::metadata(&exe)
                        .map(|_| ())
                        .map_err(|e| format!("{}: {e}", exe.display()))
                }),
            )
        }
        _ => {
            let path = c.in_data(
                c.keys
                    .file
                    .as_deref()
                    .unwrap_or(Path::new("authorized_keys")),
            );
            seed_authorized_keys(&path)?;
            let checked = path.clone();
            (
                Box::new(FileLookup::new(path)),
                Box::new(move || {
                    std::fs::File::open(&checked)
                        .map(|_| ())
                        .map_err(|e| format!("{}: {e}", checked.display()))
                }),
            )
        }
    };
    let ready = Readiness::new(backend_check);
    let lookup: Arc<dyn KeyLookup> = Arc::new(ServiceAccount {
        user: c.user.clone(),
        inner,
    });
    let router = Arc::new(c.router().map_err(|e| e.to_string())?);
    let handler = Arc::new(GitServer {
        root,
        authorizer: Arc::new(RuleAuthorizer::new(c.access.clone())),
        git: find_git(&c.git)?,
        create_on_push: c.create_on_push,
        idle_timeout: Duration::from_secs(c.timeouts.idle_secs),
        router: router.clone(),
    });
    let server_config = Arc::new(c.server_config().map_err(|e| e.to_string())?);
    let keys: Arc<[PrivateKey]> = Arc::from(keys);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let mut listeners = Vec::new();
        for (addr, policy) in c.listeners_with_policy() {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("listen {addr}: {e}"))?;
            listeners.push((l, policy));
        }
        if let Ok(addr) = c.monitoring.listen.parse::<std::net::SocketAddr>() {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("monitoring.listen {addr}: {e}"))?;
            if let Ok(a) = l.local_addr() {
                say(format!(
                    "monitoring on http://{a} (/metrics, /health, /start)"
                ));
            }
            tokio::spawn(monitoring::serve(l, ready.clone()));
        }
        for u in router.upstreams() {
            say(format!("upstream {} ({})", u.name, u.address()));
            // Idle pooled connections close even when no new session comes to notice them.
            let weak = Arc::downgrade(u);
            tokio::spawn(async move {
                while let Some(u) = weak.upgrade() {
                    u.reap();
                    drop(u);
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            });
        }
        for k in keys.iter() {
            let p = k.public();
            say(format!(
                "host key {} {}",
                p.key_type().wire_name(),
                p.fingerprint()
            ));
        }
        // Listening (connections queue in the backlog until the loops below take them) with
        // host keys loaded: ready.
        ready.set_serving();
        for (l, policy) in &listeners {
            if let Ok(a) = l.local_addr() {
                let proxy = match policy.mode {
                    ProxyMode::Off => "",
                    ProxyMode::Optional => ", PROXY protocol optional",
                    ProxyMode::Required => ", PROXY protocol required",
                };
                say(format!(
                    "listening on {a} (repositories in {}, user \"{}\"{proxy})",
                    repos.display(),
                    c.user
                ));
            }
        }
        let limit = Arc::new(Semaphore::new(c.limits.max_connections));
        let shared = Arc::new(Shared {
            config: server_config,
            keys,
            lookup,
            handler,
            connections: limit.clone(),
            admission: Admission::new(c.limits.startups()),
        });
        let mut tasks = tokio::task::JoinSet::new();
        for (listener, policy) in listeners {
            tasks.spawn(accept_loop(listener, policy, shared.clone()));
        }
        shutdown_signal().await;
        // Not ready first, so the balancer stops sending new clients.
        ready.set_draining();
        tracing::info!("shutting down: no new connections");
        tasks.abort_all();
        // Sessions keep running in their own tasks; give them the grace period.
        let deadline = Instant::now() + Duration::from_secs(c.timeouts.shutdown_grace_secs);
        while limit.available_permits() < c.limits.max_connections && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<(), String>(())
    })
}

/// A line on stdout; a closed stdout (a supervisor that stopped reading) is not fatal.
fn say(line: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
