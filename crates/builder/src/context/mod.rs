//! The build context: which files of a context folder the daemon gets, and how.
//!
//! wharf assembles local contexts itself, as the docker clients do. The classic builder gets
//! the context as a tar archive; BuildKit reads it, and the Dockerfile, through a session
//! (see [`crate::session`]), asking for what it needs with filters:
//!
//! - [`ignore`] reads `.dockerignore` files and matches paths exactly as Docker does.
//! - [`filter`] turns what BuildKit asks for (include/exclude patterns, follow paths) into
//!   matchers, as BuildKit's client does.
//! - [`walk`] lists the folder the way BuildKit (or, for the classic builder, the docker CLI)
//!   does, applying those patterns.
//! - [`tar`] writes the entries as an archive, streamed through a bounded channel.
//!
//! [`Context::prepare`] ties them together for one build: it picks the ignore file (BuildKit
//! reads `<Dockerfile>.dockerignore` beside the Dockerfile in place of the context's
//! `.dockerignore`), decides where the Dockerfile goes in the archive and what name to give the
//! daemon for it, and then serves the archive ([`Context::stream`]), or the list of entries
//! ([`Context::for_each_entry`]), or both at once to a sink ([`Context::stream_with`]). For a
//! session it serves the two folders BuildKit reads: the context folder itself
//! ([`Context::walk_context_dir`]) and a folder holding only the Dockerfile
//! ([`Context::walk_dockerfile_dir`]).
//!
//! # How the daemon reads an uploaded context
//!
//! The daemon takes the Dockerfile from inside the archive, at the path given as the
//! `dockerfile` build option, so a Dockerfile that lives outside the context, or is inline, or
//! is excluded by the ignore file, still has to be in the archive:
//!
//! - The classic builder removes the Dockerfile and `.dockerignore` from the context before the
//!   build when the archive's `.dockerignore` lists them. This module does what the docker CLI
//!   does: it keeps both in the archive, and a Dockerfile from elsewhere is added under a
//!   generated name that is appended to the archive's `.dockerignore`.
//! - BuildKit (API 1.41 engines and later) unpacks the archive as the context and does not
//!   apply any ignore file to it, so the archive is filtered here, and a Dockerfile that has to
//!   be added is visible to `COPY . …` in the image. docker compose avoids that by sending the
//!   Dockerfile through the BuildKit session rather than in the context, and so does wharf: the
//!   archive is only what a BuildKit build gets when the caller asks for a plain upload.
//!
//! # How BuildKit reads a context through a session
//!
//! The daemon asks for the `dockerfile` folder (the Dockerfile and `<Dockerfile>.dockerignore`,
//! by name), then for `.dockerignore` in the `context` folder, reads the ignore file that
//! applies and asks for the `context` folder again with its patterns as exclude patterns, which
//! the client applies while walking. The Dockerfile travels in its own folder: it is in the
//! context only when the context folder holds it and the patterns keep it, as with compose.

pub mod filter;
pub mod ignore;
pub mod tar;
pub mod walk;

mod goregex;

pub use self::filter::Filter;
pub use self::ignore::{PatternError, PatternMatcher};
pub use self::tar::{EntrySink, TarStream};
pub use self::walk::{Entry, EntryKind, WalkRules};

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use wharf_compose::files::{self, Accept};
use wharf_compose::Dockerfile;

use crate::builder_kind::BuilderKind as Builder;

/// Why a context could not be prepared or sent.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context {path}: {source}")]
    ContextDir { path: PathBuf, source: io::Error },
    #[error("build context {path} is not a folder")]
    NotADir { path: PathBuf },
    #[error("cannot find the Dockerfile {path}")]
    DockerfileNotFound { path: PathBuf },
    #[error("{}: {source}", file.as_ref().map(|f| f.display().to_string()).unwrap_or_else(|| "ignore patterns".into()))]
    Pattern {
        file: Option<PathBuf>,
        source: PatternError,
    },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(transparent)]
    File(#[from] files::FileError),
    #[error("{path}: the file name is not valid UTF-8, which BuildKit's file transfer cannot carry (docker compose fails on it too): rename it, or build with the classic builder")]
    NonUtf8Name { path: PathBuf },
    #[error("{path}: the link's target is not valid UTF-8, which BuildKit's file transfer cannot carry (docker compose fails on it too): point it elsewhere, or build with the classic builder")]
    NonUtf8LinkTarget { path: PathBuf },
    #[error("{path} changed size while it was being sent")]
    Changed { path: PathBuf },
    #[error("context entry sink: {0}")]
    Sink(io::Error),
    #[error("build context stream: {0}")]
    Stream(io::Error),
}

impl ContextError {
    pub(crate) fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        ContextError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Name of the context's own ignore file.
pub const DOCKERIGNORE: &str = ".dockerignore";

/// A local build context, ready to be sent.
///
/// Cheap to clone; every method reads the folder afresh.
#[derive(Debug, Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    builder: Builder,
    matcher: PatternMatcher,
    ignore_file: Option<PathBuf>,
    dockerfile_name: String,
    /// Entries the archive must hold whatever the patterns say, in place of what the walk
    /// finds at the same path (or added at the end when the walk has none there).
    forced: Vec<walk::Entry>,
    /// The Dockerfile as a BuildKit session serves it, in a folder of its own.
    session_dockerfile: SessionDockerfile,
}

/// The `dockerfile` folder of a BuildKit session.
#[derive(Debug)]
struct SessionDockerfile {
    /// The file's name there: the `dockerfile` build option of a session build.
    name: String,
    content: DockerfileContent,
    /// `<name>.dockerignore`, when it is the ignore file that applies (BuildKit reads it from
    /// this folder).
    ignore_file: Option<PathBuf>,
    /// The folder the Dockerfile is in on disk, which the session serves as BuildKit's clients
    /// do (`None` for a Dockerfile wharf made: inline or rewritten).
    dir: Option<PathBuf>,
}

#[derive(Debug)]
enum DockerfileContent {
    /// The file on disk (symlinks resolved).
    Disk(PathBuf),
    /// `dockerfile_inline`, and when it was made (its modification time for the daemon, which
    /// compares times to tell whether a file changed since the last build).
    Inline(Arc<[u8]>, SystemTime),
}

