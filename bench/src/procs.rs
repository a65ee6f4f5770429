//! Process-tree accounting: CPU time from a cgroup of the server's own where the machine lets
//! us make one (exact, in nanoseconds or microseconds, every process that ever ran in it
//! included), else from /proc (own and reaped children's, in clock ticks); PSS summed over a
//! server's whole tree; and the child-subreaper wrapper that keeps orphans in it.

use std::collections::HashMap;

/// Clock ticks per second for /proc/<pid>/stat times.
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime, in ticks.
    ticks: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid …: comm may hold spaces and parentheses.
    let after = text.get(text.rfind(')')? + 2..)?;
    let f: Vec<&str> = after.split(' ').collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    // Fields after comm, 0-based: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    Some(Stat {
        ppid: u32::try_from(num(1)?).ok()?,
        ticks: num(11)? + num(12)? + num(13)? + num(14)?,
    })
}

/// `root` and every process below it.
pub fn tree(root: u32) -> Vec<u32> {
    let mut parent: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>()
                && let Some(s) = stat(pid)
            {
                parent.entry(s.ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while let Some(&p) = out.get(i) {
        if let Some(kids) = parent.get(&p) {
            out.extend(kids);
        }
        i += 1;
    }
    out
}

/// CPU seconds used by the tree so far, including children it has reaped.
pub fn tree_cpu(root: u32) -> f64 {
    let ticks: u64 = tree(root)
        .iter()
        .filter_map(|&p| stat(p))
        .map(|s| s.ticks)
        .sum();
    ticks as f64 / clk_tck()
}

/// Proportional set size of the tree, KiB.
pub fn tree_pss_kib(root: u32) -> u64 {
    tree(root)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok())
        .filter_map(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum()
}

/// Kills every process of the tree.
pub fn kill_tree(root: u32) {
    for p in tree(root).into_iter().rev() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A cgroup of one server's own, for its CPU time: the kernel adds up every process that ran in
/// it, exited ones included, to the nanosecond (cgroup v1 `cpuacct.usage`) or microsecond
/// (v2 `cpu.stat`), where /proc counts in 10 ms ticks and only children reaped by a live
/// process. Made only where the bench may (root, a cgroup mount); removed when dropped.
pub struct CpuGroup {
    dir: std::path::PathBuf,
    v2: bool,
}

impl CpuGroup {
    /// A new empty group named after `name` and this process, on a cgroup2 mount if there is
    /// one, else on a v1 `cpuacct` mount; `None` where neither can be made.
    pub fn new(name: &str) -> Option<Self> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        let leaf = format!("portcullis-bench-{name}-{}", std::process::id());
        let mut candidates: Vec<(std::path::PathBuf, bool)> = Vec::new();
        for line in mounts.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match (f.get(1), f.get(2), f.get(3)) {
                (Some(at), Some(&"cgroup2"), _) => candidates.insert(0, (at.into(), true)),
                (Some(at), Some(&"cgroup"), Some(opts))
                    if opts.split(',').any(|o| o == "cpuacct") =>
                {
                    candidates.push((at.into(), false));
                }
                _ => {}
            }
        }
        candidates.into_iter().find_map(|(mount, v2)| {
            let dir = mount.join(&leaf);
            let _ = std::fs::create_dir(&dir);
            let g = Self { dir, v2 };
            g.cpu().is_some().then_some(g)
        })
    }

    /// Moves `pid` (and what it starts from then on) into the group.
    pub fn join(&self, pid: u32) -> bool {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).is_ok()
    }

    /// CPU seconds of everything that ran in the group so far.
    pub fn cpu(&self) -> Option<f64> {
        if self.v2 {
            let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
            let usec = stat
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))?
                .trim()
                .parse::<u64>()
                .ok()?;
            Some(usec as f64 / 1e6)
        } else {
            let ns = std::fs::read_to_string(self.dir.join("cpuacct.usage")).ok()?;
            Some(ns.trim().parse::<u64>().ok()? as f64 / 1e9)
        }
    }

    /// Which accounting this is, for the report's machine line.
    pub fn describe(&self) -> &'static str {
        if self.v2 {
            "cgroup v2 cpu.stat"
        } else {
            "cgroup v1 cpuacct"
        }
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        // The killed processes leave the group as they are reaped: retry for a moment.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// `portcullis-bench reaper -- CMD ARGS…`: becomes a child subreaper, runs CMD, and reaps
/// every descendant that gets orphaned, so their CPU lands in this process's counters. CMD
/// starts once stdin reaches its end: the bench closes it after moving this process into the
/// server's [`CpuGroup`], so CMD starts inside it.
pub fn reaper(cmd: &[String]) -> ! {
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let Some((program, args)) = cmd.split_first() else {
        eprintln!("reaper: no command");
        std::process::exit(2);
    };
    if let Err(e) = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        eprintln!("reaper: {program}: {e}");
        std::process::exit(1);
    }
    loop {
        match nix::sys::wait::waitpid(None, None) {
            Err(nix::errno::Errno::ECHILD) => std::process::exit(0),
            _ => continue,
        }
    }
}

/// CPU seconds of this process's reaped children (for runs without a server).
/// `pid`'s own user and system CPU seconds, and those of the children it reaped.
pub fn times(pid: u32) -> Option<(f64, f64, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.get(text.rfind(')')? + 2..)?;
    let f: Vec<u64> = after.split(' ').map(|v| v.parse().unwrap_or(0)).collect();
    let tck = clk_tck();
    let at = |i: usize| *f.get(i).unwrap_or(&0) as f64 / tck;
    Some((at(11), at(12), at(13) + at(14)))
}

/// CPU seconds of the children `pid` has reaped (cutime + cstime).
pub fn children_cpu_of(pid: u32) -> f64 {
    times(pid).map_or(0.0, |(_, _, children)| children)
}

pub fn children_cpu() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    u.map(|u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
    .unwrap_or(0.0)
}
