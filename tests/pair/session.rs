//! A client transport speaking raw RFC 4252/4254 messages to a `ServerConnection`, in memory:
//! authentication and channel rules, hostile shapes included.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::auth::publickey::{self, Request};
use portcullis::auth::server::AuthConfig;
use portcullis::crypto::rng::DeterministicRng;
use portcullis::error::{Error, ProtocolError};
use portcullis::keys::{PrivateKey, PublicKey, SigAlg};
use portcullis::server::{ServerConfig, ServerConnection, ServerEvent};
use portcullis::transport::{Pinned, Transport, TransportConfig};
use portcullis::wire::{Reader, Writer};
use serde_json::Value;

use crate::harness::host_key;

pub struct Session {
    pub client: Transport,
    pub server: ServerConnection,
    pub allowed: Vec<PublicKey>,
    pub now: Instant,
    /// Payloads the client received (upper layer).
    pub to_client: Vec<Vec<u8>>,
    pub server_events: Vec<ServerEvent>,
    pub server_error: Option<Error>,
    pub client_error: Option<Error>,
}

impl Session {
    /// A session logged in with `ed(1)`'s key.
    pub fn logged_in(config: ServerConfig) -> Self {
        let mut s = Self::new(config);
        s.login(&ed(1));
        s
    }

    /// The server ended the connection on an authentication rule.
    pub fn assert_auth_failed(&self) {
        assert!(
            matches!(self.server_error, Some(Error::Auth(_))),
            "{:?}",
            self.server_error
        );
    }

    /// The server disconnected the client with `reason` [RFC4253 §11.1].
    pub fn assert_disconnected(&self, reason: u32) {
        assert!(
            matches!(&self.client_error, Some(Error::PeerDisconnected { reason: r, .. }) if *r == reason),
            "{:?}",
            self.client_error
        );
    }

    pub fn new(config: ServerConfig) -> Self {
        let now = Instant::now();
        let key = host_key();
        let pinned = Pinned::Key(key.public());
        let server = ServerConnection::new(
            &config,
            Arc::from(vec![key]),
            Box::new(DeterministicRng::new(11)),
            now,
        );
        let client = Transport::new_client(
            Arc::new(TransportConfig::default()),
            Box::new(pinned),
            Box::new(DeterministicRng::new(12)),
            now,
        );
        let mut s = Self {
            client,
            server,
            allowed: Vec::new(),
            now,
            to_client: Vec::new(),
            server_events: Vec::new(),
            server_error: None,
            client_error: None,
        };
        s.client
            .send_with(|w| {
                w.u8(5).string(b"ssh-userauth");
            })
            .unwrap();
        s.drive();
        assert_eq!(s.to_client.pop().unwrap()[0], 6, "SERVICE_ACCEPT");
        s
    }

