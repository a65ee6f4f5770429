//! Runs every data file under `vectors/` (see vectors/README.md for the format).

use portcullis::crypto::aead::AesGcm;
use portcullis::crypto::kex::X25519Secret;
use portcullis::crypto::rng::SecureRandom;
use portcullis::crypto::sign::{Ed25519Private, ed25519_verify};
use portcullis::transport::{
    CipherAlg, DirectionKeys, MacAlg, OpeningKey, PacketDecoder, PacketEncoder, SealingKey, suite,
};
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
    let cipher = file["cipher"].as_str().expect("cipher");
    if cipher == "none" {
        return None;
    }
    let cipher =
        CipherAlg::from_wire_name(cipher).unwrap_or_else(|| panic!("unknown cipher {cipher}"));
    let mac = match file["mac"].as_str().expect("mac") {
        "none" => None,
        m => Some(MacAlg::from_wire_name(m).unwrap_or_else(|| panic!("unknown mac {m}"))),
    };
    let (iv, key, mac_key) = (hex(&file["iv"]), hex(&file["key"]), hex(&file["mac_key"]));
    let k = DirectionKeys {
        iv: &iv,
        key: &key,
        mac_key: &mac_key,
    };
    Some((
        suite::opening_key(cipher, mac, k).expect("opening key"),
        suite::sealing_key(cipher, mac, k).expect("sealing key"),
    ))
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
    let mut files_seen = 0;
    for (path, file) in files("packet") {
        files_seen += 1;
        let vectors = file["vectors"].as_array().unwrap();
        // One direction's packets in order: a single encoder and decoder carry state across.
        let mut e = PacketEncoder::new();
        if let Some((_, seal)) = keys(&file) {
            e.set_key(seal);
        }
        let mut d = decoder(&file);
        let mut wires = Vec::new();
        for (i, v) in vectors.iter().enumerate() {
            let name = format!("{}: {}", path.display(), v["name"]);
            let seq = v["seq"].as_u64().unwrap() as u32;
            let (payload, wire) = (hex(&v["payload"]), hex(&v["wire"]));
            if keys(&file).is_some() {
                assert_eq!(
                    seq as usize, i,
                    "{name}: keyed vectors run from seq 0 in order"
                );
            } else {
                // Cleartext vectors are independent packets: fresh codecs at the given seq.
                e = PacketEncoder::new();
                d = decoder(&file);
                for _ in 0..seq {
                    e.encode(
                        b"\x02\x00\x00\x00\x00",
                        &mut Fixed(vec![0; 255]),
                        &mut Vec::new(),
                    )
                    .unwrap();
                }
            }
            let mut out = Vec::new();
            assert_eq!(
                e.encode(&payload, &mut Fixed(hex(&v["padding"])), &mut out)
                    .unwrap(),
                seq,
                "{name}"
            );
            assert_eq!(hex::encode(&out), hex::encode(&wire), "{name}: encoding");
            let (used, pkt) = d.decode(&wire).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(used, wire.len(), "{name}");
            let pkt = pkt.expect("a packet");
            assert_eq!(pkt.payload, &payload[..], "{name}: decoding");
            wires.push(wire);
        }
        for v in file["negative"].as_array().into_iter().flatten() {
            let name = format!("{}: {}", path.display(), v["name"]);
            let mut d = decoder(&file);
            for w in &wires[..v["prefix_packets"].as_u64().unwrap_or(0) as usize] {
                assert!(d.decode(w).unwrap().1.is_some(), "{name}: prefix packet");
            }
            let wire = hex(&v["wire"]);
            match (d.decode(&wire), v["error"].as_str().unwrap()) {
                (Ok((_, Some(p))), _) => panic!("{name}: corrupted packet accepted: {p:?}"),
                (Ok((_, None)) | Err(_), "no packet") => {}
                (Ok((_, None)), want) => panic!("{name}: expected {want}, decoder waits"),
                (Err(err), want) => {
                    assert_eq!(variant_name(&format!("{err:?}")), want, "{name}: {err:?}")
                }
            }
        }
    }
    assert!(files_seen >= 10, "every cipher and MAC has a vector file");
}

fn arr32(v: &Value) -> [u8; 32] {
    hex(v).try_into().expect("32 bytes")
}

