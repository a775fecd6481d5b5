//! Walking a context folder the way Docker's clients do.
//!
//! Two walkers send contexts to the daemon and they differ in small ways, so both are
//! reproduced:
//!
//! - BuildKit (what `docker compose build` and `docker buildx` use) walks with fsutil's
//!   `filterFS`: an excluded folder is skipped whole unless a `!` exception could re-include
//!   something under it (with wildcards in an exception, every folder is walked), and an excluded
//!   folder that ends up holding a re-included file is sent too, with its own mode, just before
//!   that file.
//! - The classic builder path (the docker CLI's tar, go-archive's `TarWithOptions`) descends
//!   into an excluded folder only when an exception's text starts with that folder's path, and
//!   never sends the excluded folder itself (the daemon creates it when unpacking).
//!
//! Both visit each folder's entries sorted by name (bytes), parents before children, never
//! follow symlinks, and report a hard link to a file seen earlier in the walk as a link to it
//! (for the classic builder, a second name of a symlink's inode too).
//!
//! BuildKit's walk also takes include patterns (what the daemon asks for when it wants only a
//! few files, such as the `.dockerignore`): a path must match one of them to be sent, and a
//! folder no include pattern can reach into is not walked.

use super::ignore::{MatchInfo, PatternMatcher};
use super::ContextError;
use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which client's walk to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkRules {
    /// BuildKit's context transfer (fsutil).
    BuildKit,
    /// The docker CLI's tar for the classic builder (go-archive).
    Classic,
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link, stored as a link: its target is never read.
    Symlink {
        target: PathBuf,
    },
    /// A hard link to an earlier entry (its context-relative path).
    Hardlink {
        target: String,
    },
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

/// Where a regular file's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Disk(PathBuf),
    Memory(Arc<[u8]>),
    Empty,
}

/// One entry of the context as it is sent to the daemon.
///
/// Ownership is what Docker sends: root (0:0) for everything — the CLI's tar forces it and
/// BuildKit's client resets it before sending — so the owner on disk never reaches the image.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Slash-separated, relative to the context root, without a trailing slash.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky (`0o7777` mask).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Bytes of content (regular files only; 0 for everything else).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// The sub-second part of the modification time, in nanoseconds.
    pub mtime_nsec: u32,
    pub(crate) source: Source,
    /// The path's bytes when they are not UTF-8 (see [`matching_name`]): what the archive
    /// holds, while `path` is the form patterns are matched against.
    pub(crate) raw_path: Option<OsString>,
    /// Likewise for a hard link's target.
    pub(crate) raw_link: Option<OsString>,
    /// What the file system said of a file on disk when it was found: its remembered content
    /// digest holds while this does ([`crate::content_cache`]).
    pub(crate) stamp: Option<crate::content_cache::Stamp>,
}

impl Entry {
    /// The path's own bytes. They differ from [`Entry::path`], the form patterns are matched
    /// against, only for a name that is not UTF-8: what identifies the entry is these.
    pub fn path_bytes(&self) -> &[u8] {
        match &self.raw_path {
            Some(raw) => raw.as_bytes(),
            None => self.path.as_bytes(),
        }
    }

    pub(crate) fn in_memory(path: &str, content: Arc<[u8]>, mode: u32, mtime: i64) -> Entry {
        Entry {
            path: path.to_string(),
            kind: EntryKind::File,
            mode,
            uid: 0,
            gid: 0,
            size: content.len() as u64,
            mtime,
            mtime_nsec: 0,
            source: Source::Memory(content),
            raw_path: None,
            raw_link: None,
            stamp: None,
        }
    }
}

struct Pending {
    entry: Entry,
    sent: bool,
}

/// Match results of a folder, handed down to its entries.
#[derive(Default)]
struct ParentInfo {
    exclude: MatchInfo,
    include: MatchInfo,
}

pub(crate) struct Walker<'a, F> {
    root: &'a Path,
    matcher: &'a PatternMatcher,
    /// BuildKit only: when set, only paths matching these patterns are sent.
    include: Option<&'a PatternMatcher>,
    rules: WalkRules,
    /// BuildKit: no exception has glob characters beyond a trailing `/*` or `/**`, so an
    /// excluded folder can be skipped unless an exception names a path under it.
    only_prefix_exceptions: bool,
    /// BuildKit: likewise for include patterns and folders none of them matches.
    only_prefix_includes: bool,
    /// The first path of each multiply-linked inode, and its bytes when not UTF-8.
    seen_inodes: HashMap<(u64, u64), (String, Option<OsString>)>,
    visit: F,
}

