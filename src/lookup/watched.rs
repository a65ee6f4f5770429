//! A file the server trusts (authorized_keys, CA keys, principals, revocations), parsed once
//! and again whenever it changes; refused while group or others may write it (sshd's
//! StrictModes: such a file could be made to admit anyone).
//!
//! A change is seen in the file's stamp: size, modification and status-change times to the
//! nanosecond, inode and device. The status-change time cannot be set by a writer (`touch -d`,
//! `cp -p`, `rsync -t` set the modification time), but it ticks as coarsely as the
//! filesystem's clock, so a change made within [`RACY`] of a read could leave the stamp as it
//! was: until a read comes that long after the last change, each lookup reads the text again
//! and compares its digest (git's "racy clean" rule for its index).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use tokio::sync::Mutex;

use crate::lookup::LookupError;

/// Size, modification time, status-change time (seconds and nanoseconds), inode, device.
type Stamp = (u64, i64, i64, i64, i64, u64, u64);

/// How long after the file's last change its stamp alone is not trusted: longer than any
/// filesystem's timestamp tick (a jiffy locally, up to a second on some network servers).
const RACY: Duration = Duration::from_secs(1);

/// The parsed form of one version of the file.
struct Cached<T> {
    stamp: Stamp,
    digest: [u8; 32],
    parsed: Arc<T>,
    /// Read more than [`RACY`] after the change that made this version: the stamp suffices.
    settled: bool,
}

/// How a watched file's text becomes its parsed form.
type Parse<T> = Box<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

/// One watched file and its parsed form.
pub struct Watched<T> {
    path: PathBuf,
    parse: Parse<T>,
    cache: Mutex<Option<Cached<T>>>,
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
        let stamp = (
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
            meta.ino(),
            meta.dev(),
        );
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && c.stamp == stamp
            && c.settled
        {
            return Ok(c.parsed.clone());
        }
        let read_at = SystemTime::now();
        let text = tokio::fs::read_to_string(&self.path).await.map_err(named)?;
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        let settled = settled(changed_at(&meta), read_at);
        // The same text (a `touch`, a rewrite with the same keys, a racy re-read): the parse
        // stands, under the new stamp.
        if let Some(c) = cache.as_mut()
            && c.digest == digest
        {
            c.stamp = stamp;
            c.settled = settled;
            return Ok(c.parsed.clone());
        }
        let parsed = Arc::new(
            (self.parse)(&text)
                .map_err(|e| LookupError::Failed(format!("{}: {e}", self.path.display())))?,
        );
        *cache = Some(Cached {
            stamp,
            digest,
            parsed: parsed.clone(),
            settled,
        });
        Ok(parsed)
    }
}

/// When the file's status last changed (its ctime), if representable.
fn changed_at(meta: &std::fs::Metadata) -> Option<SystemTime> {
    let secs = u64::try_from(meta.ctime()).ok()?;
    let nanos = u32::try_from(meta.ctime_nsec()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Whether a read at `read_at` of a version changed at `changed` can be trusted to be the
/// last one with its stamp: any later change would carry a later status-change time. Not
/// when the change is within [`RACY`] of the read, in the future, or unknown.
fn settled(changed: Option<SystemTime>, read_at: SystemTime) -> bool {
    changed
        .and_then(|c| c.checked_add(RACY))
        .is_some_and(|c| c <= read_at)
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

    #[test]
    fn only_a_read_well_after_the_last_change_is_settled() {
        let now = SystemTime::now();
        let ago = |ms: u64| now.checked_sub(Duration::from_millis(ms));
        assert!(settled(ago(1500), now));
        assert!(!settled(ago(500), now), "a change within a tick could hide");
        assert!(
            !settled(now.checked_add(Duration::from_secs(5)), now),
            "a clock ahead"
        );
        assert!(!settled(None, now));
    }

    /// A fresh directory holding a file with `text`, watched and read once.
    async fn watched_file(tag: &str, text: &str) -> (PathBuf, PathBuf, Watched<String>) {
        let dir = std::env::temp_dir().join(format!("watched-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("list");
        std::fs::write(&path, text).expect("write");
        let w = Watched::new(&path, |t| Ok(t.to_owned()));
        assert_eq!(*w.current().await.expect("first"), text);
        (dir, path, w)
    }

    #[tokio::test]
    async fn a_rewrite_that_keeps_size_and_modification_time_is_seen() {
        let (dir, path, w) = watched_file("racy", "key-a").await;
        // Key rotation in place with the old modification time kept (`cp -p`, `touch -d`):
        // same size, same mtime, same inode.
        let mtime = std::fs::metadata(&path)
            .expect("meta")
            .modified()
            .expect("mtime");
        std::fs::write(&path, "key-b").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(mtime))
            .expect("set mtime");
        assert_eq!(*w.current().await.expect("second"), "key-b");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn a_touch_keeps_the_parse() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = std::env::temp_dir().join(format!("watched-touch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("list");
        std::fs::write(&path, "key").expect("write");
        let parses = Arc::new(AtomicUsize::new(0));
        let counted = parses.clone();
        let w = Watched::new(&path, move |t| {
            counted.fetch_add(1, Ordering::Relaxed);
            Ok(t.to_owned())
        });
        assert_eq!(*w.current().await.expect("first"), "key");
        // A new modification time, the same text: read and hashed again, not parsed again.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1000)))
            .expect("touch");
        assert_eq!(*w.current().await.expect("second"), "key");
        assert_eq!(parses.load(Ordering::Relaxed), 1);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn a_change_is_seen_by_the_very_next_lookup() {
        let (dir, path, w) = watched_file("next", "a").await;
        // Rewritten in place, then replaced by a rename (a new inode), as editors do.
        std::fs::write(&path, "bb").expect("write");
        assert_eq!(*w.current().await.expect("second"), "bb");
        std::fs::write(dir.join("next"), "ccc").expect("write");
        std::fs::rename(dir.join("next"), &path).expect("rename");
        assert_eq!(*w.current().await.expect("third"), "ccc");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
