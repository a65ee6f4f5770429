//! Entry points for the cargo-fuzz targets in `fuzz/`. Compiled only under `cfg(fuzzing)`, so
//! the targets themselves stay one line and can reach internals without widening the API.
#![allow(clippy::panic, clippy::indexing_slicing, clippy::unwrap_used)]

use crate::limits::{MAX_PACKET_LEN, MAX_TAG_LEN};
use crate::msg::Message;
use crate::transport::PacketDecoder;
use crate::wire::Encode;

/// The protections the packet fuzzer can put in front of the decoder, picked by the first
/// input byte. Keyed ones use fixed keys so the fuzzer can reach their framing paths.
fn decoder(selector: u8) -> PacketDecoder {
    let d = PacketDecoder::new();
    match selector {
        _ => d,
    }
}

/// Everything a decoder produced from one input: the packets and how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    packets: Vec<(u32, Vec<u8>)>,
    error: Option<crate::Error>,
}

fn run(mut d: PacketDecoder, stream: &[u8], mut chunk: impl FnMut() -> usize) -> Outcome {
    let bound = usize::try_from(MAX_PACKET_LEN).unwrap() + 4 + MAX_TAG_LEN;
    let mut packets = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = chunk().clamp(1, rest.len());
        let (mut piece, tail) = rest.split_at(n);
        rest = tail;
        while !piece.is_empty() {
            match d.decode(piece) {
                Ok((used, pkt)) => {
                    if let Some(p) = pkt {
                        packets.push((p.seq, p.payload.to_vec()));
                    } else {
                        assert_eq!(used, piece.len(), "no packet but input left unconsumed");
                    }
                    piece = &piece[used..];
                }
                Err(error) => {
                    return Outcome {
                        packets,
                        error: Some(error),
                    };
                }
            }
            assert!(
                d.buffered() <= bound,
                "decoder buffered {} bytes",
                d.buffered()
            );
        }
    }
    Outcome {
        packets,
        error: None,
    }
}

/// Arbitrary bytes through the incoming packet parser: it must never panic, must buffer at most
/// one maximum-size packet, and must produce the same packets however the input is chunked.
/// Each payload also goes through the message decoder.
pub fn packet_parser(data: &[u8]) {
    let [selector, chunk_seed, stream @ ..] = data else {
        return;
    };
    let whole = run(decoder(*selector), stream, || usize::MAX);
    let mut state = u32::from(*chunk_seed) | 1;
    let chunked = run(decoder(*selector), stream, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        usize::try_from(state % 64).unwrap()
    });
    assert_eq!(whole, chunked, "chunking changed the result");
    for (_, payload) in &whole.packets {
        msg_roundtrip(payload);
    }
}

/// Arbitrary bytes through the message decoder: no panic, and whatever decodes re-encodes to
/// something that decodes to the same message.
pub fn msg_roundtrip(data: &[u8]) {
    if let Ok(msg) = Message::decode(data) {
        let bytes = msg.to_bytes();
        let again = Message::decode(&bytes).expect("re-encoded message must decode");
        assert_eq!(msg, again);
    }
}
