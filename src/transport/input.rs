//! Incoming side of [`Transport`]: version line, packets, and the dispatch of transport
//! messages [RFC4253 §7, §10, §11; PROTOCOL §1.10; RFC8308].

use std::time::Instant;

use crate::error::{Error, KexError, LimitExceeded, ProtocolError};
use crate::msg::{Debug as DebugMsg, Disconnect, ExtInfo, KexInit, MsgNum, Unimplemented};
use crate::transport::kex::negotiate::{self, EXT_INFO_C, EXT_INFO_S, KexAlg, STRICT_C, STRICT_S};
use crate::transport::kex::{KexPhase, Negotiated};
use crate::transport::{InPacket, Input, Role, Transport, TransportEvent};
use crate::wire::{Decode, Encode, Reader};

/// Messages that belong to a key exchange: what strict kex allows during the first one.
const fn is_kex_message(num: MsgNum) -> bool {
    matches!(num.0, 20 | 21 | 30..=49)
}

impl Transport {
    /// Consumes bytes from the peer up to the end of at most one upper-layer packet. Transport
    /// messages are handled here; anything for the layers above is returned. After an error a
    /// DISCONNECT is queued and the transport is closed: flush [`Transport::poll_transmit`]
    /// and drop the connection.
    pub fn read<'a>(
        &mut self,
        input: &'a [u8],
        now: Instant,
    ) -> Result<(usize, Option<InPacket<'a>>), Error> {
        self.read_from(input, now, false).map(|(n, p, _)| (n, p))
    }

    /// [`Transport::read`] that stops before a packet that may cost expensive key-exchange
    /// work ([`Transport::kex_may_be_heavy`]), leaving it unread: the driver runs light input
    /// inline on its I/O worker and hands the rest to [`kex_work`](crate::driver::kex_work).
    pub fn read_light<'a>(
        &mut self,
        input: &'a [u8],
        now: Instant,
    ) -> Result<(usize, Option<InPacket<'a>>), Error> {
        self.read_from(input, now, true).map(|(n, p, _)| (n, p))
    }

    /// [`Transport::read`] (or, `light_only`, [`Transport::read_light`]) from any [`Input`]:
    /// from a mutable slice, a packet that arrived whole is opened where it lies. Returns the
    /// rest of the input too.
    pub fn read_from<'a, I: Input<'a>>(
        &mut self,
        input: I,
        now: Instant,
        light_only: bool,
    ) -> Result<(usize, Option<InPacket<'a>>, I), Error> {
        match self.read_inner(input, now, light_only) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }

    /// Returns a packet's buffer for reuse.
    pub fn recycle(&mut self, packet: InPacket<'_>) {
        if let Some(buf) = packet.into_buffer() {
            self.dec.recycle(buf);
        }
    }

    fn read_inner<'a, I: Input<'a>>(
        &mut self,
        input: I,
        now: Instant,
        light_only: bool,
    ) -> Result<(usize, Option<InPacket<'a>>, I), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        self.now = now;
        let mut used = 0usize;
        let mut rest = input;
        if let Some(v) = &mut self.version {
            let (n, line) = v.read(rest.bytes())?;
            used = n;
            rest = rest.advance(n);
            match line {
                None => return Ok((used, None, rest)),
                Some(line) => {
                    self.peer_version = Some(line);
                    self.version = None;
                }
            }
        }
        loop {
            if light_only && self.kex_may_be_heavy() {
                return Ok((used, None, rest));
            }
            let (n, pkt, tail) = rest.decode_with(&mut self.dec)?;
            rest = tail;
            used = used.saturating_add(n);
            let Some(pkt) = pkt else {
                return Ok((used, None, rest));
            };
            if let Some(up) = self.dispatch(pkt, now)? {
                return Ok((used, Some(up), rest));
            }
            if self.closed {
                return Ok((used, None, rest));
            }
        }
    }

    /// The rules every packet meets before its number is looked at: the initial exchange's
    /// packet cap, strict kex [PROTOCOL §1.10], a wrong guess dropped unread [RFC4253 §7.1].
    /// Returns whether the packet is to be handled.
    fn screen(&mut self, num: MsgNum, seq: u32) -> Result<bool, Error> {
        if !self.initial_done {
            self.initial_packets_in = self.initial_packets_in.saturating_add(1);
            if self.initial_packets_in > u64::from(u32::MAX) {
                return Err(LimitExceeded::InitialKexPackets.into());
            }
        }
        let strict_initial = self.strict && !self.initial_done;
        if strict_initial && !is_kex_message(num) && num != MsgNum::DISCONNECT {
            return Err(ProtocolError::StrictKexViolation { seq, msg: num.0 }.into());
        }
        if self.skip_guess {
            self.skip_guess = false;
            return Ok(false);
        }
        Ok(true)
    }

    fn dispatch<'a>(
        &mut self,
        pkt: InPacket<'a>,
        now: Instant,
    ) -> Result<Option<InPacket<'a>>, Error> {
        let num = MsgNum(pkt.payload().first().copied().unwrap_or(0));
        if !self.screen(num, pkt.seq)? {
            return Ok(None);
        }
        let payload = pkt.payload();
        match num {
            MsgNum::DISCONNECT => {
                let d = Disconnect::decode_exact(payload.get(1..).unwrap_or_default())?;
                self.closed = true;
                Err(Error::PeerDisconnected {
                    reason: d.reason,
                    description: String::from_utf8_lossy(d.description).into_owned(),
                })
            }
            MsgNum::IGNORE => Ok(None),
            MsgNum::UNIMPLEMENTED => {
                let u = Unimplemented::decode_exact(payload.get(1..).unwrap_or_default())?;
                // A peer that cannot take our KEXINIT will never finish the exchange.
                if self.kex.blocks_sending() && self.our_kexinit_seq == Some(u.seq) {
                    return Err(Error::Kex(KexError::ReexchangeRefused));
                }
                self.events.push_back(TransportEvent::Unimplemented(u.seq));
                Ok(None)
            }
            MsgNum::DEBUG => {
                let d = DebugMsg::decode_exact(payload.get(1..).unwrap_or_default())?;
                self.events.push_back(TransportEvent::Debug(
                    String::from_utf8_lossy(d.message).into_owned(),
                ));
                Ok(None)
            }
            MsgNum::EXT_INFO => {
                self.on_ext_info(payload)?;
                Ok(None)
            }
            MsgNum::KEXINIT => {
                let seq = pkt.seq;
                self.on_kexinit(payload, seq, now)?;
                Ok(None)
            }
            MsgNum::NEWKEYS => {
                self.on_newkeys(now)?;
                Ok(None)
            }
            n if (30..=49).contains(&n.0) => {
                let seq = pkt.seq;
                let payload = payload.to_vec();
                self.recycle(pkt);
                self.on_kex_method(&payload, seq)?;
                Ok(None)
            }
            n if n.0 == 5 || n.0 == 6 || n.0 >= 50 => {
                // Upper layers start after the first NEWKEYS [RFC4253 §10], and are paused
                // from the peer's KEXINIT to its NEWKEYS [RFC4253 §7.1].
                if !self.initial_done || self.kex.peer_in_kex() {
                    return Err(self.unexpected(n));
                }
                self.rekey_if_due()?;
                Ok(Some(pkt))
            }
            _ => {
                // Unknown transport-range numbers: UNIMPLEMENTED [RFC4253 §11.4].
                let seq = pkt.seq;
                self.recycle(pkt);
                self.reply_unimplemented(seq)?;
                Ok(None)
            }
        }
    }

    fn reply_unimplemented(&mut self, seq: u32) -> Result<(), Error> {
        let mut buf = Vec::with_capacity(5);
        Unimplemented { seq }.encode(&mut crate::wire::Writer::new(&mut buf));
        // Not an upper-layer message, but it may wait behind a key exchange like one.
        self.send(&buf)
    }

    fn on_ext_info(&mut self, payload: &[u8]) -> Result<(), Error> {
        // EXT_INFO follows NEWKEYS and is not a kex message [RFC8308 §2.4, RFC4253 §7.1].
        if !self.initial_done || self.kex.peer_in_kex() {
            return Err(self.unexpected(MsgNum::EXT_INFO));
        }
        let info = ExtInfo::decode_exact(payload.get(1..).unwrap_or_default())?;
        if self.role == Role::Client {
            for (name, value) in info.iter() {
                // A name-list like any other: its limits hold, empty elements are skipped, and a
                // malformed one is ignored as an unknown extension value would be [RFC8308 §2.5].
                if name == b"server-sig-algs"
                    && let Ok(list) = crate::wire::NameList::parse(value)
                {
                    let algs = list.iter().collect::<Vec<_>>().join(",");
                    self.events.push_back(TransportEvent::ServerSigAlgs(algs));
                }
            }
        }
        Ok(())
    }

    fn on_kexinit(&mut self, payload: &[u8], seq: u32, now: Instant) -> Result<(), Error> {
        if self.kex.peer_in_kex() {
            return Err(self.unexpected(MsgNum::KEXINIT));
        }
        // A client's re-exchange before it has logged in is refused, as sshd does: otherwise one
        // connection could loop expensive exchanges (group18, an RSA signature each) for the
        // whole login grace time (RFC-NOTES, RFC4253 §9 row).
        if self.role == Role::Server && self.initial_done && !self.authenticated {
            return Err(crate::error::ProtocolError::UnexpectedMessage {
                phase: "authentication (re-exchange before login)",
                msg: MsgNum::KEXINIT.0,
            }
            .into());
        }
        let peer = KexInit::decode_exact(payload.get(1..).unwrap_or_default())?;
        if matches!(self.kex, KexPhase::Idle) {
            // The peer started a re-exchange: answer with ours [RFC4253 §9].
            self.send_kexinit(now)?;
        }
        let KexPhase::AwaitPeerKexInit { ours } = std::mem::replace(&mut self.kex, KexPhase::Idle)
        else {
            return Err(self.unexpected(MsgNum::KEXINIT));
        };
        if !self.initial_done {
            let (strict_marker, ext_marker) = match self.role {
                Role::Server => (STRICT_C, EXT_INFO_C),
                Role::Client => (STRICT_S, EXT_INFO_S),
            };
            self.strict = peer.kex.contains(strict_marker);
            self.peer_ext_info = peer.kex.contains(ext_marker);
            // With strict kex the peer's KEXINIT must be its very first packet [PROTOCOL §1.10 a].
            if self.strict && seq != 0 {
                return Err(ProtocolError::StrictKexViolation {
                    seq,
                    msg: MsgNum::KEXINIT.0,
                }
                .into());
            }
        }
        let mut r = Reader::new(&ours);
        r.u8()?;
        let mine = KexInit::decode(&mut r)?;
        let (client, server) = match self.role {
            Role::Client => (&mine, &peer),
            Role::Server => (&peer, &mine),
        };
        let algs = negotiate::negotiate(client, server)?;
        self.skip_guess =
            peer.first_kex_packet_follows && negotiate::guess_was_wrong(client, server);
        let payload = payload.to_vec();
        let (i_c, i_s) = match self.role {
            Role::Client => (ours, payload),
            Role::Server => (payload, ours),
        };
        let neg = Negotiated {
            algs,
            i_c,
            i_s,
            gex: None,
        };
        let gex = neg.algs.kex == KexAlg::DhGexSha256;
        match (self.role, gex) {
            (Role::Server, false) => self.kex = KexPhase::AwaitEcdhInit(neg),
            (Role::Server, true) => self.kex = KexPhase::AwaitGexRequest(neg),
            (Role::Client, false) => self.client_send_ecdh_init(neg)?,
            (Role::Client, true) => self.client_send_gex_request(neg)?,
        }
        Ok(())
    }

    fn on_kex_method(&mut self, payload: &[u8], seq: u32) -> Result<(), Error> {
        let num = MsgNum(payload.first().copied().unwrap_or(0));
        match (std::mem::replace(&mut self.kex, KexPhase::Idle), num) {
            (KexPhase::AwaitEcdhInit(neg), MsgNum::KEX_ECDH_INIT) => {
                self.server_ecdh(neg, payload, None)
            }
            (KexPhase::AwaitEcdhReply(neg, secret, q_c), num)
                if num
                    == if neg.gex.is_some() {
                        MsgNum::KEX_DH_GEX_REPLY
                    } else {
                        MsgNum::KEX_ECDH_REPLY
                    } =>
            {
                self.client_ecdh(neg, secret, q_c, payload)
            }
            (KexPhase::AwaitGexRequest(neg), MsgNum::KEX_DH_GEX_REQUEST) => {
                self.server_gex_request(neg, payload)
            }
            (KexPhase::AwaitGexGroup(neg, request), MsgNum::KEX_DH_GEX_GROUP) => {
                self.client_gex_group(neg, request, payload)
            }
            (KexPhase::AwaitGexInit(neg, group), MsgNum::KEX_DH_GEX_INIT) => {
                self.server_ecdh(neg, payload, Some(group))
            }
            (phase, _) => {
                let in_kex = phase.peer_in_kex();
                self.kex = phase;
                if in_kex || (self.strict && !self.initial_done) {
                    Err(self.unexpected(num))
                } else {
                    self.reply_unimplemented(seq)
                }
            }
        }
    }

    fn on_newkeys(&mut self, now: Instant) -> Result<(), Error> {
        let KexPhase::AwaitNewKeys(incoming) = std::mem::replace(&mut self.kex, KexPhase::Idle)
        else {
            return Err(self.unexpected(MsgNum::NEWKEYS));
        };
        // Incoming keys change exactly here [RFC4253 §7.3]; strict kex restarts the count.
        self.dec.set_key(incoming);
        if self.strict {
            self.dec.reset_seq();
        }
        let initial = !self.initial_done;
        self.initial_done = true;
        self.last_kex = now;
        self.kex_started = None;
        if let Some(algorithms) = self.last_algorithms {
            self.events.push_back(TransportEvent::KexDone {
                algorithms,
                initial,
                strict: self.strict,
            });
        }
        Ok(())
    }
}
