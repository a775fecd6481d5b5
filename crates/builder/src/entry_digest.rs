//! How one context entry enters a digest: its path, permission bits, type, and its content,
//! link target or device numbers. Shared by the input digests ([`crate::inputs`]) and the
//! digests of named-context folders ([`crate::named_contexts`]), which must read a context the
//! same way.

use crate::content_cache::ContentCache;
use crate::context::walk::Source;
use crate::context::{Context, ContextError, Entry, EntryKind};
use std::io::{self, Read};

/// Adds every entry of `ctx`, in archive order, to `h` ([`hash_entry`]), with the content
/// digests remembered for its folder, and returns the entries and bytes of content covered.
pub(crate) fn hash_context(
    h: &mut blake3::Hasher,
    ctx: &Context,
) -> Result<(u64, u64), ContextError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cache = ContentCache::load(ctx.root());
    let (mut entries, mut bytes) = (0, 0);
    ctx.for_each_entry(|e| {
        entries += 1;
        bytes += hash_entry(h, e, &mut buf, &mut cache)?;
        Ok(())
    })?;
    cache.save();
    Ok((entries, bytes))
}

/// Adds one context entry to `h` — path, permission bits, type, and its size and content, link
/// target or device numbers — and returns the bytes of content read (`buf`: a read buffer).
fn hash_entry(
    h: &mut blake3::Hasher,
    e: &Entry,
    buf: &mut [u8],
    cache: &mut ContentCache,
) -> Result<u64, ContextError> {
    h.update(b"entry\0");
    h.update(&(e.path.len() as u64).to_le_bytes());
    h.update(e.path.as_bytes());
    h.update(&e.mode.to_le_bytes());
    match &e.kind {
        EntryKind::File => {
            h.update(b"f");
            h.update(&e.size.to_le_bytes());
            return hash_content(h, e, buf, cache);
        }
        EntryKind::Dir => {
            h.update(b"d");
        }
        EntryKind::Symlink { target } => {
            let t = target.as_os_str().as_encoded_bytes();
            h.update(b"l");
            h.update(&(t.len() as u64).to_le_bytes());
            h.update(t);
        }
        EntryKind::Hardlink { target } => {
            h.update(b"h");
            h.update(&(target.len() as u64).to_le_bytes());
            h.update(target.as_bytes());
        }
        EntryKind::Fifo => {
            h.update(b"p");
        }
        EntryKind::CharDevice { major, minor } => {
            h.update(b"c");
            h.update(&major.to_le_bytes());
            h.update(&minor.to_le_bytes());
        }
        EntryKind::BlockDevice { major, minor } => {
            h.update(b"b");
            h.update(&major.to_le_bytes());
            h.update(&minor.to_le_bytes());
        }
    }
    Ok(0)
}

/// Adds one file's content to the digest as the BLAKE3 digest of that content, and the length
/// actually read, so that a file that changes while it is read still yields a digest of what
/// was read. A file on disk whose digest `cache` remembers for the same [`Stamp`] is not read.
///
/// [`Stamp`]: crate::content_cache::Stamp
fn hash_content(
    h: &mut blake3::Hasher,
    e: &Entry,
    buf: &mut [u8],
    cache: &mut ContentCache,
) -> Result<u64, ContextError> {
    let (digest, total) = match &e.source {
        Source::Empty => (*blake3::hash(b"").as_bytes(), 0),
        Source::Memory(bytes) => (*blake3::hash(bytes).as_bytes(), bytes.len() as u64),
        Source::Disk(path) => match e.stamp.as_ref().and_then(|s| cache.get(path, s)) {
            Some(found) => found,
            None => {
                let read = read_digest(path, buf)?;
                if let Some(stamp) = &e.stamp {
                    cache.put(path, stamp, &read.0, read.1);
                }
                read
            }
        },
    };
    h.update(b"c");
    h.update(&digest);
    h.update(&total.to_le_bytes());
    Ok(total)
}

/// BLAKE3 of the file at `path` and the bytes read (`buf`: a read buffer).
fn read_digest(path: &std::path::Path, buf: &mut [u8]) -> Result<([u8; 32], u64), ContextError> {
    let mut file = wharf_compose::files::open_regular(path)?;
    let mut content = blake3::Hasher::new();
    let mut total = 0u64;
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ContextError::io(path, e)),
        };
        content.update(&buf[..n]);
        total += n as u64;
    }
    Ok((*content.finalize().as_bytes(), total))
}
