//! OpenSSH certificates [PROTOCOL.certkeys]: a key, who it is for and until when, signed by a
//! certification authority's key. Parsed and checked here without I/O; which CAs are
//! trusted, the clock and the principal-to-identity mapping belong to the caller.

use std::net::IpAddr;

use crate::keys::{KeyError, PublicKey, SigAlg};
use crate::limits::{MAX_CERT_FIELD, MAX_CERT_PRINCIPALS};
use crate::wire::Reader;

/// Whom a certificate identifies [PROTOCOL.certkeys `SSH_CERT_TYPE_*`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertKind {
    /// `SSH_CERT_TYPE_USER` (1).
    User,
    /// `SSH_CERT_TYPE_HOST` (2).
    Host,
}

/// A parsed certificate. Its CA signature is checked by [`Certificate::verify_signature`],
/// its rules by [`Certificate::check_user`]: parsing alone proves nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The certified key (what the user or host signs with).
    pub key: PublicKey,
    /// The CA's serial number (0: unnumbered).
    pub serial: u64,
    /// User or host.
    pub kind: CertKind,
    /// The CA's free-form name for it, for logs.
    pub key_id: String,
    /// The names it is valid for (empty: any, which user authentication refuses).
    pub principals: Vec<String>,
    /// Valid from this time (seconds since the epoch)…
    pub valid_after: u64,
    /// …until just before this one.
    pub valid_before: u64,
    /// Critical options, as (name, data) in the order given.
    pub critical_options: Vec<(String, Vec<u8>)>,
    /// Extension names (their data is empty for every defined one).
    pub extensions: Vec<String>,
    /// The CA key that signed it.
    pub ca: PublicKey,
    blob: Vec<u8>,
    signed_len: usize,
    signature: Vec<u8>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("key", &self.key)
            .field("serial", &self.serial)
            .field("key_id", &self.key_id)
            .field("principals", &self.principals)
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

/// A user certificate's critical options, each understood [PROTOCOL.certkeys].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserCertOptions {
    /// `force-command`.
    pub force_command: Option<String>,
    /// `source-address` (already checked against the client's address).
    pub source_address: Option<String>,
    /// `verify-required`: signatures must attest user verification.
    pub verify_required: bool,
    /// The `no-touch-required` extension.
    pub no_touch_required: bool,
    /// The `permit-port-forwarding` extension.
    pub port_forwarding: bool,
}

/// Why a certificate is not accepted: each rule of PROTOCOL.certkeys by name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The blob is malformed or names a key type we do not take.
    #[error("malformed certificate: {0}")]
    Malformed(#[from] KeyError),
    /// A host certificate offered for a user, or the reverse.
    #[error("certificate is of the wrong type")]
    WrongKind,
    /// Before `valid after`.
    #[error("certificate is not yet valid")]
    NotYetValid,
    /// At or after `valid before`.
    #[error("certificate has expired")]
    Expired,
    /// A critical option this implementation does not know: the certificate must be refused.
    #[error("unknown critical option {0}")]
    UnknownCriticalOption(String),
    /// A critical option given twice, or with data that does not parse.
    #[error("bad critical option {0}")]
    BadCriticalOption(String),
    /// `source-address` does not list the client's address.
    #[error("source address not allowed by the certificate")]
    SourceAddress,
    /// The CA's signature does not verify, or uses an algorithm not allowed.
    #[error("bad CA signature")]
    BadSignature,
}

/// The plain key type a certificate type carries, or `None` for other names.
pub fn plain_type(cert_type: &[u8]) -> Option<&'static [u8]> {
    Some(match cert_type {
        b"ssh-ed25519-cert-v01@openssh.com" => b"ssh-ed25519",
        b"ssh-rsa-cert-v01@openssh.com" => b"ssh-rsa",
        b"ecdsa-sha2-nistp256-cert-v01@openssh.com" => b"ecdsa-sha2-nistp256",
        b"ecdsa-sha2-nistp384-cert-v01@openssh.com" => b"ecdsa-sha2-nistp384",
        b"ecdsa-sha2-nistp521-cert-v01@openssh.com" => b"ecdsa-sha2-nistp521",
        b"sk-ssh-ed25519-cert-v01@openssh.com" => b"sk-ssh-ed25519@openssh.com",
        b"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com" => b"sk-ecdsa-sha2-nistp256@openssh.com",
        _ => return None,
    })
}

