use super::*;
use crate::crypto::rng::DeterministicRng;
use crate::error::{CryptoError, ProtocolError};
use crate::transport::cipher::{Framing, read_len};

/// A toy protection for testing framing: XOR "encryption" keyed by the sequence number and a
/// checksum "tag" over what the real scheme would authenticate. Not crypto; it only lets each
/// framing's length and alignment rules be exercised.
#[derive(Clone, Copy)]
struct Toy {
    framing: Framing,
    block: usize,
    tag: usize,
}

fn ks(seq: u32, i: usize) -> u8 {
    (seq as u8) ^ (i as u8).wrapping_mul(31) ^ 0x5a
}

fn xor(seq: u32, bytes: &mut [u8], offset: usize) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= ks(seq, i + offset);
    }
}

fn checksum(seq: u32, data: &[u8], out: &mut [u8]) {
    let mut acc = seq as u64 ^ 0x1234_5678;
    for &b in data {
        acc = acc.wrapping_mul(1_000_003).wrapping_add(b as u64);
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = (acc >> ((i % 8) * 8)) as u8;
    }
}

impl OpeningKey for Toy {
    fn framing(&self) -> Framing {
        self.framing
    }
    fn block_len(&self) -> usize {
        self.block
    }
    fn tag_len(&self) -> usize {
        self.tag
    }
    fn open_length(&mut self, seq: u32, head: &mut [u8]) -> Result<u32, CryptoError> {
        match self.framing {
            Framing::Whole => {
                xor(seq, head, 0);
                read_len(head)
            }
            Framing::ClearLength => read_len(head),
            Framing::SealedLength => {
                let mut copy = [0u8; 4];
                copy.copy_from_slice(&head[..4]);
                xor(seq ^ 0xff, &mut copy, 0);
                read_len(&copy)
            }
        }
    }
    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        let mut want = vec![0u8; self.tag];
        match self.framing {
            Framing::Whole => {
                let head = self.block;
                xor(seq, &mut packet[head..], head);
                checksum(seq, packet, &mut want);
            }
            Framing::ClearLength | Framing::SealedLength => {
                checksum(seq, packet, &mut want);
                if !crate::crypto::ct::eq(&want, tag) {
                    return Err(CryptoError::BadMac);
                }
                xor(seq, &mut packet[4..], 4);
                return Ok(());
            }
        }
        if crate::crypto::ct::eq(&want, tag) {
            Ok(())
        } else {
            Err(CryptoError::BadMac)
        }
    }
}

impl SealingKey for Toy {
    fn framing(&self) -> Framing {
        self.framing
    }
    fn block_len(&self) -> usize {
        self.block
    }
    fn tag_len(&self) -> usize {
        self.tag
    }
    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        match self.framing {
            Framing::Whole => {
                checksum(seq, packet, tag);
                xor(seq, packet, 0);
            }
            Framing::ClearLength => {
                xor(seq, &mut packet[4..], 4);
                checksum(seq, packet, tag);
            }
            Framing::SealedLength => {
                xor(seq ^ 0xff, &mut packet[..4], 0);
                xor(seq, &mut packet[4..], 4);
                checksum(seq, packet, tag);
            }
        }
    }
}

const TOYS: [Toy; 4] = [
    Toy {
        framing: Framing::Whole,
        block: 16,
        tag: 32,
    },
    Toy {
        framing: Framing::ClearLength,
        block: 16,
        tag: 16,
    },
    Toy {
        framing: Framing::ClearLength,
        block: 8,
        tag: 32,
    },
    Toy {
        framing: Framing::SealedLength,
        block: 8,
        tag: 16,
    },
];

fn pair(toy: Option<Toy>) -> (PacketEncoder, PacketDecoder) {
    let (mut e, mut d) = (PacketEncoder::new(), PacketDecoder::new());
    if let Some(t) = toy {
        e.set_key(Box::new(t));
        d.set_key(Box::new(t));
    }
    (e, d)
}

/// Packets decoded: sequence number and payload.
type Decoded = Vec<(u32, Vec<u8>)>;

/// Decodes everything in `wire`, feeding it in chunks of `chunk` bytes.
fn decode_all(
    d: &mut PacketDecoder,
    wire: &[u8],
    chunk: usize,
) -> Result<Vec<(u32, Vec<u8>)>, Error> {
    decode_chunks(d, wire, chunk, false).map(|(packets, _)| packets)
}

