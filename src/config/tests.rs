//! Unit tests of the configuration file.

use super::*;

#[test]
fn embedded_default_is_valid() {
    let c = Config::parse(DEFAULT).unwrap();
    assert_eq!(c.listen_addrs(), vec!["127.0.0.1:2222".parse().unwrap()]);
    assert_eq!(c.access.len(), 1);
    c.server_config().unwrap();
}

fn with(replace: &str, by: &str) -> String {
    assert!(DEFAULT.contains(replace), "{replace}");
    DEFAULT.replacen(replace, by, 1)
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        (
            with("listen = [\"127.0.0.1:2222\"]", "listen = [\"localhost\"]"),
            "listen",
        ),
        (
            with("backend = \"file\"", "backend = \"ldap\""),
            "keys.backend",
        ),
        (with("format = \"human\"", "format = \"xml\""), "log.format"),
        (with("max_channels = 10", "max_channels = 0"), "limits"),
        (
            with("[algorithms]", "[algorithms]\nciphers = [\"3des-cbc\"]"),
            "algorithms.ciphers",
        ),
        (
            with(
                "[algorithms]",
                "[algorithms]\nhost_keys = [\"sk-ssh-ed25519@openssh.com\"]",
            ),
            "algorithms.host_keys",
        ),
        (with("access = \"write\"", "access = \"admin\""), "config"),
        (
            with("user = \"git\"", "user = \"git\"\nusr = \"x\""),
            "config",
        ),
    ];
    for (text, key) in cases {
        let e = Config::parse(&text).unwrap_err();
        assert_eq!(e.key, key, "{e}");
    }
    let e = Config::parse(&with("access = \"write\"", "access = \"admin\"")).unwrap_err();
    assert!(
        e.problem.contains("admin") || e.problem.contains("variant"),
        "{e}"
    );
}

#[test]
fn proxy_settings_are_checked() {
    let up = |extra: &str| {
        format!(
            "{DEFAULT}\n[[upstreams]]\nname = \"s\"\naddress = \"127.0.0.1:22\"\nuser = \"git\"\n\
             key = \"k\"\n{extra}\n"
        )
    };
    let pinned = "host_key = \"SHA256:x\"";
    let cases = [
        (up(""), "upstreams.s.host_key"),
        (
            up(&format!("{pinned}\nknown_hosts = \"kh\"")),
            "upstreams.s.host_key",
        ),
        (
            up("host_key = \"ssh-ed25519 AAAA\""),
            "upstreams.s.host_key",
        ),
        (
            up(pinned).replace("\"127.0.0.1:22\"", "\"storage\""),
            "upstreams.s.address",
        ),
        (
            up(&format!("{pinned}\nmax_sessions = 0")),
            "upstreams.s.max_sessions",
        ),
        (
            up(pinned) + "[[routes]]\nrepos = [\"**\"]\nupstream = \"t\"\n",
            "routes.upstream",
        ),
        (
            up(pinned) + &up(pinned).replace(DEFAULT, ""),
            "upstreams.name",
        ),
    ];
    for (text, key) in cases {
        let e = Config::parse(&text).unwrap_err();
        assert_eq!(e.key, key, "{e}");
    }
    let ok = up(&format!("{pinned}\npool = false"))
        + "[[routes]]\nrepos = [\"team/**\"]\nupstream = \"s\"\n";
    let c = Config::parse(&ok).unwrap();
    assert_eq!(c.upstreams[0].max_sessions, 10);
    assert!(!c.upstreams[0].pool);
    // The key file is read when the router is built, with the key named on failure.
    let e = c.router().unwrap_err();
    assert_eq!(e.key, "upstreams.s.key");
}

#[test]
fn sha1_host_signatures_and_macs_are_opt_in() {
    let d = Config::parse(DEFAULT).unwrap().server_config().unwrap();
    let p = &d.transport.preferences;
    assert!(!p.host_key.contains(&SigAlg::RsaSha1));
    assert!(!p.macs.contains(&MacAlg::HmacSha1) && !p.macs.contains(&MacAlg::HmacSha1Etm));
    let c = Config::parse(&with(
        "[algorithms]",
        "[algorithms]\nhost_keys = [\"ssh-ed25519\", \"ssh-rsa\"]\n\
         macs = [\"hmac-sha2-256\", \"hmac-sha1-etm@openssh.com\", \"hmac-sha1\"]",
    ))
    .unwrap();
    let s = c.server_config().unwrap();
    let p = &s.transport.preferences;
    assert_eq!(p.host_key, vec![SigAlg::Ed25519, SigAlg::RsaSha1]);
    assert_eq!(
        p.macs,
        vec![MacAlg::HmacSha256, MacAlg::HmacSha1Etm, MacAlg::HmacSha1]
    );
}

