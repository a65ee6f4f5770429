//! Transport-layer behaviour between our client and our server, and against hand-made peers.

use std::sync::Arc;
use std::time::Duration;

use portcullis::crypto::kex::X25519Secret;
use portcullis::crypto::rng::DeterministicRng;
use portcullis::error::{CryptoError, Error, KexError, LimitExceeded, ProtocolError};
use portcullis::keys::PrivateKey;
use portcullis::msg::{Message, MsgNum};
use portcullis::transport::kex::negotiate::build_kexinit;
use portcullis::transport::{
    CipherAlg, MacAlg, PacketDecoder, PacketEncoder, Pinned, Preferences, Role, Transport,
    TransportConfig, TransportEvent,
};
use portcullis::wire::Writer;

use crate::harness::{Pair, host_key, kex_done};

fn only(cipher: CipherAlg, mac: Option<MacAlg>) -> TransportConfig {
    let mut c = TransportConfig::default();
    c.preferences.ciphers = vec![cipher];
    if let Some(m) = mac {
        c.preferences.macs = vec![m];
    }
    c
}

#[test]
fn handshake_and_data_for_every_cipher_and_mac() {
    let mut suites: Vec<(CipherAlg, Option<MacAlg>)> = Vec::new();
    for c in CipherAlg::SUPPORTED {
        if c.is_aead() {
            suites.push((c, None));
        } else {
            suites.extend(MacAlg::ALL.map(|m| (c, Some(m))));
        }
    }
    // The server allows everything we implement, the opt-in SHA-1 MACs included.
    let mut server = TransportConfig::default();
    server.preferences.macs = MacAlg::ALL.to_vec();
    for (cipher, mac) in suites {
        let mut p = Pair::new(only(cipher, mac), server.clone());
        p.handshake();
        let (
            TransportEvent::KexDone {
                algorithms,
                initial,
                strict,
            },
            _,
        ) = (&p.client_events[0], ())
        else {
            panic!("{:?}", p.client_events)
        };
        assert!(*initial && *strict, "{cipher:?}");
        assert_eq!((algorithms.cipher_c2s, algorithms.mac_c2s), (cipher, mac));
        assert_eq!(p.client.session_id(), p.server.session_id());
        for n in [1usize, 100, 32_768, 100_000] {
            let payload: Vec<u8> = std::iter::once(94u8)
                .chain((0..n).map(|i| i as u8))
                .collect();
            p.client.send(&payload).unwrap();
            p.server.send(&payload).unwrap();
        }
        p.drive();
        assert_eq!(p.to_server.len(), 4, "{cipher:?} {mac:?}");
        assert_eq!(p.to_server, p.to_client);
        assert_eq!(p.to_server[3].len(), 100_001);
    }
}

#[test]
fn server_sends_ext_info_with_server_sig_algs() {
    let mut p = Pair::default_pair();
    p.handshake();
    assert!(
        p.client_events
            .contains(&TransportEvent::ServerSigAlgs(
        "ssh-ed25519,sk-ssh-ed25519@openssh.com,ecdsa-sha2-nistp256,sk-ecdsa-sha2-nistp256@openssh.com,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256".into()
    )),
        "{:?}",
        p.client_events
    );
}

#[test]
fn payloads_sent_during_the_first_exchange_are_queued_then_delivered_in_order() {
    let mut p = Pair::default_pair();
    for i in 0..5u8 {
        p.client.send(&[5, i]).unwrap();
    }
    assert!(p.client.send_blocked());
    p.handshake();
    assert_eq!(
        p.to_server,
        (0..5u8).map(|i| vec![5, i]).collect::<Vec<_>>()
    );
}

#[test]
fn queue_is_bounded_while_a_key_exchange_holds_output() {
    let mut cfg = TransportConfig::default();
    cfg.max_queued_bytes = 10_000;
    let mut p = Pair::new(cfg, TransportConfig::default());
    p.client.send(&[94; 9_000]).unwrap();
    let err = p.client.send(&[94; 2_000]).unwrap_err();
    assert!(
        matches!(err, Error::Limit(LimitExceeded::SendQueueFull { .. })),
        "{err:?}"
    );
}

