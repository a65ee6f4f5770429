//! Which key-exchange steps the driver hands off its I/O workers: only those that may be
//! expensive (`Transport::kex_may_be_heavy`).

use std::time::Instant;

use portcullis::keys::SigAlg;
use portcullis::transport::{KexAlg, Transport, TransportConfig};

use crate::harness::Pair;

fn feed(t: &mut Transport, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let (n, pkt) = t.read(bytes, Instant::now()).unwrap();
        bytes = &bytes[n..];
        if let Some(p) = pkt {
            t.recycle(p);
        } else if n == 0 {
            break;
        }
    }
}

#[test]
fn only_expensive_exchanges_are_marked_heavy_once_negotiated() {
    for (kex, host_key, heavy) in [
        (KexAlg::Curve25519Sha256, SigAlg::Ed25519, false),
        (KexAlg::Sntrup761X25519Sha512, SigAlg::Ed25519, false),
        (KexAlg::Mlkem768X25519Sha256, SigAlg::Ed25519, false),
        (KexAlg::EcdhNistp256, SigAlg::Ed25519, false),
        (KexAlg::EcdhNistp521, SigAlg::Ed25519, true),
        (KexAlg::DhGroup14Sha256, SigAlg::Ed25519, true),
        (KexAlg::DhGexSha256, SigAlg::Ed25519, true),
    ] {
        let mut cfg = TransportConfig::default();
        cfg.preferences.kex = vec![kex];
        cfg.preferences.host_key = vec![host_key];
        let mut p = Pair::new(cfg.clone(), cfg);
        // Unknown yet: the client's KEXINIT may come with its first exchange message.
        assert!(p.server.kex_may_be_heavy(), "{kex:?} before KEXINIT");
        let mut c2s = Vec::new();
        p.client.poll_transmit(&mut c2s);
        feed(&mut p.server, &c2s);
        assert_eq!(p.server.kex_may_be_heavy(), heavy, "{kex:?} negotiated");
        p.handshake();
        assert!(!p.server.kex_may_be_heavy(), "{kex:?} after the exchange");
    }
}
