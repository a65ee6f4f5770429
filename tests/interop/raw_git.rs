//! git's pack protocol spoken by hand over OpenSSH's `ssh`, for what `git` itself will not do:
//! stop reading a pack halfway, or send half of one and hold the connection.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::git_server::{Git, Server};

/// `ssh … git@127.0.0.1 "<command>"` to `s` with `key`, all three streams piped.
fn ssh(s: &Server, key: &Path, command: &str) -> Child {
    let mut args: Vec<String> = s
        .ssh_command(key)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let program = args.remove(0);
    Command::new(program)
        .args(&args)
        .args(["-p", &s.port.to_string(), "git@127.0.0.1"])
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads a ref advertisement (pkt-lines up to a flush); returns the first object id.
fn advertisement(out: &mut ChildStdout) -> String {
    let mut tip = None;
    loop {
        let mut len = [0u8; 4];
        out.read_exact(&mut len).unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&len).unwrap(), 16).unwrap();
        if n == 0 {
            break;
        }
        let mut line = vec![0u8; n - 4];
        out.read_exact(&mut line).unwrap();
        if tip.is_none() {
            tip = Some(String::from_utf8_lossy(&line[..40]).into_owned());
        }
    }
    tip.expect("an advertised ref")
}

/// Speaks git protocol v0 to `git-upload-pack` on `s` (no side-band): wants the tip and
/// leaves the pack to be read. Returns the child (ssh) and its stdout.
pub fn raw_fetch(s: &Server, key: &Path, repo: &str) -> (Child, ChildStdout) {
    let mut child = ssh(s, key, &format!("git-upload-pack '{repo}'"));
    let mut out = child.stdout.take().unwrap();
    let tip = advertisement(&mut out);
    let mut stdin = child.stdin.take().unwrap();
    let want = format!("want {tip}\n");
    write!(stdin, "{:04x}{want}0000", want.len() + 4).unwrap();
    stdin.write_all(b"0009done\n").unwrap();
    stdin.flush().unwrap();
    // Keep stdin open (as git does while it reads the pack).
    std::mem::forget(stdin);
    (child, out)
}

/// A push that sends its ref update and half of its pack (8 MiB of new objects committed in
/// `local` on top of the server's `main`), then holds the connection: `receive-pack` on the
/// server waits for the rest with what it received in its quarantine.
pub fn stalled_push(git: &Git<'_>, local: &Path, repo: &str) -> Child {
    crate::common::random_file(&local.join("more.bin"), 8);
    git.ok(local, &["add", "more.bin"]);
    git.ok(local, &["commit", "-q", "-m", "more"]);
    let old = git.ok(local, &["rev-parse", "HEAD~1"]).trim().to_owned();
    let new = git.ok(local, &["rev-parse", "HEAD"]).trim().to_owned();
    let mut packer = Command::new("git")
        .current_dir(local)
        .args(["pack-objects", "--stdout", "--revs", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    write!(packer.stdin.take().unwrap(), "{new}\n^{old}\n").unwrap();
    let pack = packer.wait_with_output().unwrap().stdout;
    assert!(pack.starts_with(b"PACK") && pack.len() > 4 << 20);
    let mut child = ssh(git.server, &git.key, &format!("git-receive-pack '{repo}'"));
    let mut out = child.stdout.take().unwrap();
    advertisement(&mut out);
    let update = format!("{old} {new} refs/heads/main\0report-status\n");
    let mut stdin = child.stdin.take().unwrap();
    write!(stdin, "{:04x}{update}0000", update.len() + 4).unwrap();
    stdin.write_all(&pack[..pack.len() / 2]).unwrap();
    stdin.flush().unwrap();
    // The rest never comes; the connection stays open.
    std::mem::forget(stdin);
    std::mem::forget(out);
    child
}
