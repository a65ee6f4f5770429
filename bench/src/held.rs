//! Held connections: K authenticated idle connections (like `ssh -N`) held by portcullis alone,
//! opened by our client role from sources spread over 127.0.0.0/8 (one address gives at most
//! the ~28,000 ports of the ephemeral range), with the server's memory per connection and the
//! `ls-remote` latency of new clients while they are held, against the same latency before.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::setup::{self, Fixtures, Server};
use crate::{Report, fmt, kex_opt, median, resident};

/// Descriptors the bench gives itself (and so the server it starts): a held connection costs
/// one socket on each side. As root the hard limit is raised too (up to `fs.nr_open`).
pub const FD_LIMIT: u64 = 500_000;

/// Raises RLIMIT_NOFILE to [`FD_LIMIT`] where allowed (root), else the soft limit to the hard
/// one; returns the soft limit in force.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let want = FD_LIMIT.min(nr_open);
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_err() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// How many connections can be held here: the target, or what one process's descriptors
/// allow the server (the load is spread over helper processes, each with its own limit).
pub fn feasible(target: usize) -> usize {
    let soft = raise_fd_limit();
    target.min(usize::try_from(soft.saturating_sub(1000)).unwrap_or(usize::MAX))
}

/// Connections one helper process holds at most (its descriptors: one each).
const PER_HELPER: usize = 9000;

/// `portcullis-bench hold PORT K`: holds K connections to PORT, prints `held N failed M`, and
/// keeps them until stdin closes.
pub fn hold_main(port: u16, k: usize, work: &std::path::Path) {
    // The fixtures' keys, as `setup::fixtures` names them (not rebuilt: the parent did).
    let (user_key, host_key) = (work.join("user_key"), work.join("host_ed25519_key"));
    let (rt, held, failed) =
        crate::load::hold_idle(port, &setup::user_name(), &user_key, &host_key, k);
    println!("held {} failed {failed}", held.len());
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    drop(held);
    drop(rt);
}

/// Helper processes holding `k` connections to `port` between them; (helpers, held, failed).
fn hold_in_helpers(port: u16, k: usize) -> (Vec<std::process::Child>, usize, usize) {
    use std::io::BufRead;
    let exe = std::env::current_exe().unwrap();
    let mut helpers = Vec::new();
    let mut left = k;
    while left > 0 {
        let n = left.min(PER_HELPER);
        left -= n;
        helpers.push(
            std::process::Command::new(&exe)
                .args(["hold", &port.to_string(), &n.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let (mut held, mut failed) = (0, 0);
    for h in &mut helpers {
        let mut line = String::new();
        std::io::BufReader::new(h.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let w: Vec<usize> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        held += w.first().copied().unwrap_or(0);
        failed += w.get(1).copied().unwrap_or(0);
    }
    (helpers, held, failed)
}

/// p50 wall time of `n` sequential `ls-remote`s of small.git (OpenSSH client, curve25519).
fn ls_remote_p50(f: &Fixtures, s: &Server, n: usize) -> f64 {
    let extra = kex_opt("curve25519-sha256");
    let walls: Vec<f64> = (0..n)
        .map(|_| crate::connections::ls_remote_ms(f, s, &extra))
        .collect();
    median(&walls)
}

/// The held-connections rows for `k` connections (fewer if descriptors do not allow).
pub fn figures(r: &mut Report, f: &Fixtures, ours: &Server, k: usize) {
    let k = feasible(k);
    ours.settle(resident(ours));
    let unloaded = ls_remote_p50(f, ours, 30);
    let base = ours.pss_kib();
    let started = Instant::now();
    let (helpers, held, failed) = hold_in_helpers(ours.port, k);
    let opened = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let with = ours.pss_kib();
    let per = (with.saturating_sub(base)) as f64 / held.max(1) as f64;
    let loaded = ls_remote_p50(f, ours, 30);
    let verdict = |met: bool| if met { "met" } else { "**missed**" };
    r.line(format!(
        "| idle memory per held connection, K = {k} (our client in helper processes of 9,000, from 16 loopback sources; portcullis only) | KiB | | {} | | ≤ 12 KiB: {} ({} held, {failed} failed, opened in {opened:.0} s) |",
        fmt(per),
        verdict(per <= 12.0 && failed == 0),
        held
    ));
    r.line(format!(
        "| `ls-remote` p50 while they are held, against before | ms | {} (before) | {} (held) | {} | ≤ 2.00: {} |",
        fmt(unloaded),
        fmt(loaded),
        fmt(loaded / unloaded),
        verdict(loaded <= 2.0 * unloaded)
    ));
    for mut h in helpers {
        drop(h.stdin.take());
        let _ = h.wait();
    }
}
