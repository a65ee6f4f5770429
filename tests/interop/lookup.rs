//! Key lookup backends against real files and processes.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use portcullis::driver::os_rng;
use portcullis::keys::PrivateKey;
use portcullis::lookup::{CommandLookup, FileLookup, KeyLookup, LookupError};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn authorized_keys_file_is_reloaded_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        PrivateKey::generate_ed25519(&mut os_rng().unwrap()).public(),
        PrivateKey::generate_ed25519(&mut os_rng().unwrap()).public(),
    );
    let path = dir.path().join("authorized_keys");
    std::fs::write(&path, format!("{} alice\n", a.to_openssh())).unwrap();
    let lookup = FileLookup::new(&path);
    let id = lookup
        .lookup("git", &a, ip("127.0.0.1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (id.name.as_str(), id.fingerprint),
        ("alice", a.fingerprint())
    );
    assert!(
        lookup
            .lookup("git", &b, ip("127.0.0.1"))
            .await
            .unwrap()
            .is_none()
    );
    std::fs::write(
        &path,
        format!("from=\"10.0.0.0/8\" {} bob the builder\n", b.to_openssh()),
    )
    .unwrap();
    assert!(
        lookup
            .lookup("git", &a, ip("127.0.0.1"))
            .await
            .unwrap()
            .is_none(),
        "alice removed"
    );
    assert!(
        lookup
            .lookup("git", &b, ip("127.0.0.1"))
            .await
            .unwrap()
            .is_none(),
        "wrong address"
    );
    assert_eq!(
        lookup
            .lookup("git", &b, ip("10.2.3.4"))
            .await
            .unwrap()
            .unwrap()
            .name,
        "bob the builder"
    );
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        lookup.lookup("git", &b, ip("10.2.3.4")).await,
        Err(LookupError::Io(_))
    ));
}

fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn key_command_gets_user_and_fingerprint_and_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate_ed25519(&mut os_rng().unwrap()).public();
    let line = key.to_openssh();
    // Prints the key only for user "git" and the right fingerprint, with an empty environment.
    let ok = script(
        dir.path(),
        "keys",
        &format!(
            "[ \"$1\" = git ] && [ \"$2\" = '{}' ] && [ -z \"$HOME\" ] && echo '{line} dana'",
            key.fingerprint()
        ),
    );
    let lookup = CommandLookup::new(&ok);
    assert_eq!(
        lookup
            .lookup("git", &key, ip("127.0.0.1"))
            .await
            .unwrap()
            .unwrap()
            .name,
        "dana"
    );
    assert!(matches!(
        lookup.lookup("root", &key, ip("127.0.0.1")).await,
        Err(LookupError::Failed(_))
    ));
    let slow = CommandLookup {
        timeout: Duration::from_millis(300),
        ..CommandLookup::new(script(dir.path(), "slow", "sleep 10"))
    };
    let t = Instant::now();
    assert!(matches!(
        slow.lookup("git", &key, ip("127.0.0.1")).await,
        Err(LookupError::Timeout)
    ));
    assert!(t.elapsed() < Duration::from_secs(3));
    let big = CommandLookup::new(script(dir.path(), "big", "head -c 3000000 /dev/zero"));
    assert!(matches!(
        big.lookup("git", &key, ip("127.0.0.1")).await,
        Err(LookupError::Failed(_))
    ));
    let nobody = CommandLookup::new(script(dir.path(), "none", "exit 0"));
    assert!(
        nobody
            .lookup("git", &key, ip("127.0.0.1"))
            .await
            .unwrap()
            .is_none()
    );
}
