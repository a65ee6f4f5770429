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
    let known: String = keys
        .iter()
        .map(|k| format!("[127.0.0.1]:PORT {}\n", k.public().to_openssh()))
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    std::fs::write(
        dir.path().join("known_hosts"),
        known.replace("PORT", &port.to_string()),
    )
    .unwrap();
    std::fs::write(dir.path().join("authorized_keys"), "").unwrap();
    let keys: Arc<[PrivateKey]> = Arc::from(keys);
    let lookup = Arc::new(FileLookup::new(dir.path().join("authorized_keys")));
    tokio::spawn(async move {
        loop {
            let Ok((sock, peer)) = listener.accept().await else {
                return;
            };
            let s = ServerConnection::new(
                &ServerConfig::default(),
                keys.clone(),
                Box::new(os_rng().unwrap()),
                Instant::now(),
            );
            struct Nothing;
            impl portcullis::driver::server::SessionHandler for Nothing {
                fn exec(
                    &self,
                    _: &portcullis::driver::server::SessionContext,
                    _: &[u8],
                    _: portcullis::driver::server::SessionIo,
                ) -> portcullis::driver::server::ExecDecision {
                    portcullis::driver::server::ExecDecision::Refuse("no".into())
                }
            }
            tokio::spawn(serve(sock, peer, s, lookup.clone(), Arc::new(Nothing)));
        }
    });
    let kh = dir.path().join("known_hosts");
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
