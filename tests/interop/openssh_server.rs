//! Our client against OpenSSH sshd: the handshake for each cipher (and MAC), the host key
//! check, and client-initiated re-exchanges driven by a tiny byte limit after authenticating.

use std::sync::Arc;
use std::time::Instant;

use portcullis::auth::publickey::{self, Request};
use portcullis::client::known_hosts::KnownHosts;
use portcullis::driver::{Connection, Ended, drive, os_rng};
use portcullis::error::{DisconnectReason, Error};
use portcullis::keys::PrivateKey;
use portcullis::transport::{
    CipherAlg, HostKeyVerifier, MacAlg, Pinned, Transport, TransportConfig, TransportEvent,
};
use portcullis::wire::Reader;

use crate::common::{Sshd, userauth_none};

/// Test-only client script: ask for ssh-userauth; then either try "none" and record the methods
/// offered, or authenticate with `key`, push `ignore_bytes` of IGNORE traffic at the pace the
/// transport accepts, and finish with a global request whose reply proves sshd read it all.
struct Script {
    t: Transport,
    key: Option<(String, PrivateKey)>,
    ignore_left: usize,
    kex: Vec<(CipherAlg, Option<MacAlg>, bool)>,
    methods: Option<String>,
    authenticated: bool,
    finished: bool,
}

impl Script {
    fn new(t: Transport, key: Option<(String, PrivateKey)>, ignore_bytes: usize) -> Self {
        Self {
            t,
            key,
            ignore_left: ignore_bytes,
            kex: Vec::new(),
            methods: None,
            authenticated: false,
            finished: false,
        }
    }

    fn pump(&mut self) -> Result<(), Error> {
        if !self.authenticated || self.finished {
            return Ok(());
        }
        let chunk = [0x5a; 2048];
        while self.ignore_left > 0 && !self.t.send_blocked() {
            self.t.send_with(|w| {
                w.u8(2).string(&chunk);
            })?;
            self.ignore_left = self.ignore_left.saturating_sub(chunk.len());
        }
        if self.ignore_left == 0 {
            self.finished = true;
            self.t.send_with(|w| {
                w.u8(80).string(b"keepalive@openssh.com").bool(true);
            })?;
        }
        Ok(())
    }
}

impl Connection for Script {
    fn handle_input(&mut self, bytes: &mut [u8], now: Instant) -> Result<usize, Error> {
        let (used, pkt) = self.t.read(bytes, now)?;
        while let Some(ev) = self.t.poll_event() {
            if let TransportEvent::KexDone {
                algorithms, strict, ..
            } = ev
            {
                self.kex
                    .push((algorithms.cipher_c2s, algorithms.mac_c2s, strict));
            }
        }
        if let Some(p) = pkt {
            let payload = p.payload().to_vec();
            self.t.recycle(p);
            match payload.first() {
                Some(6) => match &self.key {
                    None => self.t.send_with(|w| userauth_none(w, "nobody"))?,
                    Some((user, key)) => {
                        let blob = key.public().to_blob();
                        let req = Request {
                            user: user.as_bytes(),
                            service: b"ssh-connection",
                            algorithm: b"ssh-ed25519",
                            key_blob: &blob,
                            host_key: None,
                        };
                        let sig =
                            key.sign(&publickey::signed_data(self.t.session_id().unwrap(), &req));
                        self.t
                            .send_with(|w| publickey::write_request(w, &req, Some(&sig)))?;
                    }
                },
                Some(51) => {
                    let mut r = Reader::new(&payload[1..]);
                    self.methods = Some(r.name_list().unwrap().as_str().to_owned());
                    self.t.disconnect(DisconnectReason::ByApplication, "done");
                }
                Some(52) => {
                    self.authenticated = true;
                    self.t.set_authenticated();
                    self.pump()?;
                }
                Some(81 | 82) => self.t.disconnect(DisconnectReason::ByApplication, "done"),
                _ => {}
            }
        }
        Ok(used)
    }
    fn handle_writable(&mut self, _now: Instant) -> Result<(), Error> {
        self.pump()
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.t.poll_transmit(out);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.t.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.t.handle_timeout(now)
    }
    fn is_closed(&self) -> bool {
        self.t.is_closed()
    }
}

async fn run_client(
    sshd: &Sshd,
    config: TransportConfig,
    key: Option<(String, PrivateKey)>,
    ignore_bytes: usize,
) -> Script {
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", sshd.port))
        .await
        .unwrap();
    let mut t = Transport::new_client(
        Arc::new(config),
        Box::new(Pinned::Key(sshd.host_key.clone())),
        Box::new(os_rng().unwrap()),
        Instant::now(),
    );
    t.send_with(|w| {
        w.u8(5).string(b"ssh-userauth");
    })
    .unwrap();
    let mut s = Script::new(t, key, ignore_bytes);
    let ended =
        match tokio::time::timeout(std::time::Duration::from_secs(30), drive(&mut sock, &mut s))
            .await
        {
            Ok(e) => e,
            Err(_) => panic!("client hung; sshd log:\n{}", sshd.log()),
        };
    assert!(
        matches!(ended, Ended::Closed),
        "{ended:?}\nsshd log:\n{}",
        sshd.log()
    );
    s
}

