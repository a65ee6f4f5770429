//! svn+ssh through the front door to Debian's `svnserve -d` on loopback (issue 20): `svn
//! checkout` and `svn commit` over `svn+ssh://` with OpenSSH's client, the commit recorded
//! under the SSH identity; read-only users, unrouted and unknown repositories refused.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{free_port, listening, require};
use crate::git_server::{Git, Server, config, start_prepared};
use crate::http_backend::{Running, http_keys, list, routing_api, write_secret};

const ACCESS: &str = "[[access]]\nwho = [\"alice\"]\nrepos = [\"**\"]\naccess = \"write\"\n\n[[access]]\nwho = [\"bob\"]\nrepos = [\"**\"]\naccess = \"read\"\n";
const SECRET: &str = "svn-test-secret";

/// `svnserve -d` on `port` over `root`, after creating `team/proj` (CRAM-MD5 only: anonymous
/// users get nothing) with alice's derived password.
fn svnserve(root: &Path, port: u16) -> Running {
    let repo = root.join("team/proj");
    std::fs::create_dir_all(repo.parent().unwrap()).unwrap();
    let made = Command::new(require("svnadmin", "subversion"))
        .arg("create")
        .arg(&repo)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(
        repo.join("conf/svnserve.conf"),
        "[general]\nanon-access = none\nauth-access = write\npassword-db = passwd\nrealm = portcullis-test\n",
    )
    .unwrap();
    let server = portcullis::svn::SvnServer::new(
        &portcullis::svn::SvnServerConfig {
            name: "svn1".into(),
            address: String::new(),
            repos: Vec::new(),
            secret_file: "unused".into(),
        },
        SECRET.as_bytes().to_vec(),
    );
    std::fs::write(
        repo.join("conf/passwd"),
        format!("[users]\nalice = {}\n", server.password("alice")),
    )
    .unwrap();
    let mut child = Command::new(require("svnserve", "subversion"))
        .args([
            "-d",
            "--foreground",
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
        ])
        .arg(port.to_string())
        .arg("-r")
        .arg(root)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(listening(&mut child, port), "svnserve did not start");
    Running(child)
}

/// `svn ARGS` as the holder of `key`, tunnelled by OpenSSH to the front door.
fn svn(s: &Server, key: &Path, cwd: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(require("svn", "subversion"))
        .current_dir(cwd)
        .args(["--non-interactive", "--no-auth-cache", "--config-dir"])
        .arg(cwd.join(".svn-config"))
        .args(args)
        .env("SVN_SSH", format!("{} -p {}", s.ssh_command(key), s.port))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn svn_checkout_and_commit_through_the_front_door_as_the_ssh_identity() {
    let svn_root = tempfile::tempdir().unwrap();
    let port = free_port();
    let _svnserve = svnserve(svn_root.path(), port);
    let cfg = format!(
        "{}\n[[svn_servers]]\nname = \"svn1\"\naddress = \"127.0.0.1:{port}\"\nrepos = [\"team/**\"]\nsecret_file = \"svn_secret\"\n",
        config(ACCESS)
    );
    let s = start_prepared(&cfg, |data| {
        use std::os::unix::fs::PermissionsExt;
        let secret = data.join("svn_secret");
        std::fs::write(&secret, SECRET).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    });
    let alice = s.user_key("alice", Some("alice"));
    let bob = s.user_key("bob", Some("bob"));
    let work = tempfile::tempdir().unwrap();
    let url = |path: &str| format!("svn+ssh://git@127.0.0.1/{path}");

    let (ok, out) = svn(
        &s,
        &alice,
        work.path(),
        &["checkout", &url("team/proj"), "wc"],
    );
    assert!(ok, "{out}\n{}", s.log());
    let wc = work.path().join("wc");
    std::fs::write(wc.join("README"), "hello over svn+ssh\n").unwrap();
    let (ok, out) = svn(&s, &alice, &wc, &["add", "README"]);
    assert!(ok, "{out}");
    let (ok, out) = svn(&s, &alice, &wc, &["commit", "-m", "first"]);
    assert!(
        ok && out.contains("Committed revision 1"),
        "{out}\n{}",
        s.log()
    );
    // The svn server recorded the SSH identity as the author.
    let author = Command::new(require("svnlook", "subversion"))
        .arg("author")
        .arg(svn_root.path().join("team/proj"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&author.stdout).trim(), "alice");
    // A second checkout of a path inside the repository sees the commit.
    let (ok, out) = svn(&s, &alice, work.path(), &["cat", &url("team/proj/README")]);
    assert!(ok && out.contains("hello over svn+ssh"), "{out}");
    assert!(
        s.log().contains("command=\"svnserve\"") || s.log().contains("command=svnserve"),
        "{}",
        s.log()
    );

    // Refused: a read-only user, a repository no svn server serves, a URL without one.
    let (ok, out) = svn(
        &s,
        &bob,
        work.path(),
        &["checkout", &url("team/proj"), "wc2"],
    );
    assert!(
        !ok && out.contains("not found, or you do not have access"),
        "{out}"
    );
    let (ok, out) = svn(
        &s,
        &alice,
        work.path(),
        &["checkout", &url("other/proj"), "wc3"],
    );
    assert!(
        !ok && out.contains("not found, or you do not have access"),
        "{out}"
    );
    let (ok, out) = svn(&s, &alice, work.path(), &["checkout", &url("team"), "wc4"]);
    assert!(!ok && out.contains("names no repository"), "{out}");
}

/// The same through the site's HTTP API: `/access` (asked for write) answers
/// `"upstream": "svn1"` for `team/…` (the reference backend's `--route`), so the svn server
/// needs no `repos` of its own; a reader is refused with the backend's message.
#[test]
fn an_http_backend_routes_an_svn_repository_to_its_svn_server() {
    let svn_root = tempfile::tempdir().unwrap();
    let port = free_port();
    let _svnserve = svnserve(svn_root.path(), port);
    let api = routing_api("team/=svn1");
    let cfg = format!(
        "{}\n[[svn_servers]]\nname = \"svn1\"\naddress = \"127.0.0.1:{port}\"\nsecret_file = \"svn_secret\"\n",
        http_keys(&config(ACCESS), api.port)
    );
    let s = start_prepared(&cfg, |data| {
        use std::os::unix::fs::PermissionsExt;
        write_secret(data);
        let secret = data.join("svn_secret");
        std::fs::write(&secret, SECRET).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    });
    let alice = Git {
        server: &s,
        key: s.user_key("alice", None),
    };
    let bob = Git {
        server: &s,
        key: s.user_key("bob", None),
    };
    list(&api.keys, &alice, "alice");
    list(&api.keys, &bob, "bob");
    let work = tempfile::tempdir().unwrap();
    let url = "svn+ssh://git@127.0.0.1/team/proj";
    let (ok, out) = svn(&s, &alice.key, work.path(), &["checkout", url, "wc"]);
    assert!(ok, "{out}\n{}", s.log());
    // The backend's own words reach the svn user.
    let (ok, out) = svn(&s, &bob.key, work.path(), &["checkout", url, "wc2"]);
    assert!(!ok && out.contains("bob may only read team/proj"), "{out}");
}
