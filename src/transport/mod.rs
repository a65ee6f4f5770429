//! The SSH transport layer \[RFC4253\], both roles, as a sans-IO state machine: bytes in through
//! [`Transport::read`], upper-layer payloads out of it, bytes to send from
//! [`Transport::poll_transmit`]. Time comes in as `Instant`s and randomness through
//! [`SecureRandom`]; nothing here touches a socket or a clock.

pub mod cipher;
pub mod hostkey;
pub mod kex;
pub mod packet;
pub mod suite;
pub mod version;

mod input;

pub use cipher::{Cleartext, Framing, OpeningKey, SealingKey};
pub use hostkey::{HostKeyVerifier, Pinned};
pub use kex::negotiate::{Algorithms, KexAlg, Preferences};
pub use packet::{Counters, InPacket, Input, Packet, PacketDecoder, PacketEncoder};
pub use suite::{CipherAlg, DirectionKeys, MacAlg};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::crypto::rng::SecureRandom;
use crate::error::{DisconnectReason, Error, KexError, LimitExceeded};
use crate::keys::{HostKeyAlg, PrivateKey, PublicKey};
use crate::limits::{QUEUED_ENTRY_OVERHEAD, REKEY_PACKETS, SOFT_QUEUE_BYTES};
use crate::msg::{Disconnect, MsgNum};
use crate::wire::{Encode, Writer};
use kex::KexPhase;
use version::VersionReader;

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// We accepted the connection.
    Server,
    /// We opened it.
    Client,
}

/// Settings shared by every connection of one listener or client.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Algorithms offered, in preference order.
    pub preferences: Preferences,
    /// Re-key after this many bytes in either direction [RFC4253 §9: "after each gigabyte"].
    pub rekey_bytes: u64,
    /// Re-key after this long [RFC4253 §9: "after each hour"].
    pub rekey_interval: Duration,
    /// Give up on a re-exchange the peer does not finish within this time.
    pub kex_timeout: Duration,
    /// Largest packet_length accepted and sent.
    pub max_packet_len: u32,
    /// Most upper-layer bytes held while a key exchange blocks sending; beyond it `send` fails,
    /// so writers must respect [`Transport::send_blocked`].
    pub max_queued_bytes: usize,
    /// Server: the user-key signature algorithms we accept, announced as `server-sig-algs`
    /// [RFC8308 §3.1] so clients pick `rsa-sha2-*` for RSA keys.
    pub server_sig_algs: Vec<crate::keys::SigAlg>,
    /// Server: OpenSSH host certificates of our host keys, offered as `*-cert-v01@openssh.com`
    /// host key algorithms [PROTOCOL.certkeys]; one without its key among ours is never used.
    pub host_certificates: Vec<crate::keys::cert::Certificate>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            preferences: Preferences::default(),
            rekey_bytes: crate::limits::REKEY_BYTES,
            rekey_interval: crate::limits::REKEY_INTERVAL,
            kex_timeout: crate::limits::KEX_TIMEOUT,
            max_packet_len: crate::limits::MAX_PACKET_LEN,
            max_queued_bytes: crate::limits::MAX_QUEUED_BYTES,
            server_sig_algs: crate::keys::SigAlg::DEFAULT_USER.to_vec(),
            host_certificates: Vec::new(),
        }
    }
}

/// Something the layer above should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportEvent {
    /// A key exchange finished; `initial` for the first one.
    KexDone {
        /// What was agreed.
        algorithms: Algorithms,
        /// Whether this was the first exchange of the connection.
        initial: bool,
        /// Whether strict kex is in force.
        strict: bool,
    },
    /// The server's EXT_INFO arrived (client role): its `server-sig-algs`, if any.
    ServerSigAlgs(String),
    /// The peer sent SSH_MSG_DEBUG.
    Debug(String),
    /// The peer did not implement one of our messages.
    Unimplemented(u32),
}

/// The role-specific half of the configuration.
pub enum RoleState {
    /// Server: the host keys we can sign with.
    Server {
        /// Host keys, one per algorithm.
        host_keys: Arc<[PrivateKey]>,
    },
    /// Client: how we judge the server's host key, and the key once accepted.
    Client {
        /// The verification hook.
        verifier: Box<dyn HostKeyVerifier>,
        /// The server's key, after the first exchange.
        server_key: Option<PublicKey>,
    },
}

