//! Who may start a handshake: OpenSSH's `MaxStartups start:rate:full` (random early drop of
//! unauthenticated connections between `start` and `full`, all refused at `full`) and
//! `PerSourceMaxStartups` (unauthenticated connections per source network: an IPv4 address, an
//! IPv6 /64 by default, OpenSSH's `PerSourceNetBlockSize`). A connection holds a [`Ticket`]
//! until it authenticates or ends. Policy above the core: the protocol never sees it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::crypto::rng::SecureRandom;

/// The limits, as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Startups {
    /// Unauthenticated connections from which random early drop begins.
    pub begin: usize,
    /// Percent dropped at `begin`, rising linearly to 100 at `full`.
    pub rate: u32,
    /// Unauthenticated connections at which every new one is refused.
    pub full: usize,
    /// Unauthenticated connections per source network (0: no per-source limit).
    pub per_source: usize,
    /// Bits of an IPv4 address that make a source network (32: one address).
    pub v4_prefix: u8,
    /// Bits of an IPv6 address that make a source network (64: one site's /64).
    pub v6_prefix: u8,
}

impl Startups {
    /// `start:rate:full` as OpenSSH writes it (or a single number: `full`, no early drop).
    pub fn parse_max_startups(text: &str) -> Option<(usize, u32, usize)> {
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            [full] => {
                let full = full.trim().parse().ok()?;
                Some((full, 100, full))
            }
            [begin, rate, full] => {
                let (begin, rate, full): (usize, u32, usize) = (
                    begin.trim().parse().ok()?,
                    rate.trim().parse().ok()?,
                    full.trim().parse().ok()?,
                );
                (begin <= full && rate <= 100 && full > 0).then_some((begin, rate, full))
            }
            _ => None,
        }
    }
}

/// Why a connection was refused before its handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `full` unauthenticated connections already.
    Full,
    /// Random early drop between `begin` and `full`.
    EarlyDrop,
    /// Its source network has `per_source` unauthenticated connections already.
    PerSource,
}

impl Refusal {
    /// For the log and the metrics.
    pub const fn reason(self) -> &'static str {
        match self {
            Refusal::Full => "max_startups full",
            Refusal::EarlyDrop => "max_startups random early drop",
            Refusal::PerSource => "per_source_max_startups",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// The shared state of every listener.
#[derive(Debug)]
pub struct Admission {
    limits: Startups,
    counts: Mutex<Counts>,
}

/// One unauthenticated connection's place; given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    source: IpAddr,
}

impl Admission {
    /// Shared state for `limits`.
    pub fn new(limits: Startups) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// The source network of `ip` (mapped IPv4 counts as IPv4).
    fn source(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let bits = u32::from(self.limits.v4_prefix.min(32));
                let mask = u32::MAX
                    .checked_shl(32u32.saturating_sub(bits))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let bits = u32::from(self.limits.v6_prefix.min(128));
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(bits))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }

    /// Admits a new connection from `ip`, or says why not. `rng` decides early drops.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        rng: &mut dyn SecureRandom,
    ) -> Result<Ticket, Refusal> {
        let source = self.source(ip);
        let l = self.limits;
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if c.total >= l.full {
            return Err(Refusal::Full);
        }
        if l.per_source > 0 && c.by_source.get(&source).copied().unwrap_or(0) >= l.per_source {
            return Err(Refusal::PerSource);
        }
        if c.total >= l.begin {
            // OpenSSH's drop(): rate% at begin, rising linearly to 100% at full.
            let span = l.full.saturating_sub(l.begin).max(1);
            let over = c.total.saturating_sub(l.begin);
            let rise = u64::from(100u32.saturating_sub(l.rate))
                .saturating_mul(over as u64)
                .checked_div(span as u64)
                .unwrap_or(0);
            let p = u64::from(l.rate).saturating_add(rise);
            let mut b = [0u8; 4];
            rng.fill(&mut b);
            if u64::from(u32::from_le_bytes(b) % 100) < p {
                return Err(Refusal::EarlyDrop);
            }
        }
        c.total = c.total.saturating_add(1);
        let n = c.by_source.entry(source).or_insert(0);
        *n = n.saturating_add(1);
        Ok(Ticket {
            admission: self.clone(),
            source,
        })
    }

    /// Unauthenticated connections now.
    pub fn unauthenticated(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut c = self
            .admission
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_source.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rng::DeterministicRng;

    fn limits(begin: usize, rate: u32, full: usize, per_source: usize) -> Startups {
        Startups {
            begin,
            rate,
            full,
            per_source,
            v4_prefix: 32,
            v6_prefix: 64,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_openssh_forms() {
        assert_eq!(
            Startups::parse_max_startups("10:30:100"),
            Some((10, 30, 100))
        );
        assert_eq!(Startups::parse_max_startups("50"), Some((50, 100, 50)));
        assert_eq!(Startups::parse_max_startups("100:30:10"), None);
        assert_eq!(Startups::parse_max_startups("1:101:10"), None);
        assert_eq!(Startups::parse_max_startups("a:b"), None);
    }

    #[test]
    fn per_source_limit_counts_networks_and_tickets_give_back() {
        let a = Admission::new(limits(1000, 30, 1000, 2));
        let mut rng = DeterministicRng::new(1);
        let t1 = a.admit(ip("192.0.2.1"), &mut rng).unwrap();
        let _t2 = a.admit(ip("192.0.2.1"), &mut rng).unwrap();
        assert_eq!(
            a.admit(ip("192.0.2.1"), &mut rng).unwrap_err(),
            Refusal::PerSource
        );
        // The mapped form is the same source; another address is not.
        assert_eq!(
            a.admit(ip("::ffff:192.0.2.1"), &mut rng).unwrap_err(),
            Refusal::PerSource
        );
        assert!(a.admit(ip("192.0.2.2"), &mut rng).is_ok());
        // IPv6: one /64 is one source.
        let _v1 = a.admit(ip("2001:db8::1"), &mut rng).unwrap();
        let _v2 = a.admit(ip("2001:db8::ffff:2"), &mut rng).unwrap();
        assert_eq!(
            a.admit(ip("2001:db8::3"), &mut rng).unwrap_err(),
            Refusal::PerSource
        );
        assert!(a.admit(ip("2001:db8:0:1::3"), &mut rng).is_ok());
        drop(t1);
        assert!(a.admit(ip("192.0.2.1"), &mut rng).is_ok());
    }

    #[test]
    fn early_drop_rises_from_rate_to_full() {
        let a = Admission::new(limits(10, 30, 20, 0));
        let mut rng = DeterministicRng::new(2);
        let mut held: Vec<Ticket> = (0..10)
            .map(|i| a.admit(ip(&format!("10.0.0.{i}")), &mut rng).unwrap())
            .collect();
        // At begin (10 held) about 30 % of 1000 attempts drop; none is admitted (each is
        // dropped again right away).
        let dropped = (0..1000)
            .filter(|_| a.admit(ip("10.1.0.1"), &mut rng).is_err())
            .count();
        assert!((220..=380).contains(&dropped), "{dropped}");
        // Fill up to full, whatever the drops: then everything is refused as Full.
        while a.unauthenticated() < 20 {
            if let Ok(t) = a.admit(ip("10.2.0.1"), &mut rng) {
                held.push(t);
            }
        }
        assert_eq!(
            a.admit(ip("10.3.0.1"), &mut rng).unwrap_err(),
            Refusal::Full
        );
        held.clear();
        assert_eq!(a.unauthenticated(), 0);
    }
}
