//! `authorized_keys` lines (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"), parsed without I/O.
//!
//! Our convention: the line's comment names the identity (`ssh-ed25519 AAAA… alice`); a line
//! without one is known by its key fingerprint. Options ([`options`]) are honoured or refuse
//! the line, so access never widens: `from=` is enforced here, `expiry-time=` by
//! [`AuthorizedKeys::find`] against the caller's clock, and `command=` and the forwarding
//! limits travel with the entry to the application.

pub mod options;

use std::net::IpAddr;

use crate::keys::PublicKey;
pub use options::{ExpiryTime, ForwardingLimits, KeyOptions};

/// One usable line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizedKey {
    /// The key.
    pub key: PublicKey,
    /// The identity name (the comment, or the fingerprint).
    pub name: String,
    /// What its options ask for.
    pub options: KeyOptions,
}

impl AuthorizedKey {
    /// Whether this line admits `key` connecting from `addr` (its `from=`), leaving aside
    /// `expiry-time=`, which needs a clock.
    pub fn admits(&self, key: &PublicKey, addr: IpAddr) -> bool {
        self.key == *key
            && self
                .options
                .from
                .as_deref()
                .is_none_or(|p| address_matches(p, addr))
    }
}

/// A parsed file: the usable lines and a warning for each skipped one.
#[derive(Clone, Debug, Default)]
pub struct AuthorizedKeys {
    /// Usable lines, in file order.
    pub entries: Vec<AuthorizedKey>,
    /// `line N: why`, for every line that was skipped.
    pub warnings: Vec<String>,
}

impl AuthorizedKeys {
    /// Parses file contents; bad lines are skipped and reported, never fatal.
    pub fn parse(text: &str) -> Self {
        Self::parse_with(text, |_| Ok(()))
    }

    /// Parses file contents, also putting each line's options to the application's `check`
    /// (`Err(why)` skips the line like a bad option does).
    pub fn parse_with(text: &str, check: impl Fn(&KeyOptions) -> Result<(), String>) -> Self {
        let mut out = AuthorizedKeys::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line).and_then(|e| check(&e.options).map(|()| e)) {
                Ok(e) => out.entries.push(e),
                Err(why) => out
                    .warnings
                    .push(format!("line {}: {why}", i.saturating_add(1))),
            }
        }
        out
    }

    /// The identity for `key` from `addr`: the first line that admits it and whose
    /// `expiry-time=` has not passed by the caller's `expired` (sshd also goes on to the next
    /// line when a matching one is refused by its options).
    pub fn find(
        &self,
        key: &PublicKey,
        addr: IpAddr,
        expired: impl Fn(&ExpiryTime) -> bool,
    ) -> Option<&AuthorizedKey> {
        // A CA's line admits certificates it signed, never the CA key itself.
        self.entries.iter().find(|e| {
            !e.options.cert_authority
                && e.admits(key, addr)
                && !e.options.expiry.as_ref().is_some_and(&expired)
        })
    }

    /// The `cert-authority` line that admits a certificate signed by `ca`, naming
    /// `principals`, from `addr` [sshd(8)]: its `from=` and `expiry-time=` hold, and one of
    /// the certificate's principals is in its `principals=` (without one: is its identity
    /// name). The certificate's own rules and signature are the caller's to check.
    pub fn find_ca(
        &self,
        ca: &PublicKey,
        principals: &[String],
        addr: IpAddr,
        expired: impl Fn(&ExpiryTime) -> bool,
    ) -> Option<&AuthorizedKey> {
        self.entries.iter().find(|e| {
            let named = match &e.options.principals {
                Some(allowed) => principals.iter().any(|p| allowed.contains(p)),
                None => principals.contains(&e.name),
            };
            e.options.cert_authority
                && e.admits(ca, addr)
                && !e.options.expiry.as_ref().is_some_and(&expired)
                && named
        })
    }
}

const KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