    pub fn send(&mut self, f: impl FnOnce(&mut Writer<'_>)) {
        self.client.send_with(f).unwrap();
        self.drive();
    }

    /// Moves bytes until quiet; the server's policy authorizes exactly `allowed`.
    pub fn drive(&mut self) {
        for _ in 0..1000 {
            let mut c2s = Vec::new();
            self.client.poll_transmit(&mut c2s);
            let mut s2c = Vec::new();
            self.server.poll_transmit(&mut s2c);
            if c2s.is_empty() && s2c.is_empty() {
                return;
            }
            let mut rest = &c2s[..];
            while !rest.is_empty() && self.server_error.is_none() {
                match self.server.handle_input(rest, self.now) {
                    Ok(n) => rest = &rest[n..],
                    Err(e) => {
                        self.server_error = Some(e);
                        break;
                    }
                }
                while let Some(ev) = self.server.poll_event() {
                    if let ServerEvent::AuthRequest(req) = &ev {
                        if self.allowed.contains(&req.key) {
                            self.server.accept_auth().unwrap();
                        } else if let Err(e) = self.server.reject_auth() {
                            self.server_error = Some(e);
                        }
                    }
                    self.server_events.push(ev);
                }
            }
            let mut rest = &s2c[..];
            while !rest.is_empty() && self.client_error.is_none() {
                match self.client.read(rest, self.now) {
                    Ok((n, pkt)) => {
                        rest = &rest[n..];
                        if let Some(p) = pkt {
                            self.to_client.push(p.payload().to_vec());
                        } else if n == 0 {
                            break;
                        }
                    }
                    Err(e) => self.client_error = Some(e),
                }
            }
        }
    }

    pub fn last_reply(&self) -> u8 {
        self.to_client.last().map_or(0, |m| m[0])
    }

    pub fn authenticated(&self) -> Option<PublicKey> {
        self.server_events.iter().find_map(|e| match e {
            ServerEvent::Authenticated { key, .. } => Some(key.clone()),
            _ => None,
        })
    }

    /// A signed `ssh-ed25519` login for `key`'s public key, the signature made by `signer`.
    pub fn ed25519_login(&mut self, key: &PrivateKey, signer: &PrivateKey) {
        self.pk_request(
            &key.public(),
            "ssh-ed25519",
            Some((signer, SigAlg::Ed25519)),
            None,
        );
    }

    /// A publickey request for `key` named `alg`, signed by `signer` (if any) over `session_id`.
    pub fn pk_request(
        &mut self,
        key: &PublicKey,
        alg: &str,
        signer: Option<(&PrivateKey, SigAlg)>,
        session_id: Option<Vec<u8>>,
    ) {
        self.pk_request_bound(key, alg, signer, session_id, None);
    }

    /// [`Session::pk_request`] as `publickey-hostbound-v00@openssh.com` naming `host_key`.
    pub fn pk_request_bound(
        &mut self,
        key: &PublicKey,
        alg: &str,
        signer: Option<(&PrivateKey, SigAlg)>,
        session_id: Option<Vec<u8>>,
        host_key: Option<&[u8]>,
    ) {
        let blob = key.to_blob();
        let req = Request {
            user: b"git",
            service: b"ssh-connection",
            algorithm: alg.as_bytes(),
            key_blob: &blob,
            host_key,
        };
        let sid = session_id.unwrap_or_else(|| self.client.session_id().unwrap().to_vec());
        let sig = signer.map(|(k, a)| k.sign_as(&publickey::signed_data(&sid, &req), a).unwrap());
        self.send(|w| publickey::write_request(w, &req, sig.as_deref()));
    }

    pub fn login(&mut self, key: &PrivateKey) {
        self.allowed.push(key.public());
        self.pk_request(
            &key.public(),
            key.algorithm().wire_name(),
            Some((key, key.algorithm())),
            None,
        );
        assert_eq!(self.last_reply(), 52, "USERAUTH_SUCCESS");
    }
}

pub fn ed(seed: u64) -> PrivateKey {
    PrivateKey::generate_ed25519(&mut DeterministicRng::new(seed))
}

fn rsa_test_key() -> PrivateKey {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/keys/rsa-2048-test.json");
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let h = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
    PrivateKey::rsa_from_components(&h("n"), &h("e"), &h("d"), &h("p"), &h("q")).unwrap()
}

#[test]
fn query_answers_pk_ok_and_signature_logs_in() {
    let mut s = Session::new(ServerConfig::default());
    let a = ed(1);
    s.allowed.push(a.public());
    s.pk_request(&a.public(), "ssh-ed25519", None, None);
    assert_eq!(s.last_reply(), 60, "PK_OK");
    assert!(s.authenticated().is_none());
    s.ed25519_login(&a, &a);
    assert_eq!(s.last_reply(), 52);
    assert_eq!(s.authenticated(), Some(a.public()));
    assert!(s.server.is_authenticated());
}

/// CVE-2024-45337's shape: the key that was only queried must never become the identity.
#[test]
fn identity_is_the_signing_key_not_a_queried_one() {
    let mut s = Session::new(ServerConfig::default());
    let (a, b) = (ed(1), ed(2));
    s.allowed.push(a.public());
    s.pk_request(&a.public(), "ssh-ed25519", None, None);
    assert_eq!(s.last_reply(), 60);
    // B signs validly for itself: the decision is about B, which is not authorized.
    s.ed25519_login(&b, &b);
    assert_eq!(s.last_reply(), 51);
    // A's blob with B's signature does not verify at all.
    s.ed25519_login(&a, &b);
    assert_eq!(s.last_reply(), 51);
    assert!(s.authenticated().is_none());
    let asked: Vec<(PublicKey, bool)> = s
        .server_events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::AuthRequest(r) => Some((r.key.clone(), r.signed)),
            _ => None,
        })
        .collect();
    // The key is looked up before any signature is verified: A's blob with B's signature is
    // asked about (A is authorized), and then fails verification.
    assert_eq!(
        asked,
        vec![(a.public(), false), (b.public(), true), (a.public(), true)]
    );
}