#[test]
fn x25519_vectors() {
    let (_, file) = files("crypto")
        .into_iter()
        .find(|(p, _)| p.ends_with("x25519.json"))
        .unwrap();
    for v in file["vectors"].as_array().unwrap() {
        let secret = X25519Secret::from_bytes(arr32(&v["scalar"]));
        // Our public value takes the Edwards basepoint table, not the ladder: the same value.
        let mut base = [0u8; 32];
        base[0] = 9;
        let on_ladder = secret.agree(&base).expect("X25519(k, 9) is never zero");
        assert_eq!(secret.public(), on_ladder.0[..], "{}", v["name"]);
        if hex(&v["u"]) == base {
            assert_eq!(hex::encode(secret.public()), v["output"].as_str().unwrap());
        }
        match v["output"].as_str() {
            Some(out) => {
                let k = secret
                    .agree(&hex(&v["u"]))
                    .unwrap_or_else(|e| panic!("{}: {e}", v["name"]));
                assert_eq!(hex::encode(&*k.0), out, "{}", v["name"]);
            }
            None => assert!(secret.agree(&hex(&v["u"])).is_err(), "{}", v["name"]),
        }
    }
    for it in file["iterated"].as_array().unwrap() {
        let (mut k, mut u) = ([0u8; 32], [0u8; 32]);
        k[0] = 9;
        u[0] = 9;
        for _ in 0..it["rounds"].as_u64().unwrap() {
            let next: [u8; 32] = X25519Secret::from_bytes(k).agree(&u).unwrap().0[..]
                .try_into()
                .unwrap();
            u = k;
            k = next;
        }
        assert_eq!(hex::encode(k), it["k"].as_str().unwrap());
    }
}

#[test]
fn ed25519_vectors() {
    let (_, file) = files("crypto")
        .into_iter()
        .find(|(p, _)| p.ends_with("ed25519.json"))
        .unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 5);
    for v in vectors {
        let key = Ed25519Private::from_seed(arr32(&v["secret"]));
        assert_eq!(
            hex::encode(key.public()),
            v["public"].as_str().unwrap(),
            "{}",
            v["name"]
        );
        let msg = hex(&v["message"]);
        let sig = key.sign(&msg);
        assert_eq!(
            hex::encode(sig),
            v["signature"].as_str().unwrap(),
            "{}",
            v["name"]
        );
        assert!(ed25519_verify(&key.public(), &msg, &sig));
        let mut bad = sig;
        bad[10] ^= 1;
        assert!(!ed25519_verify(&key.public(), &msg, &bad), "{}", v["name"]);
    }
}

