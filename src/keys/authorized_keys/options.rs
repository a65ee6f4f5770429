//! The options field of an `authorized_keys` line [sshd(8) "AUTHORIZED_KEYS FILE FORMAT"]:
//! every option OpenSSH documents is either honoured or refuses the line, so that an option
//! can never widen access or vanish silently. The table in the README ("authorized_keys
//! options") says what each one does here.

/// What a line's options ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOptions {
    /// `from=` patterns, if any: the client address must match.
    pub from: Option<String>,
    /// Security keys: whether signatures must attest user presence (unless `no-touch-required`).
    pub touch_required: bool,
    /// `verify-required`: signatures must attest user verification (security keys only).
    pub verify_required: bool,
    /// `expiry-time=`: the key is refused after this time.
    pub expiry: Option<ExpiryTime>,
    /// `command=`: the only command this key may run (the application decides what that
    /// allows; the git server takes it as a narrowing to one git command).
    pub command: Option<String>,
    /// What the forwarding options allow.
    pub forwarding: ForwardingLimits,
    /// `cert-authority`: the key is a CA whose user certificates this line admits (and the
    /// key itself is not admitted as a user key).
    pub cert_authority: bool,
    /// `principals="a,b"` on a `cert-authority` line: a certificate must name one of them
    /// (without it, the line's identity name).
    pub principals: Option<Vec<String>>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        Self {
            from: None,
            touch_required: true,
            verify_required: false,
            expiry: None,
            command: None,
            forwarding: ForwardingLimits::default(),
            cert_authority: false,
            principals: None,
        }
    }
}

/// Port forwarding as the options limit it: `no-port-forwarding` / `restrict` (and
/// `port-forwarding` after them), `permitopen=`, `permitlisten=`. A server still asks its own
/// policy; these can only take away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardingLimits {
    /// Forwarding switched off.
    pub denied: bool,
    /// `permitopen="host:port"` entries (empty: any target).
    pub permit_open: Vec<String>,
    /// `permitlisten="[host:]port"` entries (empty: any listener).
    pub permit_listen: Vec<String>,
}

impl ForwardingLimits {
    /// Whether a `direct-tcpip` channel to `host:port` (`ssh -L`) is within the limits:
    /// `permitopen` hosts are literal, its port may be `*` [sshd(8)].
    pub fn permits_open(&self, host: &str, port: u16) -> bool {
        !self.denied
            && (self.permit_open.is_empty()
                || self.permit_open.iter().any(|p| {
                    split_host_port(p).is_some_and(|(h, pp)| {
                        h.eq_ignore_ascii_case(host) && port_matches(pp, port)
                    })
                }))
    }

    /// Whether a `tcpip-forward` listener on `address:port` (`ssh -R`) is within the limits:
    /// the host may hold `*`/`?` wildcards; a bare port only allows ssh's default
    /// `localhost`, a narrower reading than sshd's.
    pub fn permits_listen(&self, address: &str, port: u16) -> bool {
        !self.denied
            && (self.permit_listen.is_empty()
                || self.permit_listen.iter().any(|p| {
                    let (h, pp) = split_host_port(p).unwrap_or(("localhost", p.as_str()));
                    crate::keys::pattern::glob(h.as_bytes(), address.as_bytes(), true)
                        && port_matches(pp, port)
                }))
    }
}

/// `host:port`, `[v6]:port`; `None` without a colon.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        return Some((h, p));
    }
    s.rsplit_once(':')
}

fn port_matches(pattern: &str, port: u16) -> bool {
    pattern == "*" || pattern.parse::<u16>().is_ok_and(|p| p == port)
}

/// An `expiry-time=` value: a civil time, in UTC (`Z`) or in the server's time zone, which
/// only the driver knows (the core reads no clock and no zone file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiryTime {
    /// Year, month (1–12), day, hour, minute, second.
    pub fields: (u16, u8, u8, u8, u8, u8),
    /// Suffixed with `Z`: UTC; otherwise the system's time zone.
    pub utc: bool,
}

impl ExpiryTime {
    /// `YYYYMMDD[Z]` (the start of that day) or `YYYYMMDDHHMM[SS][Z]`, the forms sshd takes;
    /// `None` for anything else or an impossible date.
    pub fn parse(s: &str) -> Option<Self> {
        let (digits, utc) = match s.strip_suffix(['Z', 'z']) {
            Some(d) => (d, true),
            None => (s, false),
        };
        if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let num = |at: usize, len: usize| -> u16 {
            digits
                .get(at..at.saturating_add(len))
                .and_then(|d| d.parse().ok())
                .unwrap_or(0)
        };
        let narrow = |v: u16| u8::try_from(v).unwrap_or(u8::MAX);
        let t = Self {
            fields: (
                num(0, 4),
                narrow(num(4, 2)),
                narrow(num(6, 2)),
                narrow(num(8, 2)),
                narrow(num(10, 2)),
                narrow(num(12, 2)),
            ),
            utc,
        };
        t.valid().then_some(t)
    }