#[test]
fn the_queue_cap_counts_each_entry_framing_not_only_its_payload() {
    // 5-byte UNIMPLEMENTED-sized payloads: before, 10,000 bytes held 2,000 of them (and their
    // ~48-byte packets later); now each is charged QUEUED_ENTRY_OVERHEAD as well.
    let mut cfg = TransportConfig::default();
    cfg.max_queued_bytes = 10_000;
    let mut p = Pair::new(cfg, TransportConfig::default());
    let per = 5 + portcullis::limits::QUEUED_ENTRY_OVERHEAD;
    for _ in 0..10_000 / per {
        p.client.send(&[3, 0, 0, 0, 1]).unwrap();
    }
    let err = p.client.send(&[3, 0, 0, 0, 1]).unwrap_err();
    assert!(
        matches!(err, Error::Limit(LimitExceeded::SendQueueFull { .. })),
        "{err:?}"
    );
}

#[test]
fn rekeys_by_volume_under_load_without_loss_or_reordering() {
    let mut small = TransportConfig::default();
    small.rekey_bytes = 64 * 1024;
    let mut p = Pair::new(small.clone(), small);
    p.handshake();
    p.client.set_authenticated();
    p.server.set_authenticated();
    let sid = p.client.session_id().unwrap().to_vec();
    let mut sent = Vec::new();
    for i in 0..300u32 {
        let mut payload = vec![94u8];
        payload.extend_from_slice(&i.to_be_bytes());
        payload.resize(4096, (i % 251) as u8);
        // Respect backpressure as a real writer does: drive while the transport is blocked.
        while p.client.send_blocked() || p.server.send_blocked() {
            p.drive();
        }
        p.client.send(&payload).unwrap();
        p.server.send(&payload).unwrap();
        sent.push(payload);
        if i % 7 == 0 {
            p.drive();
        }
    }
    p.drive();
    assert_eq!(p.to_server, sent);
    assert_eq!(p.to_client, sent);
    let rekeys = kex_done(&p.client_events)
        .iter()
        .filter(|(initial, _)| !initial)
        .count();
    assert!(rekeys >= 10, "only {rekeys} re-exchanges");
    assert_eq!(
        kex_done(&p.server_events).len(),
        kex_done(&p.client_events).len()
    );
    assert_eq!(
        p.client.session_id().unwrap(),
        &sid[..],
        "session id survives rekeys"
    );
    assert!(p.client_error.is_none() && p.server_error.is_none());
}

#[test]
fn either_side_may_start_a_rekey_while_data_flows() {
    let mut p = Pair::default_pair();
    p.handshake();
    p.client.set_authenticated();
    p.server.set_authenticated();
    p.server.start_rekey(p.now).unwrap();
    p.client.send(&[94, 1]).unwrap();
    p.server.send(&[94, 2]).unwrap();
    p.drive();
    p.client.start_rekey(p.now).unwrap();
    p.client.send(&[94, 3]).unwrap();
    p.drive();
    assert_eq!(p.to_server, vec![vec![94, 1], vec![94, 3]]);
    assert_eq!(p.to_client, vec![vec![94, 2]]);
    assert_eq!(
        kex_done(&p.client_events),
        vec![(true, true), (false, true), (false, true)]
    );
}

#[test]
fn rekeys_after_the_configured_interval_and_gives_up_on_a_stalled_peer() {
    let mut p = Pair::default_pair();
    p.handshake();
    assert_eq!(
        p.client.poll_timeout(),
        None,
        "no re-exchange before authentication"
    );
    p.client.set_authenticated();
    p.server.set_authenticated();
    let due = p.client.poll_timeout().unwrap();
    assert_eq!(due, p.now + Duration::from_secs(3600));
    p.client.handle_timeout(due).unwrap();
    p.drive();
    assert_eq!(kex_done(&p.client_events).len(), 2);
    // A re-exchange the peer never answers ends the connection after kex_timeout.
    p.server.start_rekey(p.now).unwrap();
    let deadline = p.server.poll_timeout().unwrap();
    assert!(p.server.handle_timeout(deadline).is_err());
    assert!(p.server.is_closed());
}

