//! Host certificates [PROTOCOL.certkeys] (issue 20): the `portcullis` binary presents one
//! (`host_certificates`), and OpenSSH's client trusts it through an `@cert-authority`
//! known_hosts line alone; our client judges sshd's `HostCertificate` the same way.

use std::path::Path;
use std::process::Command;

use crate::common::{require, run_ssh};
use crate::git_server::{EVERYONE_WRITES, config, start_prepared};

fn keygen(args: &[&str], path: &Path) {
    let ok = Command::new(require("ssh-keygen", "openssh-client"))
        .args(args)
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen {args:?} {}", path.display());
}

/// A CA in `dir/name`; its `@cert-authority` known_hosts line for every host.
pub fn host_ca(dir: &Path, name: &str) -> String {
    keygen(
        &["-q", "-N", "", "-t", "ed25519", "-C", name, "-f"],
        &dir.join(name),
    );
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    format!("@cert-authority * {}", public.trim())
}

/// `key.pub` certified by `ca` as a host certificate for `principals` (`key-cert.pub`).
pub fn certify_host(ca: &Path, key: &Path, principals: &str) {
    keygen(
        &[
            "-q",
            "-s",
            ca.to_str().unwrap(),
            "-h",
            "-I",
            "test host",
            "-n",
            principals,
        ],
        &key.with_extension("pub"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_trusts_our_host_certificate_through_its_ca_alone() {
    let cfg = config(EVERYONE_WRITES).replace(
        "host_keys = [\"host_ed25519_key\"]",
        "host_keys = [\"host_ed25519_key\"]\nhost_certificates = [\"host_ed25519_key-cert.pub\"]",
    );
    let mut trusted = String::new();
    let s = start_prepared(&cfg, |data| {
        trusted = host_ca(data, "ca");
        let key = data.join("host_ed25519_key");
        keygen(&["-q", "-N", "", "-t", "ed25519", "-f"], &key);
        certify_host(&data.join("ca"), &key, "127.0.0.1");
    });
    let kh = s.dir.path().join("known_hosts_ca");
    std::fs::write(&kh, format!("{trusted}\n")).unwrap();
    let (code, log) = run_ssh(s.port, &kh, &[]).await;
    assert!(
        log.contains("Server host certificate: ssh-ed25519-cert-v01@openssh.com"),
        "{log}"
    );
    assert!(log.contains("Permission denied (publickey)"), "{log}");
    assert_eq!(code, 255, "{log}");
    // The same server with a CA ssh does not trust: the host key is unknown.
    let other = host_ca(s.dir.path(), "other_ca");
    std::fs::write(&kh, format!("{other}\n")).unwrap();
    let (code, log) = run_ssh(s.port, &kh, &[]).await;
    assert_eq!(code, 255);
    assert!(log.contains("Host key verification failed"), "{log}");
}
