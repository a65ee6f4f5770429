//! The `portcullis` binary with real git and ssh: clone, fetch, push, ls-remote (v0 and v2),
//! archive, a 100 MiB repository, 20 concurrent clones, an interrupted push, refusals.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{random_file, require, rss_kib};
use crate::raw_git::raw_fetch;

pub struct Server {
    child: std::sync::Mutex<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub printed: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Server {
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// A server started by someone else (systemd-socket-activate), logging to `dir/server.log`.
    pub fn adopt(child: Child, port: u16, dir: tempfile::TempDir) -> Self {
        Server {
            child: std::sync::Mutex::new(child),
            port,
            dir,
            printed: Vec::new(),
        }
    }

    /// Whether the server process has exited (and how).
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().unwrap().try_wait().unwrap()
    }

    /// The configuration file it was started with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("portcullis.toml")
    }

    /// `portcullis <args>` on this server's configuration and data directory.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data())
            .args(args)
            .output()
            .unwrap()
    }

    /// A user key, listed in authorized_keys under `name` unless `name` is None.
    pub fn user_key(&self, file: &str, name: Option<&str>) -> PathBuf {
        self.user_key_with(file, name, "")
    }

    /// A new Ed25519 key in `file`, listed in authorized_keys as `{options} {key} {name}` when
    /// `name` is given.
    pub fn user_key_with(&self, file: &str, name: Option<&str>, options: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        assert!(
            Command::new(require("ssh-keygen", "openssh-client"))
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
        if let Some(name) = name {
            let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
            let mut parts = public.split_whitespace();
            let line = format!(
                "{options} {} {} {name}\n",
                parts.next().unwrap(),
                parts.next().unwrap()
            );
            let ak = self.data().join("authorized_keys");
            let mut text = std::fs::read_to_string(&ak).unwrap_or_default();
            text.push_str(line.trim_start());
            std::fs::write(ak, text).unwrap();
        }
        path
    }

    pub fn ssh_command(&self, key: &Path) -> String {
        let kh = self.dir.path().join("known_hosts");
        if !kh.exists() {
            let mut text = String::new();
            for entry in std::fs::read_dir(self.data()).unwrap().flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|x| x == "pub")
                    && p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("host_")
                {
                    let public = std::fs::read_to_string(&p).unwrap();
                    text.push_str(&format!("[127.0.0.1]:{} {}\n", self.port, public.trim()));
                }
            }
            std::fs::write(&kh, text).unwrap();
        }
        format!(
            "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -i {}",
            kh.display(),
            key.display()
        )
    }

    /// `ssh {options} -N` to the server with `key`: a connection held open, no command.
    pub fn held_ssh(&self, key: &Path, options: &str, stderr: Stdio) -> Child {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec {} {options} -N -p {} git@127.0.0.1",
                self.ssh_command(key),
                self.port
            ))
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    }

    pub fn url(&self, repo: &str) -> String {
        format!("ssh://git@127.0.0.1:{}/{repo}", self.port)
    }
}

/// Starts the binary with `config` (a full TOML file) on a free port.
pub fn start(config: &str) -> Server {
    start_prepared(config, |_| {})
}

/// [`start`], after `prepare` has put files into the data directory.
pub fn start_prepared(config: &str, prepare: impl FnOnce(&Path)) -> Server {
    start_on("127.0.0.1:0", config, prepare)
}

