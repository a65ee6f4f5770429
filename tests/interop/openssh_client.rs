//! The OpenSSH `ssh` client against our server: the handshake for every cipher, MAC and kex
//! name we offer, ext-info, strict kex, and a server-initiated re-exchange. Until the
//! authentication layer exists, "Authentications that can continue" proves ssh got past the
//! key exchange and host key check into the auth stage over the negotiated keys.

use std::sync::atomic::Ordering;

use portcullis::transport::{CipherAlg, KexAlg, MacAlg, TransportConfig};

use crate::common::{TestServer, run_ssh, run_ssh_with};

fn assert_reached_auth(code: i32, log: &str) {
    assert_eq!(code, 255, "{log}");
    assert!(
        log.contains("Authentications that can continue: publickey"),
        "{log}"
    );
    assert!(log.contains("Permission denied (publickey)"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_handshakes_with_each_cipher() {
    let server = TestServer::start(TransportConfig::default(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = server.known_hosts(dir.path());
    for cipher in CipherAlg::SUPPORTED {
        let macs: Vec<Option<MacAlg>> = if cipher.is_aead() {
            vec![None]
        } else {
            MacAlg::SUPPORTED.iter().copied().map(Some).collect()
        };
        for mac in macs {
            let mut args = vec!["-o".to_string(), format!("Ciphers={}", cipher.wire_name())];
            if let Some(m) = mac {
                args.extend(["-o".to_string(), format!("MACs={}", m.wire_name())]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, log) = run_ssh(server.port, &kh, &args).await;
            assert_reached_auth(code, &log);
            let mac_text = mac.map_or("<implicit>", |m| m.wire_name());
            let line = format!(
                "kex: server->client cipher: {} MAC: {mac_text} compression: none",
                cipher.wire_name()
            );
            assert!(log.contains(&line), "missing `{line}` in\n{log}");
            let line = format!(
                "kex: client->server cipher: {} MAC: {mac_text} compression: none",
                cipher.wire_name()
            );
            assert!(log.contains(&line), "missing `{line}` in\n{log}");
        }
    }
    assert!(
        server.log.errors.lock().unwrap().is_empty(),
        "{:?}",
        server.log.errors.lock().unwrap()
    );
}

/// `hmac-sha1` and its etm twin exist for old clients but only when the configuration names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha1_macs_only_when_opted_in() {
    let dir = tempfile::tempdir().unwrap();
    let plain = TestServer::start(TransportConfig::default(), false).await;
    let kh = plain.known_hosts(dir.path());
    for mac in [MacAlg::HmacSha1, MacAlg::HmacSha1Etm] {
        let macs = format!("MACs={}", mac.wire_name());
        let (code, log) =
            run_ssh(plain.port, &kh, &["-o", "Ciphers=aes128-ctr", "-o", &macs]).await;
        assert_eq!(code, 255, "{log}");
        assert!(log.contains("no matching MAC found"), "{log}");
    }
    let mut cfg = TransportConfig::default();
    cfg.preferences.macs = MacAlg::ALL.to_vec();
    let opted = TestServer::start(cfg, false).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = opted.known_hosts(dir.path());
    for mac in [MacAlg::HmacSha1, MacAlg::HmacSha1Etm] {
        let macs = format!("MACs={}", mac.wire_name());
        let (code, log) =
            run_ssh(opted.port, &kh, &["-o", "Ciphers=aes128-ctr", "-o", &macs]).await;
        assert_reached_auth(code, &log);
        for dir in ["client->server", "server->client"] {
            let line = format!(
                "kex: {dir} cipher: aes128-ctr MAC: {} compression: none",
                mac.wire_name()
            );
            assert!(log.contains(&line), "missing `{line}` in\n{log}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_handshakes_with_each_kex_name_and_checks_our_host_key() {
    let server = TestServer::start(TransportConfig::default(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = server.known_hosts(dir.path());
    let openssh = crate::common::openssh_kex();
    let tested: Vec<KexAlg> = KexAlg::SUPPORTED
        .into_iter()
        .filter(|k| openssh.contains(&k.wire_name().to_string()))
        .collect();
    assert!(
        tested.len() >= 5,
        "OpenSSH knows too few of our methods: {openssh:?}"
    );
    for kex in tested.iter().copied() {
        let (code, log) = run_ssh(
            server.port,
            &kh,
            &["-o", &format!("KexAlgorithms={}", kex.wire_name())],
        )
        .await;
        assert_reached_auth(code, &log);
        assert!(
            log.contains(&format!("kex: algorithm: {}", kex.wire_name())),
            "{log}"
        );
        assert!(
            log.contains(&format!(
                "Server host key: ssh-ed25519 {}",
                server.host_key.fingerprint()
            )),
            "{log}"
        );
        assert!(
            log.contains("is known and matches the ED25519 host key"),
            "{log}"
        );
        let sig_algs = "server-sig-algs=<ssh-ed25519,sk-ssh-ed25519@openssh.com,ecdsa-sha2-nistp256,\
                        sk-ecdsa-sha2-nistp256@openssh.com,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,\
                        rsa-sha2-512,rsa-sha2-256>";
        assert!(log.contains(sig_algs), "ext-info: {log}");
        // OpenSSH 9.2 predates ping (9.3) and calls it unrecognised: it was received.
        assert!(
            log.contains("kex_input_ext_info: ping@openssh.com"),
            "ext-info: {log}"
        );
    }
    // Every exchange OpenSSH 9.2 made with us ran in strict mode (the Terrapin countermeasure).
    let (done, strict) = (
        server.log.kex_done.load(Ordering::SeqCst),
        server.log.strict_kex.load(Ordering::SeqCst),
    );
    assert_eq!((done, strict), (tested.len(), tested.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_refuses_a_server_whose_key_it_does_not_know() {
    let server = TestServer::start(TransportConfig::default(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let other =
        portcullis::keys::PrivateKey::generate_ed25519(&mut portcullis::driver::os_rng().unwrap())
            .public();
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}\n", server.port, other.to_openssh()),
    )
    .unwrap();
    let (code, log) = run_ssh(server.port, &kh, &[]).await;
    assert_eq!(code, 255);
    assert!(
        log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{log}"
    );
}

/// After authentication our server starts a re-exchange at once, and ssh starts its own after
/// a second (`RekeyLimit default 1`) while it waits for its session channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekeys_both_ways_with_ssh_after_authentication() {
    let server = TestServer::start(TransportConfig::default(), true).await;
    let dir = tempfile::tempdir().unwrap();
    let kh = server.known_hosts(dir.path());
    // The test server lets the "none" method in, so ssh needs no key.
    let (code, log) = run_ssh_with(
        server.port,
        &kh,
        &["-o", "RekeyLimit=default 1"],
        &["-o", "PreferredAuthentications=none"],
    )
    .await;
    assert_eq!(code, 255, "{log}");
    assert!(log.contains("Authenticated to 127.0.0.1"), "{log}");
    assert!(
        log.contains("open failed: administratively prohibited: test server opens no channels"),
        "{log}"
    );
    assert!(
        log.matches("SSH2_MSG_KEXINIT received").count() >= 3,
        "{log}"
    );
    // ssh may exit before our task has read its last NEWKEYS off the socket.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.log.kex_done.load(Ordering::SeqCst) < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        server.log.kex_done.load(Ordering::SeqCst) >= 3,
        "server finished {} exchanges; errors {:?}\n{log}",
        server.log.kex_done.load(Ordering::SeqCst),
        server.log.errors.lock().unwrap()
    );
    assert!(
        server.log.errors.lock().unwrap().is_empty(),
        "{:?}",
        server.log.errors.lock().unwrap()
    );
}
