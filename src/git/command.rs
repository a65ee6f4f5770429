//! The only commands a git front door runs, parsed by a strict grammar [gitprotocol-pack "SSH
//! Transport", git-shell(1)]: `git-upload-pack|git-receive-pack|git-upload-archive '<path>'`
//! (or `git upload-pack '<path>'`), the path single-quoted with git's escapes (`'\''`, `'\!'`).
//! Nothing here ever reaches a shell.

use crate::limits::MAX_COMMAND_LEN;
use std::fmt;

/// A git service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// `git-upload-pack`: fetch and clone (read).
    UploadPack,
    /// `git-receive-pack`: push (write).
    ReceivePack,
    /// `git-upload-archive`: `git archive --remote` (read).
    UploadArchive,
}

impl Service {
    /// The git subcommand (`upload-pack`, …).
    pub const fn subcommand(self) -> &'static str {
        match self {
            Service::UploadPack => "upload-pack",
            Service::ReceivePack => "receive-pack",
            Service::UploadArchive => "upload-archive",
        }
    }

    /// Whether the service changes the repository.
    pub const fn writes(self) -> bool {
        matches!(self, Service::ReceivePack)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "git-{}", self.subcommand())
    }
}

/// A parsed, not yet resolved, git command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitCommand {
    /// The service.
    pub service: Service,
    /// The repository argument as the client sent it (dequoted).
    pub path: String,
}

/// Why a command is refused; the text is what the client sees on stderr.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not one of the git services (a shell, another program, …).
    #[error("only git-upload-pack, git-receive-pack and git-upload-archive are allowed here")]
    NotGit,
    /// The argument is not one single-quoted path.
    #[error("bad repository argument: expected one single-quoted path")]
    BadQuoting,
    /// The path holds NUL, control characters, or looks like an option.
    #[error("bad repository path")]
    BadPath,
}

/// Parses an `exec` command line.
pub fn parse(command: &[u8]) -> Result<GitCommand, CommandError> {
    if command.len() > MAX_COMMAND_LEN {
        return Err(CommandError::BadPath);
    }
    let text = std::str::from_utf8(command).map_err(|_| CommandError::BadPath)?;
    let (service, arg) = split_service(text).ok_or(CommandError::NotGit)?;
    let path = sq_dequote(arg).ok_or(CommandError::BadQuoting)?;
    if path.is_empty() || path.starts_with('-') || path.chars().any(char::is_control) {
        return Err(CommandError::BadPath);
    }
    Ok(GitCommand { service, path })
}

fn split_service(text: &str) -> Option<(Service, &str)> {
    const NAMES: [(&str, Service); 3] = [
        ("upload-pack", Service::UploadPack),
        ("receive-pack", Service::ReceivePack),
        ("upload-archive", Service::UploadArchive),
    ];
    let rest = text
        .strip_prefix("git-")
        .or_else(|| text.strip_prefix("git "))?;
    NAMES.iter().find_map(|(name, s)| {
        rest.strip_prefix(name)
            .and_then(|r| r.strip_prefix(' '))
            .map(|arg| (*s, arg))
    })
}

/// git's `sq_dequote`: `'…'` segments joined by `\'` or `\!` outside the quotes; nothing else.
/// The command line for `service` on `path`, quoted the way git itself quotes it for ssh
/// (`'` becomes `'\''`), so the far side's shell or parser sees exactly `path`.
pub fn command_line(service: Service, path: &str) -> String {
    format!("{service} '{}'", path.replace('\'', "'\\''"))
}

fn sq_dequote(arg: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = arg.chars();
    if chars.next()? != '\'' {
        return None;
    }
    loop {
        match chars.next()? {
            '\'' => match chars.next() {
                None => return Some(out),
                Some('\\') => match chars.next()? {
                    c @ ('\'' | '!') => {
                        out.push(c);
                        if chars.next()? != '\'' {
                            return None;
                        }
                    }
                    _ => return None,
                },
                Some(_) => return None,
            },
            c => out.push(c),
        }
    }
}