/// One connection's transport layer.
pub struct Transport {
    role: Role,
    config: Arc<TransportConfig>,
    role_state: RoleState,
    rng: Box<dyn SecureRandom>,
    version: Option<VersionReader>,
    peer_version: Option<String>,
    dec: PacketDecoder,
    enc: PacketEncoder,
    out: Vec<u8>,
    kex: KexPhase,
    session_id: Option<Vec<u8>>,
    /// Server: the host key blob the first exchange proved (host-bound authentication).
    initial_host_key: Option<Vec<u8>>,
    initial_done: bool,
    /// Strict kex is in force [PROTOCOL §1.10].
    strict: bool,
    /// The peer announced ext-info in its first KEXINIT [RFC8308 §2.1].
    peer_ext_info: bool,
    /// Ignore the next incoming packet: a wrong first-kex-packet guess [RFC4253 §7.1].
    skip_guess: bool,
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    events: VecDeque<TransportEvent>,
    last_kex: Instant,
    kex_started: Option<Instant>,
    closed: bool,
    /// Packets received before the first NEWKEYS, to refuse a sequence number wrap there.
    initial_packets_in: u64,
    /// What the exchange in progress (or the last one) agreed on.
    last_algorithms: Option<Algorithms>,
    /// The latest time the driver told us (from `read` or `handle_timeout`).
    now: Instant,
    /// The upper layer finished user authentication; only then do we start re-exchanges.
    authenticated: bool,
    /// Sequence number of our KEXINIT in flight, to recognise the peer refusing it.
    our_kexinit_seq: Option<u32>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("role", &self.role)
            .field("kex", &self.kex)
            .field("initial_done", &self.initial_done)
            .field("strict", &self.strict)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A server-side transport; our identification line and KEXINIT are queued at once.
    pub fn new_server(
        config: Arc<TransportConfig>,
        host_keys: Arc<[PrivateKey]>,
        rng: Box<dyn SecureRandom>,
        now: Instant,
    ) -> Self {
        Self::new(
            Role::Server,
            config,
            RoleState::Server { host_keys },
            rng,
            now,
        )
    }

    /// A client-side transport judging the server's key with `verifier`.
    pub fn new_client(
        config: Arc<TransportConfig>,
        verifier: Box<dyn HostKeyVerifier>,
        rng: Box<dyn SecureRandom>,
        now: Instant,
    ) -> Self {
        Self::new(
            Role::Client,
            config,
            RoleState::Client {
                verifier,
                server_key: None,
            },
            rng,
            now,
        )
    }

    fn new(
        role: Role,
        config: Arc<TransportConfig>,
        role_state: RoleState,
        rng: Box<dyn SecureRandom>,
        now: Instant,
    ) -> Self {
        let mut dec = PacketDecoder::new();
        dec.set_max_packet_len(config.max_packet_len);
        let mut enc = PacketEncoder::new();
        enc.set_max_packet_len(config.max_packet_len);
        let mut t = Self {
            role,
            config,
            role_state,
            rng,
            version: Some(VersionReader::new(role)),
            peer_version: None,
            dec,
            enc,
            out: Vec::new(),
            kex: KexPhase::Idle,
            session_id: None,
            initial_host_key: None,
            initial_done: false,
            strict: false,
            peer_ext_info: false,
            skip_guess: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            events: VecDeque::new(),
            last_kex: now,
            kex_started: None,
            closed: false,
            initial_packets_in: 0,
            last_algorithms: None,
            now,
            authenticated: false,
            our_kexinit_seq: None,
        };
        t.out.extend_from_slice(version::OUR_VERSION.as_bytes());
        t.out.extend_from_slice(b"\r\n");
        // Key exchange begins right after the identification [RFC4253 §4.2]; sending our
        // KEXINIT without waiting for the peer's saves a round trip [RFC4253 §7.1].
        if let Err(e) = t.send_kexinit(now) {
            t.fail(&e);
        }
        t
    }

    /// Our role.
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The session identifier: the first exchange hash, fixed for the connection's life [RFC4253 §7.2].
    pub fn session_id(&self) -> Option<&[u8]> {
        self.session_id.as_deref()
    }

    /// Server: the host key blob signed in the first key exchange, which a
    /// `publickey-hostbound-v00@openssh.com` request must name [PROTOCOL §3.1].
    pub fn initial_host_key(&self) -> Option<&[u8]> {
        self.initial_host_key.as_deref()
    }

    /// Server: the certificate configured for host key `key`, if any.
    pub(crate) fn host_certificate(
        &self,
        key: &PrivateKey,
    ) -> Option<&crate::keys::cert::Certificate> {
        let public = key.public();
        self.config
            .host_certificates
            .iter()
            .find(|c| c.key == public && c.kind == crate::keys::cert::CertKind::Host)
    }

    /// The peer's identification string, once received.
    pub fn peer_version(&self) -> Option<&str> {
        self.peer_version.as_deref()
    }

