//! Entry points for the cargo-fuzz targets in `fuzz/`. Compiled only under `cfg(fuzzing)`, so
//! the targets themselves stay one line and can reach internals without widening the API.
#![allow(clippy::panic, clippy::indexing_slicing, clippy::unwrap_used)]

use crate::crypto::rng::DeterministicRng;
use crate::limits::{MAX_PACKET_LEN, MAX_TAG_LEN};
use crate::msg::Message;
use crate::transport::suite::{self, CipherAlg, DirectionKeys, MacAlg};
use crate::transport::{PacketDecoder, PacketEncoder};
use crate::wire::Encode;

/// The protection suites, picked by the selector byte modulo their count: cleartext, then every
/// cipher (with each MAC framing for AES-CTR, the opt-in SHA-1 MACs too), all under fixed keys.
const SUITES: [Option<(CipherAlg, Option<MacAlg>)>; 10] = [
    None,
    Some((CipherAlg::ChaCha20Poly1305, None)),
    Some((CipherAlg::Aes128Gcm, None)),
    Some((CipherAlg::Aes256Gcm, None)),
    Some((CipherAlg::Aes128Ctr, Some(MacAlg::HmacSha256Etm))),
    Some((CipherAlg::Aes256Ctr, Some(MacAlg::HmacSha512Etm))),
    Some((CipherAlg::Aes192Ctr, Some(MacAlg::HmacSha256))),
    Some((CipherAlg::Aes256Ctr, Some(MacAlg::HmacSha512))),
    Some((CipherAlg::Aes128Ctr, Some(MacAlg::HmacSha1Etm))),
    Some((CipherAlg::Aes128Ctr, Some(MacAlg::HmacSha1))),
];

const FIXED_KEY: [u8; 64] = [0x42; 64];
const FIXED_IV: [u8; 16] = [0x17; 16];

fn fixed_keys(c: CipherAlg, m: Option<MacAlg>) -> DirectionKeys<'static> {
    DirectionKeys {
        iv: &FIXED_IV[..c.iv_len()],
        key: &FIXED_KEY[..c.key_len()],
        mac_key: &FIXED_KEY[..m.map_or(0, MacAlg::key_len)],
    }
}

fn decoder(selector: u8) -> PacketDecoder {
    let mut d = PacketDecoder::new();
    if let Some((c, m)) = SUITES[usize::from(selector) % SUITES.len()] {
        d.set_key(suite::opening_key(c, m, fixed_keys(c, m)).unwrap());
    }
    d
}

fn encoder(selector: u8) -> PacketEncoder {
    let mut e = PacketEncoder::new();
    if let Some((c, m)) = SUITES[usize::from(selector) % SUITES.len()] {
        e.set_key(suite::sealing_key(c, m, fixed_keys(c, m)).unwrap());
    }
    e
}

/// Everything a decoder produced from one input: the packets and how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    packets: Vec<(u32, Vec<u8>)>,
    error: Option<crate::Error>,
}

