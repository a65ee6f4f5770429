//! A file the server trusts (authorized_keys, CA keys, principals, revocations), parsed once
//! and again whenever its size, modification time or inode changes; refused while group or
//! others may write it (sshd's StrictModes: such a file could be made to admit anyone).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::lookup::LookupError;

type Stamp = (u64, i64, i64, u64);

/// How a watched file's text becomes its parsed form.
type Parse<T> = Box<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

/// One watched file and its parsed form.
pub struct Watched<T> {
    path: PathBuf,
    parse: Parse<T>,
    cache: Mutex<Option<(Stamp, Arc<T>)>>,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<T> Watched<T> {
    /// `path`, read with `parse` on first use and after every change. A parse error is a
    /// lookup failure (the client is told to come back), never an empty file.
    pub fn new(
        path: impl Into<PathBuf>,
        parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            path: path.into(),
            parse: Box::new(parse),
            cache: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current contents, re-parsed if the file changed.
    pub async fn current(&self) -> Result<Arc<T>, LookupError> {
        let named = |e: std::io::Error| {
            LookupError::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", self.path.display()),
            ))
        };
        let meta = tokio::fs::metadata(&self.path).await.map_err(named)?;
        if meta.mode() & 0o022 != 0 {
            return Err(LookupError::Failed(format!(
                "{} is writable by group or others (mode {:o}); chmod go-w it",
                self.path.display(),
                meta.mode() & 0o777
            )));
        }
        let stamp = (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino());
        let mut cache = self.cache.lock().await;
        if let Some((s, parsed)) = cache.as_ref()
            && *s == stamp
        {
            return Ok(parsed.clone());
        }
        let text = tokio::fs::read_to_string(&self.path).await.map_err(named)?;
        let parsed = Arc::new(
            (self.parse)(&text)
                .map_err(|e| LookupError::Failed(format!("{}: {e}", self.path.display())))?,
        );
        *cache = Some((stamp, parsed.clone()));
        Ok(parsed)
    }
}