    /// The server's host key (client role, after the first exchange).
    pub fn server_host_key(&self) -> Option<&PublicKey> {
        match &self.role_state {
            RoleState::Client { server_key, .. } => server_key.as_ref(),
            RoleState::Server { .. } => None,
        }
    }

    /// Whether the first key exchange has completed.
    pub const fn is_established(&self) -> bool {
        self.initial_done
    }

    /// Whether a key exchange is under way (the first one included): the next input may make
    /// us compute a shared secret and sign, the one expensive step a peer can trigger.
    pub fn in_kex(&self) -> bool {
        !self.initial_done || !matches!(self.kex, KexPhase::Idle)
    }

    /// Whether the next packet may make us compute something expensive (see
    /// `KexPhase::may_be_heavy`): the driver runs it off its I/O workers, and everything
    /// else inline ([`Transport::read_light`]).
    pub fn kex_may_be_heavy(&self) -> bool {
        self.in_kex() && self.kex.may_be_heavy()
    }

    /// Whether the connection is finished (after a disconnect either way or a fatal error).
    pub const fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether writers should pause: a key exchange holds output, or the output buffer or the
    /// queue is past its soft limit. Control messages may still be sent.
    pub fn send_blocked(&self) -> bool {
        self.kex.blocks_sending() || self.queued_bytes > 0 || self.out.len() > SOFT_QUEUE_BYTES
    }

    /// Payload bytes writers may still hand over before [`Transport::send_blocked`] turns
    /// true (0 while it is): how much a producer should read at once.
    pub fn send_room(&self) -> usize {
        if self.send_blocked() {
            0
        } else {
            SOFT_QUEUE_BYTES.saturating_sub(self.out.len())
        }
    }

    /// Bytes waiting to be written to the socket.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// The next event for the layer above.
    pub fn poll_event(&mut self) -> Option<TransportEvent> {
        self.events.pop_front()
    }