/// [`start_prepared`] listening on `listen` (a loopback address).
pub fn start_on(listen: &str, config: &str, prepare: impl FnOnce(&Path)) -> Server {
    require("git", "git");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    std::fs::write(&cfg, config).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/authorized_keys"), "").unwrap();
    prepare(&dir.path().join("data"));
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(&cfg)
        .args(["--listen", listen, "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut printed = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("portcullis exited before listening")
            .unwrap();
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("listening on ") {
            let addr = rest.split_whitespace().next().unwrap();
            break addr.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    Server {
        child: std::sync::Mutex::new(child),
        port,
        dir,
        printed,
    }
}

/// The embedded default configuration with one Ed25519 host key (RSA generation is slow in
/// debug builds) and the given access rules.
pub fn config(access: &str) -> String {
    let base = portcullis::config::DEFAULT.replace(
        "host_keys = [\"host_ed25519_key\", \"host_rsa_key\"]",
        "host_keys = [\"host_ed25519_key\"]",
    );
    let start = base.find("[[access]]").unwrap();
    let end = base.find("[algorithms]").unwrap();
    format!("{}{access}\n{}", &base[..start], &base[end..])
        .replace("level = \"info\"", "level = \"info,portcullis=debug\"")
        // Tests run in parallel: each instance's monitoring listener on a port of its own.
        .replace("listen = \"127.0.0.1:9222\"", "listen = \"127.0.0.1:0\"")
}

pub const EVERYONE_WRITES: &str =
    "[[access]]\nwho = [\"*\"]\nrepos = [\"**\"]\naccess = \"write\"\n";

pub struct Git<'a> {
    pub server: &'a Server,
    pub key: PathBuf,
}

impl<'a> Git<'a> {
    /// A git runner with a new key listed in authorized_keys under `name`.
    pub fn as_user(server: &'a Server, name: &str) -> Self {
        Git {
            server,
            key: server.user_key(name, Some(name)),
        }
    }

    /// `git ls-remote` over protocol v2 with the packet trace on; asserts success and that v2
    /// was spoken, returns the trace.
    pub fn ls_remote_v2(&self, cwd: &Path, repo: &str) -> String {
        let out = Command::new(require("git", "git"))
            .current_dir(cwd)
            .args([
                "-c",
                "protocol.version=2",
                "ls-remote",
                &self.server.url(repo),
            ])
            .env("GIT_SSH_COMMAND", self.server.ssh_command(&self.key))
            .env("GIT_TRACE_PACKET", "1")
            .output()
            .unwrap();
        let trace = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{trace}");
        assert!(trace.contains("< version 2"), "v2 not negotiated:\n{trace}");
        trace
    }

    pub fn run(&self, cwd: &Path, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(require("git", "git"))
            .current_dir(cwd)
            .args([
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@example.org",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "advice.detachedHead=false",
            ])
            .args(args)
            .env("GIT_SSH_COMMAND", self.server.ssh_command(&self.key))
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let (ok, out, err) = self.run(cwd, args);
        assert!(
            ok,
            "git {args:?} failed:\n{err}\nserver log:\n{}",
            self.server.log()
        );
        out
    }

    /// `git push -q URL main` from `local`, running in the background (to be cut off).
    pub fn spawn_push(&self, local: &Path, url: &str) -> std::process::Child {
        Command::new("git")
            .current_dir(local)
            .args(["push", "-q", url, "main"])
            .env("GIT_SSH_COMMAND", self.server.ssh_command(&self.key))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

/// Waits (at most 30 s) until `objects` holds a push's quarantine (git's `tmp_objdir` or
/// `incoming` directory), then kills the push and its ssh, like a client losing power.
pub fn cut_off_while_receiving(mut push: std::process::Child, objects: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !objects.read_dir().unwrap().flatten().any(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n.starts_with("tmp_objdir") || n.starts_with("incoming")
    }) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let _ = Command::new("pkill")
        .args(["-KILL", "-P", &push.id().to_string()])
        .status();
    push.kill().unwrap();
    push.wait().unwrap();
}

/// Waits (at most `secs`) until no process's command line matches `pattern` (`pgrep -f`).
pub fn wait_gone(pattern: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = Command::new("pgrep")
            .args(["-f", pattern])
            .output()
            .unwrap();
        if left.stdout.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running: {}",
            String::from_utf8_lossy(&left.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A local repository with a few commits.
pub fn local_repo(git: &Git<'_>, dir: &Path, commits: usize) -> PathBuf {
    let path = dir.join("local");
    git.ok(dir, &["init", "-q", "local"]);
    for i in 0..commits {
        std::fs::write(
            path.join(format!("file{i}.txt")),
            format!("content {i}\n").repeat(i + 1),
        )
        .unwrap();
        git.ok(&path, &["add", "."]);
        git.ok(&path, &["commit", "-q", "-m", &format!("commit {i}")]);
    }
    path
}

/// `n` clones of `repo` at once into `work/c<i>`: each must succeed, be fsck-clean and have
/// `head` checked out.
pub fn concurrent_clones(git: &Git<'_>, work: &Path, repo: &str, n: usize, head: &str) {
    let ssh = git.server.ssh_command(&git.key);
    let children: Vec<_> = (0..n)
        .map(|i| {
            Command::new("git")
                .current_dir(work)
                .args(["clone", "-q", &git.server.url(repo), &format!("c{i}")])
                .env("GIT_SSH_COMMAND", &ssh)
                .stdin(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "clone {i}: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            git.server.log()
        );
        let dir = work.join(format!("c{i}"));
        git.ok(&dir, &["fsck", "--no-progress"]);
        assert_eq!(rev(git, &dir, "HEAD"), head);
    }
}

fn rev(git: &Git<'_>, cwd: &Path, what: &str) -> String {
    git.ok(cwd, &["rev-parse", what]).trim().to_owned()
}

#[test]
fn clone_fetch_push_ls_remote_and_archive() {
    let s = start(&config(EVERYONE_WRITES));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 3);
    git.ok(&local, &["push", "-q", &s.url("team/app.git"), "main"]);
    // Clone by the scp-like and the ssh:// forms, with and without .git.
    git.ok(work.path(), &["clone", "-q", &s.url("team/app"), "c1"]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("c1/file2.txt")).unwrap(),
        "content 2\n".repeat(3)
    );
    // A new branch, pushed and fetched.
    git.ok(&local, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(local.join("feature.txt"), "new\n").unwrap();
    git.ok(&local, &["add", "."]);
    git.ok(&local, &["commit", "-q", "-m", "feature"]);
    git.ok(&local, &["push", "-q", &s.url("team/app.git"), "feature"]);
    git.ok(&work.path().join("c1"), &["fetch", "-q", "origin"]);
    assert_eq!(
        rev(&git, &work.path().join("c1"), "origin/feature"),
        rev(&git, &local, "feature")
    );
    // ls-remote, protocol v0 and v2 (and v2 really in use).
    let v0 = git.ok(
        work.path(),
        &[
            "-c",
            "protocol.version=0",
            "ls-remote",
            &s.url("team/app.git"),
        ],
    );
    assert!(v0.contains("refs/heads/feature"), "{v0}");
    git.ls_remote_v2(work.path(), "team/app.git");
    assert!(s.log().contains("protocol=version=2"), "{}", s.log());
    // git archive --remote (upload-archive).
    let tar = git.ok(
        work.path(),
        &[
            "archive",
            "--format=tar",
            &format!("--remote={}", s.url("team/app.git")),
            "main",
            "file0.txt",
        ],
    );
    assert!(tar.contains("content 0"), "archive");
    // The session log line carries who, what and how much.
    let log = s.log();
    assert!(
        log.contains("user=alice")
            && log.contains("repo=team/app.git")
            && log.contains("command=git-receive-pack")
            && log.contains("bytes_out="),
        "{log}"
    );
}

#[test]
fn host_key_fingerprints_printed_at_start_match_what_ssh_sees() {
    // The real defaults: Ed25519 and RSA-3072 keys generated on first start.
    let s = start(
        &portcullis::config::DEFAULT
            .replace("listen = \"127.0.0.1:9222\"", "listen = \"127.0.0.1:0\""),
    );
    let printed: Vec<String> = s
        .printed
        .iter()
        .filter(|l| l.starts_with("host key "))
        .cloned()
        .collect();
    assert_eq!(printed.len(), 2, "{:?}", s.printed);
    let key = s.user_key("alice", Some("alice"));
    for (alg, line) in [("ssh-ed25519", &printed[0]), ("rsa-sha2-512", &printed[1])] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} -v -o HostKeyAlgorithms={alg} -p {} git@127.0.0.1 git-upload-pack \\'none\\'",
                s.ssh_command(&key),
                s.port
            ))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        let fp = line.split_whitespace().last().unwrap();
        assert!(
            log.contains(&format!(
                "Server host key: {} {fp}",
                if alg == "ssh-ed25519" {
                    "ssh-ed25519"
                } else {
                    "ssh-rsa"
                }
            )),
            "{alg}: {log}"
        );
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.data().join("host_rsa_key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_100_mib_repository_clones_intact_and_20_concurrent_clones_are_fsck_clean() {
    use sha2::{Digest, Sha256};
    let s = start(&config(EVERYONE_WRITES));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 2);
    let digest = random_file(&local.join("big.bin"), 100);
    git.ok(&local, &["add", "big.bin"]);
    git.ok(&local, &["commit", "-q", "-m", "big"]);
    git.ok(&local, &["push", "-q", &s.url("big.git"), "main"]);
    git.ok(
        work.path(),
        &["clone", "-q", &s.url("big.git"), "big-clone"],
    );
    let cloned = std::fs::read(work.path().join("big-clone/big.bin")).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&cloned)), digest);
    git.ok(&work.path().join("big-clone"), &["fsck", "--no-progress"]);
    // 20 clones of a small repository at once.
    let small = work.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let sl = local_repo(&git, &small, 30);
    git.ok(&sl, &["push", "-q", &s.url("small.git"), "main"]);
    let started = Instant::now();
    concurrent_clones(&git, work.path(), "small.git", 20, &rev(&git, &sl, "HEAD"));
    assert!(started.elapsed() < Duration::from_secs(120));
}

