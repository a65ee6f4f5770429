//! RSA and ECDSA host keys with the OpenSSH client, and our key files read by ssh-keygen.

use std::sync::Arc;
use std::time::Instant;

use portcullis::driver::os_rng;
use portcullis::driver::server::serve;
use portcullis::keys::key_file;
use portcullis::keys::{KeyType, PrivateKey};
use portcullis::lookup::FileLookup;
use portcullis::server::{ServerConfig, ServerConnection};

use crate::common::{require, run_ssh};

fn keygen_private(dir: &std::path::Path, kind: &str, bits: &str) -> PrivateKey {
    let path = dir.join(format!("host-{kind}-{bits}"));
    assert!(
        std::process::Command::new(require("ssh-keygen", "openssh-client"))
            .args(["-q", "-N", "", "-t", kind, "-b", bits, "-f"])
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    key_file::parse(&std::fs::read_to_string(path).unwrap(), None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_verifies_each_host_key_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let keys = vec![
        keygen_private(dir.path(), "ed25519", "256"),
        keygen_private(dir.path(), "ecdsa", "256"),
        keygen_private(dir.path(), "ecdsa", "384"),
        keygen_private(dir.path(), "ecdsa", "521"),
        keygen_private(dir.path(), "rsa", "3072"),
    ];
    let (port, kh) = spawn_server(dir.path(), keys, ServerConfig::default()).await;
    for (alg, shown) in [
        ("ssh-ed25519", "ED25519"),
        ("ecdsa-sha2-nistp256", "ECDSA"),
        ("ecdsa-sha2-nistp384", "ECDSA"),
        ("ecdsa-sha2-nistp521", "ECDSA"),
        ("rsa-sha2-512", "RSA"),
        ("rsa-sha2-256", "RSA"),
    ] {
        let (code, log) = run_ssh(port, &kh, &["-o", &format!("HostKeyAlgorithms={alg}")]).await;
        assert_eq!(code, 255, "{log}");
        assert!(
            log.contains(&format!("kex: host key algorithm: {alg}")),
            "{alg}: {log}"
        );
        assert!(
            log.contains(&format!("matches the {shown} host key")),
            "{alg}: {log}"
        );
        assert!(
            log.contains("Permission denied (publickey)"),
            "{alg}: {log}"
        );
    }
    // SHA-1 `ssh-rsa` signatures are not on offer by default…
    let (code, log) = run_ssh(port, &kh, &["-o", "HostKeyAlgorithms=ssh-rsa"]).await;
    assert_eq!(code, 255, "{log}");
    assert!(log.contains("no matching host key type found"), "{log}");
}

/// …and are made (with the same RSA key) when the configuration opts in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_rsa_host_signatures_when_opted_in() {
    let dir = tempfile::tempdir().unwrap();
    let keys = vec![
        keygen_private(dir.path(), "ed25519", "256"),
        keygen_private(dir.path(), "rsa", "3072"),
    ];
    let mut config = ServerConfig::default();
    let mut transport = (*config.transport).clone();
    transport
        .preferences
        .host_key
        .push(portcullis::keys::SigAlg::RsaSha1);
    config.transport = Arc::new(transport);
    let (port, kh) = spawn_server(dir.path(), keys, config).await;
    let (code, log) = run_ssh(port, &kh, &["-o", "HostKeyAlgorithms=ssh-rsa"]).await;
    assert_eq!(code, 255, "{log}");
    assert!(log.contains("kex: host key algorithm: ssh-rsa"), "{log}");
    assert!(log.contains("matches the RSA host key"), "{log}");
    assert!(log.contains("Permission denied (publickey)"), "{log}");
    // Clients that prefer SHA-2 still get it from the same server.
    let (_, log) = run_ssh(port, &kh, &["-o", "HostKeyAlgorithms=rsa-sha2-512,ssh-rsa"]).await;
    assert!(
        log.contains("kex: host key algorithm: rsa-sha2-512"),
        "{log}"
    );
}

/// Serves `keys` with `config` (every exec refused); returns the port and a known_hosts file.
async fn spawn_server(
    dir: &std::path::Path,
    keys: Vec<PrivateKey>,
    config: ServerConfig,
) -> (u16, std::path::PathBuf) {
    let known: String = keys
        .iter()
        .map(|k| format!("[127.0.0.1]:PORT {}\n", k.public().to_openssh()))
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, known.replace("PORT", &port.to_string())).unwrap();
    std::fs::write(dir.join("authorized_keys"), "").unwrap();
    let keys: Arc<[PrivateKey]> = Arc::from(keys);
    let lookup = Arc::new(FileLookup::new(dir.join("authorized_keys")));
    tokio::spawn(async move {
        loop {
            let Ok((sock, peer)) = listener.accept().await else {
                return;
            };
            let s = ServerConnection::new(
                &config,
                keys.clone(),
                Box::new(os_rng().unwrap()),
                Instant::now(),
            );
            struct Nothing;
            impl portcullis::session::SessionHandler for Nothing {
                fn exec(
                    &self,
                    _: &portcullis::session::SessionContext,
                    _: &[u8],
                    _: portcullis::session::SessionIo,
                ) -> portcullis::session::ExecDecision {
                    portcullis::session::ExecDecision::Refuse("no".into())
                }
            }
            tokio::spawn(serve(sock, peer, s, lookup.clone(), Arc::new(Nothing)));
        }
    });
    (port, kh)
}

#[test]
fn our_key_files_are_read_by_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = os_rng().unwrap();
    let ecdsa = keygen_private(dir.path(), "ecdsa", "384");
    let keys = [
        PrivateKey::generate_ed25519(&mut rng),
        PrivateKey::generate_rsa(&mut rng, 2048).unwrap(),
        ecdsa,
    ];
    for (i, key) in keys.iter().enumerate() {
        let path = dir.path().join(format!("ours-{i}"));
        std::fs::write(
            &path,
            key_file::serialize(key, "portcullis test", &mut rng).as_bytes(),
        )
        .unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(&path).unwrap().permissions(),
            0o600,
        );
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let out = std::process::Command::new(require("ssh-keygen", "openssh-client"))
            .arg("-y")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            portcullis::keys::PublicKey::from_openssh(&printed).unwrap(),
            key.public()
        );
        let back = key_file::parse(&std::fs::read_to_string(&path).unwrap(), None).unwrap();
        assert_eq!(back.public(), key.public());
    }
    assert_eq!(keys[1].public().key_type(), KeyType::Rsa);
}