/// [`decode_all`], each chunk a buffer of its own; `in_place`: as the drivers decode, packets
/// that came whole in it are opened where they lie (how many is returned too). Checks that
/// bytes not taken are left as they were and that the rest handed back is what follows.
fn decode_chunks(
    d: &mut PacketDecoder,
    wire: &[u8],
    chunk: usize,
    in_place: bool,
) -> Result<(Decoded, usize), Error> {
    let (mut out, mut opened_in_place) = (Vec::new(), 0);
    for piece in wire.chunks(chunk.max(1)) {
        let mut buf = piece.to_vec();
        let mut at = 0;
        while at < buf.len() {
            let left = buf.len() - at;
            let (used, pkt) = if in_place {
                let (used, pkt, rest) = d.decode_in_place(&mut buf[at..])?;
                assert_eq!(rest.len(), left - used);
                opened_in_place += usize::from(pkt.as_ref().is_some_and(|p| !p.is_buffered()));
                (used, pkt.map(|p| (p.seq, p.payload().to_vec())))
            } else {
                let (used, pkt) = d.decode(&buf[at..])?;
                (used, pkt.map(|p| (p.seq, p.payload.to_vec())))
            };
            match pkt {
                Some(p) => out.push(p),
                None => assert_eq!(used, left, "decoder stopped early without a packet"),
            }
            assert_eq!(
                buf[at + used..],
                piece[at + used..],
                "bytes not taken changed"
            );
            at += used;
        }
    }
    Ok((out, opened_in_place))
}

fn payloads() -> Vec<Vec<u8>> {
    (0..70usize)
        .map(|n| (0..=n).map(|i| (i * 7 + n) as u8).collect())
        .chain([vec![0xab; 32768]])
        .collect()
}

#[test]
fn roundtrips_every_framing_under_any_chunking() {
    for toy in [None].into_iter().chain(TOYS.map(Some)) {
        let (mut e, mut d) = pair(toy);
        let mut rng = DeterministicRng::new(7);
        let packets: Vec<Vec<u8>> = payloads()
            .iter()
            .map(|p| {
                let mut one = Vec::new();
                e.encode(p, &mut rng, &mut one).unwrap();
                one
            })
            .collect();
        let wire = packets.concat();
        let want: Vec<_> = payloads()
            .into_iter()
            .enumerate()
            .map(|(i, p)| (i as u32, p))
            .collect();
        // Through a shared slice (buffered), and as the drivers decode (opened in place).
        for (chunk, in_place) in [1, 3, 17, 100, 4096, wire.len()]
            .into_iter()
            .flat_map(|c| [(c, false), (c, true)])
        {
            let (_, mut d2) = pair(toy);
            let (got, opened) = decode_chunks(&mut d2, &wire, chunk, in_place).unwrap();
            assert_eq!(got, want, "chunk {chunk}, in place: {in_place}");
            assert!(!d2.mid_packet());
            assert_eq!(d2.counters(), e.counters());
            if in_place && chunk == wire.len() {
                // All of it in one buffer: every packet opened where it lies, none copied.
                assert_eq!(opened, want.len());
                assert_eq!(d2.buf.capacity(), 0);
            }
        }
        let got = decode_all(&mut d, &wire, wire.len()).unwrap();
        assert_eq!(got.len(), payloads().len());
        assert_eq!(d.counters().bytes, wire.len() as u64);
        assert_eq!(e.counters(), d.counters());
        // The two paths interleaved: every other packet half through the buffered path and
        // the rest in place, the others whole in place.
        let (_, mut d) = pair(toy);
        for (i, mut packet) in packets.into_iter().enumerate() {
            let split = if i % 2 == 0 { packet.len() / 2 } else { 0 };
            let (used, pkt) = d.decode_owned(&packet[..split]).unwrap();
            assert_eq!((used, pkt.is_none()), (split, true));
            let len = packet.len();
            let (used, pkt, _) = d.decode_in_place(&mut packet[split..]).unwrap();
            assert_eq!(used, len - split);
            assert_eq!(pkt.unwrap().payload(), want[i].1);
        }
    }
}

