//! `bench/run`: portcullis and OpenSSH sshd measured in one run, alternating (A B A B …),
//! medians of several repetitions, reported as ratios (machines here are noisy; a ratio
//! measured side by side is the only honest figure). See BENCHMARKS.md.

mod connections;
mod efficiency;
mod held;
mod load;
mod openssl;
mod primitive;
mod procs;
mod proxy;
mod setup;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use connections::{connection_cost, connection_labels, idle_sessions, idle_ssh_n, ops_pair};
use portcullis::transport::{CipherAlg, MacAlg};
use setup::{Fixtures, Server, git, sh, ssh_args};

struct Opts {
    portcullis: PathBuf,
    reps: usize,
    quick: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Before any server starts: they inherit it (held connections need ~2 per connection).
    held::raise_fd_limit();
    match args.get(1).map(String::as_str) {
        Some("reaper") => {
            let rest = args.get(2..).unwrap_or_default();
            let cmd = rest.strip_prefix(&["--".to_owned()]).unwrap_or(rest);
            procs::reaper(cmd)
        }
        // For profiling one figure: `portcullis-bench ceiling aes128-gcm|chacha|ctr MIB`.
        Some("ceiling") => {
            let work = std::env::temp_dir().join("portcullis-bench");
            let f = setup::fixtures(&work, 64);
            let (cipher, mac) = match args.get(2).map(String::as_str) {
                Some("chacha") => (CipherAlg::ChaCha20Poly1305, None),
                Some("ctr") => (CipherAlg::Aes128Ctr, Some(MacAlg::HmacSha256Etm)),
                _ => (CipherAlg::Aes128Gcm, None),
            };
            let mib: u64 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(1024);
            let (mbs, cpu) = load::ceiling(&work, &f.user_key, &f.host_key, cipher, mac, mib << 20);
            println!(
                "{mbs:.0} MB/s; CPU per GiB: server (sending) {:.3} s, kernel {:.3}; client (receiving) {:.3} s, kernel {:.3}",
                cpu.send, cpu.send_kernel, cpu.recv, cpu.recv_kernel
            );
        }
        // For profiling: `portcullis-bench efficiency aes128-gcm|chacha MIB`, in-process.
        Some("efficiency") => {
            let work = std::env::temp_dir().join("portcullis-bench");
            let f = setup::fixtures(&work, 64);
            let cipher = match args.get(2).map(String::as_str) {
                Some("chacha") => CipherAlg::ChaCha20Poly1305,
                _ => CipherAlg::Aes128Gcm,
            };
            let mib: u64 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(1024);
            let key = |p: &std::path::Path| {
                portcullis::keys::key_file::parse(&std::fs::read_to_string(p).unwrap(), None)
                    .unwrap()
            };
            let s = efficiency::in_process(key(&f.host_key), key(&f.user_key), cipher, mib << 20);
            println!(
                "in-process CPU per GiB: sending {:.3} s, receiving {:.3} s",
                s.send, s.recv
            );
        }
        // The primitives alone, one core: CPU per GiB to seal and to open.
        Some("primitive") => {
            for (name, c) in [
                ("aes128-gcm", primitive::aes128_gcm(1 << 30)),
                ("chacha20-poly1305", primitive::chacha20_poly1305(1 << 30)),
            ] {
                println!(
                    "{name}: seal {:.3} s/GiB ({:.0} MB/s), open {:.3} s/GiB ({:.0} MB/s)",
                    c.seal,
                    1073.741824 / c.seal,
                    c.open,
                    1073.741824 / c.open
                );
            }
        }
        // For profiling one figure: `portcullis-bench fetch|clone CIPHER REPS` (256 MiB, both
        // servers alternating, medians).
        Some(which @ ("fetch" | "clone")) => {
            let cipher = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| CIPHERS[1].to_owned());
            let reps: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(3);
            let ours = PathBuf::from("target/release/portcullis");
            if which == "fetch" {
                fetch_only(&ours, &cipher, reps);
            } else {
                clone_only(&ours, &cipher, reps);
            }
        }
        // One parallel figure: `portcullis-bench ops C REPS` (ls-remote loops for 5 s).
        Some("ops") => {
            let c: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(8);
            let reps: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(3);
            let (f, openssh, ours) = start_both(&PathBuf::from("target/release/portcullis"));
            let (ops, failures) = ops_pair(&f, &[&openssh, &ours], reps, c, 5);
            let mut r = Report { rows: Vec::new() };
            r.row(
                &format!("`ls-remote` ops/s, C = {c}"),
                "ops/s",
                &ops,
                Some((if c == 8 { 3.0 } else { 2.5 }, true)),
            );
            r.row("  failures", "count", &failures, None);
        }
        // The idle memory rows alone: `portcullis-bench idle K`.
        Some("idle") => {
            let k: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(200);
            let (f, openssh, ours) = start_both(&PathBuf::from("target/release/portcullis"));
            let mut r = Report { rows: Vec::new() };
            idle_rows(&mut r, &f, &[&openssh, &ours], k);
        }
        // The connection-cost rows alone: `portcullis-bench kex REPS`.
        Some("kex") => {
            let reps: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(3);
            let (f, openssh, ours) = start_both(&PathBuf::from("target/release/portcullis"));
            let mut r = Report { rows: Vec::new() };
            for (label, extra) in connection_labels() {
                connection_cost(&mut r, &f, &[&openssh, &ours], reps, 30, label, &extra);
            }
        }
        // The transport-efficiency table alone: `portcullis-bench transport REPS`.
        Some("transport") => {
            let reps: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(3);
            let (f, openssh, ours) = start_both(&PathBuf::from("target/release/portcullis"));
            let local_cpu = local_upload_pack_cpu(&f, reps);
            let mut r = Report { rows: Vec::new() };
            let sides: Vec<_> = CIPHERS[..2]
                .iter()
                .map(|&c| {
                    let s = fetch_pair(&f, &[&openssh, &ours], reps, c, 256, local_cpu);
                    (c, efficiency::OpenSshSides::from_fetch(&s.2, &s.3))
                })
                .collect();
            efficiency::figures(&mut r, &f, reps, 1 << 30, &sides);
        }
        // The held-connections rows alone: `portcullis-bench held K`.
        Some("held") => {
            let k: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(100_000);
            let (f, _openssh, ours) = start_both(&PathBuf::from("target/release/portcullis"));
            let mut r = Report { rows: Vec::new() };
            held::figures(&mut r, &f, &ours, k);
        }
        // A helper of the held-connections rows: `portcullis-bench hold PORT K`.
        Some("hold") => {
            let port: u16 = args.get(2).and_then(|v| v.parse().ok()).expect("port");
            let k: usize = args.get(3).and_then(|v| v.parse().ok()).expect("count");
            let work = std::env::temp_dir().join("portcullis-bench");
            held::hold_main(port, k, &work);
        }
        // For profiling the proxy: `portcullis-bench proxy REPS` (clone direct vs proxied).
        Some("proxy") => {
            let reps: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(3);
            proxy_only(&PathBuf::from("target/release/portcullis"), reps);
        }
        Some("run") => {
            let mut o = Opts {
                portcullis: PathBuf::from("target/release/portcullis"),
                reps: 3,
                quick: false,
            };
            let mut it = args.iter().skip(2);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--portcullis" => o.portcullis = PathBuf::from(it.next().expect("path")),
                    "--reps" => o.reps = it.next().and_then(|v| v.parse().ok()).expect("n"),
                    "--quick" => {
                        o.quick = true;
                        o.reps = 1;
                    }
                    other => panic!("unknown argument {other}"),
                }
            }
            run(&o);
        }
        _ => {
            eprintln!("usage: portcullis-bench run [--quick] [--reps N] [--portcullis PATH]");
            std::process::exit(2);
        }
    }
}