/// Our client's handshake with sshd on `port` under `cfg`, judging the host key with
/// `verifier`, then SERVICE_REQUEST ssh-userauth and a `none` attempt: how it ended, and the
/// methods sshd offered.
async fn none_attempt(
    port: u16,
    cfg: TransportConfig,
    verifier: Box<dyn HostKeyVerifier>,
) -> (Ended, Option<String>) {
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut t = Transport::new_client(
        Arc::new(cfg),
        verifier,
        Box::new(os_rng().unwrap()),
        Instant::now(),
    );
    t.send_with(|w| {
        w.u8(5).string(b"ssh-userauth");
    })
    .unwrap();
    let mut s = Script::new(t, None, 0);
    let ended = drive(&mut sock, &mut s).await;
    (ended, s.methods)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_handshakes_with_sshd_for_each_cipher() {
    let sshd = Sshd::start("");
    for cipher in CipherAlg::SUPPORTED {
        let macs: Vec<Option<MacAlg>> = if cipher.is_aead() {
            vec![None]
        } else {
            // sshd 9.2 still offers the SHA-1 MACs by default: our opt-in ones are checked too.
            MacAlg::ALL.iter().copied().map(Some).collect()
        };
        for mac in macs {
            let mut cfg = TransportConfig::default();
            cfg.preferences.ciphers = vec![cipher];
            if let Some(m) = mac {
                cfg.preferences.macs = vec![m];
            }
            let s = run_client(&sshd, cfg, None, 0).await;
            assert_eq!(s.kex, vec![(cipher, mac, true)], "strict kex with OpenSSH");
            assert_eq!(
                s.methods.as_deref(),
                Some("publickey"),
                "sshd log:\n{}",
                sshd.log()
            );
            assert!(s.t.session_id().is_some());
        }
    }
}

fn current_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_rekeys_with_sshd_after_a_small_byte_limit() {
    let sshd = Sshd::start("");
    let key = PrivateKey::generate_ed25519(&mut os_rng().unwrap());
    std::fs::write(
        sshd.dir.path().join("authorized_keys"),
        format!("{}\n", key.public().to_openssh()),
    )
    .unwrap();
    let mut cfg = TransportConfig::default();
    cfg.rekey_bytes = 16 * 1024;
    let s = run_client(&sshd, cfg, Some((current_user(), key)), 256 * 1024).await;
    assert!(
        s.authenticated,
        "publickey auth failed; sshd log:\n{}",
        sshd.log()
    );
    assert!(
        s.kex.len() >= 10,
        "only {} exchanges; sshd log:\n{}",
        s.kex.len(),
        sshd.log()
    );
    assert!(s.finished);
}

/// A known_hosts file hashed by OpenSSH's own `ssh-keygen -H` verifies the real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_accepts_sshd_through_a_hashed_known_hosts_file() {
    let sshd = Sshd::start("");
    let kh_path = sshd.dir.path().join("known_hosts");
    std::fs::write(
        &kh_path,
        format!("[127.0.0.1]:{} {}\n", sshd.port, sshd.host_key.to_openssh()),
    )
    .unwrap();
    let keygen = crate::common::require("ssh-keygen", "openssh-client");
    assert!(
        std::process::Command::new(keygen)
            .args(["-q", "-H", "-f"])
            .arg(&kh_path)
            .status()
            .unwrap()
            .success()
    );
    let text = std::fs::read_to_string(&kh_path).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let kh = KnownHosts::parse(&text);
    let verifier = Box::new(kh.verifier("127.0.0.1", sshd.port));
    let (ended, methods) = none_attempt(sshd.port, TransportConfig::default(), verifier).await;
    assert!(matches!(ended, Ended::Closed), "{ended:?}");
    assert_eq!(methods.as_deref(), Some("publickey"));
    // The same file does not vouch for another port.
    let verifier = Box::new(kh.verifier("127.0.0.1", sshd.port + 1));
    let (ended, _) = none_attempt(sshd.port, TransportConfig::default(), verifier).await;
    assert!(matches!(ended, Ended::Error(Error::HostKeyRejected(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_refuses_sshd_with_an_unexpected_host_key() {
    let sshd = Sshd::start("");
    let other = PrivateKey::generate_ed25519(&mut os_rng().unwrap()).public();
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", sshd.port))
        .await
        .unwrap();
    let t = Transport::new_client(
        Arc::new(TransportConfig::default()),
        Box::new(Pinned::Key(other)),
        Box::new(os_rng().unwrap()),
        Instant::now(),
    );
    let mut s = Script::new(t, None, 0);
    let ended = drive(&mut sock, &mut s).await;
    assert!(
        matches!(ended, Ended::Error(Error::HostKeyRejected(_))),
        "{ended:?}"
    );
    assert!(s.kex.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_negotiates_each_kex_method_sshd_knows() {
    use portcullis::transport::KexAlg;
    let sshd = Sshd::start("");
    let openssh = crate::common::openssh_kex();
    let mut tested = 0;
    let order: Vec<KexAlg> = std::env::var("KEX_ONLY")
        .ok()
        .and_then(|n| KexAlg::from_wire_name(&n))
        .map_or_else(|| KexAlg::SUPPORTED.to_vec(), |k| vec![k]);
    for kex in order
        .into_iter()
        .filter(|k| openssh.contains(&k.wire_name().to_string()))
    {
        let mut cfg = TransportConfig::default();
        cfg.preferences.kex = vec![kex];
        let s = run_client(&sshd, cfg, None, 0).await;
        assert_eq!(s.kex.len(), 1, "{kex:?}: {}", sshd.log());
        assert_eq!(s.methods.as_deref(), Some("publickey"));
        assert!(
            sshd.log()
                .contains(&format!("kex: algorithm: {}", kex.wire_name())),
            "{kex:?}"
        );
        tested += 1;
    }
    assert!(tested >= 5 || std::env::var("KEX_ONLY").is_ok());
}

/// sshd with every host key type; our client insists on one algorithm at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_verifies_each_host_key_algorithm_of_sshd() {
    use portcullis::keys::{PublicKey, SigAlg};
    let keygen = crate::common::require("ssh-keygen", "openssh-client");
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    let mut keys = Vec::new();
    for (kind, bits) in [
        ("ecdsa", "256"),
        ("ecdsa", "384"),
        ("ecdsa", "521"),
        ("rsa", "3072"),
    ] {
        let path = dir.path().join(format!("host_{kind}{bits}"));
        assert!(
            std::process::Command::new(&keygen)
                .args(["-q", "-N", "", "-t", kind, "-b", bits, "-f"])
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
        lines.push_str(&format!("HostKey {}\n", path.display()));
        keys.push(
            PublicKey::from_openssh(&std::fs::read_to_string(path.with_extension("pub")).unwrap())
                .unwrap(),
        );
    }
    lines.push_str("HostKeyAlgorithms +ssh-rsa\n");
    let sshd = Sshd::start(&lines);
    keys.push(sshd.host_key.clone());
    for alg in SigAlg::HOST_ALL {
        let key = keys
            .iter()
            .find(|k| k.key_type() == alg.key_type())
            .unwrap()
            .clone();
        let mut cfg = TransportConfig::default();
        cfg.preferences.host_key = vec![alg];
        let (ended, methods) = none_attempt(sshd.port, cfg, Box::new(Pinned::Key(key))).await;
        assert!(
            matches!(ended, Ended::Closed),
            "{alg:?}: {ended:?}\n{}",
            sshd.log()
        );
        assert_eq!(methods.as_deref(), Some("publickey"), "{alg:?}");
    }
}

/// sshd presents an ECDSA `HostCertificate`: our client, trusting only its CA through an
/// `@cert-authority` known_hosts line, offers the certificate algorithm first and accepts
/// it; with another CA, or a certificate naming another host, it refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_accepts_a_host_certificate_from_a_trusted_ca() {
    use crate::host_certificates::{certify_host, host_ca};
    use portcullis::keys::SigAlg;
    let dir = tempfile::tempdir().unwrap();
    let trusted = host_ca(dir.path(), "ca");
    let other = host_ca(dir.path(), "other_ca");
    let mut lines = String::new();
    for (name, principal) in [
        ("host_ok", "127.0.0.1"),
        ("host_wrong", "elsewhere.example"),
    ] {
        let key = dir.path().join(name);
        let made =
            std::process::Command::new(crate::common::require("ssh-keygen", "openssh-client"))
                .args([
                    "-q",
                    "-N",
                    "",
                    "-t",
                    "ecdsa",
                    "-b",
                    if name == "host_ok" { "256" } else { "384" },
                    "-f",
                ])
                .arg(&key)
                .status()
                .unwrap();
        assert!(made.success());
        certify_host(&dir.path().join("ca"), &key, principal);
        lines.push_str(&format!(
            "HostKey {}\nHostCertificate {}-cert.pub\n",
            key.display(),
            key.display()
        ));
    }
    let sshd = Sshd::start(&lines);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (sig, known, ok) in [
        (SigAlg::EcdsaP256, &trusted, true),
        (SigAlg::EcdsaP256, &other, false),
        (SigAlg::EcdsaP384, &trusted, false),
    ] {
        let mut cfg = TransportConfig::default();
        cfg.preferences.host_key = vec![sig];
        let verifier = KnownHosts::parse(known)
            .verifier("127.0.0.1", sshd.port)
            .at(now);
        let (ended, methods) = none_attempt(sshd.port, cfg, Box::new(verifier)).await;
        if ok {
            assert!(matches!(ended, Ended::Closed), "{ended:?}\n{}", sshd.log());
            assert_eq!(methods.as_deref(), Some("publickey"));
        } else {
            assert!(
                matches!(ended, Ended::Error(Error::HostKeyRejected(_))),
                "{sig:?}: {ended:?}"
            );
        }
    }
}
