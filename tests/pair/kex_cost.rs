//! Which key-exchange steps the driver hands off its I/O workers: only those that may be
//! expensive (`Transport::kex_may_be_heavy`).

use std::time::Instant;

use portcullis::keys::SigAlg;
use portcullis::transport::{KexAlg, Transport, TransportConfig};

use crate::harness::Pair;

fn feed(t: &mut Transport, mut bytes: &[u8], light: bool) -> usize {
    let mut taken = 0;
    while !bytes.is_empty() {
        let (n, pkt) = if light {
            t.read_light(bytes, Instant::now()).unwrap()
        } else {
            t.read(bytes, Instant::now()).unwrap()
        };
        bytes = &bytes[n..];
        taken += n;
        if let Some(p) = pkt {
            t.recycle(p);
        } else if n == 0 || (light && t.kex_may_be_heavy()) {
            break;
        }
    }
    taken
}

/// The driver reads light input inline (`read_light`) and hands a packet that may be
/// expensive to a thread of its own: the first exchange message of a finite-field or P-521
/// exchange stays unread by `read_light`; X25519's and the hybrids' are read inline.
#[test]
fn only_expensive_exchange_messages_are_left_for_the_heavy_path() {
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
        // The version line and KEXINIT are cheap whatever follows.
        assert!(!p.server.kex_may_be_heavy(), "{kex:?} before KEXINIT");
        let mut c2s = Vec::new();
        p.client.poll_transmit(&mut c2s);
        assert_eq!(
            feed(&mut p.server, &c2s, true),
            c2s.len(),
            "{kex:?} KEXINIT"
        );
        assert_eq!(p.server.kex_may_be_heavy(), heavy, "{kex:?} negotiated");
        let mut s2c = Vec::new();
        p.server.poll_transmit(&mut s2c);
        feed(&mut p.client, &s2c, false);
        // The client's first exchange message.
        let mut c2s = Vec::new();
        p.client.poll_transmit(&mut c2s);
        assert!(!c2s.is_empty());
        let inline = feed(&mut p.server, &c2s, true);
        assert_eq!(
            inline,
            if heavy { 0 } else { c2s.len() },
            "{kex:?} first message"
        );
        feed(&mut p.server, &c2s[inline..], false);
        p.handshake();
        assert!(!p.server.kex_may_be_heavy(), "{kex:?} after the exchange");
    }
}
