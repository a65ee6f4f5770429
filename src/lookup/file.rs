//! An `authorized_keys` file, re-read whenever its size, modification time or inode changes.

use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::keys::PublicKey;
use crate::keys::authorized_keys::AuthorizedKeys;
use crate::lookup::{Identity, KeyLookup, LookupError, LookupFuture, OptionCheck, parse_checked};

type Stamp = (u64, i64, i64, u64);

/// Lookup in one `authorized_keys` file.
#[derive(Debug)]
pub struct FileLookup {
    path: PathBuf,
    check: Option<OptionCheck>,
    cache: Mutex<Option<(Stamp, Arc<AuthorizedKeys>)>>,
}

impl FileLookup {
    /// Reads `path` on first use and again whenever it changes.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            check: None,
            cache: Mutex::new(None),
        }
    }

    /// Also puts each line's options to `check` (`Err(why)` skips the line with a warning):
    /// the git server refuses a `command=` that is not a git command this way.
    pub fn with_check(mut self, check: OptionCheck) -> Self {
        self.check = Some(check);
        self
    }

    /// The current contents, re-parsed if the file changed; warnings are logged once per load.
    pub async fn current(&self) -> Result<Arc<AuthorizedKeys>, LookupError> {
        let meta = tokio::fs::metadata(&self.path).await?;
        // sshd's StrictModes: a file others may write could be made to admit any key.
        if meta.mode() & 0o022 != 0 {
            return Err(LookupError::Failed(format!(
                "{} is writable by group or others (mode {:o}); chmod go-w it",
                self.path.display(),
                meta.mode() & 0o777
            )));
        }
        let stamp = (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino());
        let mut cache = self.cache.lock().await;
        if let Some((s, keys)) = cache.as_ref()
            && *s == stamp
        {
            return Ok(keys.clone());
        }
        let text = tokio::fs::read_to_string(&self.path).await?;
        let keys = Arc::new(parse_checked(&text, self.check, &self.path.display()));
        *cache = Some((stamp, keys.clone()));
        Ok(keys)
    }
}

impl KeyLookup for FileLookup {
    fn lookup<'a>(&'a self, _user: &'a str, key: &'a PublicKey, addr: IpAddr) -> LookupFuture<'a> {
        Box::pin(async move {
            let keys = self.current().await?;
            Ok(keys
                .find(key, addr, super::expired)
                .map(|e| Identity::from_entry(e, key)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_group_or_world_writable_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authorized_keys");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let f = FileLookup::new(&path);
        assert!(f.current().await.is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = f.current().await.unwrap_err();
        assert!(e.to_string().contains("chmod go-w"), "{e}");
    }
}
