//! The client role's forwarding requests [RFC4254 §7] against a bare server transport that
//! answers as a forwarding server would: `direct-tcpip` opens with their target, `tcpip-forward`
//! with the port in its reply, `forwarded-tcpip` channels the server opens.

use std::sync::Arc;
use std::time::Instant;

use portcullis::client::{ClientConfig, ClientConnection, ClientEvent};
use portcullis::connection::{ChannelEvent, reason};
use portcullis::crypto::rng::DeterministicRng;
use portcullis::keys::PrivateKey;
use portcullis::msg::{
    ChannelKind, ChannelOpenFailure, GlobalRequest, GlobalRequestKind, Message, RequestFailure,
    RequestSuccess, Rest, ServiceAccept, TcpipEnds, UserauthSuccess,
};
use portcullis::transport::{Pinned, Transport, TransportConfig};

/// Our client, logged in to a bare server transport; `payloads` is what the server received.
struct Pair {
    client: ClientConnection,
    server: Transport,
    now: Instant,
    events: Vec<ClientEvent>,
    payloads: Vec<Vec<u8>>,
}

impl Pair {
    fn new() -> Self {
        let now = Instant::now();
        let host = PrivateKey::generate_ed25519(&mut DeterministicRng::new(1));
        let client = ClientConnection::new(
            &ClientConfig::default(),
            Box::new(Pinned::Key(host.public())),
            "git",
            vec![Arc::new(PrivateKey::generate_ed25519(
                &mut DeterministicRng::new(4),
            ))],
            Box::new(DeterministicRng::new(2)),
            now,
        )
        .unwrap();
        let server = Transport::new_server(
            Arc::new(TransportConfig::default()),
            Arc::from(vec![host]),
            Box::new(DeterministicRng::new(3)),
            now,
        );
        let mut p = Self {
            client,
            server,
            now,
            events: Vec::new(),
            payloads: Vec::new(),
        };
        p.run();
        p.server
            .send_msg(&ServiceAccept {
                service: b"ssh-userauth",
            })
            .unwrap();
        p.server.send_msg(&UserauthSuccess {}).unwrap();
        p.run();
        assert!(
            p.events.contains(&ClientEvent::Authenticated),
            "{:?}",
            p.events
        );
        p
    }

    /// Moves bytes both ways until both sides are quiet.
    fn run(&mut self) {
        for _ in 0..40 {
            let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
            self.client.poll_transmit(&mut c2s);
            self.server.poll_transmit(&mut s2c);
            if c2s.is_empty() && s2c.is_empty() {
                return;
            }
            let mut rest = &s2c[..];
            while !rest.is_empty() {
                let n = self.client.handle_input(rest, self.now).unwrap();
                assert!(
                    n > 0,
                    "the client took nothing of {} bytes (closed: {}, events: {:?})",
                    rest.len(),
                    self.client.is_closed(),
                    self.events
                );
                rest = &rest[n..];
                while let Some(e) = self.client.poll_event() {
                    self.events.push(e);
                }
            }
            let mut rest = &c2s[..];
            while !rest.is_empty() {
                let (n, packet) = self.server.read(rest, self.now).unwrap();
                assert!(n > 0, "the server took nothing of {} bytes", rest.len());
                rest = &rest[n..];
                if let Some(p) = packet {
                    self.payloads.push(p.payload().to_vec());
                }
            }
        }
    }
}

#[test]
fn direct_tcpip_opens_carry_their_target() {
    let mut p = Pair::new();
    let id = p
        .client
        .open_direct_tcpip("db.internal", 5432, "127.0.0.1", 40000)
        .unwrap();
    p.run();
    let last = p.payloads.last().unwrap();
    let Message::ChannelOpen(open) = Message::decode(last).unwrap() else {
        panic!("{last:?}")
    };
    assert_eq!(open.sender, id);
    assert_eq!(
        ChannelKind::parse(open.kind, open.extra.0).unwrap(),
        ChannelKind::DirectTcpip(TcpipEnds {
            host: b"db.internal".to_vec(),
            port: 5432,
            originator: b"127.0.0.1".to_vec(),
            originator_port: 40000,
        })
    );
    // The server cannot reach it: the failure reaches the application with its reason.
    p.server
        .send_msg(&ChannelOpenFailure {
            recipient: id,
            reason: reason::CONNECT_FAILED,
            description: b"connect failed: Connection refused",
            language: Rest(&[0, 0, 0, 0]),
        })
        .unwrap();
    p.run();
    assert!(p.events.iter().any(|e| matches!(
        e,
        ClientEvent::Channel(ChannelEvent::OpenFailed { id: i, reason: 2, .. }) if *i == id
    )));
}

