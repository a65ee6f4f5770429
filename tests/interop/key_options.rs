//! authorized_keys options with the `portcullis` binary, OpenSSH's client and real git
//! (issue 20): each documented option is honoured or refuses its line, never widens access.

use std::path::{Path, PathBuf};

use crate::git_server::{EVERYONE_WRITES, Git, Server, config, local_repo, start};

/// A new key listed in the server's authorized_keys as `{options} {key} {name}`.
fn key_with(s: &Server, name: &str, options: &str) -> PathBuf {
    s.user_key_with(name, Some(name), options)
}

fn as_key<'a>(s: &'a Server, key: PathBuf) -> Git<'a> {
    Git { server: s, key }
}

fn ls_remote(git: &Git<'_>, cwd: &Path, repo: &str) -> (bool, String) {
    let (ok, _, err) = git.run(cwd, &["ls-remote", &git.server.url(repo)]);
    (ok, err)
}

#[test]
fn command_narrows_to_one_git_command_and_other_options_hold_or_refuse() {
    let s = start(&config(EVERYONE_WRITES));
    let work = tempfile::tempdir().unwrap();
    let admin = Git::as_user(&s, "admin");
    let local = local_repo(&admin, work.path(), 2);
    for repo in ["team/app.git", "team/other.git"] {
        admin.ok(&local, &["push", "-q", &s.url(repo), "main"]);
    }

    // command= naming a git command: exactly that command runs, nothing else.
    let reader = as_key(
        &s,
        key_with(
            &s,
            "reader",
            r#"restrict,command="git-upload-pack 'team/app.git'""#,
        ),
    );
    reader.ok(work.path(), &["clone", "-q", &s.url("team/app.git"), "c1"]);
    let (ok, _, err) = reader.run(&work.path().join("c1"), &["push", "-q", "origin", "main:x"]);
    assert!(!ok);
    assert!(
        err.contains("portcullis: this key may only run git-upload-pack 'team/app.git'"),
        "{err}"
    );
    let (ok, err) = ls_remote(&reader, work.path(), "team/other.git");
    assert!(!ok && err.contains("may only run"), "{err}");

    // Lines the server refuses: the key cannot log in at all.
    for (name, options, warning) in [
        ("expired", r#"expiry-time="20200101""#, None),
        (
            "env",
            r#"environment="GIT_DIR=/etc""#,
            Some("environment= is not supported"),
        ),
        (
            "shell",
            r#"command="/usr/bin/gitlab-shell key-1""#,
            Some("is not a git command"),
        ),
        // A CA's line admits the certificates it signed, never the CA key itself.
        ("ca", r#"cert-authority,principals="alice""#, None),
    ] {
        let git = as_key(&s, key_with(&s, name, options));
        let (ok, err) = ls_remote(&git, work.path(), "team/app.git");
        assert!(!ok && err.contains("Permission denied"), "{name}: {err}");
        if let Some(w) = warning {
            assert!(s.log().contains(w), "{name}: {}", s.log());
        }
    }

    // Options that only restrict what this server never offers, and an expiry in the future.
    let fine = as_key(
        &s,
        key_with(
            &s,
            "fine",
            r#"expiry-time="20991231Z",no-pty,permitopen="db:5432",permitlisten="8080",tunnel="0",no-agent-forwarding"#,
        ),
    );
    let (ok, err) = ls_remote(&fine, work.path(), "team/app.git");
    assert!(ok, "{err}\n{}", s.log());

    // OpenSSH's client binds its signature to our host key when the server offers it
    // (publickey-hostbound@openssh.com in EXT_INFO) [PROTOCOL §3.1].
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} -vvv -p {} git@127.0.0.1 \"git-upload-pack 'team/app.git'\" </dev/null",
            s.ssh_command(&fine.key),
            s.port
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("publickey-hostbound-v00@openssh.com"), "{err}");
    assert!(err.contains("Authenticated to 127.0.0.1"), "{err}");
}