#[test]
fn corrupted_byte_after_kex_ends_the_session_with_mac_error() {
    let mut p = Pair::default_pair();
    p.handshake();
    p.client.send(&[94, 1, 2, 3]).unwrap();
    p.drive_with(|c2s, bytes| {
        if c2s && !bytes.is_empty() {
            bytes[7] ^= 0x20;
        }
    });
    assert!(p.to_server.is_empty());
    assert!(
        matches!(
            p.server_error,
            Some(Error::Crypto(CryptoError::BadMac)) | Some(Error::Protocol(_))
        ),
        "{:?}",
        p.server_error
    );
    assert!(
        matches!(p.client_error, Some(Error::PeerDisconnected { .. })),
        "{:?}",
        p.client_error
    );
}

#[test]
fn client_refuses_an_unexpected_host_key() {
    let now = std::time::Instant::now();
    let other = PrivateKey::generate_ed25519(&mut DeterministicRng::new(77)).public();
    let mut p = Pair::default_pair();
    p.client = Transport::new_client(
        Arc::new(TransportConfig::default()),
        Box::new(Pinned::Key(other)),
        Box::new(DeterministicRng::new(3)),
        now,
    );
    p.drive();
    assert!(
        matches!(p.client_error, Some(Error::HostKeyRejected(_))),
        "{:?}",
        p.client_error
    );
    assert!(
        matches!(
            p.server_error,
            Some(Error::PeerDisconnected { reason: 9, .. })
        ),
        "{:?}",
        p.server_error
    );
    assert!(!p.client.is_established());
}

