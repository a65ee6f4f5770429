//! The client matrix: the SSH implementations people actually use, each with its own default
//! algorithms, against the `portcullis` binary — OpenSSH's ssh, libssh, libssh2, golang.org/x/crypto/ssh,
//! paramiko, asyncssh (through the small programs in `tests/clients/`), dropbear's `dbclient`
//! and PuTTY's `plink`. Each one: key exchange, publickey authentication with Ed25519 and with
//! RSA, an `exec` of `git-upload-pack` that reads the ref advertisement, and a refused shell with
//! the clean message. A missing client fails with the package that provides it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::common::require;
use crate::git_server::{EVERYONE_WRITES, Server, config, start_prepared};

/// How an RSA user key fares with a client's defaults.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rsa {
    /// The client signs with rsa-sha2-256/512: accepted.
    Sha2,
    /// The client signs only with `ssh-rsa` (SHA-1), which we refuse by default as OpenSSH 8.8+
    /// does; accepted once `user_keys` lists "ssh-rsa".
    Sha1Only,
}

/// One client: how to run it for (server, key file, command).
struct Client {
    name: &'static str,
    rsa: Rsa,
    command: fn(&Server, &Path, &str) -> Command,
}

/// The programs built from `tests/clients/` once per test run.
struct Built {
    libssh: PathBuf,
    libssh2: PathBuf,
    go: PathBuf,
    python: PathBuf,
}

fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn need_file(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} not found: install the Debian package {package} (apt-get install -y {package}), or run `bash .ci/run`, which does"
    );
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("clients");
        std::fs::create_dir_all(&out).unwrap();
        let gcc = require("gcc", "gcc");
        let c = |src: &str, lib: &str, header: &str, package: &str| {
            need_file(header, package);
            let bin = out.join(src.trim_end_matches(".c"));
            run_ok(
                Command::new(&gcc)
                    .args(["-O1", "-Wall", "-Werror", "-o"])
                    .arg(&bin)
                    .arg(sources().join(src))
                    .arg(lib),
                src,
            );
            bin
        };
        let libssh = c(
            "libssh_exec.c",
            "-lssh",
            "/usr/include/libssh/libssh.h",
            "libssh-dev",
        );
        let libssh2 = c(
            "libssh2_exec.c",
            "-lssh2",
            "/usr/include/libssh2.h",
            "libssh2-1-dev",
        );
        // x/crypto from Debian's GOPATH tree: no module download, works offline.
        let go_bin = require("go", "golang-go");
        need_file(
            "/usr/share/gocode/src/golang.org/x/crypto/ssh/client.go",
            "golang-golang-x-crypto-dev",
        );
        let go = out.join("go_exec");
        run_ok(
            Command::new(go_bin)
                .args(["build", "-o"])
                .arg(&go)
                .arg(".")
                .current_dir(sources().join("go_exec"))
                .env("GO111MODULE", "off")
                .env("GOPATH", "/usr/share/gocode")
                .env("GOFLAGS", "")
                .env("GOCACHE", out.join("gocache"))
                .env("GOPROXY", "off"),
            "go build of tests/clients/go_exec",
        );
        Built {
            libssh,
            libssh2,
            go,
            python: venv_python(),
        }
    })
}

/// The test venv's python (made by `.ci/run`), with paramiko and asyncssh importable.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("PORTCULLIS_TEST_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    for module in ["paramiko", "asyncssh"] {
        let ok = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "the PyPI package {module} is not importable from {}: run `bash .ci/run`, which makes \
             the venv (python3 -m venv {} && {}/bin/pip install paramiko asyncssh ssh-audit); \
             Debian's python3-venv is needed for that",
            python.display(),
            venv.display(),
            venv.display()
        );
    }
    python
}

/// The server's host key fingerprints, as `SHA256:…,SHA256:…`.
fn fingerprints(s: &Server) -> String {
    s.printed
        .iter()
        .filter_map(|l| l.strip_prefix("host key "))
        .filter_map(|l| l.split_whitespace().last())
        .collect::<Vec<_>>()
        .join(",")
}

