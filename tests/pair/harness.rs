//! A client and a server transport joined in memory, with a hook to tamper with bytes in flight.

use std::sync::Arc;
use std::time::Instant;

use portcullis::Error;
use portcullis::crypto::rng::DeterministicRng;
use portcullis::keys::PrivateKey;
use portcullis::transport::{InPacket, Pinned, Transport, TransportConfig, TransportEvent};

pub struct Pair {
    pub client: Transport,
    pub server: Transport,
    pub now: Instant,
    /// Upper-layer payloads delivered to each side.
    pub to_server: Vec<Vec<u8>>,
    pub to_client: Vec<Vec<u8>>,
    pub client_events: Vec<TransportEvent>,
    pub server_events: Vec<TransportEvent>,
    pub client_error: Option<Error>,
    pub server_error: Option<Error>,
}

pub fn host_key() -> PrivateKey {
    PrivateKey::generate_ed25519(&mut DeterministicRng::new(1000))
}

impl Pair {
    pub fn new(client_cfg: TransportConfig, server_cfg: TransportConfig) -> Self {
        let now = Instant::now();
        let key = host_key();
        let pinned = Pinned::Key(key.public());
        let server = Transport::new_server(
            Arc::new(server_cfg),
            Arc::from(vec![key]),
            Box::new(DeterministicRng::new(1)),
            now,
        );
        let client = Transport::new_client(
            Arc::new(client_cfg),
            Box::new(pinned),
            Box::new(DeterministicRng::new(2)),
            now,
        );
        Self {
            client,
            server,
            now,
            to_server: Vec::new(),
            to_client: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_error: None,
            server_error: None,
        }
    }

    pub fn default_pair() -> Self {
        Self::new(TransportConfig::default(), TransportConfig::default())
    }

    /// Moves bytes both ways until neither side has anything to say. `tamper` sees every
    /// chunk (true = client→server) and may change it.
    pub fn drive_with(&mut self, mut tamper: impl FnMut(bool, &mut Vec<u8>)) {
        for _ in 0..10_000 {
            let mut c2s = Vec::new();
            self.client.poll_transmit(&mut c2s);
            let mut s2c = Vec::new();
            self.server.poll_transmit(&mut s2c);
            if c2s.is_empty() && s2c.is_empty() {
                break;
            }
            tamper(true, &mut c2s);
            tamper(false, &mut s2c);
            feed(
                &mut self.server,
                &c2s,
                self.now,
                &mut self.to_server,
                &mut self.server_error,
            );
            feed(
                &mut self.client,
                &s2c,
                self.now,
                &mut self.to_client,
                &mut self.client_error,
            );
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
        }
    }

    pub fn drive(&mut self) {
        self.drive_with(|_, _| {});
    }

    pub fn handshake(&mut self) {
        self.drive();
        assert!(
            self.client.is_established(),
            "client: {:?}",
            self.client_error
        );
        assert!(
            self.server.is_established(),
            "server: {:?}",
            self.server_error
        );
    }
}

fn feed(
    t: &mut Transport,
    mut bytes: &[u8],
    now: Instant,
    sink: &mut Vec<Vec<u8>>,
    err: &mut Option<Error>,
) {
    while !bytes.is_empty() && !t.is_closed() {
        match t.read(bytes, now) {
            Ok((used, pkt)) => {
                bytes = &bytes[used..];
                if let Some(p) = pkt {
                    sink.push(p.payload().to_vec());
                    recycle(t, p);
                } else if used == 0 {
                    break;
                }
            }
            Err(e) => {
                err.get_or_insert(e);
                break;
            }
        }
    }
}

fn recycle(t: &mut Transport, p: InPacket<'_>) {
    t.recycle(p);
}

pub fn kex_done(events: &[TransportEvent]) -> Vec<(bool, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            TransportEvent::KexDone {
                initial, strict, ..
            } => Some((*initial, *strict)),
            _ => None,
        })
        .collect()
}
