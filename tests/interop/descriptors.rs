//! File descriptors: an accept loop that backs off instead of spinning when they run out (the
//! limit raised at start is `hardening::the_descriptor_limit_is_raised_or_the_start_refused`).

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The binary with a config file; returns it and its SSH port.
fn spawn_server(dir: &std::path::Path, config: &str) -> (Child, u16) {
    let cfg = dir.join("limited.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {} --config {} --listen 127.0.0.1:0 --data-dir {}",
            env!("CARGO_BIN_EXE_portcullis"),
            cfg.display(),
            dir.join("data").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("listening on 127.0.0.1:") {
            let port = rest.split_whitespace().next().unwrap().parse().unwrap();
            return (child, port);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "no listening line:\n{}",
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    );
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Should-fix: with every descriptor in use, accept() fails with EMFILE while clients wait in
/// the backlog. Before, the loop retried at once and spun a core; now it backs off (10 ms up to
/// 1 s) and logs it. (The running server's limit is lowered to what it has open with `prlimit`.)
#[test]
fn an_accept_loop_out_of_descriptors_backs_off_instead_of_spinning() {
    let prlimit = crate::common::require("prlimit", "util-linux");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let config = "host_keys = [\"host_ed25519_key\"]\n[monitoring]\nlisten = \"\"\n";
    let (mut server, port) = spawn_server(dir.path(), config);
    let pid = server.id();
    std::thread::sleep(Duration::from_millis(300));
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert!(
        Command::new(prlimit)
            .arg(format!("--pid={pid}"))
            .arg(format!("--nofile={open}:{open}"))
            .status()
            .unwrap()
            .success()
    );
    // Clients waiting in the backlog: accept() now fails with EMFILE.
    let waiting: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(pid) - before;
    drop(waiting);
    let _ = server.kill();
    let _ = server.wait();
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    assert!(
        log.contains("accept failed; backing off"),
        "descriptors never ran out:\n{log}"
    );
    // Clock ticks are 1/100 s: a spinning loop burns ~200 in 2 s.
    assert!(
        spent < 40,
        "the accept loop spun: {spent} ticks in 2 s\n{log}"
    );
}
