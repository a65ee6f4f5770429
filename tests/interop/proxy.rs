//! Proxy mode with the real binary, real git, and OpenSSH sshd as the upstream storage host:
//! clone/fetch/push/ls-remote (v0 and v2) through the proxy next to a local repository, the
//! identity passed on, 20 concurrent clones through the pool, failures (upstream down, wrong
//! host key, upstream killed mid-transfer, a stalled client), and an interrupted push.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::rss_kib;
use crate::common::{Sshd, require};
use crate::git_server::{
    EVERYONE_WRITES, Git, Server, config, cut_off_while_receiving, local_repo, wait_gone,
};
use crate::raw_git::raw_fetch;

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An sshd storage host with a repository directory, trusting `client_pub`.
struct Storage {
    sshd: Sshd,
}

impl Storage {
    fn start(client_pub: &str, extra: &str) -> Self {
        require("git", "git");
        let sshd = Sshd::start(extra);
        std::fs::write(sshd.dir.path().join("authorized_keys"), client_pub).unwrap();
        std::fs::create_dir_all(sshd.dir.path().join("repos")).unwrap();
        Self { sshd }
    }

    fn repos(&self) -> PathBuf {
        self.sshd.dir.path().join("repos")
    }

    /// A bare repository at `name` under the repository directory.
    fn bare(&self, name: &str) -> PathBuf {
        let path = self.repos().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        assert!(
            Command::new("git")
                .args(["init", "-q", "--bare", "-b", "main"])
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
        path
    }

    /// The `[[upstreams]]` table for it.
    fn upstream(&self, name: &str, extra: &str) -> String {
        format!(
            "\n[[upstreams]]\nname = \"{name}\"\naddress = \"127.0.0.1:{}\"\nuser = \"{}\"\n\
             key = \"upstream_key\"\nhost_key = \"{}\"\npath_prefix = \"{}/\"\n{extra}\n",
            self.sshd.port,
            current_user(),
            self.sshd.host_key.to_openssh(),
            self.repos().display()
        )
    }

    fn accepted_connections(&self) -> usize {
        self.sshd.log().matches("Accepted publickey").count()
    }

    /// Kills the whole storage host: sshd and every process under it (sessions, git).
    fn kill(&self) {
        let root = self.sshd.pid();
        let mut all = vec![root];
        let mut i = 0;
        while i < all.len() {
            all.extend(children(all[i]));
            i += 1;
        }
        for pid in all {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so parse after the last ')'.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(p);
        }
    }
    out
}

/// Writes the proxy's client key into a fresh data dir; returns (dir, public key line).
fn proxy_key() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("upstream_key");
    assert!(
        Command::new(require("ssh-keygen", "openssh-client"))
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (dir, public)
}

/// The binary with `tables` appended to the test config, the proxy key copied into its data.
fn start_proxy(key_dir: &Path, tables: &str) -> Server {
    // The key must be in the data dir before start: the configuration loads it.
    crate::git_server::start_prepared(&(config(EVERYONE_WRITES) + tables), |data| {
        std::fs::copy(key_dir.join("upstream_key"), data.join("upstream_key")).unwrap();
    })
}

/// A proxy sending every repository to one storage host that holds a bare `repo`.
fn behind_one_store(repo: &str) -> (tempfile::TempDir, Storage, PathBuf, Server) {
    let (keys, public) = proxy_key();
    let store = Storage::start(&public, "");
    let upstream_repo = store.bare(repo);
    let s = start_proxy(
        keys.path(),
        &(store.upstream("store", "") + &routes(&[("**", "store")])),
    );
    (keys, store, upstream_repo, s)
}

fn routes(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(glob, up)| format!("\n[[routes]]\nrepos = [\"{glob}\"]\nupstream = \"{up}\"\n"))
        .collect()
}