/// The signature algorithm a certificate algorithm name stands for in a `publickey` request
/// (`rsa-sha2-256-cert-v01@openssh.com` → `rsa-sha2-256`), or `None` for other names.
pub fn cert_sig_alg(name: &str) -> Option<SigAlg> {
    Some(match name {
        "rsa-sha2-256-cert-v01@openssh.com" => SigAlg::RsaSha256,
        "rsa-sha2-512-cert-v01@openssh.com" => SigAlg::RsaSha512,
        "ssh-rsa-cert-v01@openssh.com" => SigAlg::RsaSha1,
        other => {
            let plain = plain_type(other.as_bytes())?;
            SigAlg::from_wire_name(std::str::from_utf8(plain).ok()?)?
        }
    })
}

/// `string name, string data` pairs inside one string; names are UTF-8, at most
/// `MAX_CERT_PRINCIPALS` of them.
fn options(field: &[u8]) -> Result<Vec<(String, Vec<u8>)>, KeyError> {
    let mut r = Reader::new(field);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        if out.len() >= MAX_CERT_PRINCIPALS {
            return Err(KeyError::Unsupported);
        }
        let name = std::str::from_utf8(r.string_max(MAX_CERT_FIELD)?)
            .map_err(|_| KeyError::Unsupported)?;
        out.push((name.to_owned(), r.string_max(MAX_CERT_FIELD)?.to_vec()));
    }
    Ok(out)
}

impl Certificate {
    /// Parses a certificate blob (the key blob of a `publickey` request, or the base64 part of
    /// a `-cert.pub` file). DSA and chained certificates are refused; trailing bytes are an
    /// error.
    pub fn decode(blob: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let plain = plain_type(r.string_max(64)?).ok_or(KeyError::Unsupported)?;
        let _nonce = r.string_max(MAX_CERT_FIELD)?;
        let key = PublicKey::decode_fields(plain, &mut r)?;
        let serial = r.u64()?;
        let kind = match r.u32()? {
            1 => CertKind::User,
            2 => CertKind::Host,
            _ => return Err(KeyError::Unsupported),
        };
        let key_id = String::from_utf8_lossy(r.string_max(MAX_CERT_FIELD)?).into_owned();
        let mut names = Reader::new(r.string()?);
        let mut principals = Vec::new();
        while names.remaining() > 0 {
            if principals.len() >= MAX_CERT_PRINCIPALS {
                return Err(KeyError::Unsupported);
            }
            let p = std::str::from_utf8(names.string_max(MAX_CERT_FIELD)?)
                .map_err(|_| KeyError::Unsupported)?;
            principals.push(p.to_owned());
        }
        let (valid_after, valid_before) = (r.u64()?, r.u64()?);
        let critical_options = options(r.string()?)?;
        let extensions = options(r.string()?)?.into_iter().map(|(n, _)| n).collect();
        let _reserved = r.string()?;
        // A certificate as CA key ("chained") is not a plain key type: refused here.
        let ca = PublicKey::decode(r.string()?)?;
        let signed_len = blob.len().saturating_sub(r.remaining());
        let signature = r.string()?.to_vec();
        r.finish()?;
        Ok(Self {
            key,
            serial,
            kind,
            key_id,
            principals,
            valid_after,
            valid_before,
            critical_options,
            extensions,
            ca,
            blob: blob.to_vec(),
            signed_len,
            signature,
        })
    }

    /// The certificate blob, as received.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// Checks the CA's signature over every field before it, with one of `allowed`.
    pub fn verify_signature(&self, allowed: &[SigAlg]) -> Result<(), CertError> {
        let signed = self.blob.get(..self.signed_len).unwrap_or_default();
        self.ca
            .verify(signed, &self.signature, allowed)
            .map(|_| ())
            .map_err(|_| CertError::BadSignature)
    }

    /// Whether `now` (seconds since the epoch) is within `valid after <= now < valid before`.
    pub fn check_time(&self, now: u64) -> Result<(), CertError> {
        if now < self.valid_after {
            Err(CertError::NotYetValid)
        } else if now >= self.valid_before {
            Err(CertError::Expired)
        } else {
            Ok(())
        }
    }

