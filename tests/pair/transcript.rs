//! Recorded exchanges between our client and our server under the deterministic RNG
//! (`vectors/transcripts/`): replaying must reproduce every byte both ways, which pins the
//! exchange hash, signatures, key derivation and packet protection. `RECORD=1` re-records.

use std::path::PathBuf;

use portcullis::transport::{CipherAlg, MacAlg, TransportConfig};
use serde_json::{Value, json};

use crate::harness::Pair;

fn config(cipher: &str, mac: Option<&str>) -> TransportConfig {
    let mut c = TransportConfig::default();
    c.preferences.ciphers = vec![CipherAlg::from_wire_name(cipher).unwrap()];
    if let Some(m) = mac {
        c.preferences.macs = vec![MacAlg::from_wire_name(m).unwrap()];
    }
    c
}

/// Runs the scripted exchange and returns (c2s, s2c, session id) as hex.
fn run(cipher: &str, mac: Option<&str>) -> (String, String, String) {
    let mut p = Pair::new(config(cipher, mac), TransportConfig::default());
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    p.client
        .send(&[
            5, 0, 0, 0, 12, b's', b's', b'h', b'-', b'u', b's', b'e', b'r', b'a', b'u', b't', b'h',
        ])
        .unwrap();
    p.drive_with(|dir, bytes| {
        if dir {
            c2s.extend_from_slice(bytes)
        } else {
            s2c.extend_from_slice(bytes)
        }
    });
    p.server
        .send(&[
            6, 0, 0, 0, 12, b's', b's', b'h', b'-', b'u', b's', b'e', b'r', b'a', b'u', b't', b'h',
        ])
        .unwrap();
    p.drive_with(|dir, bytes| {
        if dir {
            c2s.extend_from_slice(bytes)
        } else {
            s2c.extend_from_slice(bytes)
        }
    });
    assert_eq!(p.to_server.len(), 1);
    assert_eq!(p.to_client.len(), 1);
    (
        hex::encode(c2s),
        hex::encode(s2c),
        hex::encode(p.client.session_id().unwrap()),
    )
}

const SUITES: [(&str, Option<&str>); 3] = [
    ("chacha20-poly1305@openssh.com", None),
    ("aes256-gcm@openssh.com", None),
    ("aes128-ctr", Some("hmac-sha2-256-etm@openssh.com")),
];

#[test]
fn recorded_exchanges_replay_byte_for_byte() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/transcripts/pair-curve25519.json");
    if std::env::var_os("RECORD").is_some() {
        let records: Vec<Value> = SUITES
            .iter()
            .map(|(cipher, mac)| {
                let (c2s, s2c, sid) = run(cipher, *mac);
                json!({"cipher": cipher, "mac": mac, "session_id": sid, "c2s": c2s, "s2c": s2c})
            })
            .collect();
        let doc = json!({
            "source": "recorded: our client against our server in memory, DeterministicRng seeds client 2 / server 1 / host key 1000 (tests/pair/harness.rs), curve25519-sha256, ssh-ed25519",
            "format": "per suite: the client's kex preferences pin cipher and mac; the client queues SERVICE_REQUEST ssh-userauth, the server answers SERVICE_ACCEPT; c2s/s2c are every byte each side sent, session_id the exchange hash",
            "records": records,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    }
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records.len(), SUITES.len());
    for r in records {
        let (cipher, mac) = (r["cipher"].as_str().unwrap(), r["mac"].as_str());
        let (c2s, s2c, sid) = run(cipher, mac);
        assert_eq!(
            sid,
            r["session_id"].as_str().unwrap(),
            "{cipher}: exchange hash changed"
        );
        assert_eq!(
            c2s,
            r["c2s"].as_str().unwrap(),
            "{cipher}: client bytes changed"
        );
        assert_eq!(
            s2c,
            r["s2c"].as_str().unwrap(),
            "{cipher}: server bytes changed"
        );
    }
}