impl<'a, F> Walker<'a, F>
where
    F: FnMut(Entry) -> Result<(), ContextError>,
{
    pub(crate) fn new(
        root: &'a Path,
        matcher: &'a PatternMatcher,
        rules: WalkRules,
        visit: F,
    ) -> Self {
        let only_prefix_exceptions = matcher
            .patterns()
            .iter()
            .all(|p| !p.exclusion() || !has_glob(p.as_str()));
        Walker {
            root,
            matcher,
            include: None,
            rules,
            only_prefix_exceptions,
            only_prefix_includes: true,
            seen_inodes: HashMap::new(),
            visit,
        }
    }

    /// Sends only the paths matching `include` (fsutil's include patterns; BuildKit rules).
    pub(crate) fn with_includes(mut self, include: Option<&'a PatternMatcher>) -> Self {
        self.only_prefix_includes = include.is_none_or(|m| {
            m.patterns()
                .iter()
                .all(|p| p.exclusion() || !has_glob(p.as_str()))
        });
        self.include = include;
        self
    }

    pub(crate) fn run(mut self) -> Result<(), ContextError> {
        let mut pending = Vec::new();
        let root = self.root.to_path_buf();
        self.walk_dir(&root, "", &ParentInfo::default(), false, &mut pending)
    }

    fn walk_dir(
        &mut self,
        dir: &Path,
        rel: &str,
        parent_info: &ParentInfo,
        dir_skipped: bool,
        pending: &mut Vec<Pending>,
    ) -> Result<(), ContextError> {
        let read = match fs::read_dir(dir) {
            Ok(r) => r,
            // A folder that vanished since it was listed; fsutil skips it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // fsutil ignores a permission error on a folder that is not sent anyway.
            Err(e) if dir_skipped && e.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
            Err(e) => return Err(ContextError::io(dir, e)),
        };
        let mut names = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| ContextError::io(dir, e))?;
            names.push(entry.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));

        for name in names {
            let abs = dir.join(&name);
            let name = match name.to_str() {
                Some(n) => Cow::Borrowed(n),
                None => Cow::Owned(matching_name(name.as_bytes())),
            };
            let path = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let meta = match fs::symlink_metadata(&abs) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ContextError::io(&abs, e)),
            };
            let is_dir = meta.is_dir();
            let pattern_err = |source| ContextError::Pattern { file: None, source };

            // fsutil's filterFS: a path is skipped when no include pattern matches it or an
            // exclude pattern does; a skipped folder is still walked when something under it
            // could be sent.
            let mut skip = false;
            let mut descend = is_dir;
            let mut info = ParentInfo::default();
            if let Some(include) = self.include {
                let (included, inc_info) = include
                    .matches_using_parent_results(&path, &parent_info.include)
                    .map_err(pattern_err)?;
                info.include = inc_info;
                if !included {
                    skip = true;
                    descend &= self.may_include_under(include, &path);
                }
            }
            if !self.matcher.is_empty() {
                let (excluded, exc_info) = self
                    .matcher
                    .matches_using_parent_results(&path, &parent_info.exclude)
                    .map_err(pattern_err)?;
                info.exclude = exc_info;
                if excluded {
                    skip = true;
                    descend &= self.may_reinclude_under(&path);
                }
            }

            if skip {
                if !descend {
                    continue;
                }
                if self.rules == WalkRules::BuildKit {
                    let entry = self.entry(&abs, path.clone(), &meta)?;
                    pending.push(Pending { entry, sent: false });
                    self.walk_dir(&abs, &path, &info, true, pending)?;
                    pending.pop();
                } else {
                    self.walk_dir(&abs, &path, &info, true, pending)?;
                }
                continue;
            }

            let Some(entry) = self.kept_entry(&abs, path.clone(), &meta)? else {
                continue;
            };
            // A kept entry under skipped folders: send those folders first (BuildKit).
            for p in pending.iter_mut().filter(|p| !p.sent) {
                p.sent = true;
                send(self.rules, self.root, &mut self.visit, p.entry.clone())?;
            }
            if is_dir {
                send(self.rules, self.root, &mut self.visit, entry.clone())?;
                pending.push(Pending { entry, sent: true });
                self.walk_dir(&abs, &path, &info, false, pending)?;
                pending.pop();
            } else {
                send(self.rules, self.root, &mut self.visit, entry)?;
            }
        }
        Ok(())
    }

    /// Whether a folder no include pattern matches must still be walked because one may match
    /// something under it (fsutil).
    fn may_include_under(&self, include: &PatternMatcher, path: &str) -> bool {
        if !self.only_prefix_includes {
            return true;
        }
        let dir_slash = format!("{path}/");
        include.patterns().iter().any(|p| {
            !p.exclusion()
                && format!("{}/", without_trailing_glob(p.as_str())).starts_with(&dir_slash)
        })
    }

    /// Whether an excluded folder must still be walked because an exception may re-include
    /// something under it.
    fn may_reinclude_under(&self, path: &str) -> bool {
        if !self.matcher.exclusions() {
            return false;
        }
        let dir_slash = format!("{path}/");
        match self.rules {
            WalkRules::BuildKit => {
                !self.only_prefix_exceptions
                    || self.matcher.patterns().iter().any(|p| {
                        p.exclusion()
                            && format!("{}/", without_trailing_glob(p.as_str()))
                                .starts_with(&dir_slash)
                    })
            }
            WalkRules::Classic => self
                .matcher
                .patterns()
                .iter()
                .any(|p| p.exclusion() && format!("{}/", p.as_str()).starts_with(&dir_slash)),
        }
    }

    /// The entry for a kept path, registering hard links. `None` for sockets, which neither
    /// walker can send.
    fn kept_entry(
        &mut self,
        abs: &Path,
        path: String,
        meta: &fs::Metadata,
    ) -> Result<Option<Entry>, ContextError> {
        let ft = meta.file_type();
        if ft.is_socket() {
            if self.rules == WalkRules::BuildKit {
                // fsutil clears the socket bit: the receiver gets an empty regular file.
                let mut entry = self.entry(abs, path, meta)?;
                entry.kind = EntryKind::File;
                return Ok(Some(entry));
            }
            tracing::warn!(path = %path, "skipping a socket in the build context");
            return Ok(None);
        }
        let mut entry = self.entry(abs, path, meta)?;
        // Both clients pair every non-folder with an earlier path of the same inode. fsutil
        // then gives a symlink its target again, so it stays a link; go-archive sends a second
        // name of a symlink as a hard link to the first.
        let linkable = !ft.is_dir() && (self.rules == WalkRules::Classic || !ft.is_symlink());
        if linkable && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            match self.seen_inodes.get(&key) {
                Some((first, raw_first)) => {
                    entry.kind = EntryKind::Hardlink {
                        target: first.clone(),
                    };
                    entry.raw_link = raw_first.clone();
                    entry.size = 0;
                    entry.source = Source::Empty;
                }
                None => {
                    self.seen_inodes
                        .insert(key, (entry.path.clone(), entry.raw_path.clone()));
                }
            }
        }
        Ok(Some(entry))
    }

    fn entry(&self, abs: &Path, path: String, meta: &fs::Metadata) -> Result<Entry, ContextError> {
        let ft = meta.file_type();
        let mut size = 0;
        let mut source = Source::Empty;
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            let target = fs::read_link(abs).map_err(|e| ContextError::io(abs, e))?;
            // Never sent mangled: the archive holds the bytes, a session cannot.
            if self.rules == WalkRules::BuildKit && target.to_str().is_none() {
                return Err(ContextError::NonUtf8LinkTarget {
                    path: abs.to_path_buf(),
                });
            }
            EntryKind::Symlink { target }
        } else if ft.is_file() {
            size = meta.len();
            source = Source::Disk(abs.to_path_buf());
            EntryKind::File
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else {
            let (major, minor) = dev_numbers(meta.rdev());
            if ft.is_char_device() {
                EntryKind::CharDevice { major, minor }
            } else {
                EntryKind::BlockDevice { major, minor }
            }
        };
        // Only a name that is not UTF-8 gets the replacement character in its matching form.
        let raw_path = path
            .contains(char::REPLACEMENT_CHARACTER)
            .then(|| abs.strip_prefix(self.root).ok())
            .flatten()
            .filter(|rel| rel.to_str().is_none())
            .map(|rel| rel.as_os_str().to_owned());
        Ok(Entry {
            path,
            kind,
            mode: meta.mode() & 0o7777,
            uid: 0,
            gid: 0,
            size,
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec() as u32,
            source,
            raw_path,
            raw_link: None,
            stamp: ft.is_file().then(|| crate::content_cache::Stamp::of(meta)),
        })
    }
}

