//! The `portcullis` binary: a git-only SSH server. `portcullis` with no arguments serves on the
//! embedded default configuration (`portcullis.example.toml`); the server's life cycle
//! (reload, upgrade, drain) is in [`portcullis::daemon`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nix::sys::signal::Signal;
use portcullis::config::Config;
use portcullis::daemon::{self, Options, site, upgrade};
use portcullis::limits::UPGRADE_READY_TIMEOUT;

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

#[derive(Subcommand, Clone)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the host key fingerprints (generating missing keys).
    Fingerprints,
    /// Check the configuration and exit.
    CheckConfig,
    /// Replace the running server (found through its pid file) with this binary, without
    /// dropping a connection: SIGUSR2, then wait until the new process serves.
    Upgrade,
    /// Make the running server re-read its configuration, keys and access rules: SIGHUP, then
    /// wait for the outcome.
    Reload,
    /// Print the line IDENTITY needs in each `[[svn_servers]]` server's svnserve passwd file
    /// (`IDENTITY = password`, the password derived from that server's secret).
    SvnPassword {
        /// The identity (as keys name it).
        identity: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = Options {
        config: cli.config.clone(),
        listen: cli.listen.clone(),
        data_dir: cli.data_dir.clone(),
    };
    let config = match opts.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portcullis: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let pid_file = config.in_data(&config.pid_file);
    let result = match cli.command.clone().unwrap_or(Command::Serve) {
        // The effective configuration: the file merged over the embedded default.
        Command::CheckConfig => opts
            .config_text()
            .and_then(|text| Config::effective(&text).map_err(|e| e.to_string()))
            .and_then(|table| toml::to_string(&table).map_err(|e| e.to_string()))
            .map(|text| {
                print!("{text}");
                eprintln!("configuration OK");
            }),
        Command::Fingerprints => site::host_keys(&config).map(|keys| {
            for k in keys {
                let p = k.public();
                println!("{} {}", p.fingerprint(), p.key_type().wire_name());
            }
        }),
        Command::Upgrade => upgrade::signal_running(
            &pid_file,
            "upgrade",
            Signal::SIGUSR2,
            UPGRADE_READY_TIMEOUT + Duration::from_secs(10),
        )
        .map(|ok| println!("{ok}")),
        Command::Reload => {
            upgrade::signal_running(&pid_file, "reload", Signal::SIGHUP, Duration::from_secs(60))
                .map(|ok| println!("{ok}"))
        }
        Command::SvnPassword { identity } => site::svn_servers(&config).map(|servers| {
            for s in servers.iter() {
                println!("# svn server {} ({})", s.name, s.address);
                println!("{identity} = {}", s.password(&identity));
            }
        }),
        Command::Serve => daemon::run(opts, config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e}");
            ExitCode::FAILURE
        }
    }
}