/// Arguments common to the programs of `tests/clients/`.
fn program(bin: &Path, s: &Server, key: &Path, cmd: &str) -> Command {
    let mut c = Command::new(bin);
    c.args(["127.0.0.1", &s.port.to_string(), "git"])
        .arg(key)
        .args([&fingerprints(s), cmd]);
    c
}

fn python(which: &str, s: &Server, key: &Path, cmd: &str) -> Command {
    let mut c = Command::new(&built().python);
    c.arg(sources().join("py_exec.py")).arg(which);
    c.args(["127.0.0.1", &s.port.to_string(), "git"])
        .arg(key)
        .args([&fingerprints(s), cmd]);
    c
}

fn dbclient(s: &Server, key: &Path, cmd: &str) -> Command {
    let db_key = key.with_extension("db");
    if !db_key.exists() {
        run_ok(
            Command::new(require("dropbearconvert", "dropbear-bin"))
                .args(["openssh", "dropbear"])
                .arg(key)
                .arg(&db_key),
            "dropbearconvert",
        );
    }
    let mut c = Command::new(require("dbclient", "dropbear-bin"));
    // -y -y: dbclient cannot pin a key from the command line (test only); -T: no pty.
    c.args(["-y", "-y", "-T", "-i"]).arg(&db_key).args([
        "-p",
        &s.port.to_string(),
        "git@127.0.0.1",
    ]);
    if !cmd.is_empty() {
        c.arg(cmd);
    }
    c
}