/// Hands a kept entry to `visit`. BuildKit's file transfer carries names as protobuf strings,
/// which must be UTF-8: the docker clients fail on such a name only when they send it, so
/// wharf does too (an excluded one is matched like any other and left out).
fn send<F>(rules: WalkRules, root: &Path, visit: &mut F, entry: Entry) -> Result<(), ContextError>
where
    F: FnMut(Entry) -> Result<(), ContextError>,
{
    if let (WalkRules::BuildKit, Some(raw)) = (rules, &entry.raw_path) {
        return Err(ContextError::NonUtf8Name {
            path: root.join(raw),
        });
    }
    visit(entry)
}

/// The form of a file name that is not UTF-8 which patterns are matched against: each byte
/// that does not start a valid UTF-8 sequence becomes one U+FFFD, as Go decodes strings, so
/// `?` and `*` take such a byte as one character, as in the docker CLI's matcher (which matches
/// the bytes themselves). Rust's own lossy conversion may fold several bytes into one U+FFFD.
pub(crate) fn matching_name(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // Checked valid by `from_utf8` just above.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                rest = &after[1..];
            }
        }
    }
    out
}

/// Whether a pattern has glob characters beyond a trailing `/*` or `/**` (fsutil's check).
fn has_glob(pattern: &str) -> bool {
    without_trailing_glob(pattern).contains(['*', '[', ']', '?', '^', '\\'])
}

/// fsutil's `patternWithoutTrailingGlob`.
fn without_trailing_glob(p: &str) -> &str {
    let p = p.strip_suffix("/**").unwrap_or(p);
    p.strip_suffix("/*").unwrap_or(p)
}

/// Linux `major()`/`minor()` of a device number, as fsutil and Go's tar compute them.
fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}