/// Whether a `GIT_PROTOCOL` value is acceptable: colon-separated `key` or `key=value` items of
/// safe characters, as git sends (`version=2`).
pub fn valid_git_protocol(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value.split(|&b| b == b':').all(|item| {
            !item.is_empty()
                && item
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"=._-".contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (Service, String) {
        let c = parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"));
        (c.service, c.path)
    }

    #[test]
    fn command_lines_parse_back_to_the_same_path() {
        for path in ["a/b.git", "it's/x.git", "/srv/git/o'k'!.git", "sp ace"] {
            for service in [
                Service::UploadPack,
                Service::ReceivePack,
                Service::UploadArchive,
            ] {
                let line = command_line(service, path);
                assert_eq!(ok(&line), (service, path.to_owned()), "{line}");
            }
        }
    }

    #[test]
    fn accepts_what_git_clients_send() {
        assert_eq!(
            ok("git-upload-pack '/project.git'"),
            (Service::UploadPack, "/project.git".into())
        );
        assert_eq!(
            ok("git-receive-pack 'project.git'"),
            (Service::ReceivePack, "project.git".into())
        );
        assert_eq!(
            ok("git-upload-archive '~alice/p.git'"),
            (Service::UploadArchive, "~alice/p.git".into())
        );
        assert_eq!(
            ok("git upload-pack '/a b/c'"),
            (Service::UploadPack, "/a b/c".into())
        );
        assert_eq!(
            ok("git-upload-pack 'it'\\''s'"),
            (Service::UploadPack, "it's".into())
        );
        assert_eq!(
            ok("git-upload-pack 'wow'\\!'x'"),
            (Service::UploadPack, "wow!x".into())
        );
    }

    #[test]
    fn refuses_everything_else() {
        for cmd in [
            "sh",
            "ls",
            "",
            "git-upload-pack",
            "git-upload-packs '/x'",
            "git-cvsserver '/x'",
            "/usr/bin/git-upload-pack '/x'",
            "git upload-pack",
            "scp -t /x",
        ] {
            assert_eq!(parse(cmd.as_bytes()), Err(CommandError::NotGit), "{cmd}");
        }
        for cmd in [
            "git-upload-pack /x",
            "git-upload-pack '/x",
            "git-upload-pack '/x' '/y'",
            "git-upload-pack '/x'; rm -rf /",
            "git-upload-pack \"/x\"",
            "git-upload-pack  '/x'",
            "git-upload-pack '/x'\\z'",
            "git-upload-pack '/x'$(id)",
        ] {
            assert_eq!(
                parse(cmd.as_bytes()),
                Err(CommandError::BadQuoting),
                "{cmd}"
            );
        }
        for cmd in [
            "git-upload-pack '--upload-pack=touch /tmp/x'",
            "git-upload-pack ''",
            "git-upload-pack '/x\ny'",
            "git-upload-pack '/x\u{7f}'",
            "git-upload-pack '-'",
        ] {
            assert_eq!(parse(cmd.as_bytes()), Err(CommandError::BadPath), "{cmd:?}");
        }
        assert_eq!(parse(b"git-upload-pack '/x\0'"), Err(CommandError::BadPath));
        assert_eq!(parse(b"git-upload-pack '\xff'"), Err(CommandError::BadPath));
        assert_eq!(parse(&vec![b'x'; 5000]), Err(CommandError::BadPath));
    }

    #[test]
    fn git_protocol_values() {
        for v in [
            "version=2",
            "version=1",
            "version=2:object-format=sha256",
            "x",
        ] {
            assert!(valid_git_protocol(v.as_bytes()), "{v}");
        }
        for v in ["", "version=2;rm", "a::b", "version=2 ", "$(x)", ":"] {
            assert!(!valid_git_protocol(v.as_bytes()), "{v}");
        }
        assert!(!valid_git_protocol(&vec![b'a'; 300]));
    }
}
