//! `[keys] backend = "http"`: the binary asks the reference backend (`examples/key_backend.rs`)
//! which identity a key belongs to and what it may do. A writer pushes and clones, a reader
//! clones and reads the backend's refusal of her push, an unknown key is denied, answers are
//! cached, and a backend that is down or too slow gets the client "temporarily unavailable" —
//! never a denial — while the readiness probe and the metrics show it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{example_binary, free_port};
use crate::git_server::{EVERYONE_WRITES, Git, Server, config, local_repo, start_prepared};
use crate::monitoring::{get, monitoring_addr, scrape};

const SECRET: &str = "correct horse battery staple";

/// The reference backend on `port`, serving `keys` with the shared secret, answering after
/// `delay_ms`; waits until it listens.
fn backend(dir: &Path, port: u16, keys: &Path, delay_ms: u64) -> Child {
    backend_with(dir, port, keys, &["--delay-ms", &delay_ms.to_string()])
}

/// [`backend`] with `extra` arguments (alice writes; everyone listed reads).
pub fn backend_with(dir: &Path, port: u16, keys: &Path, extra: &[&str]) -> Child {
    let secret = dir.join("backend_secret.txt");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let child = Command::new(example_binary("key_backend"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--secret-file")
        .arg(&secret)
        .arg("--keys")
        .arg(keys)
        .args(["--writers", "alice"])
        .args(extra)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "key_backend did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// `cfg` with its keys (and access) from the HTTP backend on `port`, 1 s per request.
pub fn http_keys(cfg: &str, port: u16) -> String {
    cfg.replace(
        "backend = \"file\"",
        &format!(
            "backend = \"http\"\nurl = \"http://127.0.0.1:{port}/\"\nsecret_file = \"backend_secret\""
        ),
    )
    .replace("http_timeout_ms = 3000", "http_timeout_ms = 1000")
}

/// The shared secret in the data directory `data`, mode 0600.
pub fn write_secret(data: &Path) {
    let path = data.join("backend_secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// The server with the HTTP backend on `port`.
fn server(port: u16) -> Server {
    start_prepared(&http_keys(&config(EVERYONE_WRITES), port), write_secret)
}

/// Lists `who`'s public key in the backend's keys file under its name.
pub fn list(keys: &Path, git: &Git<'_>, who: &str) {
    let public = std::fs::read_to_string(git.key.with_extension("pub")).unwrap();
    let mut parts = public.split_whitespace();
    let line = format!(
        "{} {} {who}\n",
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    let mut text = std::fs::read_to_string(keys).unwrap_or_default();
    text.push_str(&line);
    std::fs::write(keys, text).unwrap();
}

/// A child process killed when the test ends, passed or not.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The reference backend on a free port with an empty key list (see [`list`]) and one
/// `--route PREFIX=UPSTREAM`, running until dropped.
pub struct RoutingApi {
    pub keys: std::path::PathBuf,
    pub port: u16,
    _backend: Running,
    _dir: tempfile::TempDir,
}

pub fn routing_api(route: &str) -> RoutingApi {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("authorized_keys");
    std::fs::write(&keys, "").unwrap();
    let port = free_port();
    let backend = Running(backend_with(dir.path(), port, &keys, &["--route", route]));
    RoutingApi {
        keys,
        port,
        _backend: backend,
        _dir: dir,
    }
}

#[test]
fn keys_and_access_come_from_the_http_backend_and_its_failures_say_temporarily_unavailable() {
    let port = free_port();
    let s = server(port);
    let keys = s.dir.path().join("backend_keys");
    let user = |name: &str| Git {
        server: &s,
        key: s.user_key(name, None),
    };
    let (alice, bob, carol, dave) = (user("alice"), user("bob"), user("carol"), user("dave"));
    for (git, name) in [(&alice, "alice"), (&carol, "carol"), (&dave, "dave")] {
        list(&keys, git, name);
    }
    let up = Running(backend(s.dir.path(), port, &keys, 0));
    let monitoring = monitoring_addr(&s);
    assert_eq!(get(&monitoring, "/start").0, 200);

    // A writer: push (creating the repository) and clone, as her identity.
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&alice, work.path(), 2);
    alice.ok(&local, &["push", "-q", &s.url("team/app.git"), "main"]);
    alice.ok(
        work.path(),
        &["clone", "-q", &s.url("team/app.git"), "copy"],
    );
    assert!(s.log().contains("identity=alice"), "{}", s.log());
    // A key the backend does not know: denied, as with a file.
    let (ok, _, err) = bob.run(work.path(), &["ls-remote", &s.url("team/app.git")]);
    assert!(
        !ok && err.contains("Permission denied (publickey)"),
        "{err}"
    );
    // A reader: clones, and reads the backend's own words when she pushes.
    carol.ok(
        work.path(),
        &["clone", "-q", &s.url("team/app.git"), "carols"],
    );
    let (ok, _, err) = carol.run(
        &work.path().join("carols"),
        &[
            "push",
            "-q",
            &s.url("team/app.git"),
            "HEAD:refs/heads/carol",
        ],
    );
    assert!(!ok, "{err}");
    assert!(
        err.contains("portcullis: carol may only read team/app.git"),
        "{err}"
    );

    // The backend goes down. Alice's answers are cached (30 s): she still reads app.git; a
    // repository nobody asked about cannot be checked; dave, never asked about, is told to
    // come back, not denied.
    let errors_before = scrape(&monitoring)
        .get("portcullis_key_lookup_errors_total")
        .copied()
        .unwrap_or(0.0);
    drop(up);
    alice.ok(work.path(), &["ls-remote", &s.url("team/app.git")]);
    let (ok, _, err) = alice.run(work.path(), &["ls-remote", &s.url("team/other.git")]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("portcullis: access check temporarily unavailable"),
        "{err}"
    );
    let (ok, _, err) = dave.run(work.path(), &["ls-remote", &s.url("team/app.git")]);
    assert!(!ok, "{err}");
    assert!(err.contains("temporarily unavailable"), "{err}");
    assert!(!err.contains("Permission denied"), "{err}");
    // The readiness probe and the metrics say so.
    let (code, body) = get(&monitoring, "/start");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("key backend"), "{body}");
    let errors = scrape(&monitoring)["portcullis_key_lookup_errors_total"];
    assert!(errors > errors_before, "{errors} after {errors_before}");

    // Back, but slower than the server's 1 s limit: still "temporarily unavailable".
    let slow = Running(backend(s.dir.path(), port, &keys, 3000));
    let t = Instant::now();
    let (ok, _, err) = dave.run(work.path(), &["ls-remote", &s.url("team/app.git")]);
    assert!(!ok && err.contains("temporarily unavailable"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    drop(slow);

    // Healthy again: dave gets in and the probe is ready.
    let _back = Running(backend(s.dir.path(), port, &keys, 0));
    dave.ok(work.path(), &["ls-remote", &s.url("team/app.git")]);
    assert_eq!(get(&monitoring, "/start").0, 200);
}

#[test]
fn a_backend_secret_others_can_read_is_refused_at_start() {
    let cfg = config(EVERYONE_WRITES).replace(
        "backend = \"file\"",
        "backend = \"http\"\nurl = \"http://127.0.0.1:9/\"\nsecret_file = \"backend_secret\"",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, cfg).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/backend_secret"), "s3cret\n").unwrap();
    std::fs::set_permissions(
        dir.path().join("data/backend_secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("backend secret is accessible by others"),
        "{err}"
    );
}