/// Decodes `stream` fed in pieces of `chunk()` bytes, each piece landing in a buffer of its
/// own: read through a shared slice (the buffered path), or, `in_place`, as the drivers decode,
/// with packets that came whole opened where they lie. Either way the decoder must take every
/// byte or deliver a packet, and bytes a call did not take must come back untouched.
fn run(
    mut d: PacketDecoder,
    stream: &[u8],
    mut chunk: impl FnMut() -> usize,
    in_place: bool,
) -> Outcome {
    let bound = usize::try_from(MAX_PACKET_LEN).unwrap() + 4 + MAX_TAG_LEN;
    let mut packets = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = chunk().clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        let mut buf = piece.to_vec();
        let mut at = 0;
        while at < buf.len() {
            let left = buf.len() - at;
            let step = if in_place {
                d.decode_in_place(&mut buf[at..]).map(|(used, pkt, after)| {
                    assert_eq!(after.len(), left - used, "the rest is not what follows");
                    (used, pkt.map(|p| (p.seq, p.payload().to_vec())))
                })
            } else {
                let pkt = d.decode(&buf[at..]);
                pkt.map(|(used, pkt)| (used, pkt.map(|p| (p.seq, p.payload.to_vec()))))
            };
            let (used, pkt) = match step {
                Ok(step) => step,
                Err(error) => {
                    return Outcome {
                        packets,
                        error: Some(error),
                    };
                }
            };
            match pkt {
                Some(p) => packets.push(p),
                None => assert_eq!(used, left, "no packet but input left unconsumed"),
            }
            assert!(
                buf[at + used..] == piece[at + used..],
                "bytes not taken changed"
            );
            assert!(d.buffered() <= bound, "decoder buffered {}", d.buffered());
            at += used;
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
///
/// With the selector's top bit set, the input is instead a list of payloads (each prefixed by a
/// one-byte length) that is sealed under the suite and must decode back unchanged.
pub fn packet_parser(data: &[u8]) {
    let [selector, chunk_seed, input @ ..] = data else {
        return;
    };
    let sealed = (selector & 0x80 != 0).then(|| seal_payloads(*selector, input));
    let stream = sealed.as_ref().map_or(input, |(wire, _)| &wire[..]);
    let whole = run(decoder(*selector), stream, || usize::MAX, false);
    for in_place in [false, true] {
        let mut state = u32::from(*chunk_seed) | 1;
        let chunked = run(
            decoder(*selector),
            stream,
            || {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                usize::try_from(state % 64).unwrap()
            },
            in_place,
        );
        assert_eq!(
            whole, chunked,
            "chunking (in place: {in_place}) changed the result"
        );
    }
    let in_place = run(decoder(*selector), stream, || usize::MAX, true);
    assert_eq!(whole, in_place, "opening in place changed the result");
    if let Some((_, payloads)) = &sealed {
        assert_eq!(whole.error, None);
        let sent: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let got: Vec<&[u8]> = whole.packets.iter().map(|(_, p)| p.as_slice()).collect();
        assert_eq!(sent, got, "sealed payloads did not come back");
    }
    for (_, payload) in &whole.packets {
        msg_roundtrip(payload);
    }
}

/// Arbitrary bytes through every message decoder — [`Message::decode`], the context-decoded
/// key-exchange messages and PK_OK, the `publickey` fields and the typed channel requests: no
/// panic, and whatever decodes re-encodes to bytes that decode to the same value.
pub fn msg_roundtrip(data: &[u8]) {
    use crate::msg::forwarding::bound_port;
    use crate::msg::{
        ChannelKind, ChannelRequest, GlobalRequestKind, KexEcdhInit, KexEcdhReply, KexGexGroup,
        KexGexInit, KexGexReply, KexGexRequest, Publickey, UserauthPkOk,
    };
    use crate::wire::Decode;

    // A context-decoded message re-encodes to a body that decodes to the same message.
    macro_rules! exact {
        ($ty:ident, $body:expr) => {
            if let Ok(m) = $ty::decode_exact($body) {
                let bytes = m.to_bytes();
                let again = $ty::decode_exact(bytes.get(1..).unwrap_or_default());
                assert_eq!(again.as_ref(), Ok(&m));
            }
        };
    }

    if let Ok(msg) = Message::decode(data) {
        // Every field keeps its bytes, but a boolean is any non-zero byte and is sent as 1
        // [RFC4251 §5]: the re-encoding decodes to the same message.
        let bytes = msg.to_bytes();
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(&msg));
        match &msg {
            Message::UserauthRequest(m)
                if m.method == b"publickey" || m.method == crate::msg::HOSTBOUND_METHOD =>
            {
                let hostbound = m.method != b"publickey";
                if let Ok(pk) = Publickey::parse(m.data.0, hostbound) {
                    assert_eq!(pk.method(), m.method);
                    assert_eq!(Publickey::parse(&pk.data(), hostbound), Ok(pk));
                }
            }
            Message::ChannelRequest(m) => {
                if let Ok(req) = ChannelRequest::parse(m.kind, m.data.0) {
                    assert_eq!(req.name(), m.kind);
                    // Requests we only refuse drop their fields; the others re-encode exactly.
                    let dropped = matches!(
                        req,
                        ChannelRequest::PtyReq
                            | ChannelRequest::X11Req
                            | ChannelRequest::WindowChange
                            | ChannelRequest::Other(_)
                    );
                    // exit-signal's language tag is not kept (we send an empty one) — and it
                    // re-parses all the same.
                    let tagged = false;
                    if !dropped && !tagged {
                        assert_eq!(ChannelRequest::parse(m.kind, &req.data()), Ok(req));
                    }
                }
            }
            // Channel types and global requests: the name survives, the known ones' fields
            // re-encode to the same value (trailing bytes, tolerated, are not kept).
            Message::ChannelOpen(m) => {
                if let Ok(kind) = ChannelKind::parse(m.kind, m.extra.0) {
                    assert_eq!(kind.name(), m.kind);
                    assert_eq!(ChannelKind::parse(m.kind, &kind.data()), Ok(kind));
                }
            }
            Message::GlobalRequest(m) => {
                if let Ok(req) = GlobalRequestKind::parse(m.name, m.data.0) {
                    assert_eq!(req.name(), m.name);
                    assert_eq!(GlobalRequestKind::parse(m.name, &req.data()), Ok(req));
                }
            }
            Message::RequestSuccess(m) => {
                if let Ok(Some(port)) = bound_port(m.data.0) {
                    let data = crate::msg::forwarding::bound_port_data(port);
                    assert_eq!(bound_port(&data), Ok(Some(port)));
                }
            }
            _ => {}
        }
    }
    // The numbers whose meaning depends on context, each decoder on the body.
    let body = data.get(1..).unwrap_or_default();
    exact!(KexEcdhInit, body);
    exact!(KexEcdhReply, body);
    exact!(KexGexRequest, body);
    exact!(KexGexGroup, body);
    exact!(KexGexInit, body);
    exact!(KexGexReply, body);
    exact!(UserauthPkOk, body);
}

/// Splits `input` into payloads (one length byte each, then that many bytes; empty ones
/// skipped) and seals them; returns the wire bytes and the payloads.
fn seal_payloads(selector: u8, input: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut e = encoder(selector);
    let mut rng = DeterministicRng::new(u64::from(selector));
    let (mut wire, mut payloads) = (Vec::new(), Vec::new());
    for p in framed(input) {
        if !p.is_empty() {
            e.encode(p, &mut rng, &mut wire).unwrap();
            payloads.push(p.to_vec());
        }
    }
    (wire, payloads)
}

/// Arbitrary bytes from a client into a server transport (fixed host key, deterministic RNG),
/// in chunks the input chooses: version exchange, KEXINIT parsing and negotiation, the kex
/// messages and every transport rule. No panic, and after an error the transport is closed.
pub fn transport_server(data: &[u8]) {
    use std::sync::Arc;
    use std::time::Instant;

    use crate::transport::{Transport, TransportConfig};

    let [chunk_seed, stream @ ..] = data else {
        return;
    };
    let now = Instant::now();
    let mut t = Transport::new_server(
        Arc::new(TransportConfig::default()),
        Arc::clone(&keys().host),
        Box::new(DeterministicRng::new(2)),
        now,
    );
    let mut rest = stream;
    let chunk = usize::from(*chunk_seed).max(1);
    let mut out = Vec::new();
    while !rest.is_empty() {
        let n = chunk.min(rest.len());
        let (mut piece, tail) = rest.split_at(n);
        rest = tail;
        while !piece.is_empty() {
            match t.read(piece, now) {
                Ok((used, pkt)) => {
                    if let Some(p) = pkt {
                        t.recycle(p);
                    } else {
                        assert!(used == piece.len() || t.is_closed());
                    }
                    if used == 0 {
                        break;
                    }
                    piece = &piece[used..];
                }
                Err(_) => {
                    assert!(t.is_closed());
                    return;
                }
            }
        }
        out.clear();
        t.poll_transmit(&mut out);
    }
}

/// Arbitrary client payloads (after a real, deterministic key exchange) into a
/// `ServerConnection`: authentication, channel and global messages, with a policy that accepts
/// one fixed key, every channel open, every request and every port forwarding. Input: a list
/// of payloads, each a one-byte length then that many bytes; a payload starting 0xff is
/// replaced by a valid signed publickey request, so the fuzzer gets past authentication. No panic, and no channel
/// ever buffers more than our window plus the tenth OpenSSH also tolerates.
pub fn server_session(data: &[u8]) {
    use std::sync::Arc;
    use std::time::Instant;

    use crate::auth::publickey::{self, Request};
    use crate::connection::ChannelEvent;
    use crate::server::{ServerConfig, ServerConnection, ServerEvent};
    use crate::transport::{Pinned, Transport};

    let now = Instant::now();
    let keys = keys();
    let mut config = ServerConfig::default();
    // Forwarding requests reach the policy, which grants them (the bound-port reply included).
    config.connection.forwarding_requests = true;
    let window = usize::try_from(config.connection.window).unwrap();
    let window = window + window / crate::limits::WINDOW_GRACE_DIVISOR as usize;
    let pinned = Pinned::Key(keys.host_public.clone());
    let mut server = ServerConnection::new(
        &config,
        Arc::clone(&keys.host),
        Box::new(DeterministicRng::new(2)),
        now,
    );
    let mut client = Transport::new_client(
        Arc::new(fast_transport()),
        Box::new(pinned),
        Box::new(DeterministicRng::new(4)),
        now,
    );
    let exchange = |client: &mut Transport, server: &mut ServerConnection| {
        exchange(server, client, now, window, None, |server, ev| match ev {
            ServerEvent::AuthRequest(req) if req.key == keys.user_public => server.accept_auth(),
            ServerEvent::AuthRequest(_) => server.reject_auth(),
            ServerEvent::Channel(ChannelEvent::OpenRequest { id, .. }) => server.accept_open(id),
            ServerEvent::Channel(ChannelEvent::GlobalRequest {
                want_reply: true, ..
            }) => server.reply_global(true, Some(40000)),
            ServerEvent::Channel(ChannelEvent::Request {
                id,
                want_reply: true,
                ..
            }) => server.reply_request(id, true),
            _ => Ok(()),
        })
    };
    if !exchange(&mut client, &mut server) {
        return;
    }
    for payload in framed(data) {
        let sent = if payload.first() == Some(&0xff) {
            let req = Request {
                user: b"git",
                service: b"ssh-connection",
                algorithm: b"ssh-ed25519",
                key_blob: &keys.user_blob,
                host_key: None,
            };
            let sid = client.session_id().unwrap();
            let sig = keys.login_signature(sid, &req);
            client.send_with(|w| publickey::write_request(w, &req, Some(&sig)))
        } else if payload.is_empty() {
            continue;
        } else {
            client.send(payload)
        };
        if sent.is_err() || !exchange(&mut client, &mut server) {
            return;
        }
    }
}

/// An `exec` command line as a client sends it: what parses re-quotes (the way we quote it for
/// an upstream) to a line that parses to the same command; the repository name is idempotent;
/// and resolving it under a fixed root (with a repository, a plain directory and a symlink that
/// leads out) never yields a path outside the root.
pub fn git_command(data: &[u8]) {
    use std::sync::OnceLock;

    use crate::git::command::{command_line, parse};
    use crate::git::repo::{RepoRoot, canonical_name};

    static ROOT: OnceLock<RepoRoot> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("portcullis-fuzz-{}", std::process::id()));
        let repos = base.join("repos");
        for d in ["team/app.git/objects", "team/app.git/refs", "plain/dir"] {
            std::fs::create_dir_all(repos.join(d)).unwrap();
        }
        std::fs::write(repos.join("team/app.git/HEAD"), "ref: refs/heads/main\n").unwrap();
        for d in ["outside.git/objects", "outside.git/refs"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::write(base.join("outside.git/HEAD"), "ref: refs/heads/main\n").unwrap();
        let _ = std::os::unix::fs::symlink(base.join("outside.git"), repos.join("escape.git"));
        RepoRoot::new(&repos).unwrap()
    });
    let Ok(cmd) = parse(data) else {
        return;
    };
    let line = command_line(cmd.service, &cmd.path);
    assert_eq!(parse(line.as_bytes()), Ok(cmd.clone()), "{line}");
    if let Ok(name) = canonical_name(&cmd.path) {
        assert_eq!(canonical_name(&name).as_ref(), Ok(&name));
        assert!(!name.split('/').any(|c| c == ".." || c.is_empty()));
    }
    if let Ok(repo) = root.resolve(&cmd.path) {
        assert!(
            repo.path.starts_with(root.path()),
            "{}",
            repo.path.display()
        );
    }
}

