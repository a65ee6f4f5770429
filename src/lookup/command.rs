//! An external command that prints `authorized_keys` lines, like OpenSSH's
//! AuthorizedKeysCommand: a fixed argv with `%u` (user), `%f` (fingerprint), `%t` (key type)
//! and `%k` (base64 key) substituted, run without a shell and with an empty environment,
//! bounded in time and in output.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::keys::PublicKey;
use crate::limits::MAX_OUTPUT;
use crate::lookup::{Identity, KeyLookup, LookupError, LookupFuture, OptionCheck, parse_checked};

/// Lookup through an external program.
#[derive(Clone, Debug)]
pub struct CommandLookup {
    /// The program (absolute path).
    pub program: PathBuf,
    /// Its arguments, with `%u %f %t %k` tokens.
    pub args: Vec<String>,
    /// How long it may run.
    pub timeout: Duration,
    /// The application's test of each printed line's options (`None`: the core's own).
    pub check: Option<OptionCheck>,
}

impl CommandLookup {
    /// `program %u %f` with a 5-second limit.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: vec!["%u".into(), "%f".into()],
            timeout: crate::limits::LOOKUP_COMMAND_TIMEOUT,
            check: None,
        }
    }

    fn argv(&self, user: &str, key: &PublicKey) -> Vec<String> {
        let openssh = key.to_openssh();
        let b64 = openssh
            .split_once(' ')
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        self.args
            .iter()
            .map(|a| {
                a.replace("%u", user)
                    .replace("%f", &key.fingerprint())
                    .replace("%t", key.key_type().wire_name())
                    .replace("%k", &b64)
            })
            .collect()
    }

    async fn run(&self, user: &str, key: &PublicKey) -> Result<String, LookupError> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(self.argv(user, key))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| LookupError::Failed("no stdout".into()))?;
        let work = async {
            let mut out = Vec::new();
            (&mut stdout)
                .take(MAX_OUTPUT.saturating_add(1))
                .read_to_end(&mut out)
                .await?;
            if u64::try_from(out.len()).unwrap_or(u64::MAX) > MAX_OUTPUT {
                // Stop it now: it would block on the full pipe until the timeout.
                let _ = child.kill().await;
                return Err(LookupError::Failed("output too large".into()));
            }
            let status = child.wait().await?;
            Ok::<_, LookupError>((out, status))
        };
        let (out, status) = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| LookupError::Timeout)??;
        if !status.success() {
            return Err(LookupError::Failed(format!("exited with {status}")));
        }
        String::from_utf8(out).map_err(|_| LookupError::Failed("output is not UTF-8".into()))
    }
}

impl KeyLookup for CommandLookup {
    fn lookup<'a>(&'a self, user: &'a str, key: &'a PublicKey, addr: IpAddr) -> LookupFuture<'a> {
        Box::pin(async move {
            let text = self.run(user, key).await?;
            let keys = parse_checked(&text, self.check, &self.program.display());
            Ok(keys
                .find(key, addr, super::expired)
                .map(|e| Identity::from_entry(e, key)))
        })
    }
}
