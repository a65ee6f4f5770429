//! Issue 15's hardening, end to end with the `portcullis` binary: each test fails on the code
//! before the fix.

use std::process::{Command, Stdio};

use crate::git_server::{EVERYONE_WRITES, Server, config, start_on};

fn ssh(s: &Server, key: &std::path::Path, remote: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} -p {} git@127.0.0.1 {remote}",
            s.ssh_command(key),
            s.port
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// On a dual-stack socket an IPv4 client is `::ffff:127.0.0.1`; `from=` negations, the log and
/// PORTCULLIS_REMOTE_ADDR must see 127.0.0.1. (The listener is the v4-mapped loopback address,
/// so the test stays on loopback.)
#[test]
fn from_negations_hold_for_ipv4_clients_of_a_dual_stack_listener() {
    let s = start_on("[::ffff:127.0.0.1]:0", &config(EVERYONE_WRITES), |data| {
        std::fs::create_dir_all(data.join("repos")).unwrap();
    });
    let refused = s.user_key("refused", None);
    let allowed = s.user_key("allowed", None);
    let line = |path: &std::path::Path, opts: &str, name: &str| {
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        let mut p = public.split_whitespace();
        format!(
            "{opts} {} {} {name}\n",
            p.next().unwrap(),
            p.next().unwrap()
        )
    };
    std::fs::write(
        s.data().join("authorized_keys"),
        line(&refused, "from=\"*,!127.0.0.0/8\"", "mallory")
            + &line(&allowed, "from=\"127.0.0.1\"", "alice"),
    )
    .unwrap();
    let out = ssh(&s, &refused, "\"git-upload-pack '/x.git'\"");
    assert_eq!(
        out.status.code(),
        Some(255),
        "the negation must refuse 127.0.0.1"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    let out = ssh(&s, &allowed, "\"git-upload-pack '/x.git'\"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not found"), "{err}");
    let log = s.log();
    assert!(log.contains("addr=127.0.0.1:"), "{log}");
    assert!(!log.contains("::ffff:"), "{log}");
}
