//! The monitoring listener of the binary: `/metrics` moves by exactly what one push and one
//! clone did, `/health` answers, `/start` is ready while serving and not ready while draining.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::git_server::{EVERYONE_WRITES, Git, Server, config, local_repo, start};

pub fn monitoring_addr(s: &Server) -> String {
    s.printed
        .iter()
        .find_map(|l| l.strip_prefix("monitoring on http://"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no monitoring line: {:?}", s.printed))
        .to_owned()
}

/// (status code, body) of a GET (a test-side HTTP/1.0 request; the server uses axum).
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// Every sample of `/metrics`: "name{labels}" → value.
pub fn scrape(addr: &str) -> HashMap<String, f64> {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, name: &str) -> f64 {
    after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
}

fn settle(addr: &str) -> HashMap<String, f64> {
    // Wait until no connection is open, so "closed" has counted the last one.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = scrape(addr);
        if m.get("portcullis_connections_active")
            .copied()
            .unwrap_or(0.0)
            == 0.0
        {
            return m;
        }
        assert!(Instant::now() < deadline, "connections stay active: {m:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_move_by_exactly_one_clone_and_probes_answer() {
    let s = start(&config(EVERYONE_WRITES));
    let addr = monitoring_addr(&s);
    assert_eq!(get(&addr, "/health").0, 200);
    assert_eq!(get(&addr, "/start"), (200, "ready\n".to_owned()));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 2);
    git.ok(&local, &["push", "-q", &s.url("m.git"), "main"]);
    let before = settle(&addr);
    git.ok(work.path(), &["clone", "-q", &s.url("m.git"), "copy"]);
    let after = settle(&addr);
    for (name, want) in [
        ("portcullis_connections_accepted_total", 1.0),
        (
            "portcullis_connections_closed_total{outcome=\"peer_disconnected\"}",
            1.0,
        ),
        (
            "portcullis_auth_attempts_total{method=\"publickey\",result=\"success\"}",
            1.0,
        ),
        (
            "portcullis_git_sessions_total{command=\"git-upload-pack\",exit=\"0\"}",
            1.0,
        ),
        (
            "portcullis_git_sessions_total{command=\"git-receive-pack\",exit=\"0\"}",
            0.0,
        ),
        ("portcullis_handshake_seconds_count", 1.0),
        ("portcullis_key_lookup_seconds_count", 1.0),
        (
            "portcullis_connections_refused_total{reason=\"max_connections\"}",
            0.0,
        ),
    ] {
        assert_eq!(delta(&before, &after, name), want, "{name}\n{after:?}");
    }
    // The pack went out: bytes out moved by at least the pack's size on disk.
    assert!(
        delta(
            &before,
            &after,
            "portcullis_git_bytes_total{direction=\"out\"}"
        ) > 100.0
    );
    let kex: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("portcullis_key_exchanges_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(kex, 2.0, "the push and the clone: {after:?}");
    // Draining: not ready as soon as SIGTERM arrives, while a connection still holds on.
    let mut held = s.held_ssh(&git.key, "", Stdio::inherit());
    let deadline = Instant::now() + Duration::from_secs(10);
    while scrape(&addr)
        .get("portcullis_connections_active")
        .copied()
        .unwrap_or(0.0)
        < 1.0
    {
        assert!(Instant::now() < deadline, "ssh -N never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(s.pid()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(&addr, "/start");
        if status == 503 {
            assert!(body.contains("draining"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "/start stayed {status} {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&addr, "/health").0, 200, "alive while draining");
    let _ = held.kill();
    let _ = held.wait();
}
