//! Transport efficiency: CPU seconds per GiB on the sending and on the receiving side of one
//! session's stream, to be divided by the AEAD primitive's own cost (`primitive.rs`).
//!
//! - In-process: our server and client endpoints joined in memory (no socket, no runtime):
//!   what framing, windows, copies and the crypto cost, and nothing else. The sending side is
//!   `ServerConnection::write` and `poll_transmit` (as the driver sends git's output) plus the
//!   window adjusts it reads back; the receiving side is `handle_input` and `read_with` (as
//!   the driver hands data on) plus the adjusts it writes.
//! - Over loopback TCP: `load::ceiling` runs each side on its own runtime and reads the CPU
//!   clocks of that runtime's threads ([`ThreadSet`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use nix::time::{ClockId, clock_gettime};
use portcullis::client::{ClientConfig, ClientConnection, ClientEvent};
use portcullis::connection::ChannelEvent;
use portcullis::driver::os_rng;
use portcullis::endpoint::{Endpoint, Side};
use portcullis::keys::{PrivateKey, key_file};
use portcullis::server::{ServerConfig, ServerConnection, ServerEvent};
use portcullis::transport::{CipherAlg, Pinned, TransportConfig};

use crate::openssl::openssl_run;
use crate::setup::Fixtures;
use crate::{Pair, Report, fmt, load, median, primitive, spread};

/// CPU seconds per GiB of payload, each side (and, over a socket, the kernel's part of it).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sides {
    pub send: f64,
    pub recv: f64,
    pub send_kernel: f64,
    pub recv_kernel: f64,
}

fn clock(id: ClockId) -> f64 {
    clock_gettime(id).map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

fn this_thread() -> f64 {
    clock(ClockId::CLOCK_THREAD_CPUTIME_ID)
}

/// The threads a runtime started (registered by `on_thread_start`), whose CPU clocks are read
/// through Linux's per-thread clock ids (`MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)`).
#[derive(Clone, Default)]
pub struct ThreadSet(Arc<Mutex<Vec<i32>>>);

impl ThreadSet {
    /// Call from `on_thread_start`.
    pub fn register(&self) {
        let tid = nix::unistd::gettid().as_raw();
        self.0.lock().unwrap().push(tid);
    }

    /// System (kernel) CPU seconds of the registered threads still alive, from
    /// `/proc/self/task/*/stat` (clock ticks of 10 ms: read over a whole GiB only).
    pub fn system(&self) -> f64 {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|tid| std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok())
            .filter_map(|stat| {
                // Fields after the command's closing parenthesis; stime is field 15.
                let rest = stat.rsplit_once(')')?.1;
                rest.split_whitespace().nth(12)?.parse::<f64>().ok()
            })
            .sum::<f64>()
            / 100.0
    }

    /// CPU seconds of the registered threads still alive.
    pub fn cpu(&self) -> f64 {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|&tid| clock(ClockId::from_raw((!tid << 3) | 6)))
            .sum()
    }
}

type Server = ServerConnection;
type Client = ClientConnection;

/// Feeds `bytes` to `ep` whole, handing each event to `react`.
fn feed<S: Side>(
    ep: &mut Endpoint<S>,
    mut bytes: &[u8],
    now: Instant,
    mut react: impl FnMut(&mut Endpoint<S>, S::Event),
) {
    while !bytes.is_empty() {
        let n = ep.handle_input(bytes, now).expect("input");
        bytes = &bytes[n..];
        while let Some(e) = ep.poll_event() {
            react(ep, e);
        }
    }
}

/// The server's part of the setup: accept the key and the session channel (noted in
/// `channel`).
fn serve(s: &mut Server, bytes: &[u8], now: Instant, channel: &mut Option<u32>) {
    feed(s, bytes, now, |s, e| match e {
        ServerEvent::AuthRequest(_) => s.accept_auth().expect("accept"),
        ServerEvent::Channel(ChannelEvent::OpenRequest { id, .. }) => {
            s.accept_open(id).expect("accept open");
            *channel = Some(id);
        }
        _ => {}
    });
}

/// The client's part: open a session once logged in, note its channel.
fn client(c: &mut Client, bytes: &[u8], now: Instant, channel: &mut Option<u32>) {
    feed(c, bytes, now, |c, e| match e {
        ClientEvent::Authenticated => {
            c.open_session().expect("open");
        }
        ClientEvent::Channel(ChannelEvent::Opened { id }) => *channel = Some(id),
        _ => {}
    });
}

