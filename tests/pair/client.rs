//! The client role's connection against a bare server transport.

use std::sync::Arc;
use std::time::Instant;

use portcullis::client::{ClientConfig, ClientConnection};
use portcullis::crypto::rng::DeterministicRng;
use portcullis::keys::PrivateKey;
use portcullis::transport::{Pinned, Transport, TransportConfig, TransportEvent};

/// The client role answers a message it does not know with UNIMPLEMENTED too [RFC4253 §11.4]
/// (it used to drop it silently, where the server answered).
#[test]
fn the_client_role_answers_an_unknown_message_with_unimplemented() {
    let now = Instant::now();
    let host = PrivateKey::generate_ed25519(&mut DeterministicRng::new(1));
    let mut client = ClientConnection::new(
        &ClientConfig::default(),
        Box::new(Pinned::Key(host.public())),
        "git",
        Vec::new(),
        Box::new(DeterministicRng::new(2)),
        now,
    )
    .unwrap();
    let mut server = Transport::new_server(
        Arc::new(TransportConfig::default()),
        Arc::from(vec![host]),
        Box::new(DeterministicRng::new(3)),
        now,
    );
    let mut unimplemented = Vec::new();
    for round in 0..40 {
        if round == 20 {
            server.send(&[200, 0, 0]).unwrap();
        }
        let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
        client.poll_transmit(&mut c2s);
        server.poll_transmit(&mut s2c);
        let mut rest = &s2c[..];
        while !rest.is_empty() {
            let n = client.handle_input(rest, now).unwrap();
            rest = &rest[n..];
        }
        let mut rest = &c2s[..];
        while !rest.is_empty() {
            let (n, _) = server.read(rest, now).unwrap();
            rest = &rest[n..];
            while let Some(e) = server.poll_event() {
                if let TransportEvent::Unimplemented(seq) = e {
                    unimplemented.push(seq);
                }
            }
        }
    }
    assert_eq!(unimplemented.len(), 1, "{unimplemented:?}");
}
