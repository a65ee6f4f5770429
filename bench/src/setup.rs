//! Fixtures (repositories, keys) and the two servers, configured alike: same host key, same
//! user key, same repositories; OpenSSH git-only through a ForceCommand wrapper, as hosting
//! sites run it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::procs;

pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::inherit()).output().expect("spawn");
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn git(cwd: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(cwd)
        // The served repositories belong to the bench account (see `account`); the bench itself
        // runs as root and reads them too.
        .args(["-c", "safe.directory=*"])
        .args(["-c", "user.name=B", "-c", "user.email=b@example.org"])
        .args(["-c", "init.defaultBranch=main"]);
    c
}

fn random_file(path: &Path, mib: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    let mut src = std::fs::File::open("/dev/urandom").unwrap();
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        std::io::Read::read_exact(&mut src, &mut buf).unwrap();
        f.write_all(&buf).unwrap();
    }
}

pub struct Fixtures {
    pub work: PathBuf,
    pub repos: PathBuf,
    pub host_key: PathBuf,
    pub user_key: PathBuf,
    pub known_hosts: PathBuf,
    /// A local clone with one more commit holding 64 MiB, to push.
    pub push_src: PathBuf,
}

pub fn fixtures(work: &Path, big_mib: usize) -> Fixtures {
    let repos = work.join("repos");
    std::fs::create_dir_all(&repos).unwrap();
    let keygen = |path: &Path| {
        if !path.exists() {
            sh(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path));
        }
    };
    let host_key = work.join("host_ed25519_key");
    let user_key = work.join("user_key");
    keygen(&host_key);
    keygen(&user_key);
    // big.git: one incompressible file, repacked so upload-pack reuses the stored delta-less
    // object instead of recompressing (what a real host serves).
    let big = repos.join("big.git");
    let size_mark = big.join("portcullis-bench-mib");
    if std::fs::read_to_string(&size_mark).ok() != Some(big_mib.to_string()) {
        let _ = std::fs::remove_dir_all(&big);
        let src = work.join("big-src");
        let _ = std::fs::remove_dir_all(&src);
        sh(git(work).args(["init", "-q", "big-src"]));
        random_file(&src.join("blob.bin"), big_mib);
        sh(git(&src).args(["add", "blob.bin"]));
        sh(git(&src).args(["commit", "-q", "-m", "big"]));
        let tmp = repos.join("big.git.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        sh(git(work)
            .args(["clone", "-q", "--bare", "big-src"])
            .arg(&tmp));
        sh(git(&tmp).args(["repack", "-q", "-a", "-d"]));
        std::fs::write(tmp.join("portcullis-bench-mib"), big_mib.to_string()).unwrap();
        std::fs::rename(&tmp, &big).unwrap();
        std::fs::remove_dir_all(&src).unwrap();
    }
    // small.git: a few commits; history.git: thousands (fast-import).
    let small = repos.join("small.git");
    for (name, commits) in [("small.git", 20), ("history.git", 3000)] {
        let path = repos.join(name);
        if !path.exists() {
            // Built aside and renamed, so an interrupted run leaves no half fixture.
            let tmp = repos.join(format!("{name}.tmp"));
            let _ = std::fs::remove_dir_all(&tmp);
            sh(git(work).args(["init", "-q", "--bare"]).arg(&tmp));
            fast_import(&tmp, commits);
            std::fs::rename(&tmp, &path).unwrap();
        }
    }
    let push_src = work.join("push-src");
    if !push_src.join("push.bin").exists() {
        let _ = std::fs::remove_dir_all(&push_src);
        sh(git(work).arg("clone").arg("-q").arg(&small).arg(&push_src));
        random_file(&push_src.join("push.bin"), 64);
        sh(git(&push_src).args(["add", "push.bin"]));
        sh(git(&push_src).args(["commit", "-q", "-m", "64 MiB"]));
    }
    // Names that routes send through the proxy to the same repositories upstream (SSH, pooled
    // or not) or to the git daemon.
    for link in ["proxied", "unpooled", "stored"] {
        let _ = std::os::unix::fs::symlink(".", repos.join(link));
    }
    give(&repos);
    Fixtures {
        work: work.to_path_buf(),
        repos,
        host_key: host_key.clone(),
        user_key,
        known_hosts: work.join("known_hosts"),
        push_src,
    }
}