/// Arbitrary text as an `authorized_keys` file: no panic; every accepted entry admits its key
/// from an address its `from=` allows, an expired entry is passed over, the forwarding limits
/// answer without panicking, and the loopback check runs through every pattern.
pub fn authorized_keys(data: &[u8]) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use crate::keys::authorized_keys::{AuthorizedKeys, address_matches};

    let text = String::from_utf8_lossy(data);
    let parsed = AuthorizedKeys::parse(&text);
    for addr in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        for entry in &parsed.entries {
            let allowed = entry
                .options
                .from
                .as_deref()
                .is_none_or(|p| address_matches(p, addr));
            assert_eq!(entry.admits(&entry.key, addr), allowed);
            assert_eq!(
                parsed.find(&entry.key, addr, |_| false).is_some(),
                parsed
                    .entries
                    .iter()
                    .any(|e| e.key == entry.key && e.admits(&e.key, addr))
            );
            if let Some(found) = parsed.find(&entry.key, addr, |_| true) {
                assert!(found.options.expiry.is_none());
            }
            let f = &entry.options.forwarding;
            if f.denied {
                assert!(!f.permits_open("localhost", 22) && !f.permits_listen("localhost", 22));
            }
        }
        address_matches(&text, addr);
    }
}

/// Arbitrary text as an OpenSSH private key file, without a passphrase (a file that asks for
/// one is refused before any bcrypt work): no panic; a key that loads writes back to a file
/// that loads to the same key.
pub fn private_key_file(data: &[u8]) {
    use crate::keys::key_file::{parse, serialize};

    let text = String::from_utf8_lossy(data);
    if let Ok(key) = parse(&text, None) {
        let again = serialize(&key, "fuzz", &mut DeterministicRng::new(5));
        let back = parse(&again, None).expect("a written key file must load");
        assert_eq!(back.public(), key.public());
    }
}

