//! Reading the files a project names — compose and env files here; Dockerfiles, ignore files,
//! SSH keys and secrets in the builder — so that none can stall or exhaust wharf: a FIFO nobody
//! writes to would block the open for ever, a device such as `/dev/zero` never ends.
//!
//! Every such file is opened without blocking and checked on the open descriptor (no window for
//! a swap between a check and the read): its kind must be one the caller accepts, its size at
//! most the caller's limit, and no more than the limit is ever read.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The kinds of file a caller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// A regular file only (a Dockerfile, an ignore file, a key, a secret).
    RegularFile,
    /// A regular file or a pipe, as compose reads compose and env files (`-f <(…)`): a FIFO no
    /// process writes to reads as empty rather than waiting for a writer.
    FileOrPipe,
}

/// The most wharf reads from a compose file, an env file, a Dockerfile or an ignore file: far
/// beyond any real one, far below what would hurt.
pub const MAX_TEXT_FILE: u64 = 32 * 1024 * 1024;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} is larger than {}, the most wharf reads from such a file", path.display(), human(*limit))]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl FileError {
    /// The I/O error behind it, when the file could not be opened or read at all.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            FileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Checks `meta` of `path` against what the caller accepts.
fn check_meta(path: &Path, meta: &Metadata, accept: Accept, limit: u64) -> Result<(), FileError> {
    let t = meta.file_type();
    let accepted = t.is_file() || (accept == Accept::FileOrPipe && t.is_fifo());
    if !accepted {
        if t.is_dir() && accept == Accept::FileOrPipe {
            // compose's own wording for a folder given as a file ("read X: is a directory").
            return Err(FileError::Io {
                path: path.to_path_buf(),
                source: std::io::ErrorKind::IsADirectory.into(),
            });
        }
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(meta),
        });
    }
    if t.is_file() && meta.len() > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(())
}

/// Checks, without reading it, that `path` (symlinks followed) is a file wharf would read: for
/// files read later, when a build asks for them (secrets).
pub fn check(path: &Path, accept: Accept, limit: u64) -> Result<Metadata, FileError> {
    let meta = std::fs::metadata(path).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    check_meta(path, &meta, accept, limit)?;
    Ok(meta)
}

/// Opens `path` without waiting for a FIFO's writer, with its metadata.
fn open_nonblocking(path: &Path) -> Result<(File, Metadata), FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    Ok((file, meta))
}

/// Opens a file a walk found to be a regular file (a context's file, sent or hashed as it
/// streams): an error rather than a wait when it has been replaced by a FIFO since.
pub fn open_regular(path: &Path) -> Result<File, FileError> {
    let (file, meta) = open_nonblocking(path)?;
    check_meta(path, &meta, Accept::RegularFile, u64::MAX)?;
    Ok(file)
}

/// Reads `path` (symlinks followed): only a kind of file `accept` allows, at most `limit` bytes.
pub fn read(path: &Path, accept: Accept, limit: u64) -> Result<Vec<u8>, FileError> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (file, meta) = open_nonblocking(path)?;
    check_meta(path, &meta, accept, limit)?;
    if meta.file_type().is_fifo() {
        // A pipe with a writer (`<(…)`) is read to its end; one without reads as empty.
        let flags = fcntl(&file, FcntlArg::F_GETFL).map_err(|e| io(e.into()))?;
        let blocking = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
        fcntl(&file, FcntlArg::F_SETFL(blocking)).map_err(|e| io(e.into()))?;
    }
    read_at_most(file, path, limit, meta.len())
}

fn read_at_most(file: File, path: &Path, limit: u64, hint: u64) -> Result<Vec<u8>, FileError> {
    let mut out = Vec::with_capacity(hint.min(limit) as usize);
    file.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|source| FileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn fifo(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        let status = Command::new("mkfifo")
            .arg(&p)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        p
    }

    #[test]
    fn regular_files_are_read_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read(&p, Accept::RegularFile, 10).unwrap(), b"0123456789");
        let e = read(&p, Accept::RegularFile, 9).unwrap_err();
        assert!(matches!(e, FileError::TooLarge { limit: 9, .. }), "{e}");
        assert!(check(&p, Accept::RegularFile, 9).is_err());
    }

    #[test]
    fn a_fifo_without_writer_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = fifo(dir.path(), "pipe");
        let started = Instant::now();
        let e = read(&p, Accept::RegularFile, MAX_TEXT_FILE).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{} is a FIFO, not a regular file", p.display())
        );
        assert!(check(&p, Accept::RegularFile, MAX_TEXT_FILE).is_err());
        // Where a pipe is fine, one that nobody writes to is empty.
        assert_eq!(read(&p, Accept::FileOrPipe, MAX_TEXT_FILE).unwrap(), b"");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_pipe_with_a_writer_is_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = fifo(dir.path(), "pipe");
        let writer = {
            let p = p.clone();
            std::thread::spawn(move || std::fs::write(p, b"services: {}\n").unwrap())
        };
        // The writer may open after the reader: give it the time to.
        let mut text = Vec::new();
        for _ in 0..50 {
            text = read(&p, Accept::FileOrPipe, MAX_TEXT_FILE).unwrap();
            if !text.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        writer.join().unwrap();
        assert_eq!(text, b"services: {}\n");
    }

    #[test]
    fn devices_are_refused_or_bounded() {
        let zero = Path::new("/dev/zero");
        let e = read(zero, Accept::RegularFile, MAX_TEXT_FILE).unwrap_err();
        assert!(e.to_string().contains("is a character device"), "{e}");
        let e = read(zero, Accept::FileOrPipe, MAX_TEXT_FILE).unwrap_err();
        assert!(e.to_string().contains("is a character device"), "{e}");
        let e = check(Path::new("/"), Accept::RegularFile, 1).unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
    }
}