#[test]
fn signature_over_another_session_id_is_refused() {
    let mut s = Session::new(ServerConfig::default());
    let a = ed(1);
    s.allowed.push(a.public());
    s.pk_request(
        &a.public(),
        "ssh-ed25519",
        Some((&a, SigAlg::Ed25519)),
        Some(vec![7; 32]),
    );
    assert_eq!(s.last_reply(), 51);
    assert!(s.authenticated().is_none());
}

/// Host-bound authentication [PROTOCOL §3.1]: advertised in EXT_INFO; a request naming the
/// host key of the exchange succeeds (its signature covers the method name and that key), one
/// naming another host key is refused before any lookup.
#[test]
fn hostbound_requests_must_name_the_exchanged_host_key() {
    let a = ed(1);
    let ours = host_key().public().to_blob();
    let other = ed(9).public().to_blob();
    let mut s = Session::new(ServerConfig::default());
    s.allowed.push(a.public());
    s.pk_request_bound(&a.public(), "ssh-ed25519", None, None, Some(&other));
    assert_eq!(s.last_reply(), 51, "another host key: refused");
    s.pk_request_bound(&a.public(), "ssh-ed25519", None, None, Some(&ours));
    assert_eq!(s.last_reply(), 60, "PK_OK");
    s.pk_request_bound(
        &a.public(),
        "ssh-ed25519",
        Some((&a, SigAlg::Ed25519)),
        None,
        Some(&ours),
    );
    assert_eq!(s.last_reply(), 52, "USERAUTH_SUCCESS");
    // A signature made as plain `publickey` does not verify under the host-bound method.
    let mut s = Session::new(ServerConfig::default());
    s.allowed.push(a.public());
    let blob = a.public().to_blob();
    let plain = Request {
        user: b"git",
        service: b"ssh-connection",
        algorithm: b"ssh-ed25519",
        key_blob: &blob,
        host_key: None,
    };
    let sid = s.client.session_id().unwrap().to_vec();
    let sig = a.sign(&publickey::signed_data(&sid, &plain));
    let bound = Request {
        host_key: Some(&ours),
        ..plain
    };
    s.send(|w| publickey::write_request(w, &bound, Some(&sig)));
    assert_eq!(s.last_reply(), 51);
}

#[test]
fn garbage_signature_and_mismatched_algorithm_are_refused() {
    let mut s = Session::new(ServerConfig::default());
    let a = ed(1);
    s.allowed.push(a.public());
    let blob = a.public().to_blob();
    let req = Request {
        user: b"git",
        service: b"ssh-connection",
        algorithm: b"ssh-ed25519",
        key_blob: &blob,
        host_key: None,
    };
    s.send(|w| publickey::write_request(w, &req, Some(&[0, 0, 0, 1, 0])));
    assert_eq!(s.last_reply(), 51);
    // An ed25519 key presented as rsa-sha2-256.
    s.pk_request(
        &a.public(),
        "rsa-sha2-256",
        Some((&a, SigAlg::Ed25519)),
        None,
    );
    assert_eq!(s.last_reply(), 51);
    assert!(s.authenticated().is_none());
}