/// Arbitrary text as a `known_hosts` file (patterns, negations, hashed names, markers), checked
/// for a few hosts and a fixed key: no panic.
pub fn known_hosts(data: &[u8]) {
    use crate::client::known_hosts::KnownHosts;
    use crate::transport::HostKeyVerifier;

    let key = &keys().user_public;
    let text = String::from_utf8_lossy(data);
    let hosts = KnownHosts::parse(&text);
    for (host, port) in [("127.0.0.1", 22), ("storage-1", 2222), ("::1", 22)] {
        let _ = hosts.verifier(host, port).verify(key);
    }
}

/// Arbitrary bytes as a certificate blob [PROTOCOL.certkeys]: no panic; one that parses keeps
/// its exact bytes, parses again to the same certificate, and its signature and rules can be
/// checked at any time from any address without panicking (an unsigned one never verifies).
pub fn certificate(data: &[u8]) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use crate::keys::cert::Certificate;

    let Ok(cert) = Certificate::decode(data) else {
        return;
    };
    assert_eq!(cert.blob(), data);
    assert_eq!(Certificate::decode(cert.blob()).ok().as_ref(), Some(&cert));
    let _ = cert.verify_signature(&crate::keys::SigAlg::ALL);
    for now in [0, cert.valid_after, cert.valid_before, u64::MAX] {
        for addr in [
            IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            let _ = cert.check_user(now, addr);
        }
    }
}

