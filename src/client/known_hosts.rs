//! OpenSSH `known_hosts` files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): host patterns with
//! wildcards and negation, `[host]:port`, hashed `|1|salt|hash` names, and `@revoked`.
//! Parsing is pure; the driver reads the file.

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::keys::PublicKey;
use crate::keys::cert::{CertKind, Certificate};
use crate::transport::HostKeyVerifier;

#[derive(Clone, Debug)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Clone, Debug)]
struct Entry {
    marker: Marker,
    hosts: String,
    key: PublicKey,
}

/// The usable lines of a known_hosts file.
#[derive(Clone, Debug, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
    /// Lines that were neither comments nor usable (unsupported key types included).
    pub skipped: usize,
}

impl KnownHosts {
    /// Parses file contents; lines we cannot use are counted in `skipped`, never fatal.
    pub fn parse(text: &str) -> Self {
        let mut kh = KnownHosts::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Some(e) => kh.entries.push(e),
                None => kh.skipped = kh.skipped.saturating_add(1),
            }
        }
        kh
    }

    /// A verifier for `host` on `port`, as OpenSSH names it (`[host]:port` unless port 22).
    pub fn verifier(&self, host: &str, port: u16) -> KnownHostsVerifier {
        let name = if port == 22 {
            host.to_owned()
        } else {
            format!("[{host}]:{port}")
        };
        KnownHostsVerifier {
            entries: self.entries.clone(),
            name,
            host: host.to_owned(),
            now: None,
        }
    }
}

fn parse_line(line: &str) -> Option<Entry> {
    let (marker, rest) = match line.split_once(char::is_whitespace) {
        Some(("@revoked", rest)) => (Marker::Revoked, rest.trim_start()),
        Some(("@cert-authority", rest)) => (Marker::CertAuthority, rest.trim_start()),
        Some((m, _)) if m.starts_with('@') => return None,
        _ => (Marker::None, line),
    };
    let (hosts, key) = rest.split_once(char::is_whitespace)?;
    let key = PublicKey::from_openssh(key.trim_start()).ok()?;
    Some(Entry {
        marker,
        hosts: hosts.to_owned(),
        key,
    })
}

/// Checks a server key against the entries for one host name.
#[derive(Clone, Debug)]
pub struct KnownHostsVerifier {
    entries: Vec<Entry>,
    name: String,
    host: String,
    now: Option<u64>,
}

impl KnownHostsVerifier {
    /// The time (seconds since the epoch) host certificates are judged at: the driver's
    /// clock, read when it connects. Without one, certificates are refused.
    pub fn at(mut self, unix_now: u64) -> Self {
        self.now = Some(unix_now);
        self
    }

    fn mine(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| host_matches(&e.hosts, &self.name))
    }
}

impl HostKeyVerifier for KnownHostsVerifier {
    fn accepts_certificates(&self) -> bool {
        self.now.is_some()
            && self
                .mine()
                .any(|e| matches!(e.marker, Marker::CertAuthority))
    }

    /// An `@cert-authority` line for this host names the CA; the certificate is a host one,
    /// valid now, naming this host among its principals (or none, which OpenSSH also
    /// accepts), with no critical option (none is defined for hosts), neither it nor its CA
    /// `@revoked`, and its CA signature verifies (no SHA-1).
    fn verify_cert(&self, cert: &Certificate) -> Result<(), String> {
        let revoked = |k: &PublicKey| {
            self.mine()
                .any(|e| matches!(e.marker, Marker::Revoked) && e.key == *k)
        };
        if revoked(&cert.key) || revoked(&cert.ca) {
            return Err(format!("host certificate for {} is revoked", self.name));
        }
        if !self
            .mine()
            .any(|e| matches!(e.marker, Marker::CertAuthority) && e.key == cert.ca)
        {
            return Err(format!(
                "host certificate for {} signed by {}, which no @cert-authority line trusts",
                self.name,
                cert.ca.fingerprint()
            ));
        }
        let now = self.now.ok_or("no clock to judge a host certificate")?;
        if cert.kind != CertKind::Host {
            return Err("a user certificate offered as a host key".into());
        }
        cert.check_time(now).map_err(|e| e.to_string())?;
        let host = self.host.to_ascii_lowercase();
        if !cert.principals.is_empty()
            && !cert
                .principals
                .iter()
                .any(|p| p.to_ascii_lowercase() == host)
        {
            return Err(format!(
                "host certificate names {:?}, not {}",
                cert.principals, self.host
            ));
        }
        if let Some((name, _)) = cert.critical_options.first() {
            return Err(format!(
                "unknown critical option {name} in a host certificate"
            ));
        }
        cert.verify_signature(&crate::keys::SigAlg::SUPPORTED)
            .map_err(|e| e.to_string())
    }