impl Context {
    /// Prepares the context folder `dir` for a build of `dockerfile` (`None`: the default
    /// `Dockerfile` of the context) by `builder`, which reads contexts its own way (see the
    /// module docs).
    pub fn prepare(
        dir: &Path,
        dockerfile: Option<&Dockerfile>,
        builder: Builder,
    ) -> Result<Context, ContextError> {
        Self::prepare_with(dir, dockerfile, builder, None)
    }

    /// Like [`Context::prepare`], but the daemon gets `text` in place of the Dockerfile's own
    /// content (named contexts rewrite it, see [`crate::named_contexts`]). Everything else
    /// still follows from where the Dockerfile is: its name, its `<Dockerfile>.dockerignore`.
    /// The context's files are untouched: the Dockerfile, when it is one of them, is sent as
    /// it is on disk, and `text` travels apart, as a Dockerfile from outside the context does.
    pub fn prepare_rewritten(
        dir: &Path,
        dockerfile: Option<&Dockerfile>,
        builder: Builder,
        text: &str,
    ) -> Result<Context, ContextError> {
        Self::prepare_with(dir, dockerfile, builder, Some(Arc::from(text.as_bytes())))
    }

    fn prepare_with(
        dir: &Path,
        dockerfile: Option<&Dockerfile>,
        builder: Builder,
        rewritten: Option<Arc<[u8]>>,
    ) -> Result<Context, ContextError> {
        let root = fs::canonicalize(dir).map_err(|source| ContextError::ContextDir {
            path: dir.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(ContextError::NotADir {
                path: dir.to_path_buf(),
            });
        }

        let default_path;
        let dockerfile = match dockerfile {
            Some(d) => d,
            None => {
                default_path = Dockerfile::Path(root.join("Dockerfile"));
                &default_path
            }
        };

        // Where the Dockerfile is, and where the BuildKit-specific ignore file would be.
        let session_name;
        let session_content;
        let mut session_dir = None;
        let (location, specific_ignore) = match dockerfile {
            Dockerfile::Inline(text) => {
                let content: Arc<[u8]> = rewritten
                    .clone()
                    .unwrap_or_else(|| Arc::from(text.as_bytes()));
                // The name buildx gives an inline Dockerfile.
                session_name = "Dockerfile".to_string();
                session_content = DockerfileContent::Inline(content.clone(), SystemTime::now());
                (DockerfileAt::Outside(content), None)
            }
            Dockerfile::Path(p) => {
                let p = if p.is_absolute() {
                    p.clone()
                } else {
                    root.join(p)
                };
                let dir = p.parent().unwrap_or(Path::new("/"));
                let mut name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // Like buildx: `Dockerfile` falls back to `dockerfile` when only that exists.
                if name == "Dockerfile"
                    && !dir.join("Dockerfile").exists()
                    && dir.join("dockerfile").exists()
                {
                    name = "dockerfile".into();
                }
                let file = dir.join(&name);
                let resolved = fs::canonicalize(&file)
                    .map_err(|_| ContextError::DockerfileNotFound { path: p.clone() })?;
                if resolved.is_dir() {
                    return Err(ContextError::DockerfileNotFound { path: p.clone() });
                }
                // A FIFO or a device would stall or never end when it is read.
                files::check(&file, Accept::RegularFile, files::MAX_TEXT_FILE)?;
                let specific = dir.join(format!("{name}.dockerignore"));
                if let Some(text) = &rewritten {
                    session_name = name;
                    session_content = DockerfileContent::Inline(text.clone(), SystemTime::now());
                    (DockerfileAt::Outside(text.clone()), Some(specific))
                } else {
                    session_content = DockerfileContent::Disk(resolved.clone());
                    session_dir = Some(dir.to_path_buf());
                    // Where the daemon can read it inside the archive. BuildKit's clients name it
                    // by its folder and file name; the docker CLI by its path with every symlink
                    // resolved. Either way the file it leads to must be inside the context, or the
                    // daemon could not read it from the archive.
                    let rel_of = |p: &Path| {
                        p.strip_prefix(&root)
                            .ok()
                            .and_then(|r| r.to_str().map(str::to_string))
                    };
                    let in_context = match (builder, rel_of(&resolved)) {
                        (_, None) => None,
                        (Builder::Classic, Some(rel)) => Some(rel),
                        (Builder::BuildKit, Some(_)) => fs::canonicalize(dir)
                            .ok()
                            .and_then(|d| rel_of(&d.join(&name))),
                    };
                    let at = match in_context {
                        Some(rel) => DockerfileAt::Inside(rel),
                        None => {
                            let content = read_build_file(&resolved)?;
                            DockerfileAt::Outside(Arc::from(content))
                        }
                    };
                    session_name = name;
                    (at, Some(specific))
                }
            }
        };

        // The ignore file: BuildKit lets `<Dockerfile>.dockerignore` replace `.dockerignore`.
        // Its daemon reads either through the session, so only when it is a file there: a
        // symlink leading out of its folder arrives as a dangling link, as good as no file.
        let context_ignore = root.join(DOCKERIGNORE);
        if builder == Builder::BuildKit {
            // Left to the daemon, a FIFO or a device would stall or never end there.
            for candidate in specific_ignore.iter().chain([&context_ignore]) {
                special_file(candidate)?;
            }
        }
        let specific_ignore = specific_ignore.filter(|s| match (&session_dir, s.parent()) {
            (Some(dir), _) => file_within(dir, s),
            (None, Some(dir)) => file_within(dir, s),
            (None, None) => false,
        });
        let ignore_file = match (builder, &specific_ignore) {
            (Builder::BuildKit, Some(s)) => Some(s.clone()),
            (Builder::BuildKit, _) if file_within(&root, &context_ignore) => {
                Some(context_ignore.clone())
            }
            // The docker CLI reads `.dockerignore` whenever something is there (a dangling link
            // counts as nothing): a folder, say, is an error it stops with, where BuildKit's
            // daemon reads no ignore file.
            (Builder::Classic, _) if context_ignore.exists() => Some(context_ignore.clone()),
            _ => None,
        };
        let session_dockerfile = SessionDockerfile {
            name: session_name,
            content: session_content,
            ignore_file: specific_ignore,
            dir: session_dir,
        };
        let mut patterns = match &ignore_file {
            Some(f) => {
                let content = read_build_file(f)?;
                ignore::read_patterns(&content).map_err(|source| ContextError::Pattern {
                    file: Some(f.clone()),
                    source,
                })?
            }
            None => Vec::new(),
        };
        let pattern_err = |source| ContextError::Pattern {
            file: ignore_file.clone(),
            source,
        };
        let matcher = PatternMatcher::new(&patterns).map_err(pattern_err)?;

        let mut forced = Vec::new();
        let dockerfile_name;
        match (builder, location) {
            (Builder::BuildKit, DockerfileAt::Inside(rel)) => {
                // The daemon reads it from the archive even when the patterns exclude it.
                // Forcing it always is harmless: a forced entry takes the place of the walk's.
                forced.push(disk_entry(&root, &rel)?);
                dockerfile_name = rel;
            }
            (Builder::BuildKit, DockerfileAt::Outside(content)) => {
                dockerfile_name = generated_name(&root, &content);
                forced.push(walk::Entry::in_memory(
                    &dockerfile_name,
                    content,
                    0o600,
                    now(),
                ));
            }
            (Builder::Classic, at) => {
                // The docker CLI's TrimBuildFilesFromExcludes: keep both files in the archive;
                // the daemon drops them again if `.dockerignore` lists them.
                if matcher
                    .matches_deprecated(DOCKERIGNORE)
                    .map_err(pattern_err)?
                {
                    patterns.push(format!("!{DOCKERIGNORE}"));
                }
                match at {
                    DockerfileAt::Inside(rel) => {
                        if matcher.matches_deprecated(&rel).map_err(pattern_err)? {
                            patterns.push(format!("!{rel}"));
                        }
                        dockerfile_name = rel;
                    }
                    DockerfileAt::Outside(content) => {
                        // AddDockerfileToBuildContext: a generated name, listed in the
                        // archive's `.dockerignore` so that the daemon removes it.
                        dockerfile_name = generated_name(&root, &content);
                        let mtime = now();
                        forced.push(walk::Entry::in_memory(
                            &dockerfile_name,
                            content,
                            0o600,
                            mtime,
                        ));
                        let listed = format!("\n{}\n", ignore::escape_pattern(&dockerfile_name));
                        let entry = match read_build_file(&context_ignore) {
                            Ok(mut existing) => {
                                let mut e = disk_entry(&root, DOCKERIGNORE)?;
                                existing.extend_from_slice(listed.as_bytes());
                                e.size = existing.len() as u64;
                                e.source = walk::Source::Memory(Arc::from(existing));
                                e
                            }
                            Err(_) => walk::Entry::in_memory(
                                DOCKERIGNORE,
                                Arc::from(format!("{DOCKERIGNORE}{listed}").into_bytes()),
                                0o600,
                                mtime,
                            ),
                        };
                        forced.push(entry);
                    }
                }
            }
        }
        let matcher = PatternMatcher::new(&patterns).map_err(pattern_err)?;

        Ok(Context {
            inner: Arc::new(Inner {
                root,
                builder,
                matcher,
                ignore_file,
                dockerfile_name,
                forced,
                session_dockerfile,
            }),
        })
    }

    /// The builder this context was prepared for.
    pub fn builder(&self) -> Builder {
        self.inner.builder
    }

    /// The context folder (symlinks resolved).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The Dockerfile's path inside the archive: the `dockerfile` build option.
    pub fn dockerfile(&self) -> &str {
        &self.inner.dockerfile_name
    }

    /// The folder a BuildKit session serves as its `dockerfile` folder, when it is one on disk
    /// (symlinks in it are resolved against it); `None` when wharf makes that folder.
    pub fn session_dockerfile_dir(&self) -> Option<&Path> {
        self.inner.session_dockerfile.dir.as_deref()
    }

    /// The Dockerfile's name in the `dockerfile` folder of a BuildKit session: the
    /// `dockerfile` build option of a session build.
    pub fn session_dockerfile(&self) -> &str {
        &self.inner.session_dockerfile.name
    }

    /// The ignore file whose patterns apply, if any.
    pub fn ignore_file(&self) -> Option<&Path> {
        self.inner.ignore_file.as_deref()
    }

    /// The patterns the walk applies.
    pub fn patterns(&self) -> &PatternMatcher {
        &self.inner.matcher
    }

    /// The Dockerfile's bytes, as the build reads them.
    pub fn dockerfile_content(&self) -> Result<Vec<u8>, ContextError> {
        match &self.inner.session_dockerfile.content {
            DockerfileContent::Disk(path) => read_build_file(path),
            DockerfileContent::Inline(bytes, _) => Ok(bytes.to_vec()),
        }
    }

    /// Calls `visit` with every entry of the archive, in archive order, without reading any
    /// file's content.
    pub fn for_each_entry<F>(&self, mut visit: F) -> Result<(), ContextError>
    where
        F: FnMut(&Entry) -> Result<(), ContextError>,
    {
        self.entries(|e| visit(&e))
    }

    fn entries<F>(&self, mut visit: F) -> Result<(), ContextError>
    where
        F: FnMut(Entry) -> Result<(), ContextError>,
    {
        let inner = &self.inner;
        let rules = match inner.builder {
            Builder::BuildKit => WalkRules::BuildKit,
            Builder::Classic => WalkRules::Classic,
        };
        let mut done: HashSet<&str> = HashSet::new();
        walk::Walker::new(&inner.root, &inner.matcher, rules, |e: Entry| {
            match inner.forced.iter().find(|f| f.path == e.path) {
                Some(f) => {
                    done.insert(&f.path);
                    visit(f.clone())
                }
                None => visit(e),
            }
        })
        .run()?;
        for f in inner
            .forced
            .iter()
            .filter(|f| !done.contains(f.path.as_str()))
        {
            visit(f.clone())?;
        }
        Ok(())
    }

    /// Calls `visit` with every entry of the context folder a BuildKit session sends when the
    /// daemon asks for it with `filter` (blocking; no file is read).
    pub fn walk_context_dir<F>(&self, filter: &Filter, visit: F) -> Result<(), ContextError>
    where
        F: FnMut(Entry) -> Result<(), ContextError>,
    {
        walk::Walker::new(
            &self.inner.root,
            &filter.exclude,
            WalkRules::BuildKit,
            visit,
        )
        .with_includes(filter.include.as_ref())
        .run()
    }

    /// Calls `visit` with every entry of the session's `dockerfile` folder that `filter`
    /// admits: the Dockerfile under [`Context::session_dockerfile`], and its own ignore file
    /// when it has one. Nothing else from the Dockerfile's folder is ever sent.
    pub fn walk_dockerfile_dir<F>(&self, filter: &Filter, mut visit: F) -> Result<(), ContextError>
    where
        F: FnMut(Entry) -> Result<(), ContextError>,
    {
        let df = &self.inner.session_dockerfile;
        if let Some(dir) = &df.dir {
            // The Dockerfile's own folder, as the daemon asks for it: it names the Dockerfile
            // and its ignore file as follow paths, so a symlink travels as a link, with its
            // target only when that is in the folder too. Asked for everything, the session
            // still sends only those two.
            let own;
            let filter = if filter.include.is_some() {
                filter
            } else {
                let names = [df.name.clone(), format!("{}.dockerignore", df.name)];
                let mut f = Filter::new(Some(dir), &[], &[], &names)
                    .map_err(|source| ContextError::Pattern { file: None, source })?;
                f.exclude = filter.exclude.clone();
                own = f;
                &own
            };
            return walk::Walker::new(dir, &filter.exclude, WalkRules::BuildKit, visit)
                .with_includes(filter.include.as_ref())
                .run();
        }
        let mut entries = vec![match &df.content {
            DockerfileContent::Disk(path) => file_entry(&df.name, path)?,
            DockerfileContent::Inline(content, made) => {
                let since = made.duration_since(UNIX_EPOCH).unwrap_or_default();
                let mut e = Entry::in_memory(&df.name, content.clone(), 0o600, 0);
                e.mtime = since.as_secs() as i64;
                e.mtime_nsec = since.subsec_nanos();
                e
            }
        }];
        if let Some(ignore) = &df.ignore_file {
            entries.push(file_entry(&format!("{}.dockerignore", df.name), ignore)?);
        }
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        for e in entries {
            let admitted = filter
                .admits(&e.path)
                .map_err(|source| ContextError::Pattern { file: None, source })?;
            if admitted {
                visit(e)?;
            }
        }
        Ok(())
    }

    /// Writes the archive into `out` (blocking), showing every entry and file byte to `sink`.
    pub fn write_tar<W: io::Write>(
        &self,
        out: W,
        sink: &mut dyn EntrySink,
    ) -> Result<W, ContextError> {
        let mut builder = ::tar::Builder::new(out);
        builder.mode(::tar::HeaderMode::Complete);
        self.entries(|e| tar::append(&mut builder, &e, sink))?;
        sink.finish().map_err(ContextError::Sink)?;
        builder.into_inner().map_err(ContextError::Stream)
    }

    /// The archive as a stream of chunks, produced on a background thread as it is read.
    pub fn stream(&self) -> TarStream {
        self.stream_with(())
    }

    /// Like [`Context::stream`], showing every entry and file byte to `sink` on the way.
    pub fn stream_with<S: EntrySink + 'static>(&self, mut sink: S) -> TarStream {
        let ctx = self.clone();
        tar::spawn(move |w| ctx.write_tar(w, &mut sink).map(|_| ()))
    }
}