#[test]
fn padding_follows_rfc4253_section_6() {
    for toy in [None].into_iter().chain(TOYS.map(Some)) {
        let (framing, block, tag) =
            toy.map_or((Framing::Whole, 8, 0), |t| (t.framing, t.block, t.tag));
        for n in 1..80usize {
            let (mut e, mut d) = pair(toy);
            let mut wire = Vec::new();
            e.encode(&vec![1u8; n], &mut DeterministicRng::new(1), &mut wire)
                .unwrap();
            let packet_len = wire.len() - 4 - tag;
            let padding = packet_len - 1 - n;
            assert!(
                (4..4 + block.max(8)).contains(&padding),
                "padding {padding} for {n}"
            );
            let aligned = if framing.aligns_length() {
                packet_len + 4
            } else {
                packet_len
            };
            assert_eq!(aligned % block.max(8), 0, "{framing:?} n={n}");
            assert_eq!(
                decode_all(&mut d, &wire, 1).unwrap(),
                vec![(0, vec![1u8; n])]
            );
        }
    }
}

fn cleartext_packet(packet_len: u32, padding: u8, body_len: usize) -> Vec<u8> {
    let mut v = packet_len.to_be_bytes().to_vec();
    v.push(padding);
    v.resize(4 + body_len, 0x11);
    v
}

#[test]
fn rejects_oversized_length_before_buffering_the_body() {
    let mut d = PacketDecoder::new();
    let mut wire = cleartext_packet(MAX_PACKET_LEN + 4, 4, 4);
    wire.extend_from_slice(&[0; 1000]);
    let err = d.decode(&wire).unwrap_err();
    assert_eq!(
        err,
        Error::Protocol(ProtocolError::PacketTooLarge {
            len: MAX_PACKET_LEN + 4,
            max: MAX_PACKET_LEN
        })
    );
    assert_eq!(d.buffered(), 0);
    assert!(d.buf.capacity() < 64);
    // u32::MAX is handled the same way.
    let mut d = PacketDecoder::new();
    assert!(matches!(
        d.decode(&cleartext_packet(u32::MAX, 4, 4)),
        Err(Error::Protocol(ProtocolError::PacketTooLarge { .. }))
    ));
}

#[test]
fn accepts_the_rfc_minimum_maximum_of_35000_bytes() {
    let mut d = PacketDecoder::new();
    d.set_max_packet_len(1);
    assert_eq!(d.max_len, MIN_MAX_PACKET_LEN);
    let len = 35_000u32 - 4; // total 35000 bytes, 8-aligned
    let wire = cleartext_packet(len, 8, len as usize);
    let (used, pkt) = d.decode(&wire).unwrap();
    assert_eq!(used, wire.len());
    assert_eq!(pkt.unwrap().payload.len(), len as usize - 9);
    let wire = cleartext_packet(35_004, 8, 35_004);
    assert!(matches!(
        d.decode(&wire),
        Err(Error::Protocol(ProtocolError::PacketTooLarge { .. }))
    ));
}

#[test]
fn rejects_misaligned_length() {
    let mut d = PacketDecoder::new();
    let err = d.decode(&cleartext_packet(13, 4, 13)).unwrap_err();
    assert_eq!(
        err,
        Error::Protocol(ProtocolError::BadAlignment { len: 13, block: 8 })
    );
    // EtM-style framing aligns packet_length without the length field.
    let (_, mut d) = pair(Some(TOYS[1]));
    let err = d.decode(&cleartext_packet(12, 4, 12)).unwrap_err();
    assert_eq!(
        err,
        Error::Protocol(ProtocolError::BadAlignment { len: 12, block: 16 })
    );
}

#[test]
fn rejects_too_small_packets() {
    let mut d = PacketDecoder::new();
    assert_eq!(
        d.decode(&cleartext_packet(4, 4, 4)).unwrap_err(),
        Error::Protocol(ProtocolError::PacketTooSmall { len: 4 })
    );
}

#[test]
fn rejects_bad_padding() {
    for (padding, why) in [
        (3u8, "under four"),
        (11, "no payload left"),
        (12, "more than the packet"),
        (255, "way over"),
    ] {
        let mut d = PacketDecoder::new();
        let err = d.decode(&cleartext_packet(12, padding, 12)).unwrap_err();
        assert_eq!(
            err,
            Error::Protocol(ProtocolError::BadPadding { padding, len: 12 }),
            "{why}"
        );
    }
    let mut d = PacketDecoder::new();
    let (_, pkt) = d.decode(&cleartext_packet(12, 10, 12)).unwrap();
    assert_eq!(pkt.unwrap().payload.len(), 1);
}

