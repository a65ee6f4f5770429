//! The proxy's figures: a clone of big.git straight from sshd against the same clone through
//! portcullis, by the SSH route (pooled and not: decrypt from the upstream, encrypt to the
//! client) and by the git daemon route (plaintext from the storage side, encrypt only), with
//! the proxy's own CPU per GiB against the primitives' cost of the same work on one core.

use crate::primitive;
use crate::setup::{Fixtures, GitDaemon, Server};
use crate::{Pair, Report, clone, fmt, median};

/// Proxy CPU seconds per GiB of one clone of `path` through `ours` (its own CPU: no git runs
/// under it on these routes), with the clone's wall time.
fn proxied(f: &Fixtures, ours: &Server, path: &str, gib: f64) -> (f64, f64) {
    let (cpu0, git0) = (ours.cpu(), ours.git_cpu());
    let wall = clone(f, ours, &ours.url(path), &[]).0;
    (wall, (ours.cpu() - cpu0 - (ours.git_cpu() - git0)) / gib)
}

/// A per-GiB row: label, values, the reference they are divided by, how it is shown, target.
type Row<'a> = (&'a str, &'a [f64], f64, String, Option<f64>);

fn verdict(value: f64, target: f64) -> String {
    format!(
        "≤ {} {}",
        fmt(target),
        if value <= target { "met" } else { "**missed**" }
    )
}

pub fn figures(
    r: &mut Report,
    f: &Fixtures,
    openssh: &Server,
    ours: &Server,
    reps: usize,
    big_mib: usize,
) {
    let _daemon = GitDaemon::start(f, ours.daemon_port.expect("portcullis has a daemon route"));
    let gib = big_mib as f64 / 1024.0;
    let (mut direct, mut direct_cpu) = (Vec::new(), Vec::new());
    let (mut pooled, mut pooled_cpu) = (Vec::new(), Vec::new());
    let (mut unpooled, mut daemon, mut daemon_cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let (w, c, _) = clone(f, openssh, &openssh.url("big.git"), &[]);
        direct.push(w);
        direct_cpu.push(c);
        let (w, c) = proxied(f, ours, "proxied/big.git", gib);
        pooled.push(w);
        pooled_cpu.push(c);
        unpooled.push(clone(f, ours, &ours.url("unpooled/big.git"), &[]).0);
        let (w, c) = proxied(f, ours, "stored/big.git", gib);
        daemon.push(w);
        daemon_cpu.push(c);
    }
    let against_direct = |ours: &[f64]| Pair {
        openssh: direct.clone(),
        ours: ours.to_vec(),
    };
    r.row(
        &format!("clone {big_mib} MiB through the proxy (SSH route, pooled) vs straight from sshd"),
        "wall s",
        &against_direct(&pooled),
        Some((1.10, false)),
    );
    r.row(
        "  same, unpooled",
        "wall s",
        &against_direct(&unpooled),
        None,
    );
    r.row(
        "  same by the git daemon route",
        "wall s",
        &against_direct(&daemon),
        None,
    );
    r.row(
        "  CPU: upstream sshd tree (git included) vs the proxy alone (SSH route, pooled)",
        "CPU s",
        &Pair {
            openssh: direct_cpu,
            ours: pooled_cpu.iter().map(|c| c * gib).collect(),
        },
        None,
    );

    // The work the SSH route cannot avoid: open what the upstream sealed (our client picks
    // aes128-gcm there when the CPU has AES instructions), seal for the client (OpenSSH's
    // default, chacha20-poly1305); the daemon route only seals.
    let bytes = 256u64 << 20;
    let (gcm, chacha) = (
        primitive::aes128_gcm(bytes),
        primitive::chacha20_poly1305(bytes),
    );
    let ssh_floor = gcm.open + chacha.seal;
    let ssh_route = median(&pooled_cpu);
    r.line(String::new());
    r.line("| proxy CPU per GiB (clone of big.git, client cipher chacha20-poly1305) | CPU s/GiB | primitives on one core | ratio | target |".into());
    r.line("|---|---|---|---|---|".into());
    let rows: [Row<'_>; 3] = [
        (
            "SSH route (aes128-gcm open + chacha20-poly1305 seal)",
            &pooled_cpu,
            ssh_floor,
            fmt(ssh_floor),
            Some(1.5),
        ),
        (
            "git daemon route, against the SSH route's CPU",
            &daemon_cpu,
            ssh_route,
            format!("{} (SSH route)", fmt(ssh_route)),
            Some(0.25),
        ),
        (
            "git daemon route, against its primitive (chacha20-poly1305 seal)",
            &daemon_cpu,
            chacha.seal,
            fmt(chacha.seal),
            None,
        ),
    ];
    for (label, values, reference, shown, target) in rows {
        let ratio = median(values) / reference;
        r.line(format!(
            "| {label} | {} | {shown} | {} | {} |",
            crate::spread(values),
            fmt(ratio),
            target.map_or("–".to_owned(), |t| verdict(ratio, t))
        ));
    }
    r.line(String::new());
}