fn fast_import(repo: &Path, commits: usize) {
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = String::new();
    for i in 0..commits {
        let content = format!("line {i}\n").repeat(1 + i % 7);
        s.push_str(&format!(
            "commit refs/heads/main\ncommitter B <b@example.org> {} +0000\ndata {}\ncommit {i}\n",
            1_700_000_000 + i,
            format!("commit {i}\n").len()
        ));
        s.push_str(&format!(
            "M 644 inline file{}.txt\ndata {}\n{content}\n",
            i % 50,
            content.len()
        ));
    }
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    sh(Command::new("git").arg("--git-dir").arg(repo).args([
        "symbolic-ref",
        "HEAD",
        "refs/heads/main",
    ]));
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The account both servers serve git as, the way a hosting site runs its `git` user: `/bin/sh`
/// as the login shell, an empty home, no rc files. sshd runs every session through the user's
/// shell, so serving as root (whose `~/.bashrc` on these machines starts pyenv: ~100 ms per
/// connection) measured the shell start-up, not OpenSSH. Created once when the bench runs as
/// root; otherwise both servers serve as the current user and a warning says what that counts.
pub struct Account {
    pub name: String,
    /// Set when the account is not the bench's own: servers are started as it.
    pub ids: Option<(u32, u32)>,
}

pub const ACCOUNT: &str = "portcullis-bench";
const ACCOUNT_HOME: &str = "/var/lib/portcullis-bench";

pub fn account() -> &'static Account {
    static A: std::sync::OnceLock<Account> = std::sync::OnceLock::new();
    A.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            eprintln!(
                "bench: not root, so both servers serve as the current user; sshd then runs \
                 that user's login shell and its rc files for every connection"
            );
            return Account {
                name: sh(Command::new("id").arg("-un")).trim().to_owned(),
                ids: None,
            };
        }
        let known = Command::new("id")
            .arg("-u")
            .arg(ACCOUNT)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !known {
            sh(Command::new("useradd").args([
                "--system",
                "--no-create-home",
                "--home-dir",
                ACCOUNT_HOME,
                "--shell",
                "/bin/sh",
                ACCOUNT,
            ]));
        }
        // useradd leaves the password "!", which sshd (without PAM) reads as a locked account;
        // "*" allows no password either and is not locked.
        sh(Command::new("usermod").args(["-p", "*", ACCOUNT]));
        let id = |flag: &str| -> u32 {
            sh(Command::new("id").arg(flag).arg(ACCOUNT))
                .trim()
                .parse()
                .unwrap()
        };
        let ids = (id("-u"), id("-g"));
        std::fs::create_dir_all(ACCOUNT_HOME).unwrap();
        chown_tree(Path::new(ACCOUNT_HOME), ids);
        Account {
            name: ACCOUNT.to_owned(),
            ids: Some(ids),
        }
    })
}

fn chown_tree(path: &Path, (uid, gid): (u32, u32)) {
    sh(Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path));
}

/// Hands `path` (recursively) to the account the servers run as.
pub fn give(path: &Path) {
    if let Some(ids) = account().ids {
        chown_tree(path, ids);
    }
}

pub fn user_name() -> String {
    account().name.clone()
}

/// A server running under the reaper wrapper.
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    reaper: std::process::Child,
    /// The server's own cgroup, for its CPU time (`None`: counted from /proc).
    group: Option<procs::CpuGroup>,
    /// OpenSSH: where the ForceCommand wrapper writes git's CPU time per session.
    git_cpu_dir: Option<PathBuf>,
    /// portcullis: where its `stored/**` route expects a git daemon.
    pub daemon_port: Option<u16>,
}

/// Where the sshd wrapper leaves each session's git CPU time (`times` output).
fn git_cpu_dir(f: &Fixtures) -> PathBuf {
    let d = f.work.join("git-cpu");
    std::fs::create_dir_all(&d).unwrap();
    give(&d);
    d
}

/// Seconds in a `times` field such as `1m2.345000s`.
fn times_field(v: &str) -> f64 {
    let v = v.trim_end_matches('s');
    let (m, s) = v.split_once('m').unwrap_or(("0", v));
    m.parse::<f64>().unwrap_or(0.0) * 60.0 + s.parse::<f64>().unwrap_or(0.0)
}

