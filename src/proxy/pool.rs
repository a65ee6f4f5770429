//! Authenticated upstream connections kept for reuse: each forwarded session is a new channel
//! on a pooled connection with room (the upstream's session limit respected), so most sessions
//! pay no handshake. Dead connections are dropped when noticed and replaced by a fresh dial;
//! idle ones close after a timeout. Unpooled, every session dials its own connection.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::driver::client::{ClientHandle, RemoteExit, RemoteSession};
use crate::proxy::{Upstream, UpstreamError};

#[derive(Debug)]
struct Entry {
    handle: ClientHandle,
    /// Sessions this connection takes: `max_sessions`, lowered if the upstream refuses sooner.
    capacity: usize,
}

/// The pool of one upstream.
#[derive(Debug)]
pub struct Pool {
    pooled: bool,
    size: usize,
    max_sessions: usize,
    idle_timeout: Duration,
    conns: Mutex<Vec<Entry>>,
    /// One dial at a time, so a burst of sessions shares the connection the first one makes.
    dialing: tokio::sync::Mutex<()>,
    /// The last failed dial: sessions that queued behind it fail with it instead of waiting
    /// out another timeout each.
    last_failure: Mutex<Option<(Instant, UpstreamError)>>,
}

impl Pool {
    /// A pool (or, with `pooled` false, a connection per session).
    pub fn new(pooled: bool, size: usize, max_sessions: usize, idle_timeout: Duration) -> Self {
        Self {
            pooled,
            size,
            max_sessions: max_sessions.max(1),
            idle_timeout,
            conns: Mutex::new(Vec::new()),
            dialing: tokio::sync::Mutex::new(()),
            last_failure: Mutex::new(None),
        }
    }

    fn conns(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connections held.
    pub fn len(&self) -> usize {
        self.conns().len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live connection with the most room, if any has room.
    fn pick(&self) -> Option<ClientHandle> {
        let mut conns = self.conns();
        conns.retain(|e| e.handle.is_alive());
        conns
            .iter()
            .filter(|e| e.handle.sessions() < e.capacity)
            .min_by_key(|e| e.handle.sessions())
            .map(|e| e.handle.clone())
    }

    fn forget(&self, h: &ClientHandle) {
        self.conns().retain(|e| !e.handle.same(h));
    }

    fn lower_capacity(&self, h: &ClientHandle) {
        if let Some(e) = self.conns().iter_mut().find(|e| e.handle.same(h)) {
            e.capacity = h.sessions().max(1);
        }
    }

    /// Tries `command` on pooled connections with room; `None` when none could take it.
    async fn try_pooled(
        &self,
        command: &[u8],
        env: &[(Vec<u8>, Vec<u8>)],
    ) -> Option<Result<RemoteSession, UpstreamError>> {
        // Each failure removes or fills a connection, so this ends.
        for _ in 0..8 {
            let h = self.pick()?;
            match h.exec(command.to_vec(), env.to_vec()).await {
                Ok(s) => return Some(Ok(s)),
                // Full at the upstream's own limit (its MaxSessions is below ours).
                Err(RemoteExit::OpenFailed { .. }) => self.lower_capacity(&h),
                // Died while idle: nothing ran yet, so another connection may take it.
                Err(RemoteExit::Disconnected(_)) => self.forget(&h),
                Err(e) => return Some(Err(e.into())),
            }
        }
        None
    }

    /// Runs `command` on `up`; true when a pooled connection was reused.
    pub(crate) async fn exec(
        &self,
        up: &Upstream,
        command: Vec<u8>,
        env: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(RemoteSession, bool), UpstreamError> {
        if !self.pooled {
            let h = up.dial().await?;
            // The only handle: the connection ends with this session.
            return Ok((h.exec(command, env).await?, false));
        }
        self.reap(Instant::now());
        if let Some(r) = self.try_pooled(&command, &env).await {
            return r.map(|s| (s, true));
        }
        let asked = Instant::now();
        let guard = self.dialing.lock().await;
        // Whoever dialed while we waited may have made room, or failed for us too.
        if let Some(r) = self.try_pooled(&command, &env).await {
            return r.map(|s| (s, true));
        }
        if let Some((at, e)) = self
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            && at >= asked
        {
            return Err(e);
        }
        let h = match up.dial().await {
            Ok(h) => h,
            Err(e) => {
                *self
                    .last_failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((Instant::now(), e.clone()));
                return Err(e);
            }
        };
        self.conns().push(Entry {
            handle: h.clone(),
            capacity: self.max_sessions,
        });
        drop(guard);
        match h.exec(command, env).await {
            Ok(s) => Ok((s, false)),
            Err(e) => {
                if !h.is_alive() {
                    self.forget(&h);
                }
                Err(e.into())
            }
        }
    }

    /// Drops dead connections, closes ones idle past the timeout, and keeps at most `size`
    /// idle ones. A dropped handle ends its connection once its sessions are over.
    pub fn reap(&self, now: Instant) {
        let mut conns = self.conns();
        conns.retain(|e| {
            e.handle.is_alive()
                && e.handle
                    .idle_for(now)
                    .is_none_or(|idle| idle < self.idle_timeout)
        });
        let mut idle = 0usize;
        conns.retain(|e| {
            if e.handle.sessions() > 0 {
                return true;
            }
            idle = idle.saturating_add(1);
            idle <= self.size
        });
    }
}
