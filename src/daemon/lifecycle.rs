//! The running server between start and exit: serving, reloading, upgrading, draining.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::site::{self, Site};
use super::sockets::{Handover, Inherited, Sockets};
use super::upgrade::{self, notify_manager, write_outcome};
use super::{Options, say};
use crate::config::Config;
use crate::driver::admission::Admission;
use crate::driver::listener::{Shared, accept_loop};
use crate::driver::proxy_header::ProxyMode;
use crate::limits::{DRAIN_POLL, FINAL_FLUSH, TASK_CLEANUP};
use crate::monitoring::{self, Readiness};
use crate::route::router::Router;

/// What an operator asked for.
enum Request {
    Stop,
    Reload,
    Upgrade,
}

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr2: Signal,
}

impl Signals {
    fn new() -> Result<Self, String> {
        let on = |kind: SignalKind| signal(kind).map_err(|e| format!("signal handler: {e}"));
        Ok(Self {
            term: on(SignalKind::terminate())?,
            int: on(SignalKind::interrupt())?,
            hup: on(SignalKind::hangup())?,
            usr2: on(SignalKind::user_defined2())?,
        })
    }

    async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop,
            _ = self.int.recv() => Request::Stop,
            _ = self.hup.recv() => Request::Reload,
            _ = self.usr2.recv() => Request::Upgrade,
        }
    }
}

struct Running {
    opts: Options,
    /// The configuration in force (what a reload compares against).
    config: Config,
    ready: Arc<Readiness>,
    /// What new connections get; replaced by a reload.
    current: watch::Sender<Arc<Shared>>,
    connections: Arc<Semaphore>,
    stop: watch::Sender<bool>,
    accept: JoinSet<()>,
    monitoring: Option<JoinHandle<()>>,
    /// Until this process stops listening.
    handover: Option<Handover>,
    exe: PathBuf,
    pid_file: PathBuf,
}

pub(super) async fn serve(
    opts: Options,
    c: Config,
    site: Site,
    inherited: Inherited,
    exe: PathBuf,
) -> Result<(), String> {
    // SIGHUP and SIGUSR2 would end the process until handled.
    let mut signals = Signals::new()?;
    let was_given = inherited.len();
    let sockets = super::sockets::open(&c, inherited).await?;
    let handover = Handover::of(&sockets)?;
    let ready = Readiness::new(site.backend_check);
    let Sockets { ssh, monitoring } = sockets;
    let monitoring = monitoring.map(|l| {
        if let Ok(a) = l.local_addr() {
            say(format!(
                "monitoring on http://{a} (/metrics, /health, /start)"
            ));
        }
        tokio::spawn(monitoring::serve(l, ready.clone()))
    });
    reap_pools(&site.router);
    // Listening (connections queue in the backlog until the loops below take them) with host
    // keys loaded: ready.
    ready.set_serving();
    announce(&site.keys, &site.repos, &ssh, &c.user);
    if was_given > 0 {
        tracing::info!(sockets = was_given, "took over inherited listening sockets");
    }
    let connections = Arc::new(Semaphore::new(c.limits.max_connections));
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        config: site.config,
        keys: site.keys,
        lookup: site.lookup,
        handler: site.handler,
        connections: connections.clone(),
        admission: Admission::new(c.limits.startups()),
        stop: stop_rx,
    });
    let (current, current_rx) = watch::channel(shared);
    let mut accept = JoinSet::new();
    for s in ssh {
        accept.spawn(accept_loop(s.listener, s.policy, current_rx.clone()));
    }
    let pid_file = c.in_data(&c.pid_file);
    upgrade::write_pid_file(&pid_file)?;
    if !upgrade::notify_predecessor() {
        notify_manager(&[NotifyState::Ready, NotifyState::Status("serving")]);
    }
    let mut r = Running {
        opts,
        config: c,
        ready,
        current,
        connections,
        stop,
        accept,
        monitoring,
        handover: Some(handover),
        exe,
        pid_file,
    };
    let upgraded = loop {
        match signals.next().await {
            Request::Reload => r.reload().await,
            Request::Upgrade => {
                if r.upgrade().await {
                    break true;
                }
            }
            Request::Stop => break false,
        }
    };
    r.stop_accepting(upgraded).await;
    let grace = Duration::from_secs(r.config.timeouts.shutdown_grace_secs);
    // After an upgrade, sessions run to their end (each is bounded by the idle timeout); a
    // stop request then starts the grace period.
    let deadline = (!upgraded).then(|| super::after(grace));
    r.drain(&mut signals, deadline, grace).await;
    upgrade::remove_pid_file(&r.pid_file);
    Ok(())
}