#[test]
fn no_common_algorithm_names_the_category_and_both_offers() {
    let mut c = TransportConfig::default();
    c.preferences.ciphers = vec![CipherAlg::Aes128Ctr];
    c.preferences.macs = vec![MacAlg::HmacSha512];
    let mut s = TransportConfig::default();
    s.preferences.macs = vec![MacAlg::HmacSha256Etm];
    let mut p = Pair::new(c, s);
    p.drive();
    let Some(Error::Negotiation {
        kind,
        client,
        server,
    }) = &p.server_error
    else {
        panic!("{:?}", p.server_error)
    };
    assert_eq!(
        (*kind, client.as_str(), server.as_str()),
        ("MAC", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com")
    );
    // The client reaches the same verdict on its own.
    assert!(
        matches!(
            &p.client_error,
            Some(Error::Negotiation { kind: "MAC", .. })
        ),
        "{:?}",
        p.client_error
    );
    // What the peer is told names both offers too, as OpenSSH's message does.
    let mut raw = RawPeer::new();
    let kexinit = raw.kexinit(true, |p| {
        p.ciphers = vec![CipherAlg::Aes128Ctr];
        p.macs = vec![MacAlg::HmacSha512];
    });
    raw.packet(&kexinit);
    let mut s = Transport::new_server(
        Arc::new({
            let mut c = TransportConfig::default();
            c.preferences.macs = vec![MacAlg::HmacSha256Etm];
            c
        }),
        Arc::from(vec![host_key()]),
        Box::new(DeterministicRng::new(1)),
        std::time::Instant::now(),
    );
    assert!(feed(&mut s, &raw.wire).is_err());
    let msgs = server_messages(&mut s);
    let Message::Disconnect(d) = Message::decode(msgs.last().unwrap()).unwrap() else {
        panic!()
    };
    assert_eq!(d.reason, 3);
    let text = String::from_utf8_lossy(d.description);
    assert!(
        text.contains("no matching MAC found") && text.contains("hmac-sha2-512"),
        "{text}"
    );
}

#[test]
fn unknown_transport_message_gets_unimplemented() {
    let mut p = Pair::default_pair();
    p.handshake();
    p.client.send(&[15, 0, 0]).unwrap();
    p.drive();
    assert!(
        p.client_events
            .iter()
            .any(|e| matches!(e, TransportEvent::Unimplemented(_))),
        "{:?}",
        p.client_events
    );
    assert!(p.server_error.is_none());
}

// ---- Hand-made peers: a raw client that writes cleartext packets itself. ----

struct RawPeer {
    enc: PacketEncoder,
    rng: DeterministicRng,
    wire: Vec<u8>,
}

impl RawPeer {
    fn new() -> Self {
        Self {
            enc: PacketEncoder::new(),
            rng: DeterministicRng::new(9),
            wire: b"SSH-2.0-rawpeer_1.0\r\n".to_vec(),
        }
    }
    fn packet(&mut self, payload: &[u8]) -> &mut Self {
        self.enc
            .encode(payload, &mut self.rng, &mut self.wire)
            .unwrap();
        self
    }
    fn kexinit(&self, strict: bool, edit: impl FnOnce(&mut Preferences)) -> Vec<u8> {
        let mut prefs = Preferences::default();
        edit(&mut prefs);
        let mut k = build_kexinit(Role::Client, &prefs, &[], true, [3; 16]);
        if !strict {
            // Rebuild the kex list without our markers.
            let plain = build_kexinit(Role::Client, &prefs, &[], false, [3; 16]);
            k = plain;
        }
        k
    }
}

fn server() -> Transport {
    // curve25519 first on both sides, so a guessed X25519 ECDH_INIT is the right guess.
    let mut cfg = TransportConfig::default();
    cfg.preferences.kex = vec![portcullis::transport::KexAlg::Curve25519Sha256];
    Transport::new_server(
        Arc::new(cfg),
        Arc::from(vec![host_key()]),
        Box::new(DeterministicRng::new(1)),
        std::time::Instant::now(),
    )
}

/// Feeds `wire` to `t` and returns the first error.
fn feed(t: &mut Transport, wire: &[u8]) -> Result<(), Error> {
    let mut rest = wire;
    while !rest.is_empty() {
        let (used, _) = t.read(rest, std::time::Instant::now())?;
        if used == 0 {
            break;
        }
        rest = &rest[used..];
    }
    Ok(())
}

/// The cleartext messages the server wrote (after its version line).
fn server_messages(t: &mut Transport) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    t.poll_transmit(&mut out);
    let start = out.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut d = PacketDecoder::new();
    let mut rest = &out[start..];
    let mut msgs = Vec::new();
    while let Ok((used, Some(p))) = d.decode(rest) {
        msgs.push(p.payload.to_vec());
        rest = &rest[used..];
    }
    msgs
}

#[test]
fn strict_kex_disconnects_on_ignore_before_kexinit() {
    let mut raw = RawPeer::new();
    let kexinit = raw.kexinit(true, |_| {});
    raw.packet(&[2, 0, 0, 0, 0]).packet(&kexinit);
    let mut s = server();
    let err = feed(&mut s, &raw.wire).unwrap_err();
    assert_eq!(
        err,
        Error::Protocol(ProtocolError::StrictKexViolation { seq: 1, msg: 20 })
    );
    let msgs = server_messages(&mut s);
    let last = msgs.last().unwrap();
    let Message::Disconnect(d) = Message::decode(last).unwrap() else {
        panic!("{last:?}")
    };
    assert_eq!(d.reason, 2);
    assert!(s.is_closed());
}

#[test]
fn strict_kex_disconnects_on_ignore_during_the_first_exchange() {
    let mut raw = RawPeer::new();
    let kexinit = raw.kexinit(true, |_| {});
    raw.packet(&kexinit).packet(&[2, 0, 0, 0, 0]);
    let mut s = server();
    assert_eq!(
        feed(&mut s, &raw.wire).unwrap_err(),
        Error::Protocol(ProtocolError::StrictKexViolation { seq: 1, msg: 2 })
    );
}

#[test]
fn without_strict_kex_ignore_before_kexinit_is_allowed() {
    let mut raw = RawPeer::new();
    let kexinit = raw.kexinit(false, |_| {});
    raw.packet(&[2, 0, 0, 0, 0])
        .packet(&kexinit)
        .packet(&[2, 0, 0, 0, 0]);
    let mut s = server();
    feed(&mut s, &raw.wire).unwrap();
    assert!(!s.is_closed());
}