impl Server {
    pub fn root(&self) -> u32 {
        self.reaper.id()
    }
    /// CPU seconds the server's tree used so far (git and every exited process included).
    pub fn cpu(&self) -> f64 {
        self.group
            .as_ref()
            .and_then(procs::CpuGroup::cpu)
            .unwrap_or_else(|| procs::tree_cpu(self.root()))
    }
    /// How [`Server::cpu`] counts, for the report.
    pub fn accounting(&self) -> &'static str {
        self.group
            .as_ref()
            .map_or("/proc ticks", procs::CpuGroup::describe)
    }
    /// CPU seconds git used under this server so far (sessions that ended): for portcullis
    /// its reaped children, for OpenSSH what the wrapper recorded.
    pub fn git_cpu(&self) -> f64 {
        match &self.git_cpu_dir {
            Some(dir) => std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|t| {
                    let children = t.lines().nth(1).unwrap_or("");
                    children.split_whitespace().map(times_field).sum::<f64>()
                })
                .sum(),
            None => procs::tree(self.root())
                .get(1)
                .map_or(0.0, |&pid| procs::children_cpu_of(pid)),
        }
    }
    pub fn pss_kib(&self) -> u64 {
        procs::tree_pss_kib(self.root())
    }
    /// Waits until the tree has only its resident processes (finished connections reaped).
    pub fn settle(&self, resident: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while procs::tree(self.root()).len() > resident && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    pub fn url(&self, repo: &str) -> String {
        format!("ssh://{}@127.0.0.1:{}/~/{repo}", user_name(), self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        procs::kill_tree(self.root());
        let _ = self.reaper.wait();
    }
}

/// Starts `cmd` under the reaper, as `ids` (uid, gid) when given.
fn spawn_reaped(
    name: &'static str,
    port: u16,
    cmd: &[String],
    log: &Path,
    ids: Option<(u32, u32)>,
) -> Server {
    let me = std::env::current_exe().unwrap();
    let mut reaper = Command::new(me);
    if let Some((uid, gid)) = ids {
        std::os::unix::process::CommandExt::uid(&mut reaper, uid);
        std::os::unix::process::CommandExt::gid(&mut reaper, gid);
    }
    let reaper = reaper
        .arg("reaper")
        .arg("--")
        .args(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    // The reaper waits for its stdin to close before it starts the server: in its group first.
    let group = procs::CpuGroup::new(name).filter(|g| g.join(reaper.id()));
    let mut reaper = reaper;
    drop(reaper.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{name} did not start; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        name,
        port,
        reaper,
        group,
        git_cpu_dir: None,
        daemon_port: None,
    }
}

pub fn start_openssh(f: &Fixtures) -> Server {
    let port = free_port();
    let wrapper = f.work.join("git-only");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# git only, as hosting sites run OpenSSH (ForceCommand).\n\
             case \"$SSH_ORIGINAL_COMMAND\" in\n\
             git-upload-pack\\ *|git-receive-pack\\ *|git-upload-archive\\ *) ;;\n\
             *) echo 'git only' >&2; exit 1 ;;\nesac\n\
             # Not exec: the shell stays to write git's CPU time (its children's), so the\n\
             # bench can subtract git from the server's CPU in the same run.\n\
             cd {repos} && HOME={repos} git-shell -c \"$SSH_ORIGINAL_COMMAND\"\n\
             rc=$?\ntimes > {cpu}/$$.tmp && mv {cpu}/$$.tmp {cpu}/$$\nexit $rc\n",
            repos = f.repos.display(),
            cpu = git_cpu_dir(f).display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        f.work.join("authorized_keys"),
        std::fs::read_to_string(f.user_key.with_extension("pub")).unwrap(),
    )
    .unwrap();
    let cfg = f.work.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {w}/sshd.pid\n\
             AuthorizedKeysFile {w}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             ForceCommand {wrapper}\nAcceptEnv GIT_PROTOCOL\nMaxStartups 1000\n\
             PermitRootLogin prohibit-password\nLogLevel INFO\n",
            hk = f.host_key.display(),
            w = f.work.display(),
            wrapper = wrapper.display(),
        ),
    )
    .unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let _ = std::fs::remove_dir_all(git_cpu_dir(f));
    let mut s = spawn_reaped(
        "OpenSSH",
        port,
        &[
            "/usr/sbin/sshd".into(),
            "-D".into(),
            "-e".into(),
            "-f".into(),
            cfg.display().to_string(),
        ],
        &f.work.join("sshd.log"),
        None,
    );
    s.git_cpu_dir = Some(git_cpu_dir(f));
    s
}

