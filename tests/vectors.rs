//! Runs every data file under `vectors/` (see vectors/README.md for the format).

use portcullis::crypto::rng::SecureRandom;
use portcullis::transport::{OpeningKey, PacketDecoder, PacketEncoder, SealingKey};
use portcullis::wire::Reader;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn files(dir: &str) -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            assert!(
                v["source"].as_str().is_some_and(|s| !s.is_empty()),
                "{} names no source",
                p.display()
            );
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no vectors in {}", dir.display());
    out
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

/// The inner variant's name in an error's Debug form: `Protocol(PacketTooLarge { .. })` gives
/// `PacketTooLarge`.
fn variant_name(debug: &str) -> &str {
    let inner = debug.split_once('(').map_or(debug, |(_, rest)| rest);
    inner.split(|c: char| !c.is_alphanumeric()).next().unwrap()
}

#[test]
fn wire_type_vectors() {
    let mut count = 0;
    for (path, file) in files("wire") {
        for v in file["vectors"].as_array().unwrap() {
            count += 1;
            let name = format!("{}: {}", path.display(), v["name"]);
            let bytes = hex(&v["hex"]);
            let mut r = Reader::new(&bytes);
            let got: Result<Value, _> = match v["type"].as_str().unwrap() {
                "uint32" => r.u32().map(Value::from),
                "uint64" => r.u64().map(Value::from),
                "boolean" => r.bool().map(Value::from),
                "string" => r.string().map(|s| Value::from(hex::encode(s))),
                "mpint" => r.mpint().map(|m| Value::from(hex::encode(m.as_bytes()))),
                "name-list" => r
                    .name_list()
                    .map(|l| Value::from(l.iter().collect::<Vec<_>>())),
                t => panic!("{name}: unknown type {t}"),
            };
            match (&v["expect"]["value"], &v["expect"]["error"], got) {
                (want, Value::Null, Ok(got)) => {
                    assert_eq!(&got, want, "{name}");
                    r.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                (Value::Null, Value::String(want), Err(e)) => {
                    assert_eq!(&format!("{:?}", e.kind), want, "{name}")
                }
                (want, err, got) => panic!("{name}: expected {want} / {err}, got {got:?}"),
            }
        }
    }
    assert!(count >= 20);
}

/// Replays recorded padding bytes, so encoding is exact.
struct Fixed(Vec<u8>);

impl SecureRandom for Fixed {
    fn fill(&mut self, dest: &mut [u8]) {
        assert!(
            dest.len() <= self.0.len(),
            "vector has too few padding bytes"
        );
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
}

fn keys(file: &Value) -> Option<(Box<dyn OpeningKey>, Box<dyn SealingKey>)> {
    match (file["cipher"].as_str(), file["mac"].as_str()) {
        (Some("none"), Some("none")) => None,
        other => panic!("no key constructor for {other:?}"),
    }
}

fn decoder(file: &Value) -> PacketDecoder {
    let mut d = PacketDecoder::new();
    if let Some((open, _)) = keys(file) {
        d.set_key(open);
    }
    d
}

#[test]
fn packet_vectors() {
    for (path, file) in files("packet") {
        for v in file["vectors"].as_array().unwrap() {
            let name = format!("{}: {}", path.display(), v["name"]);
            let seq = v["seq"].as_u64().unwrap() as u32;
            let (payload, wire) = (hex(&v["payload"]), hex(&v["wire"]));
            let mut e = PacketEncoder::new();
            if let Some((_, seal)) = keys(&file) {
                e.set_key(seal);
            }
            for _ in 0..seq {
                e.encode(
                    b"\x02\x00\x00\x00\x00",
                    &mut Fixed(vec![0; 255]),
                    &mut Vec::new(),
                )
                .unwrap();
            }
            let mut out = Vec::new();
            assert_eq!(
                e.encode(&payload, &mut Fixed(hex(&v["padding"])), &mut out)
                    .unwrap(),
                seq,
                "{name}"
            );
            assert_eq!(hex::encode(&out), hex::encode(&wire), "{name}: encoding");

            let mut d = decoder(&file);
            let (used, pkt) = d.decode(&wire).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(used, wire.len(), "{name}");
            assert_eq!(
                pkt.expect("a packet").payload,
                &payload[..],
                "{name}: decoding"
            );
        }
        for v in file["negative"].as_array().into_iter().flatten() {
            let name = format!("{}: {}", path.display(), v["name"]);
            let wire = hex(&v["wire"]);
            let err = decoder(&file).decode(&wire).expect_err(&name);
            assert_eq!(
                variant_name(&format!("{err:?}")),
                v["error"].as_str().unwrap(),
                "{name}: {err:?}"
            );
        }
    }
}