#[test]
fn upper_layer_message_before_newkeys_disconnects() {
    let mut raw = RawPeer::new();
    let kexinit = raw.kexinit(false, |_| {});
    raw.packet(&kexinit).packet(&[50, 0, 0, 0, 0]);
    let mut s = server();
    let err = feed(&mut s, &raw.wire).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(ProtocolError::UnexpectedMessage { msg: 50, .. })
        ),
        "{err:?}"
    );
}

fn ecdh_init() -> Vec<u8> {
    let secret = X25519Secret::from_bytes([5; 32]);
    let mut m = Vec::new();
    Writer::new(&mut m)
        .u8(MsgNum::KEX_ECDH_INIT.0)
        .string(&secret.public());
    m
}

/// A KEXINIT whose first kex method is one we do not implement, with a guessed packet.
fn guessing_kexinit(raw: &RawPeer, first: &str) -> Vec<u8> {
    let mut k = raw.kexinit(true, |p| {
        p.kex = vec![portcullis::transport::KexAlg::Curve25519Sha256]
    });
    // Prepend `first` to the kex name-list and set first_kex_packet_follows.
    let list_len = u32::from_be_bytes(k[17..21].try_into().unwrap()) as usize;
    let mut names = format!("{first},").into_bytes();
    names.extend_from_slice(&k[21..21 + list_len]);
    if first.is_empty() {
        names = k[21..21 + list_len].to_vec();
    }
    let mut out = k[..17].to_vec();
    out.extend_from_slice(&(names.len() as u32).to_be_bytes());
    out.extend_from_slice(&names);
    out.extend_from_slice(&k[21 + list_len..]);
    let n = out.len();
    out[n - 5] = 1;
    k.clear();
    out
}

#[test]
fn wrong_guess_packet_is_ignored_even_for_an_unknown_method() {
    let mut raw = RawPeer::new();
    // As dropbear does: guess a method we do not implement and send its first packet.
    let kexinit = guessing_kexinit(&raw, "sntrup761x25519-sha512@openssh.com");
    raw.packet(&kexinit)
        .packet(&[30, 0xde, 0xad])
        .packet(&ecdh_init());
    let mut s = server();
    feed(&mut s, &raw.wire).unwrap();
    let msgs = server_messages(&mut s);
    let nums: Vec<u8> = msgs.iter().map(|m| m[0]).collect();
    // EXT_INFO follows, encrypted under the new keys, so it is not readable here.
    assert_eq!(nums, vec![20, 31, 21], "KEXINIT, ECDH_REPLY, NEWKEYS");
}

#[test]
fn right_guess_packet_is_used() {
    let mut raw = RawPeer::new();
    let kexinit = guessing_kexinit(&raw, "");
    raw.packet(&kexinit).packet(&ecdh_init());
    let mut s = server();
    feed(&mut s, &raw.wire).unwrap();
    let nums: Vec<u8> = server_messages(&mut s).iter().map(|m| m[0]).collect();
    assert_eq!(nums, vec![20, 31, 21]);
}

#[test]
fn all_zero_shared_secret_is_refused() {
    let mut raw = RawPeer::new();
    let kexinit = raw.kexinit(true, |_| {});
    let mut m = Vec::new();
    // The identity point: X25519 with it is all zeros [RFC8731 §3].
    Writer::new(&mut m).u8(30).string(&[0u8; 32]);
    raw.packet(&kexinit).packet(&m);
    let mut s = server();
    assert_eq!(
        feed(&mut s, &raw.wire).unwrap_err(),
        Error::Kex(KexError::BadClientPublic)
    );
    let mut raw = RawPeer::new();
    let mut m = Vec::new();
    Writer::new(&mut m).u8(30).string(&[9u8; 31]);
    raw.packet(&kexinit).packet(&m);
    let mut s = server();
    assert_eq!(
        feed(&mut s, &raw.wire).unwrap_err(),
        Error::Kex(KexError::BadClientPublic)
    );
}