/// A client that stops reading stalls git (the window closes, the server stops reading git's
/// pipe, git blocks on it) instead of filling the server's memory; others are served
/// meanwhile, and when the client reads again the whole pack arrives intact.
#[test]
fn a_stalled_fetch_stays_bounded_and_then_completes_intact() {
    let s = start(&config(EVERYONE_WRITES));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 1);
    random_file(&local.join("big.bin"), 48);
    git.ok(&local, &["add", "big.bin"]);
    git.ok(&local, &["commit", "-q", "-m", "big"]);
    git.ok(&local, &["push", "-q", &s.url("big.git"), "main"]);
    let before = rss_kib(s.pid());
    let (mut child, mut out) = raw_fetch(&s, &git.key, "big.git");
    let mut pack = vec![0u8; 256 * 1024];
    out.read_exact(&mut pack).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let during = rss_kib(s.pid());
    assert!(
        during.saturating_sub(before) < 24 * 1024,
        "server grew from {before} KiB to {during} KiB while the client stalled"
    );
    git.ok(work.path(), &["ls-remote", &s.url("big.git")]);
    out.read_to_end(&mut pack).unwrap();
    assert!(child.wait().unwrap().success());
    // Without side-band the answer is one NAK pkt-line, then the pack itself.
    let raw = pack.strip_prefix(b"0008NAK\n").expect("NAK, then the pack");
    assert!(
        raw.starts_with(b"PACK") && raw.len() > 48 << 20,
        "{}",
        raw.len()
    );
    let file = work.path().join("fetched.pack");
    std::fs::write(&file, raw).unwrap();
    // index-pack checks the trailer checksum and every object.
    git.ok(work.path(), &["index-pack", file.to_str().unwrap()]);
}

