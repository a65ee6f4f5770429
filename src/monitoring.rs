//! Metrics and probes for the operator: one process-wide set of Prometheus metrics
//! (`prometheus-client`), served with `/health` (alive) and `/start` (ready) on an HTTP listener
//! of its own (`axum`; loopback by default). No hand-written HTTP or exposition format.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    accepted: Counter,
    active: Gauge,
    closed: Family<Labels, Counter>,
    refused: Family<Labels, Counter>,
    handshake: Histogram,
    kex: Family<Labels, Counter>,
    auth: Family<Labels, Counter>,
    sessions: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    upstream: Family<Labels, Counter>,
    upstream_dials: Family<Labels, Counter>,
    upstream_handshake: Histogram,
    lookup_seconds: Histogram,
    lookup_errors: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let m = Self {
            accepted: Counter::default(),
            active: Gauge::default(),
            closed: Family::default(),
            refused: Family::default(),
            handshake: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            kex: Family::default(),
            auth: Family::default(),
            sessions: Family::default(),
            bytes: Family::default(),
            upstream: Family::default(),
            upstream_dials: Family::default(),
            upstream_handshake: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            lookup_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            lookup_errors: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections_accepted",
            "TCP connections accepted",
            m.accepted.clone(),
        );
        registry.register(
            "connections_active",
            "Connections open now",
            m.active.clone(),
        );
        registry.register(
            "connections_closed",
            "Connections ended, by outcome",
            m.closed.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused before their handshake, by limit",
            m.refused.clone(),
        );
        registry.register(
            "handshake_seconds",
            "From accept to the end of the first key exchange",
            m.handshake.clone(),
        );
        registry.register(
            "key_exchanges",
            "First key exchanges, by negotiated method and cipher",
            m.kex.clone(),
        );
        registry.register(
            "auth_attempts",
            "Authentication requests decided, by method and result",
            m.auth.clone(),
        );
        registry.register(
            "git_sessions",
            "git sessions, by command and exit status",
            m.sessions.clone(),
        );
        registry.register(
            "git_bytes",
            "Bytes of git sessions, by direction (in: from clients)",
            m.bytes.clone(),
        );
        registry.register(
            "upstream_sessions",
            "Proxied sessions, by upstream and result",
            m.upstream.clone(),
        );
        registry.register(
            "upstream_connections",
            "Connections dialed to upstreams (TCP, handshake, authentication), by result",
            m.upstream_dials.clone(),
        );
        registry.register(
            "upstream_handshake_seconds",
            "Time to dial, handshake and authenticate to an upstream",
            m.upstream_handshake.clone(),
        );
        registry.register(
            "key_lookup_seconds",
            "Time the key backend took to answer",
            m.lookup_seconds.clone(),
        );
        registry.register(
            "key_lookup_errors",
            "Key backend failures",
            m.lookup_errors.clone(),
        );
        Self { registry, ..m }
    }

    /// A TCP connection was accepted.
    pub fn accepted(&self) {
        self.accepted.inc();
    }

    /// A connection was refused before its handshake, by the limit named.
    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    /// A connection started being served; the guard marks its end with `outcome`.
    pub fn opened(&'static self) -> Active {
        self.active.inc();
        Active {
            metrics: self,
            outcome: "error",
        }
    }

    /// The first key exchange of a connection finished `seconds` after accept.
    pub fn handshake(&self, seconds: f64, kex: &str, cipher: &str) {
        self.handshake.observe(seconds);
        self.kex
            .get_or_create(&labels(&[("kex", kex), ("cipher", cipher)]))
            .inc();
    }

    /// An authentication request was decided.
    pub fn auth(&self, method: &str, result: &str) {
        self.auth
            .get_or_create(&labels(&[("method", method), ("result", result)]))
            .inc();
    }

    /// A git session ended.
    pub fn session(&self, command: &str, exit: &str, bytes_in: u64, bytes_out: u64) {
        self.sessions
            .get_or_create(&labels(&[("command", command), ("exit", exit)]))
            .inc();
        self.bytes
            .get_or_create(&labels(&[("direction", "in")]))
            .inc_by(bytes_in);
        self.bytes
            .get_or_create(&labels(&[("direction", "out")]))
            .inc_by(bytes_out);
    }

    /// A proxied session ended (`result`: "ok" or the failure's kind).
    pub fn upstream(&self, upstream: &str, result: &str) {
        self.upstream
            .get_or_create(&labels(&[("upstream", upstream), ("result", result)]))
            .inc();
    }

    /// A connection to `upstream` was dialed (`result`: "ok", "unreachable", "timeout",
    /// "host_key", "error"), taking `elapsed`.
    pub fn upstream_dial(&self, upstream: &str, result: &str, elapsed: Duration) {
        self.upstream_dials
            .get_or_create(&labels(&[("upstream", upstream), ("result", result)]))
            .inc();
        if result == "ok" {
            self.upstream_handshake.observe(elapsed.as_secs_f64());
        }
    }

    /// The key backend answered (or failed) after `elapsed`.
    pub fn lookup(&self, elapsed: Duration, ok: bool) {
        self.lookup_seconds.observe(elapsed.as_secs_f64());
        if !ok {
            self.lookup_errors.inc();
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// A connection being served; dropping it counts it closed with its outcome.
#[derive(Debug)]
pub struct Active {
    metrics: &'static Metrics,
    outcome: &'static str,
}

impl Active {
    /// How the connection ended ("closed", "eof", "peer_disconnected", "error", "io").
    pub fn set_outcome(&mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.metrics.active.dec();
        self.metrics
            .closed
            .get_or_create(&labels(&[("outcome", self.outcome)]))
            .inc();
    }
}

/// What `/start` reports: ready once the server serves, not while it drains, and only while
/// the key backend answers its check.
pub struct Readiness {
    serving: AtomicBool,
    draining: AtomicBool,
    backend: std::sync::RwLock<BackendCheck>,
}

type BackendCheck = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("serving", &self.serving)
            .field("draining", &self.draining)
            .finish()
    }
}

impl Readiness {
    /// Not ready yet; `backend` checks the key backend on every probe.
    pub fn new(backend: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            serving: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            backend: std::sync::RwLock::new(Box::new(backend)),
        })
    }

    /// A reload's key backend check replaces the old one.
    pub fn set_backend(&self, backend: impl Fn() -> Result<(), String> + Send + Sync + 'static) {
        if let Ok(mut b) = self.backend.write() {
            *b = Box::new(backend);
        }
    }

    /// Listeners bound, host keys loaded.
    pub fn set_serving(&self) {
        self.serving.store(true, Ordering::SeqCst);
    }

    /// Shutting down: no longer ready, so the orchestrator stops sending clients.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Ready, or why not.
    pub fn check(&self) -> Result<(), String> {
        if self.draining.load(Ordering::SeqCst) {
            return Err("draining".into());
        }
        if !self.serving.load(Ordering::SeqCst) {
            return Err("starting".into());
        }
        let backend = self
            .backend
            .read()
            .map_err(|_| "key backend check poisoned")?;
        (backend)().map_err(|e| format!("key backend: {e}"))
    }
}

/// Serves `/metrics`, `/health` and `/start` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, ready: Arc<Readiness>) {
    use axum::Router;
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let app = Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    METRICS.encode(),
                )
            }),
        )
        .route("/health", get(|| async { "ok\n" }))
        .route(
            "/start",
            get(move || {
                let ready = ready.clone();
                async move {
                    match ready.check() {
                        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
                        Err(why) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {why}\n"),
                        ),
                    }
                }
            }),
        );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "monitoring listener failed");
    }
}