#[test]
fn rsa_sha2_signatures_work_and_sha1_is_off_by_default() {
    let key = rsa_test_key();
    for alg in [SigAlg::RsaSha512, SigAlg::RsaSha256] {
        let mut s = Session::new(ServerConfig::default());
        s.allowed.push(key.public());
        s.pk_request(&key.public(), alg.wire_name(), Some((&key, alg)), None);
        assert_eq!(s.last_reply(), 52, "{alg:?}");
    }
    let mut s = Session::new(ServerConfig::default());
    s.allowed.push(key.public());
    s.pk_request(
        &key.public(),
        "ssh-rsa",
        Some((&key, SigAlg::RsaSha1)),
        None,
    );
    assert_eq!(s.last_reply(), 51, "ssh-rsa is opt-in");
}

/// gpg-agent 2.2 and OpenSSH 7.6 name rsa-sha2-* but sign with ssh-rsa: verified as what the
/// blob says, accepted only when ssh-rsa is enabled, and reported as such.
#[test]
fn buggy_clients_sha1_signature_under_an_rsa_sha2_name() {
    let key = rsa_test_key();
    let mut s = Session::new(ServerConfig::default());
    s.allowed.push(key.public());
    s.pk_request(
        &key.public(),
        "rsa-sha2-512",
        Some((&key, SigAlg::RsaSha1)),
        None,
    );
    assert_eq!(s.last_reply(), 51, "SHA-1 disabled: refused");
    let mut cfg = ServerConfig::default();
    cfg.auth.sig_algs.push(SigAlg::RsaSha1);
    let mut s = Session::new(cfg);
    s.allowed.push(key.public());
    s.pk_request(
        &key.public(),
        "rsa-sha2-512",
        Some((&key, SigAlg::RsaSha1)),
        None,
    );
    assert_eq!(s.last_reply(), 52, "SHA-1 enabled: accepted");
    let verified: Vec<_> = s
        .server_events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Authenticated {
                algorithm,
                verified,
                ..
            } => Some((*algorithm, verified.algorithm)),
            _ => None,
        })
        .collect();
    assert_eq!(verified, vec![(SigAlg::RsaSha512, SigAlg::RsaSha1)]);
}

#[test]
fn too_many_failures_disconnect() {
    let mut s = Session::new(ServerConfig::default());
    let b = ed(2);
    for _ in 0..6 {
        s.ed25519_login(&b, &b);
    }
    s.assert_auth_failed();
    s.assert_disconnected(14);
}

#[test]
fn a_first_none_is_free_and_every_other_failure_counts_as_in_openssh() {
    let mut s = Session::new(ServerConfig::default());
    let none = |s: &mut Session| {
        s.send(|w| {
            w.u8(50)
                .string(b"git")
                .string(b"ssh-connection")
                .string(b"none");
        })
    };
    // The first "none" asks for the method list and is free; 5 more reach 5 failures of 6.
    for _ in 0..6 {
        none(&mut s);
        let mut r = Reader::new(&s.to_client.last().unwrap()[1..]);
        assert_eq!(r.name_list().unwrap().as_str(), "publickey");
    }
    assert!(s.server_error.is_none());
    // An unsigned query for a key nobody authorized is the sixth failure: disconnect.
    let stranger = ed(9);
    s.pk_request(&stranger.public(), "ssh-ed25519", None, None);
    s.assert_auth_failed();
}

#[test]
fn unsigned_queries_with_a_bad_key_or_algorithm_count() {
    let mut s = Session::new(ServerConfig::default());
    let a = ed(1);
    for _ in 0..6 {
        // The algorithm does not fit the key: a failure, even without a signature.
        s.pk_request(&a.public(), "rsa-sha2-256", None, None);
    }
    s.assert_auth_failed();
}

#[test]
fn answered_queries_do_not_count_but_the_request_cap_holds() {
    let mut s = Session::new(ServerConfig::default());
    let a = ed(1);
    s.allowed.push(a.public());
    for _ in 0..portcullis::limits::MAX_AUTH_REQUESTS {
        s.pk_request(&a.public(), "ssh-ed25519", None, None);
        assert_eq!(s.last_reply(), 60);
    }
    assert!(s.server_error.is_none());
    s.pk_request(&a.public(), "ssh-ed25519", None, None);
    s.assert_auth_failed();
}