enum DockerfileAt {
    /// Path relative to the context root.
    Inside(String),
    Outside(Arc<[u8]>),
}

fn disk_entry(root: &Path, rel: &str) -> Result<Entry, ContextError> {
    use std::os::unix::fs::MetadataExt;
    let abs = root.join(rel);
    let meta = fs::symlink_metadata(&abs).map_err(|e| ContextError::io(&abs, e))?;
    let kind = if meta.file_type().is_symlink() {
        EntryKind::Symlink {
            target: fs::read_link(&abs).map_err(|e| ContextError::io(&abs, e))?,
        }
    } else {
        EntryKind::File
    };
    let is_file = kind == EntryKind::File;
    Ok(Entry {
        path: rel.to_string(),
        kind,
        mode: meta.mode() & 0o7777,
        uid: 0,
        gid: 0,
        size: if is_file { meta.len() } else { 0 },
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec() as u32,
        source: if is_file {
            walk::Source::Disk(abs)
        } else {
            walk::Source::Empty
        },
        raw_path: None,
        raw_link: None,
        stamp: is_file.then(|| crate::content_cache::Stamp::of(&meta)),
    })
}

/// Reads a Dockerfile or an ignore file: a regular file (a FIFO or a device would stall the
/// build or never end), of a sensible size.
fn read_build_file(path: &Path) -> Result<Vec<u8>, ContextError> {
    Ok(files::read(
        path,
        Accept::RegularFile,
        files::MAX_TEXT_FILE,
    )?)
}

