//! An `authorized_keys` file, re-read whenever its size, modification time or inode changes.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::keys::PublicKey;
use crate::keys::authorized_keys::AuthorizedKeys;
use crate::keys::cert::Certificate;
use crate::lookup::cert;
use crate::lookup::watched::Watched;
use crate::lookup::{Identity, KeyLookup, LookupError, LookupFuture, OptionCheck, parse_checked};

/// Lookup in one `authorized_keys` file.
#[derive(Debug)]
pub struct FileLookup {
    file: Watched<AuthorizedKeys>,
}

impl FileLookup {
    /// Reads `path` on first use and again whenever it changes.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::checked(path.into(), None)
    }

    /// Also puts each line's options to `check` (`Err(why)` skips the line with a warning):
    /// the git server refuses a `command=` that is not a git command this way.
    pub fn with_check(self, check: OptionCheck) -> Self {
        Self::checked(self.file.path().to_path_buf(), Some(check))
    }

    fn checked(path: PathBuf, check: Option<OptionCheck>) -> Self {
        let shown = path.display().to_string();
        Self {
            file: Watched::new(path, move |text| Ok(parse_checked(text, check, &shown))),
        }
    }

    /// The current contents, re-parsed if the file changed; warnings are logged once per load.
    pub async fn current(&self) -> Result<Arc<AuthorizedKeys>, LookupError> {
        self.file.current().await
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

    /// A certificate admitted by a `cert-authority` line: the line's identity, its options
    /// joined with the certificate's.
    fn lookup_cert<'a>(
        &'a self,
        user: &'a str,
        cert: &'a Certificate,
        addr: IpAddr,
    ) -> LookupFuture<'a> {
        Box::pin(async move {
            let keys = self.current().await?;
            let Some(line) = keys.find_ca(&cert.ca, &cert.principals, addr, super::expired) else {
                return Ok(None);
            };
            let algs = crate::keys::SigAlg::DEFAULT_USER;
            match cert::accept(cert, addr, &algs, line.name.clone(), Some(&line.options)) {
                Ok(id) => {
                    cert::accepted(user, addr, cert, &id);
                    Ok(Some(id))
                }
                Err(why) => {
                    cert::refused(user, addr, cert, &why);
                    Ok(None)
                }
            }
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