#[test]
fn login_grace_time_disconnects() {
    let mut cfg = ServerConfig::default();
    cfg.auth = AuthConfig {
        login_grace: Duration::from_secs(5),
        ..Default::default()
    };
    let mut s = Session::new(cfg);
    let due = s.server.poll_timeout().unwrap();
    assert!(due <= s.now + Duration::from_secs(5));
    assert!(s.server.handle_timeout(due).is_err());
    assert!(s.server.is_closed());
}

#[test]
fn overlong_user_name_disconnects() {
    let mut s = Session::new(ServerConfig::default());
    let long = vec![b'u'; 300];
    s.send(|w| {
        w.u8(50)
            .string(&long)
            .string(b"ssh-connection")
            .string(b"none");
    });
    s.assert_disconnected(15);
}

/// libssh CVE-2018-10933's shape: a client that sends USERAUTH_SUCCESS is disconnected.
#[test]
fn client_sending_userauth_success_is_disconnected() {
    let mut s = Session::new(ServerConfig::default());
    s.send(|w| {
        w.u8(52);
    });
    assert!(
        matches!(
            s.server_error,
            Some(Error::Protocol(ProtocolError::UnexpectedMessage {
                msg: 52,
                ..
            }))
        ),
        "{:?}",
        s.server_error
    );
    assert!(!s.server.is_authenticated());
}

#[test]
fn channel_open_before_authentication_is_disconnected() {
    let mut s = Session::new(ServerConfig::default());
    s.send(|w| {
        w.u8(90).string(b"session").u32(0).u32(1 << 20).u32(32768);
    });
    assert!(
        matches!(
            s.server_error,
            Some(Error::Protocol(ProtocolError::UnexpectedMessage {
                msg: 90,
                ..
            }))
        ),
        "{:?}",
        s.server_error
    );
}

#[test]
fn requests_after_success_are_ignored() {
    let mut s = Session::new(ServerConfig::default());
    let a = ed(1);
    s.login(&a);
    let n = s.to_client.len();
    s.ed25519_login(&a, &a);
    assert_eq!(s.to_client.len(), n, "no second SUCCESS, no FAILURE");
    assert!(s.server_error.is_none());
}

/// A FIDO key logs in with a signature built as PROTOCOL.u2f describes; the flags reach the
/// policy layer, which requires user presence by default.
#[test]
fn security_key_login_reports_flags() {
    use portcullis::crypto::sign::Ed25519Private;
    use portcullis::keys::sk_signed_data;
    let k = Ed25519Private::from_seed([8; 32]);
    let public = PublicKey::SkEd25519 {
        key: k.public(),
        application: b"ssh:".to_vec(),
    };
    for flags in [0x01u8, 0x00] {
        let mut s = Session::new(ServerConfig::default());
        s.allowed.push(public.clone());
        let blob = public.to_blob();
        let req = Request {
            user: b"git",
            service: b"ssh-connection",
            algorithm: b"sk-ssh-ed25519@openssh.com",
            key_blob: &blob,
            host_key: None,
        };
        let data = publickey::signed_data(s.client.session_id().unwrap(), &req);
        let raw = k.sign(&sk_signed_data(b"ssh:", flags, 42, &data));
        let mut sig = Vec::new();
        Writer::new(&mut sig)
            .string(b"sk-ssh-ed25519@openssh.com")
            .string(&raw)
            .u8(flags)
            .u32(42);
        s.send(|w| publickey::write_request(w, &req, Some(&sig)));
        let seen = s.server_events.iter().find_map(|e| match e {
            ServerEvent::Authenticated { verified, .. } => {
                Some((verified.algorithm, verified.sk_flags))
            }
            _ => None,
        });
        assert_eq!(seen, Some((SigAlg::SkEd25519, Some(flags))));
        // The default identity policy: presence required.
        let id = portcullis::lookup::Identity::named("x", public.fingerprint());
        assert_eq!(id.accepts_flags(Some(flags)), flags & 1 == 1);
    }
}