/// Arbitrary bytes as svn protocol items (the svn+ssh handshake's parser): no panic; an item
/// that parses re-encodes to bytes that parse to the same item, and every prefix of those
/// bytes is "incomplete", never a different item.
pub fn svn_item(data: &[u8]) {
    use crate::svn::item::parse;

    let Ok(Some((item, used))) = parse(data) else {
        return;
    };
    assert!(used <= data.len());
    let bytes = item.to_bytes();
    assert_eq!(parse(&bytes), Ok(Some((item.clone(), bytes.len()))));
    for cut in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
        assert_eq!(parse(bytes.get(..cut).unwrap_or_default()), Ok(None));
    }
}

/// Arbitrary server payloads (after a real, deterministic key exchange) into a
/// `ClientConnection`: the client's authentication, channel and global message handling, with
/// one session opened (and `exec` requested) once authenticated. Input: a list of payloads,
/// each a one-byte length then that many bytes; a payload starting 0xff is replaced by
/// USERAUTH_SUCCESS, so the fuzzer gets past authentication. No panic, and no channel ever
/// buffers more than our window plus the tenth OpenSSH also tolerates.
pub fn client_session(data: &[u8]) {
    use std::sync::Arc;
    use std::time::Instant;

    use crate::client::{ClientConfig, ClientConnection, ClientEvent};
    use crate::connection::ChannelRequest;
    use crate::msg::UserauthSuccess;
    use crate::transport::{Pinned, Transport};

    let now = Instant::now();
    let keys = keys();
    let mut config = ClientConfig::default();
    config.transport = Arc::new(fast_transport());
    let window = usize::try_from(config.connection.window).unwrap();
    let window = window + window / crate::limits::WINDOW_GRACE_DIVISOR as usize;
    let Ok(mut client) = ClientConnection::new(
        &config,
        Box::new(Pinned::Key(keys.host_public.clone())),
        "git",
        vec![Arc::clone(&keys.user)],
        Box::new(DeterministicRng::new(2)),
        now,
    ) else {
        return;
    };
    let mut server = Transport::new_server(
        Arc::new(fast_transport()),
        Arc::clone(&keys.host),
        Box::new(DeterministicRng::new(4)),
        now,
    );
    // The reader takes half of what it is offered (a pipe with some room); the rest is
    // buffered behind it.
    let mut half = |_: u32, _: bool, data: &[u8]| data.len().div_ceil(2);
    let mut exchange = |client: &mut ClientConnection, server: &mut Transport| {
        exchange(
            client,
            server,
            now,
            window,
            Some(&mut half),
            |client, ev| match ev {
                ClientEvent::Authenticated => client.open_session().map(|_| ()),
                ClientEvent::Channel(crate::connection::ChannelEvent::Opened { id }) => client
                    .request(
                        id,
                        &ChannelRequest::Exec(b"git-upload-pack 'r'".to_vec()),
                        true,
                    ),
                _ => Ok(()),
            },
        )
    };
    if !exchange(&mut client, &mut server) {
        return;
    }
    for payload in framed(data) {
        let sent = if payload.first() == Some(&0xff) {
            server.send_msg(&UserauthSuccess {})
        } else if payload.is_empty() {
            continue;
        } else {
            server.send(payload)
        };
        if sent.is_err() || !exchange(&mut client, &mut server) {
            return;
        }
    }
}

