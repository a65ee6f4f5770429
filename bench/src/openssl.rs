//! `openssl speed` as OpenSSH's primitive baseline in the transport-efficiency figures.

use std::process::{Command, Stdio};

/// MB/s of `openssl speed` with `what` (`-evp aes-128-gcm`, `-decrypt -evp …`) on 16 KiB blocks.
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
