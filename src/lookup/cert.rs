//! User certificates [PROTOCOL.certkeys] and revocations as a key source, the way sshd takes
//! them: CAs from a `TrustedUserCAKeys`-style file, principals mapped to identities as an
//! `AuthorizedPrincipalsFile` does, and a `RevokedKeys` list (public keys, or the text form of
//! a KRL specification: `serial:`, `id:`, `key:`, `hash:` lines). Every file is re-read when
//! it changes; one that cannot be read or parsed fails the lookup (the client is told to come
//! back), as sshd refuses every key when its revocation list cannot be loaded.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::keys::authorized_keys::{ForwardingLimits, KeyOptions};
use crate::keys::cert::Certificate;
use crate::keys::{PublicKey, SigAlg};
use crate::log_safe::LogSafe;
use crate::lookup::watched::Watched;
use crate::lookup::{Identity, KeyLookup, LookupError, LookupFuture};

/// What a revocation list revokes.
#[derive(Debug, Default)]
pub struct Revocations {
    keys: HashSet<Vec<u8>>,
    fingerprints: HashSet<String>,
    serials: Vec<(u64, u64)>,
    ids: HashSet<String>,
}

impl Revocations {
    /// Parses the list; any line it cannot read is an error (a typo must not un-revoke).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut r = Self::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            let at = |why: &str| format!("line {}: {why}", i.saturating_add(1));
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (kind, value) = line
                .split_once(':')
                .filter(|(k, _)| matches!(*k, "serial" | "id" | "key" | "hash"))
                .map_or(("key", line), |(k, v)| (k, v.trim()));
            match kind {
                "serial" => {
                    let (lo, hi) = value.split_once('-').unwrap_or((value, value));
                    let (Ok(lo), Ok(hi)) = (lo.trim().parse(), hi.trim().parse()) else {
                        return Err(at("serial: wants N or N-M"));
                    };
                    r.serials.push((lo, hi));
                }
                "id" => {
                    r.ids.insert(value.to_owned());
                }
                "hash" if value.starts_with("SHA256:") => {
                    r.fingerprints.insert(value.to_owned());
                }
                "hash" => return Err(at("hash: wants a SHA256: fingerprint")),
                _ => {
                    let key = PublicKey::from_openssh(value)
                        .map_err(|e| at(&format!("not a public key: {e}")))?;
                    r.keys.insert(key.to_blob());
                }
            }
        }
        Ok(r)
    }

    /// Whether `key` is revoked (by its blob or its fingerprint).
    pub fn revokes_key(&self, key: &PublicKey) -> bool {
        self.keys.contains(&key.to_blob()) || self.fingerprints.contains(&key.fingerprint())
    }

    /// Whether `cert` is revoked: its key, its CA, its serial (a non-zero one) or its key ID.
    pub fn revokes_cert(&self, cert: &Certificate) -> bool {
        self.revokes_key(&cert.key)
            || self.revokes_key(&cert.ca)
            || (cert.serial != 0
                && self
                    .serials
                    .iter()
                    .any(|(lo, hi)| (*lo..=*hi).contains(&cert.serial)))
            || self.ids.contains(&cert.key_id)
    }
}

/// CA public keys, one per line (comments allowed), as sshd's `TrustedUserCAKeys`.
fn parse_cas(text: &str) -> Result<Vec<PublicKey>, String> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            PublicKey::from_openssh(l).map_err(|e| format!("line {}: {e}", i.saturating_add(1)))
        })
        .collect()
}

/// `principal [identity]` lines: which principals are accepted, and as whom.
fn parse_principals(text: &str) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(principal), identity) = (words.next(), words.next()) else {
            continue;
        };
        map.insert(
            principal.to_owned(),
            identity.unwrap_or(principal).to_owned(),
        );
    }
    Ok(map)
}

/// How user certificates are trusted.
#[derive(Debug)]
pub struct UserCertificates {
    cas: Watched<Vec<PublicKey>>,
    principals: Option<Watched<HashMap<String, String>>>,
    /// Signature algorithms a CA may sign with (OpenSSH's CASignatureAlgorithms; no SHA-1).
    pub sig_algs: Vec<SigAlg>,
}

impl UserCertificates {
    /// CAs from `ca_file`; principals mapped by `principals_file` if given (otherwise a
    /// certificate's first principal is the identity).
    pub fn new(ca_file: PathBuf, principals_file: Option<PathBuf>) -> Self {
        Self {
            cas: Watched::new(ca_file, parse_cas),
            principals: principals_file.map(|p| Watched::new(p, parse_principals)),
            sig_algs: SigAlg::DEFAULT_USER.to_vec(),
        }
    }

    /// The identity `cert` proves for a client at `addr`, or why not (for the log). The
    /// cheap checks come first; the CA's signature last.
    async fn identity(
        &self,
        cert: &Certificate,
        addr: IpAddr,
    ) -> Result<Result<Identity, String>, LookupError> {
        if !self.cas.current().await?.contains(&cert.ca) {
            return Ok(Err(format!(
                "certificate signed by an untrusted CA {}",
                cert.ca.fingerprint()
            )));
        }
        let name = match &self.principals {
            None => cert.principals.first().cloned(),
            Some(file) => {
                let map = file.current().await?;
                cert.principals.iter().find_map(|p| map.get(p).cloned())
            }
        };
        let Some(name) = name else {
            return Ok(Err(format!(
                "no accepted principal in the certificate ({:?})",
                cert.principals
            )));
        };
        Ok(accept(cert, addr, &self.sig_algs, name, None))
    }
}