fn git_in(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(cwd)
        .args(["-c", "user.name=T", "-c", "user.email=t@example.org"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn clone_fetch_push_ls_remote_through_the_proxy_next_to_a_local_repository() {
    let (keys, public) = proxy_key();
    let store = Storage::start(&public, "AcceptEnv GIT_PROTOCOL PORTCULLIS_*\n");
    let upstream_repo = store.bare("team/app.git");
    // A hook upstream records the identity the proxy sent along.
    let seen = store.sshd.dir.path().join("identity-seen");
    let hook = upstream_repo.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$PORTCULLIS_USER $PORTCULLIS_KEY_FINGERPRINT\" > {}\n",
            seen.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&hook).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The same storage once more, unpooled, under another name (a symlinked directory).
    std::os::unix::fs::symlink(store.repos().join("team"), store.repos().join("direct")).unwrap();
    let s = start_proxy(
        keys.path(),
        &(store.upstream("store", "send_identity = true")
            + &store.upstream("store-direct", "pool = false")
            + &routes(&[("team/**", "store"), ("direct/**", "store-direct")])),
    );
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 3);
    // Push through the proxy: it lands in the upstream's repository.
    git.ok(&local, &["push", "-q", &s.url("team/app.git"), "main"]);
    let head = git_in(&local, &["rev-parse", "HEAD"]);
    assert_eq!(
        git_in(&upstream_repo, &["rev-parse", "refs/heads/main"]),
        head
    );
    let identity = std::fs::read_to_string(&seen).unwrap();
    assert!(identity.starts_with("alice SHA256:"), "{identity}");
    // Clone (scp-style path without .git too), fetch a new commit, ls-remote v0 and v2.
    git.ok(work.path(), &["clone", "-q", &s.url("team/app.git"), "c1"]);
    assert_eq!(
        git_in(&work.path().join("c1"), &["rev-parse", "HEAD"]),
        head
    );
    std::fs::write(local.join("more.txt"), "more\n").unwrap();
    git.ok(&local, &["add", "."]);
    git.ok(&local, &["commit", "-q", "-m", "more"]);
    git.ok(&local, &["push", "-q", &s.url("team/app.git"), "main"]);
    git.ok(&work.path().join("c1"), &["pull", "-q", "origin", "main"]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("c1/more.txt")).unwrap(),
        "more\n"
    );
    let v0 = git.ok(
        work.path(),
        &["-c", "protocol.version=0", "ls-remote", &s.url("team/app")],
    );
    assert!(v0.contains("refs/heads/main"), "{v0}");
    git.ls_remote_v2(work.path(), "team/app.git");
    // The unpooled route and a local repository, side by side in the same server.
    git.ok(
        work.path(),
        &["clone", "-q", &s.url("direct/app.git"), "c2"],
    );
    assert!(work.path().join("c2/more.txt").exists());
    git.ok(&local, &["push", "-q", &s.url("here.git"), "main"]);
    assert!(s.data().join("repos/here.git").exists());
    assert!(!store.repos().join("here.git").exists());
    git.ok(work.path(), &["clone", "-q", &s.url("here.git"), "c3"]);
    // Accounting: every proxied session names its upstream; pooled ones were reused.
    let log = s.log();
    let proxied: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("session") && l.contains("upstream=store "))
        .collect();
    assert!(proxied.len() >= 5, "{log}");
    assert!(proxied.iter().any(|l| l.contains("reused=true")), "{log}");
    let direct: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("upstream=store-direct"))
        .collect();
    assert!(
        !direct.is_empty() && direct.iter().all(|l| l.contains("reused=false")),
        "{log}"
    );
    // Nothing proxied was denied or missing: a denied upstream repository looks missing.
    let (ok, _, err) = git.run(work.path(), &["ls-remote", &s.url("team/../etc")]);
    assert!(!ok && err.contains("not found"), "{err}");
}

#[test]
fn twenty_concurrent_clones_through_the_pool_are_fsck_clean() {
    let (_keys, store, upstream_repo, s) = behind_one_store("small.git");
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 20);
    git_in(
        &local,
        &["push", "-q", upstream_repo.to_str().unwrap(), "main"],
    );
    let head = git_in(&local, &["rev-parse", "HEAD"]);
    crate::git_server::concurrent_clones(&git, work.path(), "small.git", 20, head.trim());
    // 20 sessions over a handful of upstream connections (sshd's MaxSessions is 10).
    let upstream_logins = store.accepted_connections();
    assert!(
        (2..=6).contains(&upstream_logins),
        "{upstream_logins} upstream logins for 20 clones"
    );
    // A second round rides entirely on the pooled connections.
    for i in 0..3 {
        git.ok(
            work.path(),
            &["clone", "-q", &s.url("small.git"), &format!("again{i}")],
        );
    }
    assert_eq!(store.accepted_connections(), upstream_logins);
}