/// Our server sending `bytes` of channel data to our client in memory with `cipher`.
pub fn in_process(host: PrivateKey, user: PrivateKey, cipher: CipherAlg, bytes: u64) -> Sides {
    let now = Instant::now();
    let mut t = TransportConfig::default();
    t.preferences.ciphers = vec![cipher];
    let transport = Arc::new(t);
    let host_pub = host.public();
    let mut s = Server::new(
        &ServerConfig {
            transport: transport.clone(),
            ..ServerConfig::default()
        },
        Arc::from(vec![host]),
        Box::new(os_rng().unwrap()),
        now,
    );
    let mut c = Client::new(
        &ClientConfig {
            transport,
            ..ClientConfig::default()
        },
        Box::new(Pinned::Key(host_pub)),
        "bench",
        vec![Arc::new(user)],
        Box::new(os_rng().unwrap()),
        now,
    )
    .unwrap();
    let (mut sid, mut cid) = (None, None);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for _ in 0..1000 {
        if sid.is_some() && cid.is_some() {
            break;
        }
        c.poll_transmit(&mut up);
        serve(&mut s, &up, now, &mut sid);
        up.clear();
        s.poll_transmit(&mut down);
        client(&mut c, &down, now, &mut cid);
        down.clear();
    }
    let (sid, cid) = (sid.expect("server channel"), cid.expect("client channel"));
    // As the driver's source read gives it: 256 KiB at most, as far as the window goes.
    let data = vec![0x5au8; 256 * 1024];
    let (mut sending, mut receiving) = (0.0, 0.0);
    let (mut sent, mut got) = (0u64, 0u64);
    let mut ignored = None;
    while got < bytes {
        let t0 = this_thread();
        serve(&mut s, &up, now, &mut ignored);
        up.clear();
        loop {
            let room = s.write_room(sid).min(data.len());
            let want = room.min(usize::try_from(bytes - sent).unwrap_or(usize::MAX));
            if want == 0 {
                break;
            }
            sent += s.write(sid, None, &data[..want]).unwrap() as u64;
        }
        s.poll_transmit(&mut down);
        let t1 = this_thread();
        client(&mut c, &down, now, &mut ignored);
        down.clear();
        got += c.read_with(cid, false, usize::MAX, <[u8]>::len).unwrap() as u64;
        c.poll_transmit(&mut up);
        let t2 = this_thread();
        sending += t1 - t0;
        receiving += t2 - t1;
    }
    let gib = got as f64 / (1u64 << 30) as f64;
    Sides {
        send: sending / gib,
        recv: receiving / gib,
        ..Sides::default()
    }
}

/// OpenSSH's side of a cipher's rows, from the raw fetches: sshd's own CPU per GiB (sending,
/// git's pipe in) and the `ssh` client's (receiving, a pipe out), one value per repetition.
#[derive(Clone, Default)]
pub struct OpenSshSides {
    pub send: Vec<f64>,
    pub recv: Vec<f64>,
    /// portcullis' own CPU per GiB in the same fetches (sending, with git's pipe).
    pub ours_send: Vec<f64>,
}

impl OpenSshSides {
    /// From a raw fetch's pairs: the servers' own CPU per GiB and the `ssh` client's.
    pub fn from_fetch(own: &Pair, client: &Pair) -> Self {
        Self {
            send: own.openssh.clone(),
            recv: client.openssh.clone(),
            ours_send: own.ours.clone(),
        }
    }
}