#[test]
fn non_ssh_peer_gets_a_clear_refusal() {
    let mut s = server();
    let err = feed(&mut s, b"GET / HTTP/1.1\r\n").unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ProtocolError::BadVersion(_))),
        "{err:?}"
    );
    let err = feed(&mut server(), b"SSH-1.5-ancient\r\n").unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::UnsupportedVersion));
}

#[test]
fn never_starts_a_rekey_before_authentication_but_answers_one() {
    let mut small = TransportConfig::default();
    small.rekey_bytes = 4096;
    let mut p = Pair::new(small.clone(), small);
    p.handshake();
    for _ in 0..10 {
        p.client.send(&[94; 1000]).unwrap();
    }
    p.server.start_rekey(p.now).unwrap();
    p.drive();
    assert_eq!(
        kex_done(&p.client_events).len(),
        1,
        "nobody re-keyed before authentication"
    );
    // Once authenticated the server may start one, and the unauthenticated side answers it.
    p.server.set_authenticated();
    p.server.start_rekey(p.now).unwrap();
    p.drive();
    assert_eq!(kex_done(&p.client_events).len(), 2);
    assert_eq!(p.to_server.len(), 10);
}

#[test]
fn a_client_re_exchange_before_login_is_refused_by_the_server() {
    let mut p = Pair::new(TransportConfig::default(), TransportConfig::default());
    p.handshake();
    // The client (not authenticated to the server) starts a second exchange: the server refuses
    // it, as sshd does, instead of computing another key exchange and host key signature.
    p.client.set_authenticated();
    p.client.start_rekey(p.now).unwrap();
    p.drive();
    let err = p
        .server_error
        .clone()
        .expect("the server refused the re-exchange");
    assert!(
        matches!(
            err,
            Error::Protocol(ProtocolError::UnexpectedMessage { msg: 20, .. })
        ),
        "{err:?}"
    );
    assert_eq!(kex_done(&p.server_events).len(), 1);
}

#[test]
fn every_kex_method_and_host_key_type_agrees() {
    use portcullis::crypto::verify::Curve;
    use portcullis::transport::KexAlg;
    for kex in KexAlg::SUPPORTED {
        let mut c = TransportConfig::default();
        c.preferences.kex = vec![kex];
        let mut p = Pair::new(c, TransportConfig::default());
        p.handshake();
        let TransportEvent::KexDone { algorithms, .. } = &p.client_events[0] else {
            panic!()
        };
        assert_eq!(algorithms.kex, kex);
        assert_eq!(p.client.session_id().unwrap().len(), kex.hash().len());
        p.client.send(&[94, 1, 2, 3]).unwrap();
        p.drive();
        assert_eq!(p.to_server, vec![vec![94, 1, 2, 3]], "{kex:?}");
    }
    let _ = Curve::P256;
}

#[test]
fn hybrid_kex_refuses_wrong_lengths() {
    use portcullis::transport::KexAlg;
    // ML-KEM: 32 bytes short of C_PK2 ‖ C_PK1. sntrup761: one byte short, one long.
    let cases: [(KexAlg, Vec<u8>); 3] = [
        (KexAlg::Mlkem768X25519Sha256, vec![7u8; 1184]),
        (KexAlg::Sntrup761X25519Sha512, vec![7u8; 1158 + 31]),
        (KexAlg::Sntrup761X25519Sha512Openssh, vec![7u8; 1158 + 33]),
    ];
    for (kex, c_init) in cases {
        let mut raw = RawPeer::new();
        let kexinit = raw.kexinit(true, |p| p.kex = vec![kex]);
        let mut m = Vec::new();
        Writer::new(&mut m).u8(30).string(&c_init);
        raw.packet(&kexinit).packet(&m);
        let mut s = Transport::new_server(
            Arc::new(TransportConfig::default()),
            Arc::from(vec![host_key()]),
            Box::new(DeterministicRng::new(1)),
            std::time::Instant::now(),
        );
        assert_eq!(
            feed(&mut s, &raw.wire).err(),
            Some(Error::Kex(KexError::BadClientPublic)),
            "{kex:?} {}",
            c_init.len()
        );
    }
}