#[test]
fn tcpip_forward_replies_come_back_in_order_with_the_bound_port() {
    let mut p = Pair::new();
    p.client.tcpip_forward("localhost", 0).unwrap();
    p.client.tcpip_forward("", 8080).unwrap();
    p.run();
    let requests: Vec<GlobalRequestKind> = p
        .payloads
        .iter()
        .filter_map(|b| match Message::decode(b) {
            Ok(Message::GlobalRequest(GlobalRequest {
                name,
                want_reply: true,
                data,
            })) => GlobalRequestKind::parse(name, data.0).ok(),
            _ => None,
        })
        .collect();
    let (any, fixed) = (
        GlobalRequestKind::TcpipForward {
            address: b"localhost".to_vec(),
            port: 0,
        },
        GlobalRequestKind::TcpipForward {
            address: b"".to_vec(),
            port: 8080,
        },
    );
    assert_eq!(requests, [any.clone(), fixed.clone()]);
    // Port 0 is answered with the port; the second is refused.
    p.server
        .send_msg(&RequestSuccess {
            data: Rest(&34567u32.to_be_bytes()),
        })
        .unwrap();
    p.server.send_msg(&RequestFailure {}).unwrap();
    p.run();
    let replies: Vec<&ClientEvent> = p
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Channel(ChannelEvent::GlobalReply { .. })))
        .collect();
    assert_eq!(
        replies,
        [
            &ClientEvent::Channel(ChannelEvent::GlobalReply {
                request: any,
                ok: true,
                bound_port: Some(34567),
            }),
            &ClientEvent::Channel(ChannelEvent::GlobalReply {
                request: fixed,
                ok: false,
                bound_port: None,
            }),
        ]
    );
    // A reply nobody asked for breaks the protocol.
    p.server.send_msg(&RequestFailure {}).unwrap();
    let mut s2c = Vec::new();
    p.server.poll_transmit(&mut s2c);
    assert!(p.client.handle_input(&s2c[..], p.now).is_err());
}

#[test]
fn a_forwarded_connection_arrives_as_an_open_request_the_application_decides() {
    let mut p = Pair::new();
    let ends = TcpipEnds {
        host: b"127.0.0.1".to_vec(),
        port: 8080,
        originator: b"10.0.0.9".to_vec(),
        originator_port: 51000,
    };
    let kind = ChannelKind::ForwardedTcpip(ends);
    p.server
        .send_msg(&portcullis::msg::ChannelOpen {
            kind: kind.name(),
            sender: 4,
            window: 1 << 20,
            max_packet: 32768,
            extra: Rest(&kind.data()),
        })
        .unwrap();
    p.run();
    let id = p
        .events
        .iter()
        .find_map(|e| match e {
            ClientEvent::Channel(ChannelEvent::OpenRequest { id, kind: k }) if *k == kind => {
                Some(*id)
            }
            _ => None,
        })
        .expect("OpenRequest");
    p.client.accept_open(id).unwrap();
    p.client.write(id, b"hello").unwrap();
    p.run();
    let confirmation = p.payloads.iter().find_map(|b| match Message::decode(b) {
        Ok(Message::ChannelOpenConfirmation(c)) => Some((c.recipient, c.sender)),
        _ => None,
    });
    assert_eq!(confirmation, Some((4, id)));
    let data = p.payloads.iter().find_map(|b| match Message::decode(b) {
        Ok(Message::ChannelData(d)) => Some((d.recipient, d.data.to_vec())),
        _ => None,
    });
    assert_eq!(data, Some((4, b"hello".to_vec())));
}
