//! File content digests remembered between runs, so that a release which builds nothing reads
//! no file it read before: each context file's BLAKE3 digest is kept with what the file
//! system says of the file (device, inode, size, modification and change times, to the
//! nanosecond), and used again only while all of these are the same — the stat cache of git's
//! index, for the same reason.
//!
//! A write to a file sets its change time to the present, which no one can set back (`touch
//! -d` sets the modification time, and so changes the change time). A digest is therefore
//! remembered only for a file whose times are both [`SETTLED`] in the past when it is read:
//! a later write then always gives another change time, even on a file system that keeps
//! whole seconds (or two, on FAT). A cache that cannot be read or written is no cache: every
//! file is read, as without one.
//!
//! One file per context folder, under `$WHARF_CACHE_DIR` (empty: no cache), else
//! `$XDG_CACHE_HOME/wharf`, else `~/.cache/wharf`; it holds paths and digests only, never
//! content.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long ago a file must have been last written for its digest to be remembered.
pub const SETTLED: Duration = Duration::from_secs(2);

/// Bumped when the file's layout or what a digest covers changes.
const VERSION: u32 = 1;

/// What the file system says of a file: the digest of its content holds while this does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file was last written at least [`SETTLED`] before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let limit = now.saturating_sub(SETTLED).as_nanos() as i128;
        self.mtime_ns < limit && self.ctime_ns < limit
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Remembered {
    stamp: Stamp,
    /// BLAKE3 of the content, hex.
    blake3: String,
    /// Bytes of content.
    len: u64,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct CacheFile {
    version: u32,
    files: HashMap<String, Remembered>,
}

/// The remembered digests of one context folder's files, and those of this run.
pub struct ContentCache {
    path: Option<PathBuf>,
    old: HashMap<String, Remembered>,
    new: HashMap<String, Remembered>,
    started: SystemTime,
    changed: bool,
}

/// Where the cache files live; `None` when caching is turned off or no folder is known.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WHARF_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("wharf"))
}

impl ContentCache {
    /// The cache of the context folder `root` (nothing remembered when there is none).
    pub fn load(root: &Path) -> ContentCache {
        let path = cache_dir().map(|dir| {
            let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            let key = blake3::hash(root.as_os_str().as_encoded_bytes()).to_hex();
            dir.join("content").join(format!("{}.json", &key[..32]))
        });
        let old = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
            .filter(|f| f.version == VERSION)
            .map(|f| f.files)
            .unwrap_or_default();
        ContentCache {
            path,
            old,
            new: HashMap::new(),
            started: SystemTime::now(),
            changed: false,
        }
    }

    /// The remembered digest and length of the file at `path`, if `stamp` still describes it.
    pub fn get(&mut self, path: &Path, stamp: &Stamp) -> Option<([u8; 32], u64)> {
        let key = path.to_str()?;
        let r = self.old.get(key).filter(|r| r.stamp == *stamp)?;
        let digest = blake3::Hash::from_hex(&r.blake3).ok()?;
        let found = (*digest.as_bytes(), r.len);
        self.new.insert(key.to_string(), r.clone());
        Some(found)
    }

    /// Remembers what was just read of the file at `path` (with `stamp` taken before reading),
    /// when it was last written long enough ago.
    pub fn put(&mut self, path: &Path, stamp: &Stamp, digest: &[u8; 32], len: u64) {
        let Some(key) = path.to_str() else { return };
        if !stamp.settled(self.started) || len != stamp.size {
            return;
        }
        self.changed = true;
        self.new.insert(
            key.to_string(),
            Remembered {
                stamp: *stamp,
                blake3: blake3::Hash::from_bytes(*digest).to_hex().to_string(),
                len,
            },
        );
    }

    /// Writes this run's digests (and only those: a file gone is forgotten) when they differ
    /// from what was remembered. Written to a new file and renamed, so that a reader never
    /// sees half of it; a failure only costs the next run its reads.
    pub fn save(self) {
        let Some(path) = self.path else { return };
        if !self.changed && self.new.len() == self.old.len() {
            return;
        }
        let file = CacheFile {
            version: VERSION,
            files: self.new,
        };
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::DirBuilderExt;
            let dir = path.parent().unwrap_or(Path::new("."));
            // The paths of the user's files are nobody else's business.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            let tmp = dir.join(format!(
                ".{}.{}.tmp",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::write(&tmp, serde_json::to_vec(&file)?)?;
            std::fs::rename(&tmp, &path).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        };
        if let Err(e) = write() {
            tracing::debug!("content digests not remembered in {}: {e}", path.display());
        }
    }
}

/// How long a context's cache file may go unwritten before [`prune`] removes it.
pub const UNUSED: Duration = Duration::from_secs(30 * 24 * 3600);

/// Removes the cache files of contexts not hashed with a change for [`UNUSED`] (a folder
/// deleted since, a checkout moved): each is small, but a machine that runs many projects, or
/// their tests, would gather them without end. A file still in use is written again by its
/// next run that reads a file.
pub fn prune() {
    let Some(dir) = cache_dir().map(|d| d.join("content")) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > UNUSED));
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(mtime_s: i64, ctime_s: i64) -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: i128::from(mtime_s) * 1_000_000_000,
            ctime_ns: i128::from(ctime_s) * 1_000_000_000,
        }
    }

    #[test]
    fn a_file_written_just_now_is_not_remembered() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(stamp(990, 990).settled(now));
        assert!(!stamp(999, 990).settled(now));
        assert!(!stamp(990, 999).settled(now));
        assert!(!stamp(990, 1_000).settled(now));
    }
}