#[test]
fn upstream_down_or_with_the_wrong_host_key_fails_fast_and_clearly() {
    let (keys, public) = proxy_key();
    let store = Storage::start(&public, "");
    store.bare("good/app.git");
    let closed = crate::common::closed_port();
    let closed_port = closed.port;
    let wrong_key = {
        let other = Storage::start("", "");
        other.sshd.host_key.to_openssh()
    };
    let down = format!(
        "\n[[upstreams]]\nname = \"down\"\naddress = \"127.0.0.1:{closed_port}\"\nuser = \"git\"\n\
         key = \"upstream_key\"\nhost_key = \"{}\"\n",
        store.sshd.host_key.to_openssh()
    );
    // An upstream that does not know our key.
    let stranger = Storage::start("", "");
    let refused = stranger.upstream("refused", "");
    let impostor = store
        .upstream("impostor", "")
        .replace(&store.sshd.host_key.to_openssh(), &wrong_key);
    let s = start_proxy(
        keys.path(),
        &(store.upstream("store", "")
            + &down
            + &impostor
            + &refused
            + &routes(&[
                ("good/**", "store"),
                ("nokey/**", "refused"),
                ("down/**", "down"),
                ("fake/**", "impostor"),
            ])),
    );
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let (ok, _, err) = git.run(work.path(), &["clone", "-q", &s.url("down/app.git"), "x"]);
    assert!(!ok);
    assert!(
        err.contains("portcullis: upstream down unreachable"),
        "{err}\n{}",
        s.log()
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    let (ok, _, err) = git.run(work.path(), &["clone", "-q", &s.url("fake/app.git"), "y"]);
    assert!(!ok);
    assert!(
        err.contains("portcullis: upstream impostor failed host key verification"),
        "{err}"
    );
    let (ok, _, err) = git.run(work.path(), &["clone", "-q", &s.url("nokey/app.git"), "w"]);
    assert!(!ok);
    assert!(
        err.contains("portcullis: upstream refused refused our key"),
        "{err}"
    );
    // The log names both fingerprints; the client is not told them.
    let log = s.log();
    let expected = portcullis::keys::PublicKey::from_openssh(&wrong_key)
        .unwrap()
        .fingerprint();
    assert!(
        log.contains(&expected) && log.contains(&store.sshd.host_key.fingerprint()),
        "{log}"
    );
    assert!(!err.contains(&expected));
    // Meanwhile the healthy upstream serves as ever.
    let local = local_repo(&git, work.path(), 1);
    git.ok(&local, &["push", "-q", &s.url("good/app.git"), "main"]);
    git.ok(work.path(), &["clone", "-q", &s.url("good/app.git"), "z"]);
    // The metrics tell the same story, per upstream and result.
    let m = crate::monitoring::scrape(&crate::monitoring::monitoring_addr(&s));
    for (upstream, result) in [
        ("down", "unreachable"),
        ("impostor", "host_key"),
        ("refused", "auth_failed"),
        ("store", "ok"),
    ] {
        let name = format!(
            "portcullis_upstream_connections_total{{upstream=\"{upstream}\",result=\"{result}\"}}"
        );
        assert!(m.get(&name).copied().unwrap_or(0.0) >= 1.0, "{name}: {m:?}");
    }
}

/// A client that stops reading stalls the upstream instead of filling the proxy's memory;
/// killing the upstream under it ends the session quickly with a message, and the proxy
/// keeps serving other upstreams and local repositories.
#[test]
fn a_stalled_clone_stays_bounded_and_an_upstream_killed_mid_transfer_fails_cleanly() {
    let (keys, public) = proxy_key();
    let doomed = Storage::start(&public, "");
    let other = Storage::start(&public, "");
    let big = doomed.bare("big.git");
    let small = other.bare("small.git");
    let s = start_proxy(
        keys.path(),
        &(doomed.upstream("doomed", "")
            + &other.upstream("other", "")
            + &routes(&[("big.git", "doomed"), ("small.git", "other")])),
    );
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 1);
    git_in(&local, &["push", "-q", small.to_str().unwrap(), "main"]);
    // 48 MiB that does not compress.
    let mut blob = std::fs::File::create(local.join("big.bin")).unwrap();
    let mut rng = std::fs::File::open("/dev/urandom").unwrap();
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..48 {
        rng.read_exact(&mut buf).unwrap();
        blob.write_all(&buf).unwrap();
    }
    drop(blob);
    git_in(&local, &["add", "big.bin"]);
    git_in(&local, &["commit", "-q", "-m", "big"]);
    git_in(&local, &["push", "-q", big.to_str().unwrap(), "main"]);
    let proxy_pid = s.pid();
    let before = rss_kib(proxy_pid);
    let (mut child, mut out) = raw_fetch(&s, &git.key, "big.git");
    let mut got = vec![0u8; 256 * 1024];
    out.read_exact(&mut got).unwrap();
    // Stalled: upstream keeps producing, but only windows and pipes may hold data.
    std::thread::sleep(Duration::from_secs(2));
    let during = rss_kib(proxy_pid);
    assert!(
        during.saturating_sub(before) < 24 * 1024,
        "proxy grew from {before} KiB to {during} KiB while the client stalled"
    );
    // The storage host dies mid-transfer.
    doomed.kill();
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = out.read_to_end(&mut rest);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    assert!(!status.success());
    assert!(
        (got.len() + rest.len()) < 48 << 20,
        "the whole pack arrived: the upstream was not killed mid-transfer"
    );
    assert!(err.contains("portcullis: upstream doomed"), "{err}");
    // Others are untouched.
    git.ok(work.path(), &["clone", "-q", &s.url("small.git"), "s1"]);
    git.ok(&local, &["push", "-q", &s.url("mine.git"), "main"]);
    let (ok, _, err) = git.run(work.path(), &["clone", "-q", &s.url("big.git"), "b"]);
    assert!(!ok && err.contains("portcullis: upstream doomed"), "{err}");
}