fn parse_line(line: &str) -> Result<AuthorizedKey, String> {
    let first = line.split_ascii_whitespace().next().unwrap_or_default();
    let (options, rest) =
        if KEY_TYPES.contains(&first) || first.starts_with("sk-") || first.contains("-cert-v01@") {
            ("", line)
        } else {
            split_options(line)?
        };
    let mut parts = rest.split_ascii_whitespace();
    let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
        return Err("no key".into());
    };
    if !KEY_TYPES.contains(&kind) {
        return Err(format!("unsupported key type {kind}"));
    }
    let key =
        PublicKey::from_openssh(&format!("{kind} {b64}")).map_err(|e| format!("bad key: {e}"))?;
    let comment = parts.collect::<Vec<_>>().join(" ");
    let options = options::parse_options(options)?;
    let name = if comment.is_empty() {
        key.fingerprint()
    } else {
        comment
    };
    Ok(AuthorizedKey { key, name, options })
}

/// Splits the leading options field (which may hold quoted spaces) from the rest.
fn split_options(line: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_ascii_whitespace() && !quoted => {
                return Ok((
                    line.get(..i).unwrap_or_default(),
                    line.get(i..).unwrap_or_default(),
                ));
            }
            _ => {}
        }
    }
    Err("options without a key".into())
}

/// sshd's `from=` semantics for addresses: a comma list of patterns with `*`/`?` wildcards or
/// CIDR `addr/len`, `!` negating. Host names would need DNS, which we never consult: such a
/// pattern cannot match, so it can only narrow access.
pub fn address_matches(patterns: &str, addr: IpAddr) -> bool {
    // An IPv4 client of a dual-stack socket is ::ffff:a.b.c.d; its patterns are IPv4 ones.
    let addr = addr.to_canonical();
    let text = addr.to_string();
    let mut hit = false;
    for p in patterns.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (neg, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        let m = if let Some((net, len)) = p.split_once('/') {
            cidr(net, len, addr)
        } else {
            glob(p, &text)
        };
        if m && neg {
            return false;
        }
        hit |= m && !neg;
    }
    hit
}

fn cidr(net: &str, len: &str, addr: IpAddr) -> bool {
    let (Ok(net), Ok(len)) = (net.parse::<IpAddr>(), len.parse::<u32>()) else {
        return false;
    };
    in_block(net, len, addr)
}

