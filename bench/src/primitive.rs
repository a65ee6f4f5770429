//! The AEAD primitives alone, on one core, through the crate calls the transport makes: CPU
//! seconds per GiB to seal and to open packets of 32 KiB (the payload size of a full channel
//! data packet). Every "CPU per GiB" figure of the bench is divided by these, measured in the
//! same run.

use nix::time::{ClockId, clock_gettime};
use portcullis::crypto::aead::{AesGcm, ChaChaPoly};

/// CPU seconds per GiB, one core.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    pub seal: f64,
    pub open: f64,
}

const PACKET: usize = 32768 + 64;

fn thread_cpu() -> f64 {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
}

/// Seals then opens `bytes` worth of packets, timing each half on this thread's CPU clock.
fn measure(
    bytes: u64,
    mut seal: impl FnMut(u32, &mut [u8], &mut [u8; 16]),
    mut open: impl FnMut(u32, &mut [u8], &[u8; 16]),
) -> Cost {
    let mut pkt = vec![0x5au8; PACKET];
    let mut tag = [0u8; 16];
    let (mut sealing, mut opening) = (0.0, 0.0);
    let n = bytes / PACKET as u64;
    for i in 0..n {
        let seq = i as u32;
        let t0 = thread_cpu();
        seal(seq, &mut pkt, &mut tag);
        let t1 = thread_cpu();
        open(seq, &mut pkt, &tag);
        sealing += t1 - t0;
        opening += thread_cpu() - t1;
    }
    let gib = (n * PACKET as u64) as f64 / (1u64 << 30) as f64;
    Cost {
        seal: sealing / gib,
        open: opening / gib,
    }
}

/// aes128-gcm@openssh.com's primitive.
pub fn aes128_gcm(bytes: u64) -> Cost {
    let mut s = AesGcm::new(&[7u8; 16], &[1u8; 12]).expect("key");
    let mut o = AesGcm::new(&[7u8; 16], &[1u8; 12]).expect("key");
    measure(
        bytes,
        |_, p, t| s.seal(p, t),
        |_, p, t| o.open(p, t).expect("a packet we sealed opens"),
    )
}

/// chacha20-poly1305@openssh.com's primitive.
pub fn chacha20_poly1305(bytes: u64) -> Cost {
    let c = ChaChaPoly::new(&[7u8; 64]);
    measure(
        bytes,
        |seq, p, t| c.seal(seq, p, t),
        |seq, p, t| c.open(seq, p, t).expect("a packet we sealed opens"),
    )
}