#[test]
fn an_interrupted_push_through_the_proxy_leaves_upstream_refs_unchanged() {
    let (_keys, _store, upstream_repo, s) = behind_one_store("p.git");
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 1);
    git.ok(&local, &["push", "-q", &s.url("p.git"), "main"]);
    let before = git_in(&upstream_repo, &["show-ref"]);
    crate::common::random_file(&local.join("big.bin"), 64);
    git_in(&local, &["add", "big.bin"]);
    git_in(&local, &["commit", "-q", "-m", "big"]);
    let push = git.spawn_push(&local, &s.url("p.git"));
    // Once the upstream has started receiving, cut the client off.
    cut_off_while_receiving(push, &upstream_repo.join("objects"));
    // The upstream git notices (EOF through the proxy) and gives up; refs never moved.
    wait_gone(&format!("receive-pack '{}", upstream_repo.display()), 20);
    assert_eq!(git_in(&upstream_repo, &["show-ref"]), before);
    git_in(&upstream_repo, &["fsck", "--no-progress"]);
}

/// The pool replaces a connection that died under it (nothing is lost: no session was on it)
/// and closes connections that stay idle past the timeout.
#[test]
fn pooled_connections_are_replaced_when_dead_and_closed_when_idle() {
    let (keys, public) = proxy_key();
    let store = Storage::start(&public, "");
    let upstream_repo = store.bare("r.git");
    // This upstream is checked against a known_hosts file instead of a pinned key.
    std::fs::write(
        keys.path().join("known_hosts"),
        format!(
            "# storage\n[127.0.0.1]:{} {}\n",
            store.sshd.port,
            store.sshd.host_key.to_openssh()
        ),
    )
    .unwrap();
    let table = store.upstream("store", "idle_timeout_secs = 3").replace(
        &format!("host_key = \"{}\"", store.sshd.host_key.to_openssh()),
        &format!(
            "known_hosts = \"{}\"",
            keys.path().join("known_hosts").display()
        ),
    );
    assert!(table.contains("known_hosts"));
    let s = start_proxy(keys.path(), &(table + &routes(&[("**", "store")])));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 2);
    git_in(
        &local,
        &["push", "-q", upstream_repo.to_str().unwrap(), "main"],
    );
    git.ok(work.path(), &["ls-remote", &s.url("r.git")]);
    git.ok(work.path(), &["ls-remote", &s.url("r.git")]);
    assert_eq!(store.accepted_connections(), 1, "{}", s.log());
    // The storage host drops every connection (its listener stays): the next session dials.
    for pid in children(store.sshd.pid()) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    std::thread::sleep(Duration::from_millis(200));
    git.ok(work.path(), &["clone", "-q", &s.url("r.git"), "c"]);
    assert_eq!(store.accepted_connections(), 2, "{}", s.log());
    // Idle for longer than the timeout: the proxy says goodbye on its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !store
        .sshd
        .log()
        .contains("Received disconnect from 127.0.0.1")
    {
        assert!(
            Instant::now() < deadline,
            "idle connection never closed:\n{}",
            store.sshd.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Routes from the site's HTTP API instead of `[[routes]]`: the reference backend sends
/// `mirrored/…` to the storage host, and everything else stays local.
#[test]
fn an_http_backend_routes_a_repository_to_an_upstream() {
    use crate::http_backend::{Running, backend_with, http_keys, list, write_secret};
    let (keys, public) = proxy_key();
    let store = Storage::start(&public, "");
    let upstream_repo = store.bare("mirrored/r.git");
    let port = crate::common::free_port();
    let cfg = http_keys(
        &(config(EVERYONE_WRITES) + &store.upstream("store", "")),
        port,
    );
    let s = crate::git_server::start_prepared(&cfg, |data| {
        std::fs::copy(keys.path().join("upstream_key"), data.join("upstream_key")).unwrap();
        write_secret(data);
    });
    let git = Git {
        server: &s,
        key: s.user_key("alice", None),
    };
    let backend_keys = s.dir.path().join("backend_keys");
    list(&backend_keys, &git, "alice");
    let _up = Running(backend_with(
        s.dir.path(),
        port,
        &backend_keys,
        &["--route", "mirrored/=store"],
    ));
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 1);
    git.ok(&local, &["push", "-q", &s.url("mirrored/r.git"), "main"]);
    assert!(git_in(&upstream_repo, &["show-ref"]).contains("refs/heads/main"));
    assert!(s.log().contains("upstream=store"), "{}", s.log());
    git.ok(&local, &["push", "-q", &s.url("here/x.git"), "main"]);
    assert!(s.data().join("repos/here/x.git").exists());
}

/// The storage host shows an ECDSA host certificate (sshd's `HostCertificate`) and the
/// proxy's known_hosts file trusts only its CA (`@cert-authority`): clones go through; with
/// another CA in the file the upstream is refused, and the log says why.
#[test]
fn the_proxy_trusts_an_upstream_host_certificate_from_its_ca() {
    use crate::host_certificates::{certify_host, host_ca};
    let (keys, public) = proxy_key();
    let trusted = host_ca(keys.path(), "ca");
    let key = keys.path().join("host_ecdsa");
    assert!(
        Command::new(require("ssh-keygen", "openssh-client"))
            .args(["-q", "-N", "", "-t", "ecdsa", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    certify_host(&keys.path().join("ca"), &key, "127.0.0.1");
    let extra = format!(
        "HostKey {k}\nHostCertificate {k}-cert.pub\n",
        k = key.display()
    );
    let store = Storage::start(&public, &extra);
    let upstream_repo = store.bare("r.git");
    let kh = keys.path().join("known_hosts");
    std::fs::write(&kh, format!("{trusted}\n")).unwrap();
    // Every session dials (no pool), so the second one reads the edited file.
    let table = store.upstream("store", "pool = false").replace(
        &format!("host_key = \"{}\"", store.sshd.host_key.to_openssh()),
        &format!("known_hosts = \"{}\"", kh.display()),
    );
    let s = start_proxy(keys.path(), &(table + &routes(&[("**", "store")])));
    let git = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&git, work.path(), 1);
    git_in(
        &local,
        &["push", "-q", upstream_repo.to_str().unwrap(), "main"],
    );
    git.ok(work.path(), &["clone", "-q", &s.url("r.git"), "c"]);
    // The same upstream through a CA the file does not trust: refused, and the log says why.
    std::fs::write(&kh, format!("{}\n", host_ca(keys.path(), "other_ca"))).unwrap();
    let (ok, _, err) = git.run(work.path(), &["ls-remote", &s.url("r.git")]);
    assert!(!ok, "{err}");
    assert!(
        s.log().contains("no @cert-authority line trusts"),
        "{}",
        s.log()
    );
}