#[test]
fn an_interrupted_push_leaves_refs_unchanged_and_the_repository_fsck_clean() {
    let s = start(&config(EVERYONE_WRITES));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 1);
    git.ok(&local, &["push", "-q", &s.url("p.git"), "main"]);
    let before = git.ok(work.path(), &["ls-remote", &s.url("p.git")]);
    random_file(&local.join("big.bin"), 64);
    git.ok(&local, &["add", "big.bin"]);
    git.ok(&local, &["commit", "-q", "-m", "big"]);
    let push = git.spawn_push(&local, &s.url("p.git"));
    // Kill it mid-transfer: once the server has started receiving.
    cut_off_while_receiving(push, &s.data().join("repos/p.git/objects"));
    std::thread::sleep(Duration::from_millis(500));
    let after = git.ok(work.path(), &["ls-remote", &s.url("p.git")]);
    assert_eq!(before, after, "refs changed by an interrupted push");
    let repo = s.data().join("repos/p.git");
    git.ok(&repo, &["fsck", "--no-progress"]);
    // The server-side git is gone too (its process group was killed or it saw EOF).
    wait_gone(&format!("receive-pack {}", repo.display()), 10);
}

#[test]
fn an_idle_git_is_killed_after_the_idle_timeout() {
    let s = start(&config(EVERYONE_WRITES).replace("idle_secs = 600", "idle_secs = 1"));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 1);
    git.ok(&local, &["push", "-q", &s.url("idle.git"), "main"]);
    // upload-pack advertises its refs, then waits for a request that never comes.
    let started = Instant::now();
    let mut ssh = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {} -p {} git@127.0.0.1 \"git-upload-pack '/idle.git'\"",
            s.ssh_command(&git.key),
            s.port
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Hold stdin open (wait() would close it, and EOF ends upload-pack by itself).
    let _stdin = ssh.stdin.take();
    let status = ssh.wait().unwrap();
    assert!(!status.success());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        s.log().contains("git idle too long, stopped"),
        "{}",
        s.log()
    );
}

