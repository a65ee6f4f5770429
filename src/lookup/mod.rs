//! Who a key belongs to: the pluggable, asynchronous lookup the server consults for every
//! verified (or queried) public key. Backends: an `authorized_keys` file, re-read when it
//! changes, an external command in the manner of OpenSSH's AuthorizedKeysCommand, and a
//! site's HTTP API.

mod cert;
mod command;
mod file;
mod http;
mod watched;

pub use cert::{Revocations, Screened, UserCertificates};

pub use command::CommandLookup;
pub use file::FileLookup;
pub(crate) use http::AnswerCache;
pub use http::{HttpBackend, HttpLookup};

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use crate::keys::PublicKey;
use crate::keys::authorized_keys::{AuthorizedKey, AuthorizedKeys, ExpiryTime, ForwardingLimits};

/// The identity a key maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Name used for authorization and logs.
    pub name: String,
    /// The key's SHA256 fingerprint.
    pub fingerprint: String,
    /// Security keys: require the user-presence flag (default; `no-touch-required` clears it).
    pub touch_required: bool,
    /// Security keys: require the user-verification flag (`verify-required`).
    pub verify_required: bool,
    /// `command=`: the only command this key may run (the git server runs a request only if
    /// it is this same git command: a narrowing, never a substitute).
    pub forced_command: Option<String>,
    /// What the key's options leave of port forwarding (the server's own policy decides
    /// within these).
    pub forwarding: ForwardingLimits,
}

impl Identity {
    /// An identity with no options: presence required of security keys, no forced command,
    /// forwarding left to the server's policy.
    pub fn named(name: impl Into<String>, fingerprint: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            fingerprint: fingerprint.into(),
            touch_required: true,
            verify_required: false,
            forced_command: None,
            forwarding: ForwardingLimits::default(),
        }
    }

    /// The identity an authorized_keys line gives `key`.
    pub fn from_entry(e: &AuthorizedKey, key: &PublicKey) -> Self {
        Self {
            name: e.name.clone(),
            fingerprint: key.fingerprint(),
            touch_required: e.options.touch_required,
            verify_required: e.options.verify_required,
            forced_command: e.options.command.clone(),
            forwarding: e.options.forwarding.clone(),
        }
    }

    /// Whether a signature with these security-key flags (`None` for other keys) meets this
    /// identity's requirements [PROTOCOL.u2f, sshd(8) no-touch-required / verify-required].
    pub fn accepts_flags(&self, sk_flags: Option<u8>) -> bool {
        match sk_flags {
            None => !self.verify_required,
            Some(f) => {
                (!self.touch_required || f & 0x01 != 0) && (!self.verify_required || f & 0x04 != 0)
            }
        }
    }
}

/// Why a lookup could not answer (as opposed to answering "nobody").
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Reading the source failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The backend did not answer in time.
    #[error("no answer in time")]
    Timeout,
    /// The backend answered with a failure.
    #[error("{0}")]
    Failed(String),
}

impl<T: KeyLookup + ?Sized> KeyLookup for Box<T> {
    fn lookup<'a>(&'a self, user: &'a str, key: &'a PublicKey, addr: IpAddr) -> LookupFuture<'a> {
        (**self).lookup(user, key, addr)
    }

    fn lookup_cert<'a>(
        &'a self,
        user: &'a str,
        cert: &'a crate::keys::cert::Certificate,
        addr: IpAddr,
    ) -> LookupFuture<'a> {
        (**self).lookup_cert(user, cert, addr)
    }
}

/// Whether `t` (an `expiry-time=`) has passed: a time without `Z` is read in the system's
/// time zone, as sshd reads it; where a zone change makes it ambiguous or skipped, the
/// earlier instant counts. One that cannot be placed counts as passed (never widens).
pub fn expired(t: &ExpiryTime) -> bool {
    expired_at(t, jiff::Timestamp::now(), &jiff::tz::TimeZone::system())
}

fn expired_at(t: &ExpiryTime, now: jiff::Timestamp, local: &jiff::tz::TimeZone) -> bool {
    let (y, mo, d, h, mi, s) = t.fields;
    let narrow = |v: u8| i8::try_from(v).unwrap_or(i8::MAX);
    let Ok(year) = i16::try_from(y) else {
        return true;
    };
    let Ok(civil) = jiff::civil::DateTime::new(
        year,
        narrow(mo),
        narrow(d),
        narrow(h),
        narrow(mi),
        narrow(s),
        0,
    ) else {
        return true;
    };
    let zone = if t.utc {
        jiff::tz::TimeZone::UTC
    } else {
        local.clone()
    };
    let placed = zone.to_ambiguous_zoned(civil);
    let instants = [placed.clone().earlier(), placed.later()];
    match instants
        .iter()
        .filter_map(|z| z.as_ref().ok())
        .map(jiff::Zoned::timestamp)
        .min()
    {
        // sshd refuses the key once the time is before now.
        Some(at) => at < now,
        None => true,
    }
}