    fn verify(&self, key: &PublicKey) -> Result<(), String> {
        let mine = || self.mine();
        if mine().any(|e| matches!(e.marker, Marker::Revoked) && e.key == *key) {
            return Err(format!(
                "host key {} for {} is revoked",
                key.fingerprint(),
                self.name
            ));
        }
        if mine().any(|e| matches!(e.marker, Marker::None) && e.key == *key) {
            return Ok(());
        }
        if let Some(e) =
            mine().find(|e| matches!(e.marker, Marker::None) && e.key.key_type() == key.key_type())
        {
            return Err(format!(
                "host key for {} has changed: known {}, offered {}",
                self.name,
                e.key.fingerprint(),
                key.fingerprint()
            ));
        }
        Err(format!(
            "no known host key for {} (offered {})",
            self.name,
            key.fingerprint()
        ))
    }
}

/// Whether `name` matches a comma-separated pattern list: any positive match and no negated one.
fn host_matches(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_matches(hashed, name);
    }
    let mut hit = false;
    for p in patterns.split(',') {
        match p.strip_prefix('!') {
            Some(neg) if glob(neg.as_bytes(), name.as_bytes()) => return false,
            Some(_) => {}
            None => hit |= glob(p.as_bytes(), name.as_bytes()),
        }
    }
    hit
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, digest)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(digest)) = (Base64::decode_vec(salt), Base64::decode_vec(digest)) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    crate::crypto::ct::eq(mac.finalize().into_bytes().as_slice(), &digest)
}

/// `*` and `?` wildcards, case-insensitive as host names are.
fn glob(p: &[u8], s: &[u8]) -> bool {
    crate::keys::pattern::glob(p, s, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rng::DeterministicRng;
    use crate::keys::PrivateKey;

    fn key(seed: u64) -> PublicKey {
        PrivateKey::generate_ed25519(&mut DeterministicRng::new(seed)).public()
    }

    #[test]
    fn matches_plain_bracketed_wildcard_and_negated_names() {
        let (a, b) = (key(1), key(2));
        let text = format!(
            "# comment\nexample.org,10.0.0.1 {}\n[git.example.org]:2222 {}\n*.corp,!bad.corp {} c\n",
            a.to_openssh(),
            b.to_openssh(),
            a.to_openssh()
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.skipped, 0);
        assert!(kh.verifier("example.org", 22).verify(&a).is_ok());
        assert!(kh.verifier("EXAMPLE.org", 22).verify(&a).is_ok());
        assert!(kh.verifier("10.0.0.1", 22).verify(&a).is_ok());
        assert!(
            kh.verifier("example.org", 2222).verify(&a).is_err(),
            "port is part of the name"
        );
        assert!(kh.verifier("git.example.org", 2222).verify(&b).is_ok());
        assert!(kh.verifier("x.corp", 22).verify(&a).is_ok());
        assert!(kh.verifier("bad.corp", 22).verify(&a).is_err());
        let changed = kh.verifier("example.org", 22).verify(&b).unwrap_err();
        assert!(changed.contains("has changed"), "{changed}");
        assert!(
            kh.verifier("unknown", 22)
                .verify(&a)
                .unwrap_err()
                .contains("no known host key")
        );
    }

    #[test]
    fn hashed_names_and_revocation() {
        let a = key(3);
        // |1|salt|HMAC-SHA1(salt, "[127.0.0.1]:2200"), as `ssh-keygen -H` writes it.
        let salt = [7u8; 20];
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt).unwrap();
        mac.update(b"[127.0.0.1]:2200");
        let digest = mac.finalize().into_bytes();
        let line = format!(
            "|1|{}|{} {}",
            Base64::encode_string(&salt),
            Base64::encode_string(&digest),
            a.to_openssh()
        );
        let kh = KnownHosts::parse(&line);
        assert!(kh.verifier("127.0.0.1", 2200).verify(&a).is_ok());
        assert!(kh.verifier("127.0.0.1", 2201).verify(&a).is_err());
        let revoked = KnownHosts::parse(&format!("{line}\n@revoked * {}\n", a.to_openssh()));
        assert!(
            revoked
                .verifier("127.0.0.1", 2200)
                .verify(&a)
                .unwrap_err()
                .contains("revoked")
        );
    }

    #[test]
    fn skips_lines_it_cannot_use() {
        let kh = KnownHosts::parse("host ssh-dss AAAAB3NzaC1kc3MAAACBAP\n@weird x y\nonlyhost\n");
        assert_eq!(kh.skipped, 3);
    }

    #[test]
    fn glob_cases() {
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(glob(b"*.example.*", b"git.example.org"));
        assert!(!glob(b"*.example.org", b"example.org"));
    }
}