#[test]
fn refusals_are_clean_and_say_why() {
    let rules = format!(
        "{EVERYONE_WRITES}[[access]]\nwho = [\"bob\"]\nrepos = [\"**\"]\naccess = \"read\"\n"
    )
    .replace("who = [\"*\"]", "who = [\"alice\"]");
    let s = start(&config(&rules));
    let alice = Git::as_user(&s, "alice");
    let bob = Git::as_user(&s, "bob");
    let mallory = Git {
        server: &s,
        key: s.user_key("mallory", None),
    };
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&alice, work.path(), 1);
    alice.ok(&local, &["push", "-q", &s.url("ro.git"), "main"]);
    // Read-only: bob clones but cannot push, and is told the same as for a missing repository.
    bob.ok(work.path(), &["clone", "-q", &s.url("ro.git"), "bob-clone"]);
    let (ok, _, err) = bob.run(&local, &["push", "-q", &s.url("ro.git"), "main:other"]);
    assert!(
        !ok && err.contains("not found, or you do not have access to it"),
        "{err}"
    );
    let (ok, _, missing) = alice.run(work.path(), &["clone", "-q", &s.url("nothere.git"), "x"]);
    assert!(
        !ok && missing.contains("not found, or you do not have access to it"),
        "{missing}"
    );
    // An unknown key.
    let (ok, _, err) = mallory.run(work.path(), &["clone", "-q", &s.url("ro.git"), "m"]);
    assert!(
        !ok && err.contains("Permission denied (publickey)"),
        "{err}"
    );
    // Traversal and option injection.
    let ssh = |remote: &str, extra: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} {extra} -p {} git@127.0.0.1 {remote}",
                s.ssh_command(&alice.key),
                s.port
            ))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let marker = work.path().join("pwned");
    for remote in [
        "\"git-upload-pack '/../../etc'\"".to_string(),
        "\"git-upload-pack '../ro.git'\"".to_string(),
        format!(
            "\"git-upload-pack '--upload-pack=touch {}'\"",
            marker.display()
        ),
        "\"git-upload-pack '/ro.git' ; id\"".to_string(),
    ] {
        let out = ssh(&remote, "");
        assert_eq!(out.status.code(), Some(1), "{remote}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty(), "{remote}");
    }
    assert!(!marker.exists());
    // A shell, a command, port forwarding: refused, and nothing hangs.
    let out = ssh("", "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("hello alice, you are authenticated, but there is no shell here"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ssh("ls", "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "only git-upload-pack, git-receive-pack and git-upload-archive are allowed here"
    ));
    let out = ssh("", "-N -o ExitOnForwardFailure=yes -R 0:127.0.0.1:9");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forwarding failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ssh("", "-o ExitOnForwardFailure=yes -W 127.0.0.1:22");
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("administratively prohibited"));
}

#[test]
fn local_forwarding_is_refused_and_json_logs_are_one_object_per_line() {
    let cfg = config(EVERYONE_WRITES).replace("format = \"human\"", "format = \"json\"");
    let s = start(&cfg);
    let alice = Git::as_user(&s, "alice");
    // ssh -N -L: the forward is refused when used; ssh stays up and reports it.
    let local = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut fwd = s.held_ssh(
        &alice.key,
        &format!("-L {local}:127.0.0.1:22"),
        Stdio::piped(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", local)) {
            break c;
        }
        assert!(Instant::now() < deadline, "ssh -L did not listen");
        std::thread::sleep(Duration::from_millis(20));
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        std::io::Read::read(&mut conn, &mut buf).unwrap_or(0),
        0,
        "forwarded connection must be closed"
    );
    fwd.kill().unwrap();
    let out = fwd.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("administratively prohibited"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A session, then its JSON line.
    let work = tempfile::tempdir().unwrap();
    let local_repo = local_repo(&alice, work.path(), 1);
    alice.ok(&local_repo, &["push", "-q", &s.url("j.git"), "main"]);
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("\"session\""))
        .unwrap_or_else(|| panic!("{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["fields"]["user"], "alice");
    assert_eq!(v["fields"]["repo"], "j.git");
    assert_eq!(v["fields"]["command"], "git-receive-pack");
    assert_eq!(v["fields"]["exit"], "0");
    assert!(v["fields"]["bytes_in"].as_u64().unwrap() > 0);
}