/// `text` as authorized_keys lines, each also put to `check` (which may refuse a line, e.g.
/// for a `command=` the application cannot honour); warnings are logged with `source`.
fn parse_checked(
    text: &str,
    check: Option<OptionCheck>,
    source: &dyn std::fmt::Display,
) -> AuthorizedKeys {
    let keys = AuthorizedKeys::parse_with(text, |o| check.map_or(Ok(()), |c| c(o)));
    for w in &keys.warnings {
        tracing::warn!(source = %source, "authorized_keys {w}");
    }
    keys
}

/// An application's own test of a line's options: `Err(why)` refuses the line.
pub type OptionCheck = fn(&crate::keys::authorized_keys::KeyOptions) -> Result<(), String>;

/// A boxed future, so the trait stays object-safe.
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Identity>, LookupError>> + Send + 'a>>;

/// Maps (user name, key, client address) to an identity, or to nobody.
pub trait KeyLookup: Send + Sync {
    /// Looks the key up. `Ok(None)`: not authorized. `Err`: the backend failed (the server
    /// logs it and disconnects the client with "temporarily unavailable", reason 7
    /// SERVICE_NOT_AVAILABLE: a failure is never reported as a denial).
    fn lookup<'a>(&'a self, user: &'a str, key: &'a PublicKey, addr: IpAddr) -> LookupFuture<'a>;

    /// The identity a user certificate proves, after its CA's signature, type, validity,
    /// principals and critical options are checked ([`Screened`] does that). Default:
    /// certificates are not accepted.
    fn lookup_cert<'a>(
        &'a self,
        user: &'a str,
        cert: &'a crate::keys::cert::Certificate,
        addr: IpAddr,
    ) -> LookupFuture<'a> {
        let _ = (user, cert, addr);
        Box::pin(async { Ok(None) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rng::DeterministicRng;
    use crate::keys::PrivateKey;
    use crate::keys::authorized_keys::AuthorizedKeys;

    #[test]
    fn security_key_presence_and_verification_policy() {
        let k = PrivateKey::generate_ed25519(&mut DeterministicRng::new(1)).public();
        let sk = PublicKey::SkEd25519 {
            key: [3; 32],
            application: b"ssh:".to_vec(),
        };
        let text = format!(
            "{} plain\nno-touch-required {} relaxed\nverify-required {} strict\n",
            sk.to_openssh(),
            sk.to_openssh(),
            k.to_openssh()
        );
        let ak = AuthorizedKeys::parse(&text);
        assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
        let plain = Identity::from_entry(&ak.entries[0], &sk);
        let relaxed = Identity::from_entry(&ak.entries[1], &sk);
        let strict = Identity::from_entry(&ak.entries[2], &k);
        assert!(
            plain.accepts_flags(Some(0x01)) && !plain.accepts_flags(Some(0x00)),
            "touch required by default"
        );
        assert!(relaxed.accepts_flags(Some(0x00)));
        assert!(
            !strict.accepts_flags(None),
            "verify-required cannot be met by a non-FIDO key"
        );
        assert!(
            plain.accepts_flags(None),
            "ordinary keys have no flags to check"
        );
    }

    /// `expiry-time=` in UTC and in a zone east of it; a time skipped by a DST change counts
    /// from its earlier reading.
    #[test]
    fn expiry_times_are_read_in_their_zone() {
        let t = |s: &str| ExpiryTime::parse(s).unwrap();
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let tokyo = jiff::tz::TimeZone::fixed(jiff::tz::offset(9));
        // 2027-01-01 00:00 in Tokyo is 2026-12-31 15:00 UTC.
        let local = t("20270101");
        assert!(!expired_at(&local, at("2026-12-31T14:59:59Z"), &tokyo));
        assert!(!expired_at(&local, at("2026-12-31T15:00:00Z"), &tokyo));
        assert!(expired_at(&local, at("2026-12-31T15:00:01Z"), &tokyo));
        let utc = t("202701010000Z");
        assert!(!expired_at(&utc, at("2026-12-31T23:59:59Z"), &tokyo));
        assert!(expired_at(&utc, at("2027-01-01T00:00:01Z"), &tokyo));
        // New York springs forward at 02:00 on 2027-03-14: 02:30 does not exist there; its
        // earlier reading (-04:00) is 06:30 UTC, its later one (-05:00) 07:30.
        let ny = jiff::tz::TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
        let gap = t("20270314023000");
        assert!(expired_at(&gap, at("2027-03-14T06:30:01Z"), &ny));
        assert!(!expired_at(&gap, at("2027-03-14T06:29:59Z"), &ny));
    }
}
