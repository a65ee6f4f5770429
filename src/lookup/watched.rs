//! A file the server trusts (authorized_keys, CA keys, principals, revocations), parsed once
//! and again whenever its size, modification time or inode changes; refused while group or
//! others may write it (sshd's StrictModes: such a file could be made to admit anyone).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

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
    /// Whether the file lives on a local filesystem (see [`on_local_fs`]), learnt at first use.
    local: OnceLock<bool>,
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
            local: OnceLock::new(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file may be statted inline, on the worker thread. A stat on a local
    /// filesystem is answered from the inode cache (a disk read at worst); on a network one
    /// (NFS, SMB, FUSE …) it can hang for as long as the server does, so it goes to a blocking
    /// thread, which costs two thread hand-offs per lookup (~6 % of a connection's CPU here).
    /// Decided once, on a blocking thread, at the first lookup after the file was configured.
    async fn local(&self) -> bool {
        if let Some(local) = self.local.get() {
            return *local;
        }
        let path = self.path.clone();
        let local = tokio::task::spawn_blocking(move || on_local_fs(&path))
            .await
            .unwrap_or(false);
        *self.local.get_or_init(|| local)
    }

    /// The current contents, re-parsed if the file changed.
    pub async fn current(&self) -> Result<Arc<T>, LookupError> {
        let named = |e: std::io::Error| {
            LookupError::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", self.path.display()),
            ))
        };
        // Every lookup stats the file, as sshd re-reads authorized_keys at every login: a key
        // removed is refused by the very next connection.
        let meta = if self.local().await {
            std::fs::metadata(&self.path)
        } else {
            tokio::fs::metadata(&self.path).await
        }
        .map_err(named)?;
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

/// Whether `path` (or, while it does not exist, its directory) is on a filesystem whose `stat`
/// never waits on another host: the common local disk filesystems, tmpfs and overlayfs (a
/// container's root). Anything else, unknown types included, counts as remote.
pub fn on_local_fs(path: &Path) -> bool {
    use nix::sys::statfs::{
        BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, F2FS_SUPER_MAGIC, FsType, OVERLAYFS_SUPER_MAGIC,
        TMPFS_MAGIC, XFS_SUPER_MAGIC, statfs,
    };
    // ext2 and ext3 share ext4's magic number; ZFS has none in libc.
    const ZFS_SUPER_MAGIC: FsType = FsType(0x2fc1_2fc1);
    let fs = statfs(path).or_else(|_| statfs(path.parent().unwrap_or(Path::new("/"))));
    fs.is_ok_and(|fs| {
        [
            EXT4_SUPER_MAGIC,
            XFS_SUPER_MAGIC,
            BTRFS_SUPER_MAGIC,
            F2FS_SUPER_MAGIC,
            TMPFS_MAGIC,
            OVERLAYFS_SUPER_MAGIC,
            ZFS_SUPER_MAGIC,
        ]
        .contains(&fs.filesystem_type())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_virtual_filesystems_are_told_apart() {
        // /dev/shm is tmpfs on every Linux; /proc is not a place files are stored.
        assert!(on_local_fs(Path::new("/dev/shm")));
        assert!(on_local_fs(Path::new("/dev/shm/not-there-yet")));
        assert!(!on_local_fs(Path::new("/proc/self/status")));
    }

    #[tokio::test]
    async fn a_change_is_seen_by_the_very_next_lookup() {
        let dir = std::env::temp_dir().join(format!("watched-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("list");
        std::fs::write(&path, "a").expect("write");
        let w = Watched::new(&path, |t| Ok(t.to_owned()));
        assert_eq!(*w.current().await.expect("first"), "a");
        // Rewritten in place, then replaced by a rename (a new inode), as editors do.
        std::fs::write(&path, "bb").expect("write");
        assert_eq!(*w.current().await.expect("second"), "bb");
        std::fs::write(dir.join("next"), "ccc").expect("write");
        std::fs::rename(dir.join("next"), &path).expect("rename");
        assert_eq!(*w.current().await.expect("third"), "ccc");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