pub fn start_portcullis(f: &Fixtures, binary: &Path, upstream_port: u16) -> Server {
    let port = free_port();
    let data = f.work.join("portcullis-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(&f.host_key, data.join("host_ed25519_key")).unwrap();
    std::fs::copy(&f.user_key, data.join("upstream_key")).unwrap();
    std::fs::write(
        data.join("authorized_keys"),
        std::fs::read_to_string(f.user_key.with_extension("pub")).unwrap(),
    )
    .unwrap();
    let host_pub = std::fs::read_to_string(f.host_key.with_extension("pub")).unwrap();
    let upstream = |name: &str, pool: bool| {
        format!(
            "[[upstreams]]\nname = \"{name}\"\naddress = \"127.0.0.1:{upstream_port}\"\n\
             user = \"{}\"\nkey = \"upstream_key\"\nhost_key = \"{}\"\npool = {pool}\n\n",
            user_name(),
            host_pub.trim()
        )
    };
    give(&data);
    let daemon_port = free_port();
    let cfg = f.work.join("portcullis.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"127.0.0.1:{port}\"]\ndata_dir = \"{data}\"\n\
             host_keys = [\"host_ed25519_key\"]\nrepos_root = \"{repos}\"\nuser = \"{user}\"\n\
             git = \"git\"\ncreate_on_push = false\n\n[keys]\nbackend = \"file\"\n\
             file = \"authorized_keys\"\n\n[[access]]\nwho = [\"*\"]\nrepos = [\"**\"]\n\
             access = \"write\"\n\n{up}{down}[[routes]]\nrepos = [\"proxied/**\"]\n\
             upstream = \"pooled\"\n\n[[routes]]\nrepos = [\"unpooled/**\"]\n\
             upstream = \"unpooled\"\n\n[[git_daemons]]\nname = \"daemon\"\n\
             address = \"127.0.0.1:{daemon_port}\"\n\n[[routes]]\nrepos = [\"stored/**\"]\n\
             upstream = \"daemon\"\n\n[timeouts]\nlogin_grace_secs = 120\nidle_secs = 600\n\
             keepalive_interval_secs = 60\nkeepalive_max = 3\nshutdown_grace_secs = 1\n\n\
             [limits]\nmax_auth_attempts = 6\nmax_channels = 10\nmax_connections = {conns}\n\
             max_startups = \"1000\"\nper_source_max_startups = 0\n\n\
             [log]\nformat = \"human\"\nlevel = \"info\"\n\n[monitoring]\nlisten = \"\"\n",
            data = data.display(),
            repos = f.repos.display(),
            user = user_name(),
            up = upstream("pooled", true),
            down = upstream("unpooled", false),
            conns = max_connections(),
        ),
    )
    .unwrap();
    let mut s = spawn_reaped(
        "portcullis",
        port,
        &[
            binary.display().to_string(),
            "--config".into(),
            cfg.display().to_string(),
        ],
        &f.work.join("portcullis.log"),
        account().ids,
    );
    s.daemon_port = Some(daemon_port);
    s
}

/// `git-daemon` serving the repositories on loopback, as the account the servers run as
/// (killed on drop).
pub struct GitDaemon(std::process::Child);

impl GitDaemon {
    pub fn start(f: &Fixtures, port: u16) -> Self {
        let exec_path = sh(Command::new("git").arg("--exec-path"));
        let mut cmd = Command::new(Path::new(exec_path.trim()).join("git-daemon"));
        if let Some((uid, gid)) = account().ids {
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, gid);
        }
        let child = cmd
            .args(["--listen=127.0.0.1", "--reuseaddr", "--export-all"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", f.repos.display()))
            .arg(&f.repos)
            .stderr(Stdio::null())
            .spawn()
            .expect("git-daemon (apt-get install git)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git-daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        GitDaemon(child)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// known_hosts for both servers (same host key).
pub fn write_known_hosts(f: &Fixtures, ports: &[u16]) {
    let public = std::fs::read_to_string(f.host_key.with_extension("pub")).unwrap();
    let text: String = ports
        .iter()
        .map(|p| format!("[127.0.0.1]:{p} {}\n", public.trim()))
        .collect();
    std::fs::write(&f.known_hosts, text).unwrap();
}

/// The ssh command line (without destination) both git and raw runs use.
pub fn ssh_args(f: &Fixtures, extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ControlMaster=no",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.push("-o".into());
    v.push(format!("UserKnownHostsFile={}", f.known_hosts.display()));
    v.push("-i".into());
    v.push(f.user_key.display().to_string());
    v.extend(extra.iter().cloned());
    v
}

/// As many connections as the descriptor hard limit lets portcullis accept (it refuses to
/// start otherwise), up to 30,000; `max_startups` matches sshd's `MaxStartups 1000`, and every
/// client is on 127.0.0.1, so no per-source limit.
fn max_connections() -> u64 {
    let hard = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(4))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(30_064);
    // The held-connections row holds 100,000 (`held.rs`); the server wants 4 descriptors
    // per connection but starts with fewer (it warns).
    hard.saturating_sub(64).clamp(1000, 110_000)
}