    fn valid(&self) -> bool {
        let (y, mo, d, h, mi, s) = self.fields;
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let days = match mo {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return false,
        };
        y >= 1970 && (1..=days).contains(&d) && h < 24 && mi < 60 && s < 60
    }
}

/// Reads a comma-separated options field into [`KeyOptions`]; `Err` names the option that
/// refuses the line.
pub fn parse_options(field: &str) -> Result<KeyOptions, String> {
    let mut o = KeyOptions::default();
    // `restrict` then `port-forwarding` re-allows it, in the order given [sshd(8)].
    for opt in split_list(field) {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        let lower = name.to_ascii_lowercase();
        let quoted = || {
            value
                .and_then(unquote)
                .ok_or(format!("bad {lower}= quoting"))
        };
        match (lower.as_str(), value) {
            ("restrict" | "no-port-forwarding", None) => o.forwarding.denied = true,
            ("port-forwarding", None) => o.forwarding.denied = false,
            // Features this server never offers: switching them off or on changes nothing.
            (
                "no-pty"
                | "pty"
                | "no-agent-forwarding"
                | "agent-forwarding"
                | "no-x11-forwarding"
                | "x11-forwarding"
                | "no-user-rc"
                | "user-rc",
                None,
            ) => {}
            // tun(4) forwarding is never offered: which device it would use cannot matter.
            ("tunnel", Some(_)) => {
                quoted()?
                    .parse::<u32>()
                    .map_err(|_| "bad tunnel= device".to_owned())?;
            }
            // Two clauses would leave it unclear which one holds: refuse as sshd does.
            ("from", Some(_)) if o.from.is_some() => {
                return Err("multiple from= clauses: line skipped".into());
            }
            ("from", Some(_)) => o.from = Some(quoted()?),
            ("expiry-time", Some(_)) if o.expiry.is_some() => {
                return Err("multiple expiry-time= clauses: line skipped".into());
            }
            ("expiry-time", Some(_)) => {
                let v = quoted()?;
                o.expiry = Some(ExpiryTime::parse(&v).ok_or(format!(
                    "expiry-time=\"{v}\" is not YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]: line skipped"
                ))?);
            }
            ("command", Some(_)) if o.command.is_some() => {
                return Err("multiple command= clauses: line skipped".into());
            }
            ("command", Some(_)) => o.command = Some(quoted()?),
            ("permitopen", Some(_)) => {
                let v = quoted()?;
                if split_host_port(&v).is_none() {
                    return Err(format!("permitopen=\"{v}\" is not host:port: line skipped"));
                }
                o.forwarding.permit_open.push(v);
            }
            ("permitlisten", Some(_)) => {
                let v = quoted()?;
                let port = split_host_port(&v).map_or(v.as_str(), |(_, p)| p);
                if port != "*" && port.parse::<u16>().is_err() {
                    return Err(format!(
                        "permitlisten=\"{v}\" is not [host:]port: line skipped"
                    ));
                }
                o.forwarding.permit_listen.push(v);
            }
            // Both only ever narrow or keep access for security keys [sshd(8)].
            ("no-touch-required", None) => o.touch_required = false,
            ("verify-required", None) => o.verify_required = true,
            ("environment", _) => {
                return Err(
                    "environment= is not supported (a git session's environment is \
                            fixed): line skipped"
                        .into(),
                );
            }
            ("cert-authority", None) => o.cert_authority = true,
            ("principals", Some(_)) if o.principals.is_some() => {
                return Err("multiple principals= clauses: line skipped".into());
            }
            // Read on every line, used on cert-authority ones only (as sshd).
            ("principals", Some(_)) => {
                let list = quoted()?;
                let names: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                if names.is_empty() {
                    return Err("principals= lists nobody: line skipped".into());
                }
                o.principals = Some(names);
            }
            (n, _) => return Err(format!("unsupported option {n}: line skipped")),
        }
    }
    Ok(o)
}

/// Splits comma-separated options, keeping commas inside quotes.
fn split_list(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0usize, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(s.get(start..i).unwrap_or_default());
                start = i.saturating_add(1);
            }
            _ => {}
        }
    }
    if !s.is_empty() {
        out.push(s.get(start..).unwrap_or_default());
    }
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

/// The text between the double quotes, with `\"` unescaped.
fn unquote(v: &str) -> Option<String> {
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.replace("\\\"", "\""))
}