/// The fixed keys every session target uses, made once per process: generating them (and
/// signing the same login) on every execution took a third of the sessions' time.
struct Keys {
    host: std::sync::Arc<[crate::keys::PrivateKey]>,
    host_public: crate::keys::PublicKey,
    user: std::sync::Arc<crate::keys::PrivateKey>,
    user_public: crate::keys::PublicKey,
    user_blob: Vec<u8>,
    /// The session id and signature of the last login signed: the exchange is deterministic,
    /// so every execution asks for the same one.
    login: std::sync::Mutex<Option<(Vec<u8>, Vec<u8>)>>,
}

impl Keys {
    fn login_signature(&self, sid: &[u8], req: &crate::auth::publickey::Request<'_>) -> Vec<u8> {
        let mut cached = self.login.lock().unwrap();
        match &*cached {
            Some((id, sig)) if id == sid => sig.clone(),
            _ => {
                let data = crate::auth::publickey::signed_data(sid, req);
                let sig = self.user.sign(&data);
                *cached = Some((sid.to_vec(), sig.clone()));
                sig
            }
        }
    }
}

fn keys() -> &'static Keys {
    use crate::keys::PrivateKey;
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let host = PrivateKey::generate_ed25519(&mut DeterministicRng::new(1));
        let user = PrivateKey::generate_ed25519(&mut DeterministicRng::new(3));
        let user_public = user.public();
        Keys {
            host_public: host.public(),
            host: std::sync::Arc::from(vec![host]),
            user_blob: user_public.to_blob(),
            user_public,
            user: std::sync::Arc::new(user),
            login: std::sync::Mutex::new(None),
        }
    })
}