#[test]
fn truncated_input_waits_without_error() {
    let mut e = PacketEncoder::new();
    let mut wire = Vec::new();
    e.encode(b"hello", &mut DeterministicRng::new(1), &mut wire)
        .unwrap();
    let mut d = PacketDecoder::new();
    let (used, pkt) = d.decode(&wire[..wire.len() - 1]).unwrap();
    assert_eq!((used, pkt), (wire.len() - 1, None));
    assert!(d.mid_packet());
    let (used, pkt) = d.decode(&wire[wire.len() - 1..]).unwrap();
    assert_eq!(used, 1);
    assert_eq!(pkt.unwrap().payload, b"hello");
}

#[test]
fn bad_tag_is_fatal_and_sticky() {
    for (toy, in_place) in TOYS.into_iter().flat_map(|t| [(t, false), (t, true)]) {
        let (mut e, mut d) = pair(Some(toy));
        let mut wire = Vec::new();
        e.encode(b"payload", &mut DeterministicRng::new(1), &mut wire)
            .unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        // In place: the whole packet in one buffer, opened where it lies.
        let chunk = if in_place { wire.len() } else { 5 };
        assert_eq!(
            decode_chunks(&mut d, &wire, chunk, in_place).unwrap_err(),
            Error::Crypto(CryptoError::BadMac),
            "{:?}",
            toy.framing
        );
        // Even a valid packet is refused afterwards.
        let (mut e2, _) = pair(Some(toy));
        let mut good = Vec::new();
        e2.encode(b"x", &mut DeterministicRng::new(1), &mut good)
            .unwrap();
        assert!(d.decode(&good).is_err());
        assert!(d.decode_in_place(&mut good).is_err());
        assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn sequence_numbers_wrap_at_2_pow_32() {
    let (mut e, mut d) = pair(Some(TOYS[3]));
    e.seq = u32::MAX;
    d.seq = u32::MAX;
    let mut wire = Vec::new();
    let mut rng = DeterministicRng::new(3);
    assert_eq!(e.encode(b"a", &mut rng, &mut wire).unwrap(), u32::MAX);
    assert_eq!(e.encode(b"b", &mut rng, &mut wire).unwrap(), 0);
    let got = decode_all(&mut d, &wire, 9).unwrap();
    assert_eq!(got, vec![(u32::MAX, b"a".to_vec()), (0, b"b".to_vec())]);
    e.reset_seq();
    d.reset_seq();
    assert_eq!((e.seq(), d.seq()), (0, 0));
}

#[test]
fn encoder_refuses_empty_and_oversized_payloads() {
    let mut e = PacketEncoder::new();
    let mut out = vec![9];
    let mut rng = DeterministicRng::new(1);
    assert!(matches!(
        e.encode(b"", &mut rng, &mut out),
        Err(Error::Limit(_))
    ));
    let big = vec![0; e.max_payload_len() + 1];
    assert!(matches!(
        e.encode(&big, &mut rng, &mut out),
        Err(Error::Limit(_))
    ));
    assert_eq!(out, vec![9], "output untouched on error");
    let max = vec![0; e.max_payload_len()];
    e.encode(&max, &mut rng, &mut out).unwrap();
    let mut d = PacketDecoder::new();
    let (_, p) = d.decode(&out[1..]).unwrap();
    assert_eq!(p.unwrap().payload.len(), max.len());
}

#[test]
fn large_buffers_are_released_after_use() {
    let (mut e, mut d) = pair(None);
    let mut wire = Vec::new();
    let mut rng = DeterministicRng::new(1);
    e.encode(&vec![1; 200_000], &mut rng, &mut wire).unwrap();
    e.encode(b"small", &mut rng, &mut wire).unwrap();
    let got = decode_all(&mut d, &wire, wire.len()).unwrap();
    assert_eq!(got.len(), 2);
    assert!(d.buf.capacity() <= RETAIN_BUFFER_MAX);
}
