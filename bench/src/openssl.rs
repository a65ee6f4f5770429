//! `openssl speed` as the primitive baseline of the ceiling figures.

use std::process::{Command, Stdio};

/// MB/s of `openssl speed -evp <cipher>` on 16 KiB blocks; `aes-128-ctr+hmac-sha256` is the
/// two passes one after the other (OpenSSL has no single primitive for it), as SSH uses them.
pub fn openssl_speed(evp: &str) -> f64 {
    if let Some((cipher, "hmac-sha256")) = evp.split_once('+') {
        let (c, h) = (openssl_speed(cipher), openssl_run(&["-hmac", "sha256"]));
        return 1.0 / (1.0 / c + 1.0 / h);
    }
    openssl_run(&["-evp", evp])
}

pub fn openssl_run(what: &[&str]) -> f64 {
    let out = Command::new("openssl")
        .arg("speed")
        .args(what)
        .args(["-seconds", "1", "-bytes", "16384"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| {
            let last = l.split_whitespace().last()?;
            let kb: f64 = last.strip_suffix('k')?.parse().ok()?;
            Some(kb * 1000.0 / 1e6)
        })
        .unwrap_or(f64::NAN)
}