/// Refuses a file that is there but is neither a regular file nor a folder (symlinks
/// followed): a FIFO, a device or a socket.
fn special_file(path: &Path) -> Result<(), ContextError> {
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => {
            Ok(files::check(path, Accept::RegularFile, files::MAX_TEXT_FILE).map(drop)?)
        }
        _ => Ok(()),
    }
}

/// Whether `file` leads to a regular file inside `dir`, symlinks resolved.
fn file_within(dir: &Path, file: &Path) -> bool {
    match (fs::canonicalize(dir), fs::canonicalize(file)) {
        (Ok(dir), Ok(file)) => file.starts_with(&dir) && file.is_file(),
        _ => false,
    }
}

/// A regular file named `name`, with the content and metadata of `path` (symlinks followed).
fn file_entry(name: &str, path: &Path) -> Result<Entry, ContextError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).map_err(|e| ContextError::io(path, e))?;
    Ok(Entry {
        path: name.to_string(),
        kind: EntryKind::File,
        mode: meta.mode() & 0o7777,
        uid: 0,
        gid: 0,
        size: meta.len(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec() as u32,
        source: walk::Source::Disk(path.to_path_buf()),
        raw_path: None,
        raw_link: None,
        stamp: Some(crate::content_cache::Stamp::of(&meta)),
    })
}