/// Whether `addr` is in the block `net/len` (of its own family; a length past the family's
/// width matches nothing).
pub(crate) fn in_block(net: IpAddr, len: u32, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32u32.saturating_sub(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if len <= 128 => {
            let mask = u128::MAX
                .checked_shl(128u32.saturating_sub(len))
                .unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn glob(p: &str, s: &str) -> bool {
    crate::keys::pattern::glob(p.as_bytes(), s.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rng::DeterministicRng;
    use crate::keys::PrivateKey;

    fn key(seed: u64) -> PublicKey {
        PrivateKey::generate_ed25519(&mut DeterministicRng::new(seed)).public()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A clock for which no expiry time has passed.
    fn never(_: &ExpiryTime) -> bool {
        false
    }

    #[test]
    fn comment_names_the_identity_and_fingerprint_is_the_fallback() {
        let (a, b) = (key(1), key(2));
        let text = format!(
            "# team\n{} alice laptop\n\n{}\n",
            a.to_openssh(),
            b.to_openssh()
        );
        let ak = AuthorizedKeys::parse(&text);
        assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
        assert_eq!(
            ak.find(&a, ip("10.0.0.1"), never).unwrap().name,
            "alice laptop"
        );
        assert_eq!(
            ak.find(&b, ip("10.0.0.1"), never).unwrap().name,
            b.fingerprint()
        );
        assert!(ak.find(&key(3), ip("10.0.0.1"), never).is_none());
    }

    #[test]
    fn ipv4_mapped_clients_match_ipv4_patterns_and_negations() {
        // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
        let a = key(1);
        let ak = AuthorizedKeys::parse(&format!("from=\"*,!10.0.0.0/8\" {} dave", a.to_openssh()));
        assert!(
            ak.find(&a, ip("::ffff:10.1.2.3"), never).is_none(),
            "negation bypassed"
        );
        assert!(ak.find(&a, ip("::ffff:192.0.2.7"), never).is_some());
        let only = AuthorizedKeys::parse(&format!("from=\"192.0.2.*\" {}", a.to_openssh()));
        assert!(only.find(&a, ip("::ffff:192.0.2.7"), never).is_some());
    }

    #[test]
    fn a_second_from_clause_refuses_the_line() {
        let a = key(1);
        let ak = AuthorizedKeys::parse(&format!(
            "from=\"10.0.0.0/8\",from=\"*\" {} eve",
            a.to_openssh()
        ));
        assert!(ak.entries.is_empty());
        assert!(
            ak.warnings[0].contains("multiple from="),
            "{:?}",
            ak.warnings
        );
    }

    #[test]
    fn restrict_and_no_op_options_are_accepted() {
        let a = key(1);
        let ak = AuthorizedKeys::parse(&format!(
            "restrict,no-pty,No-Port-Forwarding {} bob",
            a.to_openssh()
        ));
        assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
        assert_eq!(ak.entries.len(), 1);
    }

    #[test]
    fn from_patterns_are_enforced() {
        let a = key(1);
        let ak = AuthorizedKeys::parse(&format!(
            "from=\"10.1.*,192.168.0.0/16,!10.1.2.3\",restrict {} carol",
            a.to_openssh()
        ));
        assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
        assert!(ak.find(&a, ip("10.1.9.9"), never).is_some());
        assert!(ak.find(&a, ip("192.168.44.1"), never).is_some());
        assert!(ak.find(&a, ip("10.1.2.3"), never).is_none(), "negated");
        assert!(ak.find(&a, ip("127.0.0.1"), never).is_none());
        let host = AuthorizedKeys::parse(&format!("from=\"*.example.org\" {}", a.to_openssh()));
        assert!(
            host.find(&a, ip("10.0.0.1"), never).is_none(),
            "host names never match without DNS"
        );
        let v6 = AuthorizedKeys::parse(&format!("from=\"2001:db8::/32\" {}", a.to_openssh()));
        assert!(v6.find(&a, ip("2001:db8::1"), never).is_some());
        assert!(v6.find(&a, ip("2001:db9::1"), never).is_none());
    }

    #[test]
    fn unsupported_options_skip_the_line_and_say_so() {
        let a = key(1);
        for (opt, why) in [
            ("environment=\"A=B\"", "environment= is not supported"),
            ("principals=\"\"", "principals= lists nobody"),
            ("cert-authority=\"1\"", "unsupported option cert-authority"),
            ("frobnicate", "unsupported option frobnicate"),
            ("restrict=\"1\"", "unsupported option restrict"),
            ("command=\"a\",command=\"b\"", "multiple command="),
            (
                "expiry-time=\"20990101\",expiry-time=\"20990102\"",
                "multiple expiry-time=",
            ),
            ("expiry-time=\"2099-01-01\"", "is not YYYYMMDD"),
            ("expiry-time=\"20990230\"", "is not YYYYMMDD"),
            ("expiry-time=20990101", "bad expiry-time= quoting"),
            ("tunnel=\"tun0\"", "bad tunnel= device"),
            ("permitopen=\"nohostport\"", "is not host:port"),
            ("permitlisten=\"h:port\"", "is not [host:]port"),
        ] {
            let ak = AuthorizedKeys::parse(&format!("{opt} {}", a.to_openssh()));
            assert!(ak.entries.is_empty(), "{opt}");
            assert_eq!(ak.warnings.len(), 1, "{opt}");
            assert!(ak.warnings[0].contains("line 1"), "{:?}", ak.warnings);
            assert!(ak.warnings[0].contains(why), "{opt}: {:?}", ak.warnings);
        }
    }

    #[test]
    fn every_documented_option_is_honoured_or_refuses_the_line() {
        let a = key(1);
        let line = |opts: &str| {
            let ak = AuthorizedKeys::parse(&format!("{opts} {} bob", a.to_openssh()));
            assert!(ak.warnings.is_empty(), "{opts}: {:?}", ak.warnings);
            ak.entries[0].options.clone()
        };
        let o = line(
            "restrict,pty,no-pty,agent-forwarding,no-agent-forwarding,X11-forwarding,\
             no-x11-forwarding,user-rc,no-user-rc,tunnel=\"0\",no-touch-required,verify-required",
        );
        assert!(o.forwarding.denied && !o.touch_required && o.verify_required);
        assert!(!line("restrict,port-forwarding").forwarding.denied);
        assert!(line("port-forwarding,no-port-forwarding").forwarding.denied);
        let o = line(r#"command="git-upload-pack 'team/app.git'",expiry-time="202612311200Z""#);
        assert_eq!(o.command.as_deref(), Some("git-upload-pack 'team/app.git'"));
        assert_eq!(
            o.expiry,
            Some(ExpiryTime {
                fields: (2026, 12, 31, 12, 0, 0),
                utc: true
            })
        );
        let f = line(r#"permitopen="db.internal:5432",permitopen="[::1]:*",permitlisten="8080",permitlisten="*.lan:9000""#)
            .forwarding;
        assert!(f.permits_open("db.internal", 5432) && f.permits_open("::1", 22));
        assert!(!f.permits_open("db.internal", 5433) && !f.permits_open("other", 5432));
        assert!(f.permits_listen("localhost", 8080) && !f.permits_listen("0.0.0.0", 8080));
        assert!(f.permits_listen("box.lan", 9000) && !f.permits_listen("box.lan", 9001));
        assert!(
            !line("restrict,permitopen=\"h:1\"")
                .forwarding
                .permits_open("h", 1)
        );
    }

    #[test]
    fn cert_authority_lines_admit_certificates_not_the_ca_key() {
        let ca = key(7);
        let ak = AuthorizedKeys::parse(&format!(
            "cert-authority,principals=\"ops,admins\" {k} team\ncert-authority,from=\"10.0.0.0/8\" {k} carol\n",
            k = ca.to_openssh()
        ));
        assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
        assert!(
            ak.find(&ca, ip("10.0.0.1"), never).is_none(),
            "the CA is no user key"
        );
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let at = |p: &[&str], addr: &str| {
            ak.find_ca(&ca, &names(p), ip(addr), never)
                .map(|e| e.name.clone())
        };
        assert_eq!(at(&["x", "admins"], "192.0.2.1").as_deref(), Some("team"));
        assert_eq!(at(&["carol"], "10.1.1.1").as_deref(), Some("carol"));
        assert_eq!(at(&["carol"], "192.0.2.1"), None, "from= holds");
        assert_eq!(
            at(&["team"], "10.1.1.1"),
            None,
            "principals= replaces the name"
        );
        assert!(
            ak.find_ca(&key(8), &names(&["ops"]), ip("10.0.0.1"), never)
                .is_none()
        );
    }

    #[test]
    fn an_expired_line_is_passed_over_for_a_later_one() {
        let a = key(1);
        let ak = AuthorizedKeys::parse(&format!(
            "expiry-time=\"20200101\" {k} old\nexpiry-time=\"20991231235959Z\" {k} new\n",
            k = a.to_openssh()
        ));
        assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
        let before_2030 = |t: &ExpiryTime| t.fields.0 < 2030;
        let found = ak.find(&a, ip("10.0.0.1"), before_2030).unwrap();
        assert_eq!(found.name, "new");
        assert!(ak.find(&a, ip("10.0.0.1"), |_| true).is_none());
        assert_eq!(ak.find(&a, ip("10.0.0.1"), never).unwrap().name, "old");
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let ak = AuthorizedKeys::parse(
            "ssh-ed25519\nssh-ed25519 !!!notbase64\nssh-dss AAAAB3NzaC1kc3M=\nfrom=\"unterminated ssh-ed25519 AAAA\n",
        );
        assert!(ak.entries.is_empty());
        assert_eq!(ak.warnings.len(), 4, "{:?}", ak.warnings);
    }
}
