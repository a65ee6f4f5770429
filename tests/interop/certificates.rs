//! OpenSSH user certificates against the `portcullis` binary (issue 20): CAs, principals and
//! revocations from files, every certificate made by `ssh-keygen -s` and offered by OpenSSH's
//! client (`id-cert.pub` beside `-i id`, as `CertificateFile` would).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::require;
use crate::git_server::{EVERYONE_WRITES, Git, Server, config, local_repo, start_prepared};

/// A key pair in `dir/name` (a CA's or a user's), its public line returned.
fn keypair(dir: &Path, name: &str, kind: &[&str]) -> String {
    let path = dir.join(name);
    assert!(
        Command::new(require("ssh-keygen", "openssh-client"))
            .args(["-q", "-N", "", "-C", name])
            .args(kind)
            .arg("-f")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// A user key `name` (of `kind`) not listed in authorized_keys, certified by `ca` with
/// `ssh-keygen -s ca {args}`; the private key's path (its certificate beside it).
fn certified(s: &Server, ca: &Path, name: &str, kind: &[&str], args: &[&str]) -> PathBuf {
    let key = s.dir.path().join(name);
    keypair(s.dir.path(), name, kind);
    let keygen = require("ssh-keygen", "openssh-client");
    let out = Command::new(&keygen)
        .arg("-s")
        .arg(ca)
        .args(["-q", "-I", &format!("{name}@test")])
        .args(args)
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    key
}

fn ls_remote(s: &Server, key: PathBuf, repo: &str) -> (bool, String) {
    let git = Git { server: s, key };
    let (ok, _, err) = git.run(s.dir.path(), &["ls-remote", &s.url(repo)]);
    (ok, err)
}

#[test]
fn user_certificates_are_checked_like_sshd_checks_them() {
    let cfg = config(EVERYONE_WRITES).replace(
        "cache_secs = 30\n",
        "cache_secs = 30\ntrusted_user_ca_keys = \"user_ca_keys\"\nauthorized_principals = \"principals\"\nrevoked_keys = \"revoked\"\n",
    );
    let s = start_prepared(&cfg, |data| {
        let trusted =
            keypair(data, "ca_ed", &["-t", "ed25519"]) + &keypair(data, "ca_ec", &["-t", "ecdsa"]);
        keypair(data, "ca_other", &["-t", "ed25519"]);
        std::fs::write(data.join("user_ca_keys"), trusted).unwrap();
        std::fs::write(
            data.join("principals"),
            "# accepted principals\nalice\nbob\nops-team carol\n",
        )
        .unwrap();
        std::fs::write(data.join("revoked"), "serial: 7\nid: lost@test\n").unwrap();
    });
    let (ed, ec, other) = (
        s.data().join("ca_ed"),
        s.data().join("ca_ec"),
        s.data().join("ca_other"),
    );
    let work = tempfile::tempdir().unwrap();
    let admin = Git::as_user(&s, "admin");
    let local = local_repo(&admin, work.path(), 1);
    admin.ok(&local, &["push", "-q", &s.url("team/app.git"), "main"]);
    let ed25519 = ["-t", "ed25519"];

    // Accepted: Ed25519, RSA (rsa-sha2-512 certificate signatures) and ECDSA keys; a mapped
    // principal; a source-address that lists the client.
    let accepted = [
        (
            "alice",
            certified(&s, &ed, "alice", &ed25519, &["-n", "alice"]),
            "alice",
        ),
        (
            "bob-rsa",
            certified(&s, &ec, "bob", &["-t", "rsa", "-b", "2048"], &["-n", "bob"]),
            "bob",
        ),
        (
            "carol-ecdsa",
            certified(
                &s,
                &ed,
                "carol",
                &["-t", "ecdsa"],
                &["-n", "nobody,ops-team"],
            ),
            "carol",
        ),
        (
            "from-loopback",
            certified(
                &s,
                &ed,
                "dave",
                &ed25519,
                &["-n", "alice", "-O", "source-address=127.0.0.0/8,10.0.0.0/8"],
            ),
            "alice",
        ),
    ];
    for (case, key, identity) in accepted {
        let (ok, err) = ls_remote(&s, key, "team/app.git");
        assert!(ok, "{case}: {err}\n{}", s.log());
        assert!(
            s.log().contains(&format!("identity={identity}")),
            "{case}: {}",
            s.log()
        );
    }

    // The certificate named with CertificateFile, away from its key: the same.
    let key = certified(&s, &ed, "frank", &ed25519, &["-n", "alice"]);
    let moved = s.dir.path().join("frank-elsewhere.pub");
    std::fs::rename(s.dir.path().join("frank-cert.pub"), &moved).unwrap();
    let out = Command::new("git")
        .args(["ls-remote", &s.url("team/app.git")])
        .env(
            "GIT_SSH_COMMAND",
            format!(
                "{} -o CertificateFile={}",
                s.ssh_command(&key),
                moved.display()
            ),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.log().contains("key_id=frank@test"), "{}", s.log());

    // Refused, each for its rule (the log says which): (key name, CA, ssh-keygen -s options,
    // what the log says). "lost" is revoked by key ID, serial 7 by serial.
    let refused: [(&str, &Path, &str, &str); 8] = [
        ("e1", &ed, "-n alice -V 20200101:20210101", "has expired"),
        ("e2", &ed, "-n alice -V +1d:+2d", "is not yet valid"),
        ("e3", &ed, "-n mallory", "no accepted principal"),
        ("e4", &other, "-n alice", "untrusted CA"),
        (
            "e5",
            &ed,
            "-n alice -O source-address=192.0.2.0/24",
            "source address",
        ),
        ("e6", &ed, "-n alice -z 7", "revoked"),
        ("lost", &ed, "-n alice", "revoked"),
        (
            "e7",
            &ed,
            "-n alice -O critical:frob@x.org=yes",
            "option frob@x.org",
        ),
    ];
    for (name, ca, args, why) in refused {
        let args: Vec<&str> = args.split(' ').collect();
        let key = certified(&s, ca, name, &ed25519, &args);
        let (ok, err) = ls_remote(&s, key, "team/app.git");
        assert!(!ok && err.contains("Permission denied"), "{name}: {err}");
        assert!(s.log().contains(why), "{name}: {why}\n{}", s.log());
    }
    // A host certificate: ssh does not even offer it as a user's (the server's refusal of
    // the wrong type is in vectors/keys/certificates.json).
    let host = certified(&s, &ed, "e8", &ed25519, &["-h", "-n", "alice"]);
    assert!(!ls_remote(&s, host, "team/app.git").0);

    // force-command narrows to one git command: the clone runs, a push is refused.
    let key = certified(
        &s,
        &ed,
        "reader",
        &ed25519,
        &[
            "-n",
            "alice",
            "-O",
            "force-command=git-upload-pack 'team/app.git'",
        ],
    );
    let reader = Git { server: &s, key };
    reader.ok(work.path(), &["clone", "-q", &s.url("team/app.git"), "c1"]);
    let (ok, _, err) = reader.run(&work.path().join("c1"), &["push", "-q", "origin", "main:x"]);
    assert!(
        !ok && err.contains("this key may only run git-upload-pack 'team/app.git'"),
        "{err}"
    );

    // A revocation added while the server runs holds from the next login on.
    let key = certified(&s, &ed, "late", &ed25519, &["-n", "alice", "-z", "99"]);
    assert!(ls_remote(&s, key.clone(), "team/app.git").0);
    let revoked = s.data().join("revoked");
    let text = std::fs::read_to_string(&revoked).unwrap() + "serial: 90-100\n";
    std::fs::write(&revoked, text).unwrap();
    let (ok, err) = ls_remote(&s, key, "team/app.git");
    assert!(!ok && err.contains("Permission denied"), "{err}");
}

/// authorized_keys `cert-authority` lines (no CA file configured): the line's name is the
/// identity, `principals=` (or else that name) must be among the certificate's principals,
/// the line's options join the certificate's, and the CA key itself is no user key.
#[test]
fn cert_authority_lines_in_authorized_keys_admit_their_certificates() {
    let s = start_prepared(&config(EVERYONE_WRITES), |data| {
        keypair(data, "ca", &["-t", "ed25519"]);
    });
    let ca = s.data().join("ca");
    let ca_public = std::fs::read_to_string(ca.with_extension("pub")).unwrap();
    let ca_key: Vec<&str> = ca_public.split_whitespace().take(2).collect();
    let ak = s.data().join("authorized_keys");
    std::fs::write(
        &ak,
        format!(
            "cert-authority,principals=\"ops,admins\" {k} team-ops\ncert-authority,command=\"git-upload-pack 'team/app.git'\" {k} carol\n",
            k = ca_key.join(" ")
        ),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let admin = Git::as_user(&s, "admin");
    let local = local_repo(&admin, work.path(), 1);
    admin.ok(&local, &["push", "-q", &s.url("team/app.git"), "main"]);
    let ed25519 = ["-t", "ed25519"];

    let ops = certified(&s, &ca, "o1", &ed25519, &["-n", "x,ops"]);
    let (ok, err) = ls_remote(&s, ops, "team/app.git");
    assert!(ok, "{err}\n{}", s.log());
    assert!(s.log().contains("identity=team-ops"), "{}", s.log());
    // No listed principal, and no principal naming a line without principals=.
    let stranger = certified(&s, &ca, "o2", &ed25519, &["-n", "mallory"]);
    assert!(!ls_remote(&s, stranger, "team/app.git").0);
    // carol's line narrows to one command; a certificate forcing another is refused.
    let carol = certified(&s, &ca, "c1", &ed25519, &["-n", "carol"]);
    let reader = Git {
        server: &s,
        key: carol,
    };
    reader.ok(work.path(), &["clone", "-q", &s.url("team/app.git"), "c1"]);
    let (ok, _, err) = reader.run(&work.path().join("c1"), &["push", "-q", "origin", "main:x"]);
    assert!(!ok && err.contains("this key may only run"), "{err}");
    let other = certified(
        &s,
        &ca,
        "c2",
        &ed25519,
        &[
            "-n",
            "carol",
            "-O",
            "force-command=git-upload-pack 'team/other.git'",
        ],
    );
    assert!(!ls_remote(&s, other, "team/app.git").0);
    assert!(s.log().contains("force-command differ"), "{}", s.log());
    // The CA's own key, offered plainly, is not a user key.
    let (ok, err) = ls_remote(&s, ca.clone(), "team/app.git");
    assert!(!ok && err.contains("Permission denied"), "{err}");
}