/// A name for a Dockerfile added to the archive: derived from its content, so that the same
/// Dockerfile gives the same context (and build cache), and checked against the context folder
/// so that it cannot replace a file of the context.
fn generated_name(root: &Path, content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let base = format!(".dockerfile.{}", &hex[..20]);
    let mut name = base.clone();
    let mut n = 1;
    while fs::symlink_metadata(root.join(&name)).is_ok() {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn listing(ctx: &Context) -> Vec<String> {
        let mut out = Vec::new();
        ctx.for_each_entry(|e| {
            out.push(match &e.kind {
                EntryKind::Dir => format!("{}/", e.path),
                EntryKind::Symlink { target } => format!("{} -> {}", e.path, target.display()),
                EntryKind::Hardlink { target } => format!("{} => {target}", e.path),
                _ => e.path.clone(),
            });
            Ok(())
        })
        .unwrap();
        out
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "Dockerfile", "FROM scratch\nCOPY . /ctx\n");
        write(r, "b.txt", "b");
        write(r, "a.txt", "a");
        write(r, "docs/README.md", "readme");
        write(r, "docs/other.md", "other");
        write(r, "docs/deep/keep.md", "keep");
        write(r, "node_modules/x/y.js", "y");
        fs::create_dir_all(r.join("empty")).unwrap();
        symlink("../../etc/passwd", r.join("escape")).unwrap();
        fs::hard_link(r.join("a.txt"), r.join("z-hard.txt")).unwrap();
        dir
    }

    #[test]
    fn walk_order_links_and_empty_folders() {
        let dir = tree();
        let ctx = Context::prepare(dir.path(), None, Builder::BuildKit).unwrap();
        assert_eq!(
            listing(&ctx),
            [
                "Dockerfile",
                "a.txt",
                "b.txt",
                "docs/",
                "docs/README.md",
                "docs/deep/",
                "docs/deep/keep.md",
                "docs/other.md",
                "empty/",
                "escape -> ../../etc/passwd",
                "node_modules/",
                "node_modules/x/",
                "node_modules/x/y.js",
                "z-hard.txt => a.txt",
            ]
        );
        assert_eq!(ctx.dockerfile(), "Dockerfile");
        assert!(ctx.ignore_file().is_none());
    }

    #[test]
    fn excluded_folder_with_reincluded_file() {
        let dir = tree();
        write(
            dir.path(),
            ".dockerignore",
            "docs\n!docs/deep/keep.md\nnode_modules\n",
        );
        fs::set_permissions(dir.path().join("docs"), fs::Permissions::from_mode(0o700)).unwrap();
        let ctx = Context::prepare(dir.path(), None, Builder::BuildKit).unwrap();
        let l = listing(&ctx);
        // BuildKit sends the excluded folders that hold a re-included file, with their mode.
        assert!(l.contains(&"docs/".to_string()), "{l:?}");
        assert!(l.contains(&"docs/deep/keep.md".to_string()));
        assert!(!l
            .iter()
            .any(|p| p.starts_with("docs/other") || p.starts_with("node_modules")));
        let mut docs_mode = 0;
        ctx.for_each_entry(|e| {
            if e.path == "docs" {
                docs_mode = e.mode;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(docs_mode, 0o700);

        // The classic CLI walks into `docs` but never sends the folder itself.
        let ctx = Context::prepare(dir.path(), None, Builder::Classic).unwrap();
        let l = listing(&ctx);
        assert!(!l.contains(&"docs/".to_string()), "{l:?}");
        assert!(l.contains(&"docs/deep/keep.md".to_string()));
    }

    #[test]
    fn wildcard_exception_walks_excluded_folders() {
        let dir = tree();
        write(dir.path(), ".dockerignore", "docs\n!**/keep.md\n");
        let bk = listing(&Context::prepare(dir.path(), None, Builder::BuildKit).unwrap());
        assert!(bk.contains(&"docs/deep/keep.md".to_string()), "{bk:?}");
        // go-archive only descends when an exception's text starts with the folder.
        let classic = listing(&Context::prepare(dir.path(), None, Builder::Classic).unwrap());
        assert!(
            !classic.iter().any(|p| p.starts_with("docs")),
            "{classic:?}"
        );
    }

    #[test]
    fn second_names_of_a_symlink_are_hard_links_for_the_classic_builder() {
        let dir = tree();
        symlink("a.txt", dir.path().join("link")).unwrap();
        fs::hard_link(dir.path().join("link"), dir.path().join("m-link")).unwrap();
        let bk = listing(&Context::prepare(dir.path(), None, Builder::BuildKit).unwrap());
        assert!(bk.contains(&"m-link -> a.txt".to_string()), "{bk:?}");
        let classic = listing(&Context::prepare(dir.path(), None, Builder::Classic).unwrap());
        assert!(
            classic.contains(&"link -> a.txt".to_string()),
            "{classic:?}"
        );
        assert!(
            classic.contains(&"m-link => link".to_string()),
            "{classic:?}"
        );
    }

    #[test]
    fn an_ignore_file_that_is_a_folder_stops_only_the_classic_builder() {
        let dir = tree();
        write(dir.path(), ".dockerignore/patterns", "a.txt\n");
        let bk = listing(&Context::prepare(dir.path(), None, Builder::BuildKit).unwrap());
        assert!(bk.contains(&".dockerignore/patterns".to_string()), "{bk:?}");
        let err = Context::prepare(dir.path(), None, Builder::Classic).unwrap_err();
        assert!(err.to_string().contains(".dockerignore"), "{err}");
        // A dangling link is no ignore file at all.
        fs::remove_dir_all(dir.path().join(".dockerignore")).unwrap();
        symlink("missing", dir.path().join(".dockerignore")).unwrap();
        let classic = listing(&Context::prepare(dir.path(), None, Builder::Classic).unwrap());
        assert!(classic.contains(&"a.txt".to_string()), "{classic:?}");
    }

    #[test]
    fn names_that_are_not_utf8_go_into_a_classic_archive_as_they_are() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let dir = tree();
        let raw = |b: &[u8]| dir.path().join(OsStr::from_bytes(b));
        fs::write(raw(b"lat\xe9n"), "x").unwrap();
        fs::write(raw(b"x\xe2\x82"), "x").unwrap();
        fs::write(raw(b"y\xe2\x82"), "x").unwrap();
        fs::create_dir(raw(b"d\xff")).unwrap();
        fs::write(raw(b"d\xff/inner"), "i").unwrap();
        fs::hard_link(raw(b"d\xff/inner"), dir.path().join("z-inner")).unwrap();
        // Go reads each stray byte as one character: `??` takes both bytes of a cut sequence.
        write(dir.path(), ".dockerignore", "lat?n\nx??\ny?\n");

        let err = Context::prepare(dir.path(), None, Builder::BuildKit)
            .and_then(|c| c.for_each_entry(|_| Ok(())))
            .unwrap_err();
        assert!(matches!(err, ContextError::NonUtf8Name { .. }), "{err}");
        // Excluded, such names are matched and left out, as BuildKit's clients do.
        write(
            dir.path(),
            "Dockerfile.dockerignore",
            "lat?n\nx??\ny??\nd?\n",
        );
        let mut sent = Vec::new();
        Context::prepare(dir.path(), None, Builder::BuildKit)
            .and_then(|c| {
                c.for_each_entry(|e| {
                    sent.push(e.path.clone());
                    Ok(())
                })
            })
            .unwrap();
        assert!(sent.contains(&"z-inner".to_string()), "{sent:?}");
        assert!(!sent.iter().any(|p| p.contains('\u{fffd}')), "{sent:?}");
        fs::remove_file(dir.path().join("Dockerfile.dockerignore")).unwrap();

        symlink(OsStr::from_bytes(b"t\xe9"), dir.path().join("link")).unwrap();

        let ctx = Context::prepare(dir.path(), None, Builder::Classic).unwrap();
        let tar = ctx.write_tar(Vec::new(), &mut ()).unwrap();
        let mut names = Vec::new();
        for entry in ::tar::Archive::new(&tar[..]).entries().unwrap() {
            let entry = entry.unwrap();
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            names.push((entry.path_bytes().into_owned(), link));
        }
        let mut listed = Vec::new();
        ctx.for_each_entry(|e| {
            listed.push(e.path_bytes().to_vec());
            Ok(())
        })
        .unwrap();
        assert!(listed.contains(&b"d\xff/inner".to_vec()), "{listed:?}");
        let has = |p: &[u8]| names.iter().any(|(n, _)| n == p);
        assert!(!has(b"lat\xe9n") && !has(b"x\xe2\x82"), "{names:?}");
        assert!(has(b"y\xe2\x82") && has(b"d\xff/inner"), "{names:?}");
        assert!(names.contains(&(b"z-inner".to_vec(), Some(b"d\xff/inner".to_vec()))));
        assert!(names.contains(&(b"link".to_vec(), Some(b"t\xe9".to_vec()))));
    }

    #[test]
    fn a_link_target_that_is_not_utf8_stops_only_a_buildkit_walk() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let dir = tree();
        symlink(OsStr::from_bytes(b"t\xe9"), dir.path().join("link")).unwrap();
        let walk =
            |b| Context::prepare(dir.path(), None, b).and_then(|c| c.for_each_entry(|_| Ok(())));
        let err = walk(Builder::BuildKit).unwrap_err();
        assert!(
            matches!(err, ContextError::NonUtf8LinkTarget { .. }),
            "{err}"
        );
        walk(Builder::Classic).unwrap();
        // Excluded, it is never read.
        write(dir.path(), ".dockerignore", "link\n");
        walk(Builder::BuildKit).unwrap();
    }

    #[test]
    fn dockerfile_specific_ignore_wins_for_buildkit_only() {
        let dir = tree();
        write(dir.path(), ".dockerignore", "a.txt\n");
        write(dir.path(), "Dockerfile.dockerignore", "b.txt\n");
        let ctx = Context::prepare(dir.path(), None, Builder::BuildKit).unwrap();
        assert_eq!(
            ctx.ignore_file(),
            Some(
                dir.path()
                    .canonicalize()
                    .unwrap()
                    .join("Dockerfile.dockerignore")
                    .as_path()
            )
        );
        let l = listing(&ctx);
        assert!(l.contains(&"a.txt".to_string()) && !l.contains(&"b.txt".to_string()));
        let l = listing(&Context::prepare(dir.path(), None, Builder::Classic).unwrap());
        assert!(!l.contains(&"a.txt".to_string()) && l.contains(&"b.txt".to_string()));
    }

    #[test]
    fn dockerfile_outside_the_context_is_added_under_a_generated_name() {
        let dir = tree();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "Dockerfile", "FROM scratch\n");
        let df = Dockerfile::Path(outside.path().join("Dockerfile"));
        let ctx = Context::prepare(dir.path(), Some(&df), Builder::BuildKit).unwrap();
        let name = ctx.dockerfile().to_string();
        assert!(name.starts_with(".dockerfile."), "{name}");
        assert_eq!(listing(&ctx).last(), Some(&name));
        // Same content, same name; a file of the context with that name is never replaced.
        write(dir.path(), &name, "mine");
        let again = Context::prepare(dir.path(), Some(&df), Builder::BuildKit).unwrap();
        assert_eq!(again.dockerfile(), format!("{name}-1"));

        // Classic: the name is appended to the archive's .dockerignore so the daemon drops it.
        let ctx = Context::prepare(dir.path(), Some(&df), Builder::Classic).unwrap();
        let tar = ctx.write_tar(Vec::new(), &mut ()).unwrap();
        let mut archive = ::tar::Archive::new(&tar[..]);
        let mut ignore = String::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().to_str() == Some(".dockerignore") {
                io::Read::read_to_string(&mut entry, &mut ignore).unwrap();
            }
        }
        assert_eq!(ignore, format!(".dockerignore\n{}\n", ctx.dockerfile()));
    }

    #[test]
    fn symlinked_dockerfile() {
        let dir = tree();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "real", "FROM scratch\n");
        write(dir.path(), "docker/Real.Dockerfile", "FROM scratch\n");
        symlink(
            outside.path().join("real"),
            dir.path().join("Out.Dockerfile"),
        )
        .unwrap();
        symlink("docker/Real.Dockerfile", dir.path().join("In.Dockerfile")).unwrap();
        let prep = |name: &str, b| {
            Context::prepare(
                dir.path(),
                Some(&Dockerfile::Path(dir.path().join(name))),
                b,
            )
            .unwrap()
            .dockerfile()
            .to_string()
        };
        // A link out of the context: its content is added, never the link.
        assert!(prep("Out.Dockerfile", Builder::BuildKit).starts_with(".dockerfile."));
        assert!(prep("Out.Dockerfile", Builder::Classic).starts_with(".dockerfile."));
        // A link inside: BuildKit names the link, the docker CLI its target.
        assert_eq!(prep("In.Dockerfile", Builder::BuildKit), "In.Dockerfile");
        assert_eq!(
            prep("In.Dockerfile", Builder::Classic),
            "docker/Real.Dockerfile"
        );
    }

    #[test]
    fn inline_dockerfile() {
        let dir = tree();
        let df = Dockerfile::Inline("FROM scratch\n".into());
        let ctx = Context::prepare(dir.path(), Some(&df), Builder::BuildKit).unwrap();
        assert!(ctx.dockerfile().starts_with(".dockerfile."));
    }

    #[test]
    fn missing_dockerfile_and_bad_patterns_are_errors() {
        let dir = tree();
        let df = Dockerfile::Path(dir.path().join("nope/Dockerfile"));
        assert!(matches!(
            Context::prepare(dir.path(), Some(&df), Builder::BuildKit),
            Err(ContextError::DockerfileNotFound { .. })
        ));
        write(dir.path(), ".dockerignore", "ok\n[unclosed\n");
        let err = Context::prepare(dir.path(), None, Builder::BuildKit).unwrap_err();
        assert!(err.to_string().contains(".dockerignore"), "{err}");
        assert!(err.to_string().contains("[unclosed"), "{err}");
    }

    fn session_listing(ctx: &Context, filter: &Filter, dockerfile_dir: bool) -> Vec<String> {
        let mut out = Vec::new();
        let visit = |e: Entry| {
            out.push(match &e.kind {
                EntryKind::Dir => format!("{}/", e.path),
                EntryKind::Symlink { target } => format!("{} -> {}", e.path, target.display()),
                _ => e.path.clone(),
            });
            Ok(())
        };
        if dockerfile_dir {
            ctx.walk_dockerfile_dir(filter, visit).unwrap();
        } else {
            ctx.walk_context_dir(filter, visit).unwrap();
        }
        out
    }

    #[test]
    fn session_context_folder_as_the_daemon_asks_for_it() {
        let dir = tree();
        write(dir.path(), "ignores/real", "docs\n!docs/deep\n");
        symlink("ignores/real", dir.path().join(".dockerignore")).unwrap();
        let ctx = Context::prepare(dir.path(), None, Builder::BuildKit).unwrap();
        let root = ctx.root().to_path_buf();

        // Loading `.dockerignore`: the link and what it points to, nothing else.
        let f = Filter::new(Some(&root), &[], &[], &[".dockerignore".into()]).unwrap();
        assert_eq!(
            session_listing(&ctx, &f, false),
            [".dockerignore -> ignores/real", "ignores/", "ignores/real"]
        );

        // The context with the ignore file's patterns: the Dockerfile is not forced in.
        let excludes = vec![
            "docs".to_string(),
            "!docs/deep".into(),
            "Dockerfile".into(),
            "ignores".into(),
        ];
        let f = Filter::new(Some(&root), &[], &excludes, &[]).unwrap();
        let l = session_listing(&ctx, &f, false);
        assert!(!l.contains(&"Dockerfile".to_string()), "{l:?}");
        assert!(!l.iter().any(|p| p.starts_with("ignores")), "{l:?}");
        assert!(l.contains(&"docs/".to_string()), "{l:?}");
        assert!(l.contains(&"docs/deep/keep.md".to_string()), "{l:?}");
        assert!(!l.contains(&"docs/other.md".to_string()), "{l:?}");

        // Include patterns: folders on the way to a match are sent, others not walked.
        let f = Filter::new(Some(&root), &["docs/deep/*.md".into()], &[], &[]).unwrap();
        assert_eq!(
            session_listing(&ctx, &f, false),
            ["docs/", "docs/deep/", "docs/deep/keep.md"]
        );
    }

    #[test]
    fn session_dockerfile_folder_holds_only_the_dockerfile_and_its_ignore_file() {
        let dir = tree();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "app.Dockerfile", "FROM scratch\n");
        write(outside.path(), "app.Dockerfile.dockerignore", "b.txt\n");
        write(outside.path(), "unrelated", "x");
        let df = Dockerfile::Path(outside.path().join("app.Dockerfile"));
        let ctx = Context::prepare(dir.path(), Some(&df), Builder::BuildKit).unwrap();
        assert_eq!(ctx.session_dockerfile(), "app.Dockerfile");
        let all = Filter::default();
        assert_eq!(
            session_listing(&ctx, &all, true),
            ["app.Dockerfile", "app.Dockerfile.dockerignore"]
        );
        let follow = [
            "app.Dockerfile".to_string(),
            "app.Dockerfile.dockerignore".into(),
        ];
        let f = Filter::new(None, &[], &[], &follow[..1]).unwrap();
        assert_eq!(session_listing(&ctx, &f, true), ["app.Dockerfile"]);
        let f = Filter::new(None, &[], &[], &follow).unwrap();
        assert_eq!(session_listing(&ctx, &f, true).len(), 2);

        // Inline: `Dockerfile`, dated when it was made (the daemon compares times).
        let df = Dockerfile::Inline("FROM scratch\n".into());
        let ctx = Context::prepare(dir.path(), Some(&df), Builder::BuildKit).unwrap();
        let mut seen = Vec::new();
        ctx.walk_dockerfile_dir(&all, |e| {
            seen.push((e.path.clone(), e.size, e.mtime));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].0.as_str(), seen[0].1), ("Dockerfile", 13));
        assert!(seen[0].2 > 1_600_000_000);
    }

    #[test]
    fn session_dockerfile_folder_sends_links_as_links() {
        let dir = tree();
        let r = dir.path();
        write(r, "docker/real.Dockerfile", "FROM scratch\n");
        write(r, "docker/local.ignore", "a.txt\n");
        write(r, "ignores/out.ignore", "b.txt\n");
        write(r, ".dockerignore", "docs\n");
        symlink(
            "../ignores/out.ignore",
            r.join("docker/app.Dockerfile.dockerignore"),
        )
        .unwrap();
        symlink("real.Dockerfile", r.join("docker/app.Dockerfile")).unwrap();
        let df = Dockerfile::Path(r.join("docker/app.Dockerfile"));
        let ctx = Context::prepare(r, Some(&df), Builder::BuildKit).unwrap();
        // The daemon cannot follow a link out of the folder: `.dockerignore` applies.
        assert_eq!(
            ctx.ignore_file(),
            Some(ctx.root().join(".dockerignore").as_path())
        );
        let follow = [
            "app.Dockerfile".to_string(),
            "app.Dockerfile.dockerignore".into(),
        ];
        let f = Filter::new(ctx.session_dockerfile_dir(), &[], &[], &follow).unwrap();
        assert_eq!(
            session_listing(&ctx, &f, true),
            [
                "app.Dockerfile -> real.Dockerfile",
                "app.Dockerfile.dockerignore -> ../ignores/out.ignore",
                "real.Dockerfile"
            ]
        );

        // A link within the folder: its target travels with it and is the ignore file.
        fs::remove_file(r.join("docker/app.Dockerfile.dockerignore")).unwrap();
        symlink("local.ignore", r.join("docker/app.Dockerfile.dockerignore")).unwrap();
        let ctx = Context::prepare(r, Some(&df), Builder::BuildKit).unwrap();
        assert!(ctx
            .ignore_file()
            .unwrap()
            .ends_with("docker/app.Dockerfile.dockerignore"));
        let f = Filter::new(ctx.session_dockerfile_dir(), &[], &[], &follow).unwrap();
        assert_eq!(session_listing(&ctx, &f, true).len(), 4);
        let l = listing(&ctx);
        assert!(!l.contains(&"a.txt".to_string()) && l.contains(&"b.txt".to_string()));
    }

    struct Count {
        entries: usize,
        bytes: u64,
    }
    impl EntrySink for Count {
        fn entry(&mut self, _: &Entry) -> io::Result<()> {
            self.entries += 1;
            Ok(())
        }
        fn data(&mut self, chunk: &[u8]) -> io::Result<()> {
            self.bytes += chunk.len() as u64;
            Ok(())
        }
    }

    #[test]
    fn tar_holds_links_as_links_and_root_ownership() {
        let dir = tree();
        std::os::unix::fs::lchown(dir.path().join("b.txt"), Some(1234), Some(5678)).unwrap();
        let ctx = Context::prepare(dir.path(), None, Builder::BuildKit).unwrap();
        let mut count = Count {
            entries: 0,
            bytes: 0,
        };
        let tar = ctx.write_tar(Vec::new(), &mut count).unwrap();
        assert_eq!(count.entries, 14);
        let mut archive = ::tar::Archive::new(&tar[..]);
        let mut file_bytes = 0;
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            match path.as_str() {
                "escape" => {
                    assert_eq!(h.entry_type(), ::tar::EntryType::Symlink);
                    assert_eq!(h.size().unwrap(), 0);
                    assert_eq!(
                        entry.link_name().unwrap().unwrap().to_str(),
                        Some("../../etc/passwd")
                    );
                }
                "z-hard.txt" => assert_eq!(h.entry_type(), ::tar::EntryType::Link),
                "empty/" => assert_eq!(h.entry_type(), ::tar::EntryType::Directory),
                _ => {}
            }
            if h.entry_type() == ::tar::EntryType::Regular {
                file_bytes += h.size().unwrap();
            }
        }
        assert_eq!(count.bytes, file_bytes);
    }

    #[test]
    fn stream_yields_the_same_archive() {
        use futures_util::StreamExt;
        let dir = tree();
        write(dir.path(), "big.bin", &"x".repeat(3 * 1024 * 1024 + 17));
        let ctx = Context::prepare(dir.path(), None, Builder::BuildKit).unwrap();
        let whole = ctx.write_tar(Vec::new(), &mut ()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let streamed = rt.block_on(async {
            let mut s = ctx.stream();
            let mut out = Vec::new();
            while let Some(chunk) = s.next().await {
                out.extend_from_slice(&chunk.unwrap());
            }
            out
        });
        assert_eq!(streamed, whole);
    }

    #[test]
    fn stream_ends_with_the_error() {
        use futures_util::StreamExt;
        let dir = tree();
        write(dir.path(), "secret", "s");
        fs::set_permissions(dir.path().join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
        // Root reads anything: make the file vanish instead, after the walk listed it.
        let ctx = Context::prepare(dir.path(), None, Builder::BuildKit).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir_path = dir.path().to_path_buf();
        let last = rt.block_on(async {
            let mut s = ctx.stream_with(RemoveOnEntry(dir_path.join("secret")));
            let mut last = None;
            while let Some(chunk) = s.next().await {
                last = Some(chunk.map(|_| ()));
            }
            last
        });
        let err = last.unwrap().unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
    }

    struct RemoveOnEntry(PathBuf);
    impl EntrySink for RemoveOnEntry {
        fn entry(&mut self, e: &Entry) -> io::Result<()> {
            if e.path == "secret" {
                let _ = fs::remove_file(&self.0);
            }
            Ok(())
        }
    }
}