#[test]
fn dh_public_values_outside_the_range_are_refused() {
    use portcullis::crypto::kex::DhGroup;
    let p = DhGroup::G14.prime();
    let mut p_minus_1 = p.clone();
    *p_minus_1.last_mut().unwrap() -= 1;
    for e in [vec![0u8], vec![1u8], p_minus_1, p.clone()] {
        let mut raw = RawPeer::new();
        let kexinit = raw.kexinit(true, |p| {
            p.kex = vec![portcullis::transport::KexAlg::DhGroup14Sha256]
        });
        let mut m = Vec::new();
        Writer::new(&mut m).u8(30).mpint_unsigned(&e);
        raw.packet(&kexinit).packet(&m);
        let mut s = Transport::new_server(
            Arc::new(TransportConfig::default()),
            Arc::from(vec![host_key()]),
            Box::new(DeterministicRng::new(1)),
            std::time::Instant::now(),
        );
        assert_eq!(
            feed(&mut s, &raw.wire).unwrap_err(),
            Error::Kex(KexError::BadClientPublic),
            "e = {:x?}",
            &e[..e.len().min(4)]
        );
    }
}

/// GEX from a hostile client: impossible size ranges, the obsolete REQUEST_OLD, and e out of
/// range after a valid group all end the exchange with a kex error, never a panic.
#[test]
fn group_exchange_refuses_bad_requests_and_bad_e() {
    use portcullis::crypto::kex::DhGroup;
    let server = || {
        Transport::new_server(
            Arc::new(TransportConfig::default()),
            Arc::from(vec![host_key()]),
            Box::new(DeterministicRng::new(1)),
            std::time::Instant::now(),
        )
    };
    let gex_kexinit = |raw: &mut RawPeer| {
        raw.kexinit(true, |p| {
            p.kex = vec![portcullis::transport::KexAlg::DhGexSha256]
        })
    };
    for (min, n, max) in [
        (1024, 1024, 1536),
        (4096, 2048, 8192),
        (8192, 8192, 2048),
        (u32::MAX, u32::MAX, u32::MAX),
    ] {
        let mut raw = RawPeer::new();
        let kexinit = gex_kexinit(&mut raw);
        let mut m = Vec::new();
        Writer::new(&mut m).u8(34).u32(min).u32(n).u32(max);
        raw.packet(&kexinit).packet(&m);
        assert_eq!(
            feed(&mut server(), &raw.wire).unwrap_err(),
            Error::Kex(KexError::NoGroupInRange),
            "{min} {n} {max}"
        );
    }
    // SSH_MSG_KEX_DH_GEX_REQUEST_OLD (30) is not part of the method here.
    let mut raw = RawPeer::new();
    let kexinit = gex_kexinit(&mut raw);
    let mut m = Vec::new();
    Writer::new(&mut m).u8(30).u32(2048);
    raw.packet(&kexinit).packet(&m);
    assert!(matches!(
        feed(&mut server(), &raw.wire).unwrap_err(),
        Error::Protocol(_)
    ));
    // A valid request (2048 bits: group 14), then e = 1 or e = p−1.
    let p = DhGroup::G14.prime();
    let mut p_minus_1 = p.clone();
    *p_minus_1.last_mut().unwrap() -= 1;
    for e in [vec![1u8], p_minus_1] {
        let mut raw = RawPeer::new();
        let kexinit = gex_kexinit(&mut raw);
        let (mut req, mut init) = (Vec::new(), Vec::new());
        Writer::new(&mut req).u8(34).u32(2048).u32(2048).u32(2048);
        Writer::new(&mut init).u8(32).mpint_unsigned(&e);
        raw.packet(&kexinit).packet(&req).packet(&init);
        assert_eq!(
            feed(&mut server(), &raw.wire).unwrap_err(),
            Error::Kex(KexError::BadClientPublic)
        );
    }
}