fn plink(s: &Server, key: &Path, cmd: &str) -> Command {
    let ppk = key.with_extension("ppk");
    if !ppk.exists() {
        run_ok(
            Command::new(require("puttygen", "putty-tools"))
                .arg(key)
                .args(["-O", "private", "-o"])
                .arg(&ppk),
            "puttygen",
        );
    }
    let home = s.dir.path().join("putty-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = Command::new(require("plink", "putty-tools"));
    c.env("HOME", &home).args([
        "-ssh",
        "-batch",
        "-noagent",
        "-T",
        "-P",
        &s.port.to_string(),
    ]);
    for fp in fingerprints(s).split(',') {
        c.args(["-hostkey", fp]);
    }
    c.arg("-i").arg(&ppk).arg("git@127.0.0.1");
    if !cmd.is_empty() {
        c.arg(cmd);
    }
    c
}

fn openssh(s: &Server, key: &Path, cmd: &str) -> Command {
    let line = s.ssh_command(key);
    let mut words = line.split_whitespace();
    let mut c = Command::new(require(words.next().unwrap(), "openssh-client"));
    c.args(words)
        .args(["-T", "-p", &s.port.to_string(), "git@127.0.0.1"]);
    if !cmd.is_empty() {
        c.arg(cmd);
    }
    c
}

const CLIENTS: &[Client] = &[
    Client {
        name: "openssh",
        rsa: Rsa::Sha2,
        command: openssh,
    },
    Client {
        name: "libssh",
        rsa: Rsa::Sha2,
        command: |s, k, c| program(&built().libssh, s, k, c),
    },
    Client {
        name: "libssh2",
        rsa: Rsa::Sha1Only,
        command: |s, k, c| program(&built().libssh2, s, k, c),
    },
    Client {
        name: "x/crypto/ssh",
        rsa: Rsa::Sha2,
        command: |s, k, c| program(&built().go, s, k, c),
    },
    Client {
        name: "paramiko",
        rsa: Rsa::Sha2,
        command: |s, k, c| python("paramiko", s, k, c),
    },
    Client {
        name: "asyncssh",
        rsa: Rsa::Sha2,
        command: |s, k, c| python("asyncssh", s, k, c),
    },
    Client {
        name: "dbclient",
        rsa: Rsa::Sha2,
        command: dbclient,
    },
    Client {
        name: "plink",
        rsa: Rsa::Sha2,
        command: plink,
    },
];

/// A server with both host key types (the RSA one made by ssh-keygen: generating RSA in a debug
/// build is slow), an Ed25519 key for alice, an RSA key for bob and one repository with a commit.
pub fn server(extra_algorithms: &str) -> (Server, PathBuf, PathBuf) {
    let cfg = config(EVERYONE_WRITES).replace(
        "host_keys = [\"host_ed25519_key\"]",
        "host_keys = [\"host_ed25519_key\", \"host_rsa_key\"]",
    );
    let cfg = cfg.replace(
        "[algorithms]\n",
        &format!("[algorithms]\n{extra_algorithms}"),
    );
    let s = start_prepared(&cfg, |data| {
        run_ok(
            Command::new(require("ssh-keygen", "openssh-client"))
                .args(["-q", "-t", "rsa", "-b", "3072", "-N", "", "-f"])
                .arg(data.join("host_rsa_key")),
            "ssh-keygen",
        );
        seed_repository(&data.join("repos"));
    });
    let alice = s.user_key("alice", Some("alice"));
    let bob = s.dir.path().join("bob");
    run_ok(
        Command::new(require("ssh-keygen", "openssh-client"))
            .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
            .arg(&bob),
        "ssh-keygen",
    );
    let public = std::fs::read_to_string(bob.with_extension("pub")).unwrap();
    let line = format!(
        "{} bob\n",
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let ak = s.data().join("authorized_keys");
    let text = std::fs::read_to_string(&ak).unwrap() + &line;
    std::fs::write(ak, text).unwrap();
    (s, alice, bob)
}

/// `repos/r.git` with one commit on `main`.
fn seed_repository(repos: &Path) {
    let work = repos.join("../seed");
    let git = |args: &[&str]| {
        run_ok(
            Command::new("git")
                .args(["-c", "user.name=S", "-c", "user.email=s@example.org"])
                .args(args),
            "git",
        )
    };
    let (bare, work) = (repos.join("r.git"), work.to_str().unwrap().to_owned());
    git(&["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()]);
    git(&["init", "-q", "-b", "main", &work]);
    git(&["-C", &work, "commit", "-q", "--allow-empty", "-m", "seed"]);
    git(&["-C", &work, "push", "-q", bare.to_str().unwrap(), "main"]);
}

fn run(client: &Client, s: &Server, key: &Path, cmd: &str, stdin: &[u8]) -> Output {
    let mut c = (client.command)(s, key, cmd);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{}: {e}", client.name));
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin).unwrap();
    drop(child.stdin.take());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} hung; server log:\n{}", client.name, s.log());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `git-upload-pack` sends the ref advertisement; the client answers with a flush-pkt ("0000":
/// nothing wanted) and the command ends with status 0.
fn reads_ref_advertisement(client: &Client, s: &Server, key: &Path, who: &str) {
    let out = run(client, s, key, "git-upload-pack '/r.git'", b"0000");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} as {who}: {stdout}\n{stderr}\nserver log:\n{}",
        client.name,
        s.log()
    );
    assert!(
        stdout.contains(" refs/heads/main") && stdout.ends_with("0000"),
        "{} as {who}: {stdout}",
        client.name
    );
}

fn shell_is_refused(client: &Client, s: &Server, key: &Path) {
    let out = run(client, s, key, "", b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", client.name);
    assert!(
        stderr.contains("hello alice, you are authenticated, but there is no shell here"),
        "{}: {stderr}",
        client.name
    );
}

fn matrix(name: &str) {
    let client = CLIENTS.iter().find(|c| c.name == name).unwrap();
    let (s, alice, bob) = server("");
    reads_ref_advertisement(client, &s, &alice, "alice (Ed25519)");
    shell_is_refused(client, &s, &alice);
    // Each connection agreed on the client's own defaults; the log names what they were.
    let log = s.log();
    let agreed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("key exchange done"))
        .collect();
    assert_eq!(agreed.len(), 2, "{name}: {log}");
    eprintln!("{name}: {}", agreed[0]);
    match client.rsa {
        Rsa::Sha2 => reads_ref_advertisement(client, &s, &bob, "bob (RSA)"),
        Rsa::Sha1Only => {
            let out = run(client, &s, &bob, "git-upload-pack '/r.git'", b"0000");
            assert_eq!(
                out.status.code(),
                Some(2),
                "{name}: SHA-1 RSA must be refused"
            );
            drop(s);
            let user_keys =
                "user_keys = [\"ssh-ed25519\", \"rsa-sha2-512\", \"rsa-sha2-256\", \"ssh-rsa\"]\n";
            let (s, _, bob) = server(user_keys);
            reads_ref_advertisement(client, &s, &bob, "bob (RSA, ssh-rsa enabled)");
        }
    }
}

#[test]
fn openssh_client() {
    matrix("openssh");
}

#[test]
fn libssh_client() {
    matrix("libssh");
}

/// The bug's own proof: git clones through libssh 0.10 (our libssh program as git's SSH
/// command, through a wrapper that turns git's `-p PORT user@host COMMAND` into its arguments),
/// with protocol v2 and v0.
#[test]
fn git_clones_through_libssh() {
    let (s, alice, _) = server("");
    let wrapper = s.dir.path().join("libssh-ssh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nport=22\nwhile [ $# -gt 2 ]; do\n  case \"$1\" in\n    -p) port=$2; shift 2;;\n    -o) shift 2;;\n    *) shift;;\n  esac\ndone\nexec {} \"${{1#*@}}\" \"$port\" git {} '{}' \"$2\"\n",
            built().libssh.display(),
            alice.display(),
            fingerprints(&s)
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();
    let work = tempfile::tempdir().unwrap();
    for version in ["2", "0"] {
        let dest = work.path().join(format!("v{version}"));
        let out = Command::new("git")
            .args(["-c", "ssh.variant=ssh", "-c"])
            .arg(format!("protocol.version={version}"))
            .args(["clone", "-q", &s.url("r.git")])
            .arg(&dest)
            .env("GIT_SSH_COMMAND", &wrapper)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "v{version}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            s.log()
        );
        let log = Command::new("git")
            .args(["-C"])
            .arg(&dest)
            .args(["log", "--format=%s", "main"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&log.stdout).trim(),
            "seed",
            "v{version}"
        );
    }
}

#[test]
fn libssh2_client() {
    matrix("libssh2");
}

#[test]
fn go_x_crypto_ssh_client() {
    matrix("x/crypto/ssh");
}

#[test]
fn paramiko_client() {
    matrix("paramiko");
}

#[test]
fn asyncssh_client() {
    matrix("asyncssh");
}

#[test]
fn dropbear_dbclient_client() {
    matrix("dbclient");
}

#[test]
fn putty_plink_client() {
    matrix("plink");
}

/// Which clients of the matrix still connect under `preset = "hardened"` (post-quantum key
/// exchange and etm MACs only). The list is the one `portcullis.example.toml` documents.
#[test]
fn hardened_preset_admits_exactly_the_documented_clients() {
    let (s, alice, _) = server("preset = \"hardened\"\n");
    let mut admitted = Vec::new();
    for client in CLIENTS {
        let out = run(client, &s, &alice, "git-upload-pack '/r.git'", b"0000");
        match out.status.code() {
            Some(0) => admitted.push(client.name),
            // Refused during key exchange: the client and the preset share no method.
            _ => assert!(
                !String::from_utf8_lossy(&out.stdout).contains("refs/heads"),
                "{}",
                client.name
            ),
        }
    }
    let example = portcullis::config::DEFAULT;
    let documented = example
        .lines()
        .find_map(|l| l.strip_prefix("#   hardened admits: "))
        .expect("portcullis.example.toml lists the clients the hardened preset admits");
    let documented: Vec<&str> = documented.split(", ").map(str::trim).collect();
    assert_eq!(admitted, documented, "server log:\n{}", s.log());
}
