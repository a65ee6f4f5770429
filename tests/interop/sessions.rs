//! The OpenSSH client against our ServerConnection: public key auth with every key type and
//! RSA hash, refusals, bulk data both ways, flow control with a slow reader, stderr and exit
//! status, and re-keying during a transfer.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use portcullis::keys::{PublicKey, SigAlg};
use portcullis::server::ServerConfig;
use sha2::{Digest, Sha256};

use crate::common::require;
use crate::session_server::{SessionServer, small_window_config};

/// Generates a user key with ssh-keygen; returns (private key path, public key).
fn user_key(dir: &Path, kind: &str, bits: Option<&str>) -> (PathBuf, PublicKey) {
    let path = dir.join(format!("id_{kind}_{}", bits.unwrap_or("")));
    let mut cmd = std::process::Command::new(require("ssh-keygen", "openssh-client"));
    cmd.args(["-q", "-N", "", "-t", kind, "-f"]).arg(&path);
    if let Some(b) = bits {
        cmd.args(["-b", b]);
    }
    assert!(cmd.status().unwrap().success());
    let public =
        PublicKey::from_openssh(&std::fs::read_to_string(path.with_extension("pub")).unwrap())
            .unwrap();
    (path, public)
}

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

async fn ssh(
    server: &SessionServer,
    dir: &Path,
    key: &Path,
    extra: &[&str],
    remote: &[&str],
    stdin: Option<&Path>,
) -> Run {
    let kh = server.known_hosts(dir);
    let mut cmd = tokio::process::Command::new(require("ssh", "openssh-client"));
    cmd.args([
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
    ])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={}", kh.display()))
    .args([
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
    ])
    .arg(key)
    .args(["-p", &server.port.to_string()])
    .args(extra)
    .arg("git@127.0.0.1")
    .args(remote)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    match stdin {
        Some(p) => cmd.stdin(std::fs::File::open(p).unwrap()),
        None => cmd.stdin(Stdio::null()),
    };
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("ssh hung")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn random_file(dir: &Path, mib: usize) -> (PathBuf, String) {
    let path = dir.join(format!("data-{mib}"));
    let mut data = vec![0u8; mib << 20];
    let mut state = 0x1234_5678_9abc_def0u64;
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let digest = hex::encode(Sha256::digest(&data));
    std::fs::write(&path, data).unwrap();
    (path, digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_authenticates_with_every_key_type_and_rsa_hash() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        user_key(dir.path(), "ed25519", None),
        user_key(dir.path(), "ecdsa", Some("256")),
        user_key(dir.path(), "ecdsa", Some("384")),
        user_key(dir.path(), "ecdsa", Some("521")),
        user_key(dir.path(), "rsa", Some("3072")),
    ];
    let allowed: Vec<PublicKey> = keys.iter().map(|(_, k)| k.clone()).collect();
    let server = SessionServer::start(ServerConfig::default(), allowed, 64 * 1024).await;
    let input = dir.path().join("hello");
    std::fs::write(&input, b"hello\n").unwrap();
    let cases: [(usize, &[&str], SigAlg); 6] = [
        (0, &[], SigAlg::Ed25519),
        (1, &[], SigAlg::EcdsaP256),
        (2, &[], SigAlg::EcdsaP384),
        (3, &[], SigAlg::EcdsaP521),
        (
            4,
            &["-o", "PubkeyAcceptedAlgorithms=rsa-sha2-256"],
            SigAlg::RsaSha256,
        ),
        (
            4,
            &["-o", "PubkeyAcceptedAlgorithms=rsa-sha2-512"],
            SigAlg::RsaSha512,
        ),
    ];
    for (i, extra, alg) in cases {
        let run = ssh(
            &server,
            dir.path(),
            &keys[i].0,
            extra,
            &["echo"],
            Some(&input),
        )
        .await;
        assert_eq!(
            (run.code, run.stdout.as_slice()),
            (0, &b"hello\n"[..]),
            "{alg:?}: {}",
            run.stderr
        );
        assert_eq!(
            server.log.auth_algs.lock().unwrap().last().copied(),
            Some(Some(alg))
        );
    }
    let auths = server.log.authenticated.lock().unwrap();
    assert_eq!(auths.len(), 6);
    assert!(auths.iter().all(|(user, _)| user == "git"));
    assert!(
        server.log.errors.lock().unwrap().is_empty(),
        "{:?}",
        server.log.errors.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_with_an_unauthorized_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, good) = user_key(dir.path(), "ed25519", None);
    let (bad_path, _) = user_key(dir.path(), "ecdsa", Some("256"));
    let server = SessionServer::start(ServerConfig::default(), vec![good], 64 * 1024).await;
    let run = ssh(&server, dir.path(), &bad_path, &[], &["echo"], None).await;
    assert_eq!(run.code, 255);
    assert!(
        run.stderr.contains("Permission denied (publickey)"),
        "{}",
        run.stderr
    );
    assert!(server.log.authenticated.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_and_exit_status_reach_the_client_and_other_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = user_key(dir.path(), "ed25519", None);
    let server = SessionServer::start(ServerConfig::default(), vec![public], 64 * 1024).await;
    let run = ssh(
        &server,
        dir.path(),
        &key,
        &[],
        &["fail", "7", "something broke"],
        None,
    )
    .await;
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(run.stderr.contains("something broke"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    // No command: a shell request, refused.
    let run = ssh(&server, dir.path(), &key, &[], &[], None).await;
    assert_ne!(run.code, 0, "{}", run.stderr);
    // A pty is refused; ssh carries on with the command.
    let input = dir.path().join("x");
    std::fs::write(&input, b"x").unwrap();
    let run = ssh(&server, dir.path(), &key, &["-tt"], &["echo"], Some(&input)).await;
    assert!(
        run.stderr.contains("PTY allocation request failed"),
        "{}",
        run.stderr
    );
    // A forwarding channel is refused.
    let run = ssh(&server, dir.path(), &key, &["-W", "127.0.0.1:9"], &[], None).await;
    assert_eq!(run.code, 255);
    assert!(
        run.stderr.contains("administratively prohibited"),
        "{}",
        run.stderr
    );
    let refused = server.log.refused_requests.lock().unwrap().clone();
    assert!(
        refused.contains(&"shell".to_string()) && refused.contains(&"pty-req".to_string()),
        "{refused:?}"
    );
    assert_eq!(
        server.log.refused_opens.lock().unwrap().as_slice(),
        ["direct-tcpip"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_data_round_trips_256_mib_with_rekeys() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = user_key(dir.path(), "ed25519", None);
    let server = SessionServer::start(ServerConfig::default(), vec![public], 64 * 1024).await;
    let (input, digest) = random_file(dir.path(), 256);
    let run = ssh(
        &server,
        dir.path(),
        &key,
        &["-o", "RekeyLimit=64M"],
        &["echo"],
        Some(&input),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.len(), 256 << 20);
    assert_eq!(hex::encode(Sha256::digest(&run.stdout)), digest);
    // 512 MiB went through the transport under a 64 MiB client limit.
    assert!(
        server.log.kex.load(Ordering::SeqCst) >= 5,
        "{}",
        server.log.kex.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_keeps_server_buffering_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = user_key(dir.path(), "ed25519", None);
    let server = SessionServer::start(small_window_config(), vec![public], 4096).await;
    let (input, digest) = random_file(dir.path(), 16);
    let run = ssh(&server, dir.path(), &key, &[], &["sha256"], Some(&input)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), digest);
    let max = server.log.max_buffered.load(Ordering::SeqCst);
    assert!(max > 0 && max <= 64 * 1024, "buffered {max}");
}
