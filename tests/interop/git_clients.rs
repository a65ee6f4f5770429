//! git itself through SSH clients that are not OpenSSH: dropbear's `dbclient` and PuTTY's
//! `plink` as git's SSH command, pushing, cloning and listing refs against the binary.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::require;
use crate::git_server::{EVERYONE_WRITES, Server, config, start};

/// A client that is not OpenSSH: dropbear's dbclient pushes and clones.
#[test]
fn dropbear_dbclient_pushes_and_clones() {
    let dbclient = require("dbclient", "dropbear-bin");
    let convert = require("dropbearconvert", "dropbear-bin");
    let s = start(&config(EVERYONE_WRITES));
    let key = s.user_key("alice", Some("alice"));
    let db_key = s.dir.path().join("alice.db");
    let out = Command::new(convert)
        .args(["openssh", "dropbear"])
        .arg(&key)
        .arg(&db_key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // dbclient cannot pin a key from the command line; -y -y skips the check (test only).
    let ssh = format!("{} -y -y -i {}", dbclient.display(), db_key.display());
    push_clone_ls_remote(&s, &ssh, "ssh", &[]);
}

/// PuTTY's plink as git's SSH command (git's `plink` variant passes `-P port`), with our
/// Ed25519 host key pinned by its SHA256 fingerprint and the user key converted by puttygen.
#[test]
fn putty_plink_pushes_and_clones() {
    let plink = require("plink", "putty-tools");
    let puttygen = require("puttygen", "putty-tools");
    let s = start(&config(EVERYONE_WRITES));
    let key = s.user_key("alice", Some("alice"));
    let ppk = s.dir.path().join("alice.ppk");
    let out = Command::new(puttygen)
        .arg(&key)
        .args(["-O", "private", "-o"])
        .arg(&ppk)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fp = s
        .printed
        .iter()
        .find(|l| l.starts_with("host key ssh-ed25519 "))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no Ed25519 fingerprint printed: {:?}", s.printed))
        .to_string();
    assert!(fp.starts_with("SHA256:"), "{fp}");
    // -batch: never prompt; a wrong host key fails instead of asking.
    let ssh = format!(
        "{} -ssh -batch -noagent -hostkey {fp} -i {}",
        plink.display(),
        ppk.display()
    );
    // PuTTY keeps settings under $HOME/.putty: give it a private one.
    let home = s.dir.path().join("putty-home");
    std::fs::create_dir_all(&home).unwrap();
    push_clone_ls_remote(&s, &ssh, "plink", &[("HOME", home.as_path())]);
    // The same client with a wrong pinned key is refused before authentication.
    let wrong = ssh.replace(&fp, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let out = Command::new("git")
        .args(["-c", "ssh.variant=plink", "ls-remote", &s.url("db.git")])
        .env("GIT_SSH_COMMAND", &wrong)
        .env("HOME", &home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.to_lowercase().contains("host key"), "{err}");
}

/// Push a commit to a new repository, clone it back, list its refs, all through `ssh`.
fn push_clone_ls_remote(s: &Server, ssh: &str, variant: &str, env: &[(&str, &Path)]) {
    let variant = format!("ssh.variant={variant}");
    let git = |cwd: &Path, args: &[&str]| {
        let out = Command::new("git")
            .current_dir(cwd)
            .args([
                "-c",
                &variant,
                "-c",
                "user.name=D",
                "-c",
                "user.email=d@example.org",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_SSH_COMMAND", ssh)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            s.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["init", "-q", "local"]);
    let local = work.path().join("local");
    std::fs::write(local.join("a.txt"), "another client\n").unwrap();
    git(&local, &["add", "."]);
    git(&local, &["commit", "-q", "-m", "from another client"]);
    git(
        &local,
        &[
            "-c",
            "protocol.version=0",
            "push",
            "-q",
            &s.url("db.git"),
            "main",
        ],
    );
    git(
        work.path(),
        &[
            "-c",
            "protocol.version=0",
            "clone",
            "-q",
            &s.url("db.git"),
            "clone",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("clone/a.txt")).unwrap(),
        "another client\n"
    );
    let refs = git(
        work.path(),
        &["-c", "protocol.version=0", "ls-remote", &s.url("db.git")],
    );
    assert!(refs.contains("refs/heads/main"), "{refs}");
}