#[test]
fn hardened_preset_fills_the_lists_not_given_and_unknown_presets_are_refused() {
    let c = Config::parse(&with("[algorithms]", "[algorithms]\npreset = \"hardened\"")).unwrap();
    let p = c.server_config().unwrap().transport.preferences.clone();
    let kex: Vec<_> = p.kex.iter().map(|k| k.wire_name()).collect();
    assert_eq!(kex, hardened::KEX);
    let macs: Vec<_> = p.macs.iter().map(|m| m.wire_name()).collect();
    assert_eq!(macs, hardened::MACS);
    assert!(
        !p.host_key
            .iter()
            .any(|h| h.wire_name().starts_with("ecdsa"))
    );
    // A list given wins over the preset's.
    let c = Config::parse(&with(
        "[algorithms]",
        "[algorithms]\npreset = \"hardened\"\nkex = [\"curve25519-sha256\"]",
    ))
    .unwrap();
    let p = c.server_config().unwrap().transport.preferences.clone();
    assert_eq!(p.kex.len(), 1);
    assert_eq!(p.macs.len(), 2);
    let e =
        Config::parse(&with("[algorithms]", "[algorithms]\npreset = \"paranoid\"")).unwrap_err();
    assert!(e.to_string().contains("algorithms.preset"), "{e}");
}

#[test]
fn private_keys_others_can_read_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upstream_key");
    let mut rng = crate::crypto::rng::DeterministicRng::new(5);
    let key = crate::keys::PrivateKey::generate_ed25519(&mut rng);
    std::fs::write(&path, key_file::serialize(&key, "t", &mut rng)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = load_private_key(&path).unwrap_err();
    assert!(e.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(load_private_key(&path).unwrap().public(), key.public());
}

#[test]
fn a_partial_file_takes_the_defaults_for_what_it_omits() {
    let c = Config::parse("[limits]\nmax_connections = 50\nmax_startups = \"5:30:20\"\n").unwrap();
    let d = Config::parse(DEFAULT).unwrap();
    assert_eq!(c.limits.max_connections, 50);
    assert_eq!(c.limits.max_auth_attempts, d.limits.max_auth_attempts);
    assert_eq!(c.listen, d.listen);
    assert_eq!(c.timeouts.login_grace_secs, d.timeouts.login_grace_secs);
    assert_eq!(c.access.len(), d.access.len());
    // An empty file is the default; a list of tables given replaces the default's.
    assert_eq!(Config::parse("").unwrap().listen, d.listen);
    let one = "[[access]]\nwho = [\"alice\"]\nrepos = [\"a/**\"]\naccess = \"read\"\n";
    assert_eq!(Config::parse(one).unwrap().access.len(), 1);
    // Unknown keys are still refused, named; at the top level too.
    let e = Config::parse("[limits]\nmax_conections = 5\n").unwrap_err();
    assert!(e.to_string().contains("max_conections"), "{e}");
    let e = Config::parse("lisen = [\"127.0.0.1:22\"]\n").unwrap_err();
    assert!(e.to_string().contains("lisen"), "{e}");
}

#[test]
fn proxy_protocol_listeners_need_trusted_sources() {
    let l =
        "listen = []\n[[listeners]]\naddress = \"127.0.0.1:2200\"\nproxy_protocol = \"required\"\n";
    let e = Config::parse(l).unwrap_err();
    assert!(e.to_string().contains("listeners.trusted_sources"), "{e}");
    let ok = format!("{l}trusted_sources = [\"10.0.0.0/8\", \"127.0.0.1\"]\n");
    let c = Config::parse(&ok).unwrap();
    let all = c.listeners_with_policy();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.mode, ProxyMode::Required);
    assert_eq!(all[0].1.trusted.len(), 2);
    let bad = ok.replace("10.0.0.0/8", "10.0.0.0/99");
    assert!(
        Config::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("10.0.0.0/99")
    );
    let mode = ok.replace("required", "sometimes");
    assert!(Config::parse(&mode).is_err());
    assert!(
        Config::parse("listen = []\n").is_err(),
        "no listener at all"
    );
}

#[test]
fn ssh_rsa_is_opt_in_for_user_keys() {
    let c = Config::parse(&with(
        "[algorithms]",
        "[algorithms]\nuser_keys = [\"ssh-ed25519\", \"ssh-rsa\"]",
    ))
    .unwrap();
    let s = c.server_config().unwrap();
    assert_eq!(s.auth.sig_algs, vec![SigAlg::Ed25519, SigAlg::RsaSha1]);
    assert!(
        !Config::parse(DEFAULT)
            .unwrap()
            .server_config()
            .unwrap()
            .auth
            .sig_algs
            .contains(&SigAlg::RsaSha1)
    );
}