/// The start-up lines on stdout: host keys, then each listener (tests and operators read them).
fn announce(
    keys: &[crate::keys::PrivateKey],
    repos: &std::path::Path,
    ssh: &[super::sockets::SshSocket],
    user: &str,
) {
    for k in keys {
        let p = k.public();
        say(format!(
            "host key {} {}",
            p.key_type().wire_name(),
            p.fingerprint()
        ));
    }
    for s in ssh {
        if let Ok(a) = s.listener.local_addr() {
            let proxy = match s.policy.mode {
                ProxyMode::Off => "",
                ProxyMode::Optional => ", PROXY protocol optional",
                ProxyMode::Required => ", PROXY protocol required",
            };
            let given = if s.inherited {
                ", inherited socket"
            } else {
                ""
            };
            say(format!(
                "listening on {a} (repositories in {}, user \"{user}\"{proxy}{given})",
                repos.display()
            ));
        }
    }
}

/// Closes the idle pooled connections of every upstream, even when no new session comes to
/// notice them; ends when the router is replaced by a reload.
fn reap_pools(router: &Arc<Router>) {
    for u in router.upstreams() {
        say(format!("upstream {} ({})", u.name, u.address()));
        let weak = Arc::downgrade(u);
        tokio::spawn(async move {
            while let Some(u) = weak.upgrade() {
                u.reap();
                drop(u);
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
    }
}

impl Running {
    /// Connections still open.
    fn open(&self) -> usize {
        self.config
            .limits
            .max_connections
            .saturating_sub(self.connections.available_permits())
    }

    async fn reload(&mut self) {
        let monotonic = NotifyState::monotonic_usec_now().ok();
        let mut states = vec![NotifyState::Reloading];
        states.extend(monotonic);
        notify_manager(&states);
        let opts = self.opts.clone();
        let built = tokio::task::spawn_blocking(move || {
            let c = opts.load()?;
            let site = site::build(&c)?;
            Ok::<_, String>((c, site))
        })
        .await
        .unwrap_or_else(|e| Err(format!("reload task: {e}")));
        match built {
            Ok((c, site)) => {
                self.apply(c, site);
                tracing::info!("configuration reloaded: new connections use it");
                write_outcome(&self.pid_file, "reload", "ok: reloaded");
            }
            Err(why) => {
                tracing::error!(error = %why, "reload refused; the configuration in force stays");
                write_outcome(&self.pid_file, "reload", &format!("failed: {why}"));
            }
        }
        notify_manager(&[NotifyState::Ready, NotifyState::Status("serving")]);
    }

    /// Puts a reloaded site in force for new connections.
    fn apply(&mut self, c: Config, site: Site) {
        let old = &self.config;
        let needs_restart = [
            (
                "listen / [[listeners]]",
                old.listeners_with_policy() != c.listeners_with_policy(),
            ),
            (
                "monitoring.listen",
                old.monitoring.listen != c.monitoring.listen,
            ),
            (
                "limits.max_connections",
                old.limits.max_connections != c.limits.max_connections,
            ),
            (
                "log",
                old.log.level != c.log.level || old.log.format != c.log.format,
            ),
            (
                "pid_file",
                old.in_data(&old.pid_file) != c.in_data(&c.pid_file),
            ),
        ];
        for (key, changed) in needs_restart {
            if changed {
                tracing::warn!(
                    key,
                    "changed, but takes effect only at the next upgrade (SIGUSR2) or restart"
                );
            }
        }
        let previous = self.current.borrow().clone();
        // Connections counted against the old limits stay counted unless the limits changed.
        let admission = if old.limits.startups() == c.limits.startups() {
            previous.admission.clone()
        } else {
            Admission::new(c.limits.startups())
        };
        self.ready.set_backend(site.backend_check);
        reap_pools(&site.router);
        self.current.send_replace(Arc::new(Shared {
            config: site.config,
            keys: site.keys,
            lookup: site.lookup,
            handler: site.handler,
            connections: self.connections.clone(),
            admission,
            stop: previous.stop.clone(),
        }));
        let (max_connections, pid_file) = (old.limits.max_connections, old.pid_file.clone());
        self.config = c;
        // What cannot change without new sockets or a new process stays as it was.
        self.config.limits.max_connections = max_connections;
        self.config.pid_file = pid_file;
    }

    /// Starts the successor; whether it took over.
    async fn upgrade(&mut self) -> bool {
        let Some(handover) = &self.handover else {
            return false;
        };
        tracing::info!(binary = %self.exe.display(), "upgrade: starting the new process");
        match upgrade::start_successor(&self.exe, handover).await {
            Ok(pid) => {
                tracing::info!(
                    pid,
                    "upgrade: the new process is ready; this one stops accepting and drains"
                );
                // Under systemd the successor is the service's main process from now on.
                notify_manager(&[NotifyState::MainPid(pid)]);
                let own = std::process::id();
                write_outcome(
                    &self.pid_file,
                    "upgrade",
                    &format!("ok: pid {own} replaced by {pid}"),
                );
                true
            }
            Err(why) => {
                tracing::error!(error = %why, "upgrade failed; this process keeps serving");
                write_outcome(&self.pid_file, "upgrade", &format!("failed: {why}"));
                false
            }
        }
    }

    async fn stop_accepting(&mut self, upgraded: bool) {
        // Not ready first, so a balancer stops sending clients (after an upgrade the probe's
        // socket belongs to the successor: this process stops answering on it).
        self.ready.set_draining();
        if upgraded {
            if let Some(m) = self.monitoring.take() {
                m.abort();
            }
        } else {
            notify_manager(&[NotifyState::Stopping]);
        }
        self.accept.abort_all();
        while self.accept.join_next().await.is_some() {}
        self.handover = None;
        tracing::info!(
            open = self.open(),
            "no longer accepting connections; draining"
        );
    }

    /// Waits for the open connections to end: until `deadline` (none: until a stop request
    /// sets one), then disconnects the rest. A stop request while a deadline runs ends at once.
    async fn drain(
        &mut self,
        signals: &mut Signals,
        mut deadline: Option<Instant>,
        grace: Duration,
    ) {
        loop {
            let open = self.open();
            if open == 0 {
                tracing::info!("drained: every connection has ended");
                return;
            }
            let until = deadline.map(tokio::time::Instant::from_std);
            tokio::select! {
                () = tokio::time::sleep(DRAIN_POLL) => {}
                () = async { match until { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => break,
                request = signals.next() => match request {
                    Request::Stop if deadline.is_none() => {
                        tracing::info!(open, grace_secs = grace.as_secs(), "stop requested: open connections get the grace period");
                        deadline = Some(super::after(grace));
                    }
                    Request::Stop => {
                        tracing::warn!(open, "second stop request: exiting now");
                        return;
                    }
                    Request::Reload | Request::Upgrade => tracing::info!("ignored while draining"),
                },
            }
        }
        tracing::info!(
            open = self.open(),
            "shutdown grace period over: disconnecting the open connections"
        );
        self.stop.send_replace(true);
        // Each says DISCONNECT (bounded by FINAL_FLUSH) and stops its git (TASK_CLEANUP).
        let until = super::after(
            FINAL_FLUSH
                .saturating_add(TASK_CLEANUP)
                .saturating_add(Duration::from_secs(1)),
        );
        while self.open() > 0 && Instant::now() < until {
            tokio::select! {
                () = tokio::time::sleep(DRAIN_POLL) => {}
                request = signals.next() => if let Request::Stop = request {
                    tracing::warn!(open = self.open(), "second stop request: exiting now");
                    return;
                },
            }
        }
        tracing::info!(open = self.open(), "shut down");
    }
}