    /// A user certificate's rules at `now` for a client at `addr`: its type, its validity
    /// window and every critical option (an unknown one refuses it; `source-address` must
    /// list `addr`). The CA's trust, its signature and the principals are the caller's.
    pub fn check_user(&self, now: u64, addr: IpAddr) -> Result<UserCertOptions, CertError> {
        if self.kind != CertKind::User {
            return Err(CertError::WrongKind);
        }
        self.check_time(now)?;
        let mut o = UserCertOptions::default();
        for (i, (name, data)) in self.critical_options.iter().enumerate() {
            if self.critical_options.iter().take(i).any(|(n, _)| n == name) {
                return Err(CertError::BadCriticalOption(name.clone()));
            }
            let bad = || CertError::BadCriticalOption(name.clone());
            let text = || {
                let mut r = Reader::new(data);
                let v = r.string().map_err(|_| bad())?;
                r.finish().map_err(|_| bad())?;
                String::from_utf8(v.to_vec()).map_err(|_| bad())
            };
            match name.as_str() {
                "force-command" => o.force_command = Some(text()?),
                "source-address" => {
                    let list = text()?;
                    if !cidr_list_matches(&list, addr).ok_or_else(bad)? {
                        return Err(CertError::SourceAddress);
                    }
                    o.source_address = Some(list);
                }
                "verify-required" if data.is_empty() => o.verify_required = true,
                _ => return Err(CertError::UnknownCriticalOption(name.clone())),
            }
        }
        o.no_touch_required = self.extensions.iter().any(|e| e == "no-touch-required");
        o.port_forwarding = self
            .extensions
            .iter()
            .any(|e| e == "permit-port-forwarding");
        Ok(o)
    }
}

/// `source-address`: comma-separated addresses or `addr/len` blocks; `None` when an entry
/// does not parse (sshd refuses such a certificate too).
pub fn cidr_list_matches(list: &str, addr: IpAddr) -> Option<bool> {
    let addr = addr.to_canonical();
    let mut hit = false;
    for entry in list.split(',').map(str::trim) {
        let (net, len) = match entry.split_once('/') {
            Some((n, l)) => (n.parse::<IpAddr>().ok()?, l.parse::<u32>().ok()?),
            None => {
                let n = entry.parse::<IpAddr>().ok()?;
                (n, if n.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if net.is_ipv4() { 32 } else { 128 };
        if len > max {
            return None;
        }
        hit |= crate::keys::authorized_keys::in_block(net, len, addr);
    }
    Some(hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_address_lists() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            cidr_list_matches("10.0.0.0/8,192.0.2.7", ip("10.9.9.9")),
            Some(true)
        );
        assert_eq!(
            cidr_list_matches("10.0.0.0/8,192.0.2.7", ip("::ffff:192.0.2.7")),
            Some(true)
        );
        assert_eq!(cidr_list_matches("10.0.0.0/8", ip("11.0.0.1")), Some(false));
        assert_eq!(
            cidr_list_matches("2001:db8::/32", ip("2001:db8::5")),
            Some(true)
        );
        assert_eq!(cidr_list_matches("10.0.0.0/33", ip("10.0.0.1")), None);
        assert_eq!(cidr_list_matches("*.example.org", ip("10.0.0.1")), None);
        assert_eq!(cidr_list_matches("", ip("10.0.0.1")), None);
    }

    #[test]
    fn certificate_algorithm_names_map_to_their_signatures() {
        assert_eq!(
            cert_sig_alg("ssh-ed25519-cert-v01@openssh.com"),
            Some(SigAlg::Ed25519)
        );
        assert_eq!(
            cert_sig_alg("rsa-sha2-512-cert-v01@openssh.com"),
            Some(SigAlg::RsaSha512)
        );
        assert_eq!(
            cert_sig_alg("ecdsa-sha2-nistp384-cert-v01@openssh.com"),
            Some(SigAlg::EcdsaP384)
        );
        assert_eq!(cert_sig_alg("ssh-dss-cert-v01@openssh.com"), None);
        assert_eq!(cert_sig_alg("ssh-ed25519"), None);
    }
}