/// Seconds since the epoch, now.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A certificate whose CA and principal were accepted (by a CA file or an authorized_keys
/// `cert-authority` line with options `line`): its own rules now from `addr`, then its CA
/// signature; the identity `name` with the most restrictive union of both sets of options
/// (sshd: a line's `command=` and the certificate's `force-command` must then be identical).
pub(crate) fn accept(
    cert: &Certificate,
    addr: IpAddr,
    sig_algs: &[SigAlg],
    name: String,
    line: Option<&KeyOptions>,
) -> Result<Identity, String> {
    let o = cert
        .check_user(unix_now(), addr)
        .map_err(|e| e.to_string())?;
    // Presence is waived only if every side waives it (sshd merges the two so).
    let line_touch = line.is_some_and(|l| l.touch_required);
    let line = line.cloned().unwrap_or_default();
    let forced_command = match (line.command, o.force_command) {
        (Some(a), Some(b)) if a != b => {
            return Err("command= and the certificate's force-command differ".into());
        }
        (a, b) => a.or(b),
    };
    cert.verify_signature(sig_algs).map_err(|e| e.to_string())?;
    Ok(Identity {
        touch_required: line_touch || !o.no_touch_required,
        verify_required: line.verify_required || o.verify_required,
        forced_command,
        forwarding: ForwardingLimits {
            denied: line.forwarding.denied || !o.port_forwarding,
            ..line.forwarding
        },
        ..Identity::named(name, cert.key.fingerprint())
    })
}

/// The log line of a certificate refused for `why`.
pub(crate) fn refused(user: &str, addr: IpAddr, cert: &Certificate, why: &str) {
    tracing::info!(user, addr = %addr, key_id = %LogSafe(cert.key_id.as_bytes()), serial = cert.serial, why, "certificate refused");
}

/// The log line of an accepted certificate.
pub(crate) fn accepted(user: &str, addr: IpAddr, cert: &Certificate, id: &Identity) {
    tracing::info!(user, addr = %addr, key_id = %LogSafe(cert.key_id.as_bytes()), serial = cert.serial, ca = %cert.ca.fingerprint(), identity = %id.name, "certificate accepted");
}

/// Another key source with revocations checked first and user certificates accepted.
#[derive(Debug)]
pub struct Screened<L> {
    /// Plain keys.
    pub inner: L,
    /// The revocation list, if any.
    pub revoked: Option<Watched<Revocations>>,
    /// User certificates, if trusted at all.
    pub certs: Option<UserCertificates>,
}

impl<L> Screened<L> {
    /// `inner`, revoking what `revoked_file` lists and trusting certificates by `certs`.
    pub fn new(inner: L, revoked_file: Option<PathBuf>, certs: Option<UserCertificates>) -> Self {
        Self {
            inner,
            revoked: revoked_file.map(|p| Watched::new(p, Revocations::parse)),
            certs,
        }
    }

    async fn revocations(&self) -> Result<Option<Arc<Revocations>>, LookupError> {
        match &self.revoked {
            Some(w) => w.current().await.map(Some),
            None => Ok(None),
        }
    }
}

impl<L: KeyLookup> KeyLookup for Screened<L> {
    fn lookup<'a>(&'a self, user: &'a str, key: &'a PublicKey, addr: IpAddr) -> LookupFuture<'a> {
        Box::pin(async move {
            if self
                .revocations()
                .await?
                .is_some_and(|r| r.revokes_key(key))
            {
                tracing::info!(key = %key.fingerprint(), addr = %addr, "revoked key refused");
                return Ok(None);
            }
            self.inner.lookup(user, key, addr).await
        })
    }

    fn lookup_cert<'a>(
        &'a self,
        user: &'a str,
        cert: &'a Certificate,
        addr: IpAddr,
    ) -> LookupFuture<'a> {
        Box::pin(async move {
            if self
                .revocations()
                .await?
                .is_some_and(|r| r.revokes_cert(cert))
            {
                refused(user, addr, cert, "revoked");
                return Ok(None);
            }
            if let Some(certs) = &self.certs {
                match certs.identity(cert, addr).await? {
                    Ok(id) => {
                        accepted(user, addr, cert, &id);
                        return Ok(Some(id));
                    }
                    Err(why) => refused(user, addr, cert, &why),
                }
            }
            // authorized_keys `cert-authority` lines, if the keys come from such a file.
            self.inner.lookup_cert(user, cert, addr).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rng::DeterministicRng;
    use crate::keys::PrivateKey;

    #[test]
    fn revocation_lists_read_every_form_and_refuse_typos() {
        let k = PrivateKey::generate_ed25519(&mut DeterministicRng::new(1)).public();
        let other = PrivateKey::generate_ed25519(&mut DeterministicRng::new(2)).public();
        let text = format!(
            "# revoked\nserial: 5-9\nserial: 42\nid: mallory@laptop\nkey: {}\n{}\nhash: {}\n",
            k.to_openssh(),
            k.to_openssh(),
            other.fingerprint()
        );
        let r = Revocations::parse(&text).unwrap();
        assert!(r.revokes_key(&k) && r.revokes_key(&other));
        assert_eq!(r.serials, vec![(5, 9), (42, 42)]);
        assert!(r.ids.contains("mallory@laptop"));
        for bad in ["serial: x", "hash: MD5:aa", "ssh-ed25519 !!!", "frob"] {
            assert!(Revocations::parse(bad).is_err(), "{bad}");
        }
        let map = parse_principals("# p\nalice\nops-team carol\n").unwrap();
        assert_eq!(map["alice"], "alice");
        assert_eq!(map["ops-team"], "carol");
    }
}