/// The rows: each side's CPU per GiB divided by the same crate's primitive (seal for the
/// sending side, open for the receiving side) measured in this run; OpenSSH's divided by
/// `openssl speed` (encrypt, `-decrypt`).
pub fn figures(
    r: &mut Report,
    f: &Fixtures,
    reps: usize,
    bytes: u64,
    openssh: &[(&str, OpenSshSides)],
) {
    r.line(String::new());
    r.line("| transport efficiency: CPU per GiB ÷ the primitive's | portcullis CPU s/GiB | of which kernel | primitive (same crate) s/GiB | ratio | ratio, user space only | target | OpenSSH CPU s/GiB | `openssl speed` s/GiB | OpenSSH ratio |".into());
    r.line("|---|---|---|---|---|---|---|---|---|---|".into());
    let host = || key_file::parse(&std::fs::read_to_string(&f.host_key).unwrap(), None).unwrap();
    let user = || key_file::parse(&std::fs::read_to_string(&f.user_key).unwrap(), None).unwrap();
    for (name, cipher, evp) in [
        ("aes128-gcm", CipherAlg::Aes128Gcm, "aes-128-gcm"),
        (
            "chacha20-poly1305",
            CipherAlg::ChaCha20Poly1305,
            "chacha20-poly1305",
        ),
    ] {
        let (mut mem_send, mut mem_recv, mut tcp_send, mut tcp_recv) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut send_k, mut recv_k) = (Vec::new(), Vec::new());
        let (mut seal, mut open, mut enc, mut dec) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // Alternating with the primitives: the machine drifts.
        for _ in 0..reps {
            let p = match cipher {
                CipherAlg::ChaCha20Poly1305 => primitive::chacha20_poly1305(bytes / 4),
                _ => primitive::aes128_gcm(bytes / 4),
            };
            seal.push(p.seal);
            open.push(p.open);
            let m = in_process(host(), user(), cipher, bytes);
            mem_send.push(m.send);
            mem_recv.push(m.recv);
            let (_, t) = load::ceiling(&f.work, &f.user_key, &f.host_key, cipher, None, bytes);
            tcp_send.push(t.send);
            tcp_recv.push(t.recv);
            send_k.push(t.send_kernel);
            recv_k.push(t.recv_kernel);
            enc.push(GIB_MB / openssl_run(&["-evp", evp]));
            dec.push(GIB_MB / openssl_run(&["-decrypt", "-evp", evp]));
        }
        let theirs = openssh
            .iter()
            .find(|(c, _)| c.starts_with(name))
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        let none: Vec<f64> = Vec::new();
        let rows: [Row<'_>; 5] = [
            (
                "in-process, sending",
                &mem_send,
                &none,
                &seal,
                Some(1.3),
                &none,
                &none,
            ),
            (
                "in-process, receiving",
                &mem_recv,
                &none,
                &open,
                Some(1.3),
                &none,
                &none,
            ),
            (
                "loopback TCP, sending (our client ← our server; OpenSSH: sshd in the raw fetch)",
                &tcp_send,
                &send_k,
                &seal,
                Some(1.6),
                &theirs.send,
                &enc,
            ),
            (
                "loopback TCP, receiving (our client; OpenSSH: `ssh` in the raw fetch)",
                &tcp_recv,
                &recv_k,
                &open,
                Some(1.6),
                &theirs.recv,
                &dec,
            ),
            (
                "loopback TCP, sending git's pack (the raw fetch, server's own CPU)",
                &theirs.ours_send,
                &none,
                &seal,
                None,
                &theirs.send,
                &enc,
            ),
        ];
        for (label, ours, kernel, prim, target, openssh, speed) in rows {
            let ratio = median(ours) / median(prim);
            let theirs = median(openssh) / median(speed);
            let user: Vec<f64> = ours.iter().zip(kernel).map(|(a, k)| a - k).collect();
            let dash = |v: &[f64]| {
                if v.is_empty() {
                    "–".to_owned()
                } else {
                    spread(v)
                }
            };
            r.line(format!(
                "| {name}, {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                spread(ours),
                dash(kernel),
                spread(prim),
                fmt(ratio),
                fmt(median(&user) / median(prim)),
                target.map_or("–".to_owned(), |t| format!(
                    "≤ {} {}",
                    fmt(t),
                    if ratio <= t { "met" } else { "**missed**" }
                )),
                if openssh.is_empty() {
                    "–".to_owned()
                } else {
                    spread(openssh)
                },
                if openssh.is_empty() {
                    "–".to_owned()
                } else {
                    spread(speed)
                },
                fmt(theirs)
            ));
        }
    }
    r.line(String::new());
}

/// A row: label, our values, their kernel part (empty: not measured), the primitive, target,
/// OpenSSH's values and `openssl speed`'s.
type Row<'a> = (
    &'a str,
    &'a [f64],
    &'a [f64],
    &'a [f64],
    Option<f64>,
    &'a [f64],
    &'a [f64],
);

/// MB in a GiB: `openssl speed` reports MB/s.
const GIB_MB: f64 = 1073.741824;
