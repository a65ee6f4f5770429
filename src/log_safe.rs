//! Text from a peer made safe for a log line: printable ASCII passes, a backslash is doubled,
//! every other byte (CR, LF, other controls, DEL, bytes of non-ASCII characters) becomes `\ooo`
//! octal — the form sshd's `strnvis(VIS_SAFE | VIS_OCTAL)` logs, so one forged line can never
//! look like two.

use std::fmt;

/// Displays its bytes escaped (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct LogSafe<'a>(pub &'a [u8]);

/// `LogSafe` of a string.
pub fn log_safe(s: &str) -> LogSafe<'_> {
    LogSafe(s.as_bytes())
}

impl fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut plain = 0usize;
        for (i, &b) in self.0.iter().enumerate() {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                continue;
            }
            f.write_str(
                std::str::from_utf8(self.0.get(plain..i).unwrap_or_default()).unwrap_or(""),
            )?;
            if b == b'\\' {
                f.write_str("\\\\")?;
            } else {
                write!(f, "\\{b:03o}")?;
            }
            plain = i.saturating_add(1);
        }
        f.write_str(std::str::from_utf8(self.0.get(plain..).unwrap_or_default()).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_backslashes_are_escaped_as_sshd_does() {
        assert_eq!(
            log_safe("git-upload-pack 'a.git'").to_string(),
            "git-upload-pack 'a.git'"
        );
        assert_eq!(
            log_safe("x\r\n2026 INFO forged").to_string(),
            "x\\015\\0122026 INFO forged"
        );
        assert_eq!(log_safe("a\\b\x1b[31m").to_string(), "a\\\\b\\033[31m");
        assert_eq!(LogSafe("é".as_bytes()).to_string(), "\\303\\251");
        assert_eq!(LogSafe(b"\x7f\x00").to_string(), "\\177\\000");
    }
}