/// Medians and spread of one figure for both servers.
#[derive(Default, Clone)]
struct Pair {
    openssh: Vec<f64>,
    ours: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn spread(v: &[f64]) -> String {
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    format!("{} ({}–{})", fmt(median(v)), fmt(min), fmt(max))
}

fn fmt(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

struct Report {
    rows: Vec<String>,
}

impl Report {
    /// `higher_is_better` flips the target comparison.
    fn row(&mut self, figure: &str, unit: &str, p: &Pair, target: Option<(f64, bool)>) {
        let ratio = median(&p.ours) / median(&p.openssh);
        let verdict = match target {
            Some((t, higher)) => {
                let met = if higher { ratio >= t } else { ratio <= t };
                format!(
                    "{} {} {}",
                    if higher { "≥" } else { "≤" },
                    fmt(t),
                    if met { "met" } else { "**missed**" }
                )
            }
            None => "–".into(),
        };
        let line = format!(
            "| {figure} | {unit} | {} | {} | {} | {verdict} |",
            spread(&p.openssh),
            spread(&p.ours),
            fmt(ratio)
        );
        println!("{line}");
        self.rows.push(line);
    }

    fn line(&mut self, text: String) {
        println!("{text}");
        self.rows.push(text);
    }
}

fn kex_opt(kex: &str) -> Vec<String> {
    vec!["-o".to_owned(), format!("KexAlgorithms={kex}")]
}

fn cipher_opts(c: &str) -> Vec<String> {
    let mut v = vec!["-o".to_owned(), format!("Ciphers={c}")];
    if c == "aes128-ctr" {
        v.extend(["-o".into(), "MACs=hmac-sha2-256-etm@openssh.com".into()]);
    }
    v
}

const CIPHERS: [&str; 4] = [
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
];

/// Runs `f` on each server in turn, `reps` times (A B A B …).
fn alternate(servers: &[&Server; 2], reps: usize, mut f: impl FnMut(&Server) -> f64) -> Pair {
    let mut p = Pair::default();
    for _ in 0..reps {
        for s in servers {
            let x = f(s);
            if s.name == "OpenSSH" {
                p.openssh.push(x);
            } else {
                p.ours.push(x);
            }
        }
    }
    p
}

fn git_ssh(f: &Fixtures, extra: &[String]) -> String {
    ssh_args(f, extra).join(" ")
}

/// Wall seconds and server CPU seconds of a `git clone --bare` of `repo`.
/// Wall seconds, server CPU seconds and client CPU seconds (git, index-pack, ssh) of a
/// `git clone --bare` of `repo`.
fn clone(f: &Fixtures, s: &Server, repo_url: &str, extra: &[String]) -> (f64, f64, f64) {
    let dest = f.work.join("clone-dest.git");
    let _ = std::fs::remove_dir_all(&dest);
    s.settle(resident(s));
    let cpu0 = s.cpu();
    let client0 = procs::children_cpu();
    let t = Instant::now();
    let st = git(&f.work)
        .args(["clone", "-q", "--bare", repo_url])
        .arg(&dest)
        .env("GIT_SSH_COMMAND", git_ssh(f, extra))
        .stdin(Stdio::null())
        .status()
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert!(st.success(), "clone {repo_url} via {} failed", s.name);
    s.settle(resident(s));
    let cpu = s.cpu() - cpu0;
    let _ = std::fs::remove_dir_all(&dest);
    (wall, cpu, procs::children_cpu() - client0)
}

/// Processes a server has at rest: sshd 1, portcullis 1 (plus the reaper).
fn resident(_s: &Server) -> usize {
    2
}

/// Speaks protocol v0 to upload-pack on stdin/stdout of `cmd`: wants HEAD, discards the
/// pack. Returns the bytes read.
fn raw_fetch(mut cmd: Command) -> u64 {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut tip = None;
    loop {
        let mut len = [0u8; 4];
        out.read_exact(&mut len).unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&len).unwrap(), 16).unwrap();
        if n == 0 {
            break;
        }
        let mut line = vec![0u8; n - 4];
        out.read_exact(&mut line).unwrap();
        if tip.is_none() {
            tip = Some(String::from_utf8_lossy(&line[..40]).into_owned());
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    let want = format!("want {}\n", tip.unwrap());
    write!(stdin, "{:04x}{want}0000", want.len() + 4).unwrap();
    stdin.write_all(b"0009done\n").unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    total
}

fn ssh_cmd(f: &Fixtures, s: &Server, extra: &[String], remote: &str) -> Command {
    let args = ssh_args(f, extra);
    let mut c = Command::new(&args[0]);
    c.args(&args[1..])
        .args(["-p", &s.port.to_string()])
        .arg(format!("{}@127.0.0.1", setup::user_name()))
        .arg(remote);
    c
}

/// Raw fetch with one cipher against both servers: (wall, overhead CPU per GiB, the server's
/// own CPU per GiB, the `ssh` client's CPU per GiB) pairs.
fn fetch_pair(
    f: &Fixtures,
    servers: &[&Server; 2],
    reps: usize,
    cipher: &str,
    big_mib: usize,
    local_cpu: f64,
) -> (Pair, Pair, Pair, Pair) {
    let extra = cipher_opts(cipher);
    let gib = big_mib as f64 / 1024.0;
    let (mut overhead, mut own, mut client) = (Pair::default(), Pair::default(), Pair::default());
    let wall = alternate(servers, reps, |s| {
        s.settle(resident(s));
        let (cpu0, git0, ssh0) = (s.cpu(), s.git_cpu(), procs::children_cpu());
        let t = Instant::now();
        let n = raw_fetch(ssh_cmd(f, s, &extra, "git-upload-pack '~/big.git'"));
        let w = t.elapsed().as_secs_f64();
        assert!(n as f64 > big_mib as f64 * 1e6 * 0.9);
        let ssh = (procs::children_cpu() - ssh0) / (n as f64 / (1u64 << 30) as f64);
        s.settle(resident(s));
        let cpu = s.cpu() - cpu0;
        let per_gib = (cpu - local_cpu) / gib;
        let own_per_gib = (cpu - (s.git_cpu() - git0)) / gib;
        let (o, w_, c) = if s.name == "OpenSSH" {
            (&mut overhead.openssh, &mut own.openssh, &mut client.openssh)
        } else {
            (&mut overhead.ours, &mut own.ours, &mut client.ours)
        };
        o.push(per_gib);
        w_.push(own_per_gib);
        c.push(ssh);
        w
    });
    (wall, overhead, own, client)
}

/// Median CPU of `git upload-pack` serving big.git locally, without SSH.
fn local_upload_pack_cpu(f: &Fixtures, reps: usize) -> f64 {
    let mut v = Vec::new();
    for _ in 0..reps {
        let c0 = procs::children_cpu();
        let mut cmd = Command::new("git");
        cmd.args(["-c", "safe.directory=*", "upload-pack"])
            .arg(f.repos.join("big.git"));
        raw_fetch(cmd);
        v.push(procs::children_cpu() - c0);
    }
    median(&v)
}

/// Fixtures with the 256 MiB repository and both servers, for the single-figure subcommands.
fn start_both(portcullis: &std::path::Path) -> (Fixtures, Server, Server) {
    let work = std::env::temp_dir().join("portcullis-bench");
    std::fs::create_dir_all(&work).unwrap();
    let f = setup::fixtures(&work, 256);
    let openssh = setup::start_openssh(&f);
    let ours = setup::start_portcullis(&f, portcullis, openssh.port);
    setup::write_known_hosts(&f, &[openssh.port, ours.port]);
    (f, openssh, ours)
}

fn clone_only(portcullis: &std::path::Path, cipher: &str, reps: usize) {
    let (f, openssh, ours) = start_both(portcullis);
    let extra = cipher_opts(cipher);
    let mut cpu = Pair::default();
    let wall = alternate(&[&openssh, &ours], reps, |s| {
        let (w, c, _) = clone(&f, s, &s.url("big.git"), &extra);
        if s.name == "OpenSSH" {
            cpu.openssh.push(c);
        } else {
            cpu.ours.push(c);
        }
        w
    });
    let mut r = Report { rows: Vec::new() };
    r.row(
        &format!("clone {cipher}"),
        "wall s",
        &wall,
        Some((0.95, false)),
    );
    r.row("  server CPU", "CPU s", &cpu, None);
}

fn fetch_only(portcullis: &std::path::Path, cipher: &str, reps: usize) {
    let (f, openssh, ours) = start_both(portcullis);
    let local_cpu = local_upload_pack_cpu(&f, reps);
    let (wall, overhead, own, client) =
        fetch_pair(&f, &[&openssh, &ours], reps, cipher, 256, local_cpu);
    let mut r = Report { rows: Vec::new() };
    println!("local upload-pack CPU {local_cpu:.2} s");
    // Where our server's time went: its own user/system time vs its reaped children (git).
    for pid in procs::tree(ours.root()).into_iter().skip(1) {
        if let Some((user, system, children)) = procs::times(pid) {
            let n = reps as f64;
            println!(
                "portcullis pid {pid} per fetch: user {:.3} s, system {:.3} s, children {:.3} s",
                user / n,
                system / n,
                children / n
            );
        }
    }
    r.row(
        &format!("raw fetch {cipher}"),
        "wall s",
        &wall,
        Some((0.80, false)),
    );
    r.row("  overhead", "CPU s/GiB", &overhead, Some((0.50, false)));
    r.row(
        "  same-run git subtracted",
        "CPU s/GiB",
        &own,
        Some((0.50, false)),
    );
    r.row("  `ssh` client", "CPU s/GiB", &client, None);
}

fn proxy_only(portcullis: &std::path::Path, reps: usize) {
    let (f, openssh, ours) = start_both(portcullis);
    let mut r = Report { rows: Vec::new() };
    proxy::figures(&mut r, &f, &openssh, &ours, reps, 256);
}

/// Idle memory: K `ssh -N` connections, then K/2 sessions with upload-pack waiting. Measured
/// on freshly started servers, before any transfer: afterwards portcullis' allocator holds
/// freed memory from the clones, new connections reuse it, and its PSS does not grow at all.
fn idle_rows(r: &mut Report, f: &Fixtures, servers: &[&Server; 2], k: usize) {
    let idle = alternate(servers, 1, |s| idle_ssh_n(f, s, k));
    r.row(
        &format!("idle memory per `ssh -N` connection, K = {k} (fresh servers)"),
        "KiB",
        &idle,
        Some((0.02, false)),
    );
    let waiting = alternate(servers, 1, |s| idle_sessions(f, s, k / 2));
    r.row(
        &format!(
            "memory per session with `git-upload-pack` waiting, K = {}",
            k / 2
        ),
        "KiB",
        &waiting,
        None,
    );
}

fn run(o: &Opts) {
    let started = Instant::now();
    let work = std::env::temp_dir().join("portcullis-bench");
    std::fs::create_dir_all(&work).unwrap();
    let big_mib = if o.quick { 64 } else { 256 };
    eprintln!("fixtures in {} …", work.display());
    let f = setup::fixtures(&work, big_mib);
    let openssh = setup::start_openssh(&f);
    let ours = setup::start_portcullis(&f, &o.portcullis, openssh.port);
    setup::write_known_hosts(&f, &[openssh.port, ours.port]);
    let servers = [&openssh, &ours];
    let mut r = Report { rows: Vec::new() };
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    r.line(format!(
        "machine: {} × {cpu_model}; {}; OpenSSH {}; git {}; {} repetitions, alternating; server CPU from {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sh(Command::new("uname").arg("-sr")).trim(),
        String::from_utf8_lossy(&Command::new("ssh").arg("-V").output().unwrap().stderr).trim(),
        sh(Command::new("git").arg("--version")).trim(),
        o.reps,
        ours.accounting()
    ));
    r.line(String::new());
    r.line("| figure | unit | OpenSSH median (min–max) | portcullis median (min–max) | ratio | target |".into());
    r.line("|---|---|---|---|---|---|".into());

    idle_rows(&mut r, &f, &servers, if o.quick { 50 } else { 200 });

    // Local baseline: upload-pack without SSH, CPU per run.
    let local_cpu = local_upload_pack_cpu(&f, o.reps);
    r.line(format!(
        "| local `git upload-pack` of big.git, no SSH (baseline) | CPU s | {} | | | |",
        fmt(local_cpu)
    ));

    for c in CIPHERS {
        let extra = cipher_opts(c);
        let mut cpu = Pair::default();
        let mut client = Pair::default();
        let wall = alternate(&servers, o.reps, |s| {
            let (w, c, k) = clone(&f, s, &s.url("big.git"), &extra);
            if s.name == "OpenSSH" {
                cpu.openssh.push(c);
                client.openssh.push(k);
            } else {
                cpu.ours.push(c);
                client.ours.push(k);
            }
            w
        });
        r.row(
            &format!("`git clone` {big_mib} MiB, {c}"),
            "wall s",
            &wall,
            Some((0.95, false)),
        );
        r.row(
            &format!("  server CPU of that clone, {c}"),
            "CPU s",
            &cpu,
            None,
        );
        r.row(
            &format!("  client CPU of that clone (git, index-pack, ssh), {c}"),
            "CPU s",
            &client,
            None,
        );
    }
    let mut sides = Vec::new();
    for c in CIPHERS {
        let (wall, overhead, own, client) = fetch_pair(&f, &servers, o.reps, c, big_mib, local_cpu);
        sides.push((c, efficiency::OpenSshSides::from_fetch(&own, &client)));
        r.row(
            &format!("raw pack fetch {big_mib} MiB, {c}"),
            "wall s",
            &wall,
            Some((0.80, false)),
        );
        r.row(
            &format!("  SSH overhead CPU per GiB, {c}"),
            "CPU s/GiB",
            &overhead,
            Some((0.50, false)),
        );
        r.row(
            &format!("  same, minus git's CPU measured in that run, {c}"),
            "CPU s/GiB",
            &own,
            Some((0.50, false)),
        );
        r.row(
            &format!("  `ssh` client CPU per GiB of that fetch, {c}"),
            "CPU s/GiB",
            &client,
            None,
        );
    }

    // Connection cost: sequential ls-remote, pinned to curve25519, with defaults, and with each
    // finite-field DH exchange a client may pick before logging in.
    let n = if o.quick { 10 } else { 30 };
    for (label, extra) in connection_labels() {
        connection_cost(&mut r, &f, &servers, o.reps, n, label, &extra);
    }
    for c in [8usize, 32] {
        let secs = if o.quick { 2 } else { 5 };
        let (ops, failures) = ops_pair(&f, &servers, o.reps, c, secs);
        r.row(
            &format!("`ls-remote` ops/s, C = {c}"),
            "ops/s",
            &ops,
            // Issue 22: 3× with 8 loops; 2.5× (the earlier target) with 32.
            Some((if c == 8 { 3.0 } else { 2.5 }, true)),
        );
        r.row(&format!("  failures, C = {c}"), "count", &failures, None);
    }

    // Held connections: 100,000 idle ones, memory each, and new clients' latency meanwhile.
    held::figures(&mut r, &f, &ours, if o.quick { 2000 } else { 100_000 });

    // Push of a 64 MiB commit into a fresh repository.
    let mut push_cpu = Pair::default();
    let mut i = 0;
    let push = alternate(&servers, o.reps, |s| {
        i += 1;
        let name = format!("push-{i}.git");
        sh(git(&f.work)
            .args(["init", "-q", "--bare"])
            .arg(f.repos.join(&name)));
        setup::give(&f.repos.join(&name));
        s.settle(resident(s));
        let cpu0 = s.cpu();
        let t = Instant::now();
        let st = git(&f.push_src)
            .args(["push", "-q", &s.url(&name), "main"])
            .env("GIT_SSH_COMMAND", git_ssh(&f, &[]))
            .stdin(Stdio::null())
            .status()
            .unwrap();
        let w = t.elapsed().as_secs_f64();
        assert!(st.success());
        s.settle(resident(s));
        let c = s.cpu() - cpu0;
        if s.name == "OpenSSH" {
            push_cpu.openssh.push(c);
        } else {
            push_cpu.ours.push(c);
        }
        let _ = std::fs::remove_dir_all(f.repos.join(&name));
        w
    });
    r.row("push of a 64 MiB commit", "wall s", &push, None);
    r.row("  server CPU of that push", "CPU s", &push_cpu, None);

    // Proxy: clone through portcullis to the sshd upstream (pooled and not) and to a git
    // daemon, vs direct; the proxy's CPU per GiB against the primitives'.
    proxy::figures(&mut r, &f, &openssh, &ours, o.reps, big_mib);

    // Transport efficiency: each side's CPU per GiB against the primitive's, in-process and
    // over loopback TCP, OpenSSH's against `openssl speed`.
    let bytes: u64 = if o.quick { 256 << 20 } else { 1 << 30 };
    efficiency::figures(&mut r, &f, o.reps, bytes, &sides);
    r.line(String::new());
    r.line(format!(
        "bench/run took {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    std::fs::write(work.join("results.md"), r.rows.join("\n") + "\n").unwrap();
    eprintln!("table written to {}", work.join("results.md").display());
}
