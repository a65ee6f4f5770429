//! The channel layer through a `ServerConnection` (after a real login): windows and their
//! budget, packet sizes, channel ids and limits, global requests, ping and keepalives.

use std::time::Duration;

use portcullis::connection::{ChannelEvent, ConnectionConfig};
use portcullis::error::{ChannelError, Error, ProtocolError};
use portcullis::msg::{ChannelKind, GlobalRequestKind, MsgNum, TcpipEnds};
use portcullis::server::{ServerConfig, ServerEvent};
use portcullis::wire::Reader;

use crate::session::{Session, ed};

fn open_session(s: &mut Session, window: u32) -> u32 {
    s.send(|w| {
        w.u8(90).string(b"session").u32(0).u32(window).u32(32768);
    });
    let id = s
        .server_events
        .iter()
        .rev()
        .find_map(|e| match e {
            ServerEvent::Channel(ChannelEvent::OpenRequest { id, .. }) => Some(*id),
            _ => None,
        })
        .unwrap();
    s.server.accept_open(id).unwrap();
    s.drive();
    assert_eq!(s.last_reply(), 91, "OPEN_CONFIRMATION");
    id
}

fn small_window() -> ServerConfig {
    ServerConfig {
        connection: ConnectionConfig {
            window: 64 * 1024,
            max_packet: 32768,
            max_channels: 3,
            window_budget: 1 << 20,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn data_beyond_the_window_is_tolerated_up_to_a_tenth_then_disconnects() {
    let mut s = Session::logged_in(small_window());
    open_session(&mut s, 1 << 20);
    for _ in 0..2 {
        s.send(|w| {
            w.u8(94).u32(0).string(&[7u8; 32768]);
        });
    }
    assert!(s.server_error.is_none());
    assert_eq!(s.server.channels().channel(0).unwrap().buffered(), 65536);
    // OpenSSH's grace: a tenth of the window (6553 bytes of 65536) beyond it is buffered.
    s.send(|w| {
        w.u8(94).u32(0).string(&[7u8; 6000]);
    });
    assert!(s.server_error.is_none(), "{:?}", s.server_error);
    assert_eq!(s.server.channels().channel(0).unwrap().buffered(), 71536);
    s.send(|w| {
        w.u8(94).u32(0).string(&[7u8; 554]);
    });
    assert_eq!(
        s.server_error,
        Some(Error::Protocol(ProtocolError::WindowExceeded { id: 0 }))
    );
}

#[test]
fn channels_share_the_connection_window_budget() {
    // Default: 2 MiB windows, 4 MiB budget, 64 KiB floor, 10 channels. Two channels get the
    // full window, the rest the floor: at most 4 MiB + 8 × 64 KiB may be buffered in all.
    let mut s = Session::logged_in(ServerConfig::default());
    let mut windows = Vec::new();
    for _ in 0..10u32 {
        open_session(&mut s, 1 << 20);
        let confirm = s.to_client.last().unwrap().clone();
        assert_eq!(confirm[0], 91);
        let mut r = Reader::new(&confirm[1..]);
        let (_, _, window) = (r.u32().unwrap(), r.u32().unwrap(), r.u32().unwrap());
        windows.push(window);
    }
    assert_eq!(&windows[..2], &[2 << 20, 2 << 20]);
    assert!(windows[2..].iter().all(|&w| w == 64 * 1024), "{windows:?}");
    let total: u32 = windows.iter().sum();
    assert!(total <= (4 << 20) + 8 * 64 * 1024);
}

#[test]
fn data_above_our_packet_size_is_accepted_within_the_window() {
    // OpenSSH only logs "rcvd big packet"; the window and the transport's cap bound it.
    let mut s = Session::logged_in(ServerConfig::default());
    open_session(&mut s, 1 << 20);
    s.send(|w| {
        w.u8(94).u32(0).string(&[7u8; 40000]);
    });
    assert!(s.server_error.is_none(), "{:?}", s.server_error);
    assert_eq!(s.server.channels().channel(0).unwrap().buffered(), 40000);
}

#[test]
fn reading_returns_window_credit() {
    let mut s = Session::logged_in(small_window());
    open_session(&mut s, 1 << 20);
    for _ in 0..2 {
        s.send(|w| {
            w.u8(94).u32(0).string(&[7u8; 32768]);
        });
    }
    let mut buf = vec![0u8; 40000];
    assert_eq!(s.server.read(0, &mut buf).unwrap(), 40000);
    s.drive();
    assert_eq!(last_adjust(&s), 40000);
}

/// The bytes of the last WINDOW_ADJUST the client received.
fn last_adjust(s: &Session) -> u32 {
    let adjust = s
        .to_client
        .iter()
        .rev()
        .find(|m| m[0] == 93)
        .expect("WINDOW_ADJUST");
    let mut r = Reader::new(&adjust[1..]);
    r.u32().unwrap();
    r.u32().unwrap()
}

#[test]
fn data_on_an_unknown_channel_disconnects() {
    let mut s = Session::logged_in(ServerConfig::default());
    s.send(|w| {
        w.u8(94).u32(5).string(b"x");
    });
    assert_eq!(
        s.server_error,
        Some(Error::Protocol(ProtocolError::UnknownChannel { id: 5 }))
    );
}

/// A `direct-tcpip` open reaches the application with its target typed [RFC4254 §7.2]; one
/// with a field missing is a decode error, as sshd treats it.
#[test]
fn direct_tcpip_opens_arrive_typed_and_truncated_ones_disconnect() {
    let mut s = Session::logged_in(ServerConfig::default());
    s.send(|w| {
        w.u8(90)
            .string(b"direct-tcpip")
            .u32(7)
            .u32(1 << 20)
            .u32(32768);
        w.string(b"db.internal")
            .u32(5432)
            .string(b"127.0.0.1")
            .u32(40000);
    });
    assert!(s.server_error.is_none(), "{:?}", s.server_error);
    let kind = s.server_events.iter().find_map(|e| match e {
        ServerEvent::Channel(ChannelEvent::OpenRequest { kind, .. }) => Some(kind.clone()),
        _ => None,
    });
    assert_eq!(
        kind,
        Some(ChannelKind::DirectTcpip(TcpipEnds {
            host: b"db.internal".to_vec(),
            port: 5432,
            originator: b"127.0.0.1".to_vec(),
            originator_port: 40000,
        }))
    );
    let mut s = Session::logged_in(ServerConfig::default());
    s.send(|w| {
        w.u8(90)
            .string(b"direct-tcpip")
            .u32(7)
            .u32(1 << 20)
            .u32(32768);
        w.string(b"db.internal").u32(5432);
    });
    assert!(
        matches!(s.server_error, Some(Error::Decode(_))),
        "{:?}",
        s.server_error
    );
}

/// Our own calls on a channel the peer closed (and that was freed) are our caller's mistake,
/// named as such, not a protocol error blamed on the peer; the connection lives on.
#[test]
fn calls_on_a_freed_channel_name_the_channel() {
    let mut s = Session::logged_in(ServerConfig::default());
    open_session(&mut s, 1 << 20);
    s.send(|w| {
        w.u8(97).u32(0);
    });
    assert!(s.server_error.is_none(), "{:?}", s.server_error);
    assert!(s.server.channels().channel(0).is_none());
    assert_eq!(
        s.server.send_eof(0),
        Err(Error::Channel(ChannelError::NoSuchChannel { id: 0 }))
    );
    assert_eq!(
        s.server.write(0, None, b"x"),
        Err(Error::Channel(ChannelError::NoSuchChannel { id: 0 }))
    );
    assert!(!s.server.is_closed());
}

#[test]
fn window_adjust_overflow_disconnects() {
    let mut s = Session::logged_in(ServerConfig::default());
    open_session(&mut s, u32::MAX - 10);
    s.send(|w| {
        w.u8(93).u32(0).u32(11);
    });
    assert_eq!(
        s.server_error,
        Some(Error::Protocol(ProtocolError::WindowOverflow { id: 0 }))
    );
}

#[test]
fn too_many_channels_get_resource_shortage() {
    let mut s = Session::logged_in(small_window());
    for _ in 0..3 {
        open_session(&mut s, 1 << 20);
    }
    s.send(|w| {
        w.u8(90).string(b"session").u32(9).u32(1 << 20).u32(32768);
    });
    let last = s.to_client.last().unwrap();
    assert_eq!(last[0], 92, "OPEN_FAILURE");
    let mut r = Reader::new(&last[1..]);
    assert_eq!((r.u32().unwrap(), r.u32().unwrap()), (9, 4));
    assert!(s.server_error.is_none());
}

#[test]
fn channel_ids_are_reused_only_after_close_both_ways() {
    let mut s = Session::logged_in(small_window());
    let id = open_session(&mut s, 1 << 20);
    s.server.close(id).unwrap();
    s.drive();
    assert!(
        s.server.channels().channel(id).is_some(),
        "our CLOSE alone does not free it"
    );
    s.send(|w| {
        w.u8(97).u32(id);
    });
    assert!(s.server.channels().channel(id).is_none());
    assert_eq!(open_session(&mut s, 1 << 20), id);
}

#[test]
fn ping_is_answered_only_after_authentication() {
    let mut s = Session::new(ServerConfig::default());
    s.send(|w| {
        w.u8(192).string(b"early");
    });
    assert!(s.to_client.iter().all(|m| m[0] != 193));
    s.login(&ed(1));
    s.send(|w| {
        w.u8(192).string(b"late");
    });
    assert_eq!(
        s.to_client.last().unwrap(),
        &[193, 0, 0, 0, 4, b'l', b'a', b't', b'e']
    );
}

#[test]
fn global_requests_are_refused_in_order() {
    let mut s = Session::logged_in(ServerConfig::default());
    s.send(|w| {
        w.u8(80)
            .string(b"tcpip-forward")
            .bool(true)
            .string(b"0.0.0.0")
            .u32(80);
    });
    s.send(|w| {
        w.u8(80).string(b"keepalive@openssh.com").bool(true);
    });
    let replies: Vec<u8> = s.to_client.iter().rev().take(2).map(|m| m[0]).collect();
    assert_eq!(replies, vec![MsgNum::REQUEST_FAILURE.0; 2]);
}

/// With `forwarding_requests`, a server's application decides `tcpip-forward`: replies still
/// leave in the order the requests came, so a refusal the core decides at once waits behind
/// the application's pending one.
#[test]
fn forwarding_requests_reach_the_application_and_replies_keep_their_order() {
    let mut cfg = ServerConfig::default();
    cfg.connection.forwarding_requests = true;
    let mut s = Session::logged_in(cfg);
    let (before, events) = (s.to_client.len(), s.server_events.len());
    s.send(|w| {
        w.u8(80)
            .string(b"tcpip-forward")
            .bool(true)
            .string(b"localhost")
            .u32(0);
    });
    s.send(|w| {
        w.u8(80).string(b"keepalive@openssh.com").bool(true);
    });
    s.send(|w| {
        w.u8(80)
            .string(b"cancel-tcpip-forward")
            .bool(false)
            .string(b"")
            .u32(8080);
    });
    assert_eq!(
        s.to_client.len(),
        before,
        "nothing answered before the first"
    );
    let asked: Vec<&ServerEvent> = s.server_events[events..].iter().collect();
    assert_eq!(
        asked,
        [
            &ServerEvent::Channel(ChannelEvent::GlobalRequest {
                request: GlobalRequestKind::TcpipForward {
                    address: b"localhost".to_vec(),
                    port: 0,
                },
                want_reply: true,
            }),
            &ServerEvent::Channel(ChannelEvent::GlobalRequest {
                request: GlobalRequestKind::CancelTcpipForward {
                    address: Vec::new(),
                    port: 8080,
                },
                want_reply: false,
            }),
        ]
    );
    s.server.reply_global(true, Some(40001)).unwrap();
    s.drive();
    let replies = &s.to_client[before..];
    assert_eq!(replies, [vec![81, 0, 0, 0x9c, 0x41], vec![82]]);
    // Nothing is owed now: another reply is the caller's mistake.
    assert_eq!(
        s.server.reply_global(true, None),
        Err(Error::Channel(ChannelError::NoGlobalRequestAwaitsReply))
    );
}

#[test]
fn global_requests_waiting_for_the_application_are_bounded() {
    let mut cfg = ServerConfig::default();
    cfg.connection.forwarding_requests = true;
    let mut s = Session::logged_in(cfg);
    for port in 0..=256u32 {
        s.send(|w| {
            w.u8(80)
                .string(b"tcpip-forward")
                .bool(true)
                .string(b"")
                .u32(port);
        });
    }
    assert_eq!(
        s.server_error,
        Some(Error::Protocol(ProtocolError::TooManyGlobalRequests {
            limit: portcullis::limits::GLOBAL_REPLIES_QUEUED
        }))
    );
}

#[test]
fn keepalives_go_out_when_idle_and_silence_disconnects() {
    let cfg = ServerConfig {
        keepalive_interval: Some(Duration::from_secs(10)),
        keepalive_max: 3,
        ..Default::default()
    };
    let mut s = Session::logged_in(cfg);
    s.send(|w| {
        w.u8(2).string(b"");
    });
    let first = s.server.poll_timeout().unwrap();
    assert_eq!(first, s.now + Duration::from_secs(10));
    // Answered keepalives keep the connection alive.
    let mut t = first;
    for _ in 0..5 {
        s.server.handle_timeout(t).unwrap();
        s.drive();
        let last = s.to_client.last().unwrap();
        assert_eq!(last[0], 80, "GLOBAL_REQUEST");
        assert!(last[1..].windows(21).any(|w| w == b"keepalive@openssh.com"));
        s.send(|w| {
            w.u8(82);
        });
        t = s.server.poll_timeout().unwrap();
    }
    assert!(!s.server.is_closed());
    // Three unanswered, then the connection goes.
    for _ in 0..3 {
        t += Duration::from_secs(10);
        s.server.handle_timeout(t).unwrap();
    }
    t += Duration::from_secs(10);
    assert!(s.server.handle_timeout(t).is_err());
    assert!(s.server.is_closed());
}

#[test]
fn a_write_larger_than_4_gib_is_split_by_the_window() {
    let mut s = Session::logged_in(ServerConfig::default());
    let id = open_session(&mut s, 1 << 20);
    // calloc'd: only the pages actually sent are touched.
    let huge = vec![0u8; (5usize << 30) + 7];
    // Each call takes what the window and the transport's backpressure allow.
    let mut sent = 0;
    loop {
        let n = s.server.write(id, None, &huge[sent..]).unwrap();
        s.drive();
        if n == 0 {
            break;
        }
        sent += n;
    }
    assert_eq!(
        sent,
        1 << 20,
        "exactly the peer's window, never a truncated length"
    );
    let data: usize = s
        .to_client
        .iter()
        .filter(|m| m[0] == 94)
        .map(|m| m.len() - 9)
        .sum();
    assert_eq!(data, 1 << 20);
    s.send(|w| {
        w.u8(93).u32(id).u32(u32::MAX - (1 << 20));
    });
    let n = s.server.write(id, None, &huge[sent..]).unwrap();
    // Transport backpressure stops it: its soft queue (256 KiB) plus at most one packet.
    assert!(n > 0 && n <= 256 * 1024 + 32768);
}

#[test]
fn data_offered_as_it_is_decoded_keeps_its_order_and_earns_credit() {
    let mut s = Session::logged_in(small_window());
    open_session(&mut s, 1 << 20);
    // Four packets at once: 32 KiB of 1s, 20000 2s, 1000 3s, then 1000 4s on stderr.
    for (byte, len) in [(1u8, 32768), (2, 20000), (3, 1000)] {
        s.client
            .send_with(|w| {
                w.u8(94).u32(0).string(&vec![byte; len]);
            })
            .unwrap();
    }
    s.client
        .send_with(|w| {
            w.u8(95).u32(0).u32(1).string(&[4u8; 1000]);
        })
        .unwrap();
    let mut bytes = Vec::new();
    s.client.poll_transmit(&mut bytes);
    // The reader takes everything of the first packet, 5000 of the second, and any stderr.
    let (mut out, mut err, mut offers) = (Vec::new(), Vec::new(), 0);
    let mut deliver = |id: u32, ext: bool, data: &[u8]| {
        assert_eq!(id, 0);
        offers += 1;
        if ext {
            err.extend_from_slice(data);
            return data.len();
        }
        let take = data.len().min(32768 + 5000 - out.len());
        out.extend_from_slice(&data[..take]);
        take
    };
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let n = s
            .server
            .handle_input_with(rest, s.now, &mut deliver)
            .unwrap();
        assert!(n > 0);
        rest = &rest[n..];
    }
    // The third packet waited behind the second's rest: it was never offered.
    assert_eq!(offers, 3);
    assert_eq!(out.len(), 32768 + 5000);
    assert!(out[..32768].iter().all(|&b| b == 1) && out[32768..].iter().all(|&b| b == 2));
    assert_eq!(err, [4u8; 1000]);
    // Readable only for what waits in the channel: the second packet's rest and the third.
    let mut readable = 0;
    while let Some(ev) = s.server.poll_event() {
        readable += usize::from(matches!(
            ev,
            ServerEvent::Channel(ChannelEvent::Readable { .. })
        ));
    }
    assert_eq!(readable, 2);
    // What was taken earned credit as a read does: half the window went back at once.
    s.drive();
    assert_eq!(last_adjust(&s), 32768);
    // The rest is buffered in order.
    assert_eq!(s.server.channels().channel(0).unwrap().buffered(), 16000);
    let mut buf = vec![0u8; 16000];
    assert_eq!(s.server.read(0, &mut buf).unwrap(), 16000);
    assert!(buf[..15000].iter().all(|&b| b == 2) && buf[15000..].iter().all(|&b| b == 3));
}