#[test]
fn aes_gcm_vectors() {
    let (_, file) = files("crypto")
        .into_iter()
        .find(|(p, _)| p.ends_with("aes-gcm.json"))
        .unwrap();
    for v in file["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let iv: [u8; 12] = hex(&v["iv"]).try_into().unwrap();
        let (key, aad) = (hex(&v["key"]), hex(&v["aad"]));
        let mut body = hex(&v["plaintext"]);
        let mut tag = [0u8; 16];
        AesGcm::new(&key, &iv)
            .unwrap()
            .seal_detached(&aad, &mut body, &mut tag);
        assert_eq!(
            hex::encode(&body),
            v["ciphertext"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(hex::encode(tag), v["tag"].as_str().unwrap(), "{name}");
        AesGcm::new(&key, &iv)
            .unwrap()
            .open_detached(&aad, &mut body.clone(), &tag)
            .unwrap();
        tag[0] ^= 1;
        assert!(
            AesGcm::new(&key, &iv)
                .unwrap()
                .open_detached(&aad, &mut body, &tag)
                .is_err(),
            "{name}"
        );
    }
}

#[test]
fn rfc3526_groups_match_the_vector_file() {
    use portcullis::crypto::kex::DhGroup;
    let (_, file) = files("crypto")
        .into_iter()
        .find(|(p, _)| p.ends_with("rfc3526-groups.json"))
        .unwrap();
    let groups = file["groups"].as_array().unwrap();
    for (g, v) in [DhGroup::G14, DhGroup::G16, DhGroup::G18]
        .into_iter()
        .zip(groups)
    {
        assert_eq!(
            hex::encode(g.prime()),
            v["prime"].as_str().unwrap(),
            "{}",
            v["name"]
        );
        assert_eq!(g.prime().len() * 8, v["bits"].as_u64().unwrap() as usize);
    }
}

#[test]
fn hmac_rfc4231_and_rfc2202_vectors_through_the_packet_mac() {
    use portcullis::crypto::hmac::PacketMac;
    let vectors: Vec<_> = files("crypto")
        .into_iter()
        .filter(|(p, _)| p.ends_with("hmac-rfc4231.json") || p.ends_with("hmac-sha1-rfc2202.json"))
        .flat_map(|(_, f)| f["vectors"].as_array().unwrap().clone())
        .collect();
    assert_eq!(vectors.len(), 8 + 7);
    for v in &vectors {
        let (key, msg) = (hex(&v["key"]), hex(&v["message"]));
        let mac = match v["hash"].as_str().unwrap() {
            "sha1" => PacketMac::sha1(&key),
            "sha256" => PacketMac::sha256(&key),
            _ => PacketMac::sha512(&key),
        }
        .unwrap();
        // MAC(key, seq ‖ data) with seq = the first four message bytes.
        let seq = u32::from_be_bytes(msg[..4].try_into().unwrap());
        let mut tag = vec![0u8; mac.len()];
        mac.compute(seq, &msg[4..], &mut tag);
        assert_eq!(
            hex::encode(&tag),
            v["mac"].as_str().unwrap(),
            "{}",
            v["name"]
        );
        assert!(mac.verify(seq, &msg[4..], &tag));
    }
}

#[test]
fn nist_ecdh_vectors() {
    use portcullis::crypto::kex::Ephemeral;
    use portcullis::crypto::verify::Curve;
    let (_, file) = files("crypto")
        .into_iter()
        .find(|(p, _)| p.ends_with("ecdh-nist.json"))
        .unwrap();
    for v in file["vectors"].as_array().unwrap() {
        let curve = match v["curve"].as_str().unwrap() {
            "P256" => Curve::P256,
            "P384" => Curve::P384,
            _ => Curve::P521,
        };
        let e = Ephemeral::Nist(curve, zeroize::Zeroizing::new(hex(&v["scalar"])));
        let k = e.finish(&hex(&v["peer_point"])).unwrap();
        assert_eq!(
            hex::encode(&*k.bytes),
            v["shared_x"].as_str().unwrap(),
            "{curve:?}"
        );
    }
    // An off-curve point is refused.
    let e = Ephemeral::Nist(Curve::P256, zeroize::Zeroizing::new(vec![1u8; 32]));
    let mut bad = vec![4u8];
    bad.extend_from_slice(&[7u8; 64]);
    assert!(e.finish(&bad).is_err());
}

/// Hands out exactly the bytes it was given, so an ephemeral can be rebuilt from a vector.
struct Replay(Vec<u8>);

impl SecureRandom for Replay {
    fn fill(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "vector ran out of random bytes");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
}

#[test]
fn mlkem768x25519_vectors_against_openssl() {
    use portcullis::crypto::kex::{Agreement, SecretEncoding};
    let (_, file) = files("crypto")
        .into_iter()
        .find(|(p, _)| p.ends_with("mlkem768x25519.json"))
        .unwrap();
    for v in file["vectors"].as_array().unwrap() {
        let mut random = hex(&v["mlkem_seed"]);
        random.extend(hex(&v["x25519_scalar"]));
        let mut rng = Replay(random);
        let (ephemeral, c_init) = Agreement::Mlkem768X25519.start(&mut rng);
        assert!(
            rng.0.is_empty(),
            "start drew a different amount of randomness"
        );
        assert_eq!(hex::encode(&c_init), v["c_init"].as_str().unwrap());
        let reply = hex(&v["s_reply"]);
        let k = ephemeral.finish(&reply).unwrap();
        assert!(matches!(k.encoding, SecretEncoding::String));
        assert_eq!(hex::encode(&*k.bytes), v["k"].as_str().unwrap());
        // A reply one byte short or long is refused, not truncated or padded.
        for bad in [
            &reply[..reply.len() - 1],
            &[reply.as_slice(), &[0]].concat()[..],
        ] {
            let mut rng = Replay([hex(&v["mlkem_seed"]), hex(&v["x25519_scalar"])].concat());
            let (ephemeral, _) = Agreement::Mlkem768X25519.start(&mut rng);
            assert!(ephemeral.finish(bad).is_err());
        }
    }
}

#[test]
fn sntrup761x25519_draft_kats_through_the_client_ephemeral() {
    use portcullis::crypto::kex::{Ephemeral, SecretEncoding};
    use sntrup::sntrup761::DecapsulationKey;
    let (_, file) = files("crypto")
        .into_iter()
        .find(|(p, _)| p.ends_with("sntrup761x25519.json"))
        .unwrap();
    for v in file["vectors"].as_array().unwrap() {
        let dk = || DecapsulationKey::try_from(hex(&v["sntrup761_sk"]).as_slice()).unwrap();
        let ct = hex(&v["sntrup761_ct"]);
        let ct_typed = sntrup::sntrup761::Ciphertext::try_from(ct.as_slice()).unwrap();
        assert_eq!(
            hex::encode(dk().decapsulate(&ct_typed).as_ref()),
            v["sntrup761_ss"].as_str().unwrap(),
            "{}",
            v["name"]
        );
        let x = || X25519Secret::from_bytes(arr32(&v["x25519_scalar"]));
        let reply = [ct.clone(), hex(&v["x25519_peer"])].concat();
        let k = Ephemeral::Sntrup761X25519(Box::new(dk()), x())
            .finish(&reply)
            .unwrap();
        assert!(matches!(k.encoding, SecretEncoding::String));
        assert_eq!(hex::encode(&*k.bytes), v["k"].as_str().unwrap());
        // A reply one byte short is refused, not truncated.
        let short = Ephemeral::Sntrup761X25519(Box::new(dk()), x());
        assert!(short.finish(&reply[..reply.len() - 1]).is_err());
    }
}

/// `vectors/keys/certificates.json`: certificates `ssh-keygen -s` made, parsed and checked as
/// `ssh-keygen -L` read them; broken blobs refused with the rule they break.
#[test]
fn openssh_certificates_from_ssh_keygen() {
    use portcullis::keys::PublicKey;
    use portcullis::keys::SigAlg;
    use portcullis::keys::cert::{CertKind, Certificate};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/keys/certificates.json");
    let file: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() >= 13);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let expect = c["expect"].as_str().unwrap();
        let text = c["cert"].as_str().unwrap();
        let b64 = text.split_whitespace().nth(1).unwrap();
        let blob = <base64ct::Base64 as base64ct::Encoding>::decode_vec(b64).unwrap();
        let cert = match Certificate::decode(&blob) {
            Ok(cert) => cert,
            Err(e) => {
                assert_eq!(expect, "Malformed", "{name}: {e}");
                continue;
            }
        };
        assert_ne!(expect, "Malformed", "{name} parsed");
        assert_eq!(cert.blob(), &blob[..], "{name}");
        assert_eq!(
            cert.key,
            PublicKey::from_openssh(c["key"].as_str().unwrap()).unwrap(),
            "{name}: certified key"
        );
        assert_eq!(
            cert.ca,
            PublicKey::from_openssh(c["ca"].as_str().unwrap()).unwrap(),
            "{name}: CA"
        );
        let u64_of = |k: &str| c[k].as_u64();
        if let Some(s) = u64_of("serial") {
            assert_eq!(cert.serial, s, "{name}");
        }
        if let Some(k) = c["kind"].as_str() {
            let want = if k == "user" {
                CertKind::User
            } else {
                CertKind::Host
            };
            assert_eq!(cert.kind, want, "{name}");
        }
        if let Some(id) = c["key_id"].as_str() {
            assert_eq!(cert.key_id, id, "{name}");
        }
        if let Some(p) = c["principals"].as_array() {
            let want: Vec<&str> = p.iter().map(|v| v.as_str().unwrap()).collect();
            assert_eq!(cert.principals, want, "{name}");
        }
        if let (Some(a), Some(b)) = (u64_of("valid_after"), u64_of("valid_before")) {
            assert_eq!((cert.valid_after, cert.valid_before), (a, b), "{name}");
        }
        let signed = cert.verify_signature(&SigAlg::DEFAULT_USER);
        let checked = signed.and_then(|()| {
            cert.check_user(
                u64_of("now").unwrap(),
                c["addr"].as_str().unwrap().parse().unwrap(),
            )
        });
        match checked {
            Ok(o) => {
                assert_eq!(expect, "ok", "{name} accepted");
                if let Some(f) = c.get("force_command") {
                    assert_eq!(o.force_command.as_deref(), f.as_str(), "{name}");
                }
                if let Some(s) = c.get("source_address") {
                    assert_eq!(o.source_address.as_deref(), s.as_str(), "{name}");
                }
                if let Some(v) = c["verify_required"].as_bool() {
                    assert_eq!(o.verify_required, v, "{name}");
                }
                if let Some(p) = c["port_forwarding"].as_bool() {
                    assert_eq!(o.port_forwarding, p, "{name}");
                }
            }
            Err(e) => {
                let debug = format!("{e:?}");
                let variant = debug.split(['(', ' ', '{']).next().unwrap();
                assert_eq!(variant, expect, "{name}: {debug}");
            }
        }
    }
}