/// The sessions' key exchange: curve25519 only, the cheapest, so the executions go to the
/// layers above (the exchange itself has `transport_server`).
fn fast_transport() -> crate::transport::TransportConfig {
    use crate::transport::KexAlg;
    let mut c = crate::transport::TransportConfig::default();
    c.preferences.kex = vec![KexAlg::Curve25519Sha256];
    c
}

/// Moves bytes between `ep` (the role under test) and `peer` (a bare transport of the other
/// role) until both are quiet, at most 50 rounds, `react` answering each of `ep`'s events and
/// every channel checked against `window` after each read; channel data is offered to
/// `deliver` as it is decoded when there is one (as the client driver does). `false`: the
/// connection ended.
fn exchange<S: crate::endpoint::Side>(
    ep: &mut crate::endpoint::Endpoint<S>,
    peer: &mut crate::transport::Transport,
    now: std::time::Instant,
    window: usize,
    mut deliver: Option<crate::connection::Deliver<'_>>,
    mut react: impl FnMut(
        &mut crate::endpoint::Endpoint<S>,
        S::Event,
    ) -> Result<(), crate::error::Error>,
) -> bool {
    for _ in 0..50 {
        let (mut to_ep, mut to_peer) = (Vec::new(), Vec::new());
        peer.poll_transmit(&mut to_ep);
        ep.poll_transmit(&mut to_peer);
        if to_ep.is_empty() && to_peer.is_empty() {
            return true;
        }
        let mut at = 0;
        while at < to_ep.len() {
            // As the drivers feed it: from their mutable input buffer (packets are opened in
            // place), light input inline, a possibly expensive exchange message through the
            // full path.
            let rest = &mut to_ep[at..];
            let fed = match &mut deliver {
                Some(d) => ep.handle_input_with(rest, now, &mut **d),
                None if ep.transport().kex_may_be_heavy() => ep.handle_input(rest, now),
                None => ep.handle_input_light(rest, now),
            };
            match fed {
                Ok(n) => at += n,
                Err(_) => return false,
            }
            while let Some(ev) = ep.poll_event() {
                if react(ep, ev).is_err() {
                    return false;
                }
            }
            assert_bounded(ep, window);
        }
        let mut rest = &to_peer[..];
        while !rest.is_empty() {
            match peer.read(rest, now) {
                Ok((n, _)) if n > 0 => rest = &rest[n..],
                _ => return false,
            }
        }
    }
    true
}

/// The payloads of a fuzz input framed as a list: one length byte, then that many bytes (the
/// last one cut short if the input ends first).
fn framed(mut input: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let [len, rest @ ..] = input else {
            return None;
        };
        let n = usize::from(*len).min(rest.len());
        let (payload, tail) = rest.split_at(n);
        input = tail;
        Some(payload)
    })
}

/// No channel of `ep` buffers more than `limit` (our window plus the tenth we tolerate).
fn assert_bounded<S: crate::endpoint::Side>(ep: &crate::endpoint::Endpoint<S>, limit: usize) {
    for id in 0..16 {
        if let Some(ch) = ep.channels().channel(id) {
            assert!(
                ch.buffered() <= limit,
                "channel {id} buffers {} > 1.1 × window",
                ch.buffered()
            );
        }
    }
}