    /// Moves the bytes ready for the socket into `out` (cheaply, by swapping, when `out` is empty).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.out);
        } else {
            out.append(&mut self.out);
        }
    }

    /// The largest payload one packet can carry.
    pub fn max_payload_len(&self) -> usize {
        self.enc.max_payload_len()
    }

    /// Sends an upper-layer payload, or queues it while a key exchange holds output; the queue
    /// is bounded by `max_queued_bytes`.
    pub fn send(&mut self, payload: &[u8]) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        if self.kex.blocks_sending() || !self.queue.is_empty() {
            // Real bytes: a 5-byte UNIMPLEMENTED reply costs an allocation now and a packet of
            // ~48 bytes later, so each entry is charged its framing too (`limits.rs`).
            let total = self
                .queued_bytes
                .saturating_add(payload.len())
                .saturating_add(QUEUED_ENTRY_OVERHEAD);
            if total > self.config.max_queued_bytes {
                return Err(LimitExceeded::SendQueueFull { len: total }.into());
            }
            self.queue.push_back(payload.to_vec());
            self.queued_bytes = total;
            return Ok(());
        }
        self.write_packet(payload)?;
        self.rekey_if_due()
    }

    /// Sends one typed message ([`crate::msg`]).
    pub fn send_msg(&mut self, m: &impl crate::wire::Encode) -> Result<(), Error> {
        self.send_with(|w| m.encode(w))
    }

    /// Sends an upper-layer payload written in place by `f` (no intermediate copy when no key
    /// exchange holds output).
    pub fn send_with(&mut self, f: impl FnOnce(&mut Writer<'_>)) -> Result<(), Error> {
        if self.kex.blocks_sending() || !self.queue.is_empty() || self.closed {
            let mut buf = Vec::new();
            f(&mut Writer::new(&mut buf));
            return self.send(&buf);
        }
        self.enc.encode_with(&mut *self.rng, &mut self.out, f)?;
        self.rekey_if_due()
    }

    /// Starts a re-exchange when the volume under the current keys calls for one.
    fn rekey_if_due(&mut self) -> Result<(), Error> {
        if self.authenticated && matches!(self.kex, KexPhase::Idle) && self.needs_rekey() {
            self.send_kexinit(self.now)?;
        }
        Ok(())
    }

    /// Sends SSH_MSG_DISCONNECT and closes [RFC4253 §11.1].
    pub fn disconnect(&mut self, reason: DisconnectReason, description: &str) {
        if self.closed {
            return;
        }
        let msg = Disconnect {
            reason: reason.code(),
            description: description.as_bytes(),
            language: b"",
        };
        let _ = self
            .enc
            .encode_with(&mut *self.rng, &mut self.out, |w| msg.encode(w));
        self.closed = true;
    }

    /// Ends the connection after a fatal error: a DISCONNECT naming a generic reason is sent,
    /// unless the peer is the one who disconnected.
    pub fn fail(&mut self, err: &Error) {
        if !matches!(err, Error::PeerDisconnected { .. } | Error::Closed) {
            self.disconnect(err.disconnect_reason(), &err.peer_message());
        }
        self.closed = true;
    }

    /// Marks user authentication as complete. Before it we never start a re-exchange (we do
    /// answer the peer's): OpenSSH clients reject a KEXINIT during authentication and sshd
    /// refuses one before it, and OpenSSH itself never initiates one there.
    pub fn set_authenticated(&mut self) {
        self.authenticated = true;
    }

    /// When [`Transport::handle_timeout`] next needs calling.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed || !self.initial_done {
            return None;
        }
        match self.kex_started {
            Some(started) => started.checked_add(self.config.kex_timeout),
            None if self.authenticated => self.last_kex.checked_add(self.config.rekey_interval),
            None => None,
        }
    }

    /// Starts a time-based re-exchange, or fails a re-exchange the peer let stall.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.now = now;
        let Some(deadline) = self.poll_timeout() else {
            return Ok(());
        };
        if now < deadline {
            return Ok(());
        }
        if self.kex_started.is_some() {
            let e = Error::Kex(KexError::ReexchangeTimeout);
            self.fail(&e);
            return Err(e);
        }
        self.start_rekey(now)
    }

    /// Starts a key re-exchange now (either side may [RFC4253 §9]); a no-op if one is running
    /// or before authentication (see [`Transport::set_authenticated`]).
    pub fn start_rekey(&mut self, now: Instant) -> Result<(), Error> {
        if !self.initial_done
            || !self.authenticated
            || !matches!(self.kex, KexPhase::Idle)
            || self.closed
        {
            return Ok(());
        }
        self.send_kexinit(now)
    }

    fn send_kexinit(&mut self, now: Instant) -> Result<(), Error> {
        let mut cookie = [0u8; 16];
        self.rng.fill(&mut cookie);
        let host_keys: Vec<HostKeyAlg> = match &self.role_state {
            RoleState::Server { host_keys } => host_keys
                .iter()
                .flat_map(|k| {
                    let certified = self.host_certificate(k).is_some();
                    k.algorithms().into_iter().flat_map(move |sig| {
                        [
                            Some(HostKeyAlg::plain(sig)),
                            HostKeyAlg::certified(sig).filter(|_| certified),
                        ]
                    })
                })
                .flatten()
                .collect(),
            RoleState::Client { verifier, .. } if verifier.accepts_certificates() => {
                crate::keys::SigAlg::HOST_ALL
                    .into_iter()
                    .filter_map(HostKeyAlg::certified)
                    .collect()
            }
            RoleState::Client { .. } => Vec::new(),
        };
        let ours = kex::negotiate::build_kexinit(
            self.role,
            &self.config.preferences,
            &host_keys,
            !self.initial_done,
            cookie,
        );
        self.write_packet(&ours)?;
        self.kex = KexPhase::AwaitPeerKexInit { ours };
        if self.initial_done {
            self.kex_started = Some(now);
        }
        Ok(())
    }

    /// Encodes one packet now, bypassing the queue (kex messages and flushed payloads).
    fn write_packet(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.enc.encode(payload, &mut *self.rng, &mut self.out)?;
        Ok(())
    }

    /// After our NEWKEYS: release what the exchange held back, in order [RFC4253 §7.1].
    fn flush_queue(&mut self) -> Result<(), Error> {
        while let Some(p) = self.queue.pop_front() {
            self.queued_bytes = self
                .queued_bytes
                .saturating_sub(p.len().saturating_add(QUEUED_ENTRY_OVERHEAD));
            self.write_packet(&p)?;
        }
        Ok(())
    }

    /// Whether traffic under the current keys calls for a re-exchange [RFC4253 §9, RFC4344 §3].
    fn needs_rekey(&self) -> bool {
        let (i, o) = (self.dec.counters(), self.enc.counters());
        i.bytes >= self.config.rekey_bytes
            || o.bytes >= self.config.rekey_bytes
            || i.packets >= REKEY_PACKETS
            || o.packets >= REKEY_PACKETS
    }

    /// Payload-level message type, for errors.
    fn unexpected(&self, num: MsgNum) -> Error {
        crate::error::ProtocolError::UnexpectedMessage {
            phase: self.kex.name(),
            msg: num.0,
        }
        .into()
    }
}
