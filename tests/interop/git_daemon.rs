//! The route that does not re-encrypt (issue 22): repositories routed to a storage host's
//! `git daemon` (`git://`, started here on loopback with receive-pack enabled). Push, clone and
//! protocol v2 through the front door with OpenSSH's client and git; a repository the daemon
//! does not serve gets a clear line; the HTTP backend routes to a daemon by name.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{free_port, listening, require};
use crate::git_server::{EVERYONE_WRITES, Git, config, local_repo, start, start_prepared};
use crate::http_backend::{Running, http_keys, list, routing_api, write_secret};

/// `git daemon` on 127.0.0.1:`port` serving `root` (every repository exported, pushes
/// allowed), after creating the bare repository `team/app.git`, whose pre-receive hook
/// records the environment it ran with.
fn git_daemon(root: &Path, port: u16) -> Running {
    let git = require("git", "git");
    let repo = root.join("team/app.git");
    let made = Command::new(&git)
        .args(["init", "-q", "--bare", "--initial-branch=main"])
        .arg(&repo)
        .status()
        .unwrap();
    assert!(made.success());
    let hook = repo.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nenv > \"$GIT_DIR/pushed-with-env\"\ncat >/dev/null\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // git-daemon itself, not `git daemon`: that would run it as a child the kill misses.
    let exec_path = Command::new(&git).arg("--exec-path").output().unwrap();
    let daemon = Path::new(String::from_utf8_lossy(&exec_path.stdout).trim()).join("git-daemon");
    assert!(
        daemon.exists(),
        "{} is missing (apt-get install git)",
        daemon.display()
    );
    let mut child = Command::new(daemon)
        .args([
            "--listen=127.0.0.1",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", root.display()))
        .arg(root)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(listening(&mut child, port), "git daemon did not start");
    Running(child)
}

fn daemon_config(port: u16) -> String {
    format!(
        "\n[[git_daemons]]\nname = \"store\"\naddress = \"127.0.0.1:{port}\"\n\n[[routes]]\nrepos = [\"team/**\"]\nupstream = \"store\"\n"
    )
}

#[test]
fn push_and_clone_through_a_storage_hosts_git_daemon() {
    let storage = tempfile::tempdir().unwrap();
    let port = free_port();
    let _daemon = git_daemon(storage.path(), port);
    let s = start(&(config(EVERYONE_WRITES) + &daemon_config(port)));
    let alice = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let local = local_repo(&alice, work.path(), 3);

    alice.ok(&local, &["push", "-q", &s.url("team/app.git"), "main"]);
    let stored = storage.path().join("team/app.git");
    let head = |dir: &Path, git_dir: bool| {
        let mut c = Command::new("git");
        if git_dir {
            c.arg("--git-dir").arg(dir);
        } else {
            c.current_dir(dir);
        }
        let out = c.args(["rev-parse", "main"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(head(&stored, true), head(&local, false));
    // The storage side's hook ran without any identity: the daemon has none to give.
    let env = std::fs::read_to_string(stored.join("pushed-with-env")).unwrap();
    assert!(!env.contains("PORTCULLIS_USER"), "{env}");

    alice.ok(
        work.path(),
        &["clone", "-q", &s.url("team/app.git"), "cloned"],
    );
    assert_eq!(
        head(&work.path().join("cloned"), false),
        head(&local, false)
    );
    // GIT_PROTOCOL reaches the daemon as the request's extra parameters: v2 is spoken.
    alice.ls_remote_v2(work.path(), "team/app.git");
    let log = s.log();
    assert!(
        log.contains("upstream=store") && log.contains("command=git-receive-pack"),
        "{log}"
    );

    // A repository the daemon does not have: its ERR line reaches git untouched.
    let (ok, _, err) = alice.run(
        work.path(),
        &["clone", "-q", &s.url("team/missing.git"), "missing"],
    );
    assert!(
        !ok && err.contains("remote error: access denied or repository not exported"),
        "{err}"
    );
}

#[test]
fn an_unreachable_daemon_is_named_and_an_http_backend_routes_to_a_daemon() {
    // Nothing listens on `dead`: the user is told which storage host failed.
    let dead_port = crate::common::closed_port();
    let dead = dead_port.port;
    let s = start(&(config(EVERYONE_WRITES) + &daemon_config(dead)));
    let alice = Git::as_user(&s, "alice");
    let work = tempfile::tempdir().unwrap();
    let (ok, _, err) = alice.run(work.path(), &["ls-remote", &s.url("team/app.git")]);
    assert!(
        !ok && err.contains("portcullis: storage host store unreachable"),
        "{err}"
    );
    drop(s);

    // A daemon that hangs up without a word (older git daemons do so for a repository they do
    // not export): the user is told so.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    let hang_up = std::thread::spawn(move || {
        let (mut c, _) = mute.accept().unwrap();
        let mut request = [0u8; 4];
        let _ = std::io::Read::read_exact(&mut c, &mut request);
    });
    let s = start(&(config(EVERYONE_WRITES) + &daemon_config(mute_port)));
    let alice = Git::as_user(&s, "alice");
    let (ok, _, err) = alice.run(work.path(), &["ls-remote", &s.url("team/app.git")]);
    assert!(
        !ok && err
            .contains("portcullis: storage host store closed the connection without answering"),
        "{err}"
    );
    hang_up.join().unwrap();
    drop(s);

    // The site's API answers `"upstream": "store"` for team/…: a git daemon, by name.
    let storage = tempfile::tempdir().unwrap();
    let port = free_port();
    let _daemon = git_daemon(storage.path(), port);
    let api = routing_api("team/=store");
    let cfg = format!(
        "{}\n[[git_daemons]]\nname = \"store\"\naddress = \"127.0.0.1:{port}\"\n",
        http_keys(&config(EVERYONE_WRITES), api.port)
    );
    let s = start_prepared(&cfg, write_secret);
    let alice = Git {
        server: &s,
        key: s.user_key("alice", None),
    };
    list(&api.keys, &alice, "alice");
    let local = local_repo(&alice, work.path(), 2);
    alice.ok(&local, &["push", "-q", &s.url("team/app.git"), "main"]);
    let out = alice.ok(work.path(), &["ls-remote", &s.url("team/app.git")]);
    assert!(out.contains("refs/heads/main"), "{out}");
    assert!(s.log().contains("upstream=store"), "{}", s.log());
}
