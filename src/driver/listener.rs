//! The accept loop of one listening socket: the total connection cap, then per connection a
//! detached task that reads the PROXY header where the listener expects one
//! ([`proxy_header`](crate::driver::proxy_header)), applies the limits before authentication
//! (OpenSSH-style `MaxStartups` and per-source, [`admission`](crate::driver::admission)) to the
//! real client address, and serves SSH. Accept errors (out of descriptors) back off instead of
//! spinning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::driver::admission::Admission;
use crate::driver::os_rng;
use crate::driver::proxy_header::{ProxyPolicy, client_address};
use crate::driver::server::{Held, canonical, serve_limited};
use crate::driver::tcp::QuickAck;
use crate::keys::PrivateKey;
use crate::limits::{ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN};
use crate::lookup::KeyLookup;
use crate::monitoring::METRICS;
use crate::server::{ServerConfig, ServerConnection};
use crate::session::SessionHandler;

/// What every connection of every listener shares.
pub struct Shared {
    /// Protocol settings.
    pub config: Arc<ServerConfig>,
    /// Host keys.
    pub keys: Arc<[PrivateKey]>,
    /// Key lookup.
    pub lookup: Arc<dyn KeyLookup>,
    /// Session policy.
    pub handler: Arc<dyn SessionHandler>,
    /// All connections (`limits.max_connections`).
    pub connections: Arc<Semaphore>,
    /// Unauthenticated ones (`limits.max_startups`, `per_source_max_startups`).
    pub admission: Arc<Admission>,
    /// The server's stop signal ([`Held::stop`]).
    pub stop: watch::Receiver<bool>,
}

/// Accepts on `listener` until the task is aborted. Connections run detached: stopping the
/// listeners at shutdown must not cut live sessions. Each connection takes what `current` holds
/// when it is accepted and keeps it to its end: a reload (a new [`Shared`] sent on the channel)
/// changes what later connections get, never a running one.
pub async fn accept_loop(
    listener: TcpListener,
    policy: ProxyPolicy,
    current: watch::Receiver<Arc<Shared>>,
) {
    let policy = Arc::new(policy);
    let mut backoff = Duration::ZERO;
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok((sock, peer)) => {
                backoff = Duration::ZERO;
                (sock, canonical(peer))
            }
            // Out of descriptors (EMFILE/ENFILE) or memory: the socket stays readable, so
            // retrying at once would spin. Back off, 10 ms up to 1 s.
            Err(e) => {
                backoff = backoff
                    .saturating_mul(2)
                    .clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                if backoff < ACCEPT_BACKOFF_MAX {
                    tracing::warn!(error = %e, "accept failed; backing off");
                }
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        METRICS.accepted();
        let shared = current.borrow().clone();
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            tracing::info!(addr = %peer, reason = "max_connections", "connection refused");
            METRICS.refused("max_connections");
            continue;
        };
        let policy = policy.clone();
        tokio::spawn(async move {
            start(sock, peer, &shared, &policy).await;
            drop(permit);
        });
    }
}

/// One connection: its real address (from a PROXY header where the listener expects one),
/// the limits before authentication, then the SSH session. Refusals are one log line each,
/// naming the limit.
async fn start(mut sock: TcpStream, tcp_peer: SocketAddr, shared: &Shared, policy: &ProxyPolicy) {
    let peer = match client_address(&mut sock, tcp_peer, policy).await {
        Ok(a) => canonical(a),
        Err(refusal) => {
            tracing::info!(addr = %tcp_peer, reason = %refusal.reason(), "connection refused");
            METRICS.refused(refusal.kind());
            return;
        }
    };
    let Ok(mut rng) = os_rng() else {
        tracing::error!("no randomness");
        return;
    };
    // Held until the client authenticates (or leaves).
    let ticket = match shared.admission.admit(peer.ip(), &mut rng) {
        Ok(t) => t,
        Err(refusal) => {
            tracing::info!(addr = %peer, reason = refusal.reason(), "connection refused");
            METRICS.refused(refusal.reason());
            return;
        }
    };
    let _ = sock.set_nodelay(true);
    let s = ServerConnection::new(
        &shared.config,
        shared.keys.clone(),
        Box::new(rng),
        Instant::now(),
    );
    let (lookup, handler) = (shared.lookup.clone(), shared.handler.clone());
    let mut active = METRICS.opened();
    let ended = serve_limited(
        QuickAck::new(sock),
        peer,
        s,
        lookup,
        handler,
        Held {
            unauthenticated: Some(ticket),
            stop: Some(shared.stop.clone()),
        },
    )
    .await;
    active.set_outcome(ended.kind());
    tracing::debug!(addr = %peer, ?ended, "connection ended");
}
