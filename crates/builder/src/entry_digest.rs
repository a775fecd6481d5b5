//! How one context entry enters a digest: its path, permission bits, type, and its content,
//! link target or device numbers. Shared by the input digests ([`crate::inputs`]) and the
//! digests of named-context folders ([`crate::named_contexts`]), which must read a context the
//! same way.

use crate::context::walk::Source;
use crate::context::{ContextError, Entry, EntryKind};
use std::io::{self, Read};

/// Adds one context entry to `h` — path, permission bits, type, and its size and content, link
/// target or device numbers — and returns the bytes of content read (`buf`: a read buffer).
pub(crate) fn hash_entry(
    h: &mut blake3::Hasher,
    e: &Entry,
    buf: &mut [u8],
) -> Result<u64, ContextError> {
    h.update(b"entry\0");
    h.update(&(e.path.len() as u64).to_le_bytes());
    h.update(e.path.as_bytes());
    h.update(&e.mode.to_le_bytes());
    match &e.kind {
        EntryKind::File => {
            h.update(b"f");
            h.update(&e.size.to_le_bytes());
            return hash_content(h, e, buf);
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

/// Streams one file's content into the digest; the length actually read is hashed too, so a
/// file that changes while it is read still yields a digest of what was read.
fn hash_content(h: &mut blake3::Hasher, e: &Entry, buf: &mut [u8]) -> Result<u64, ContextError> {
    let mut total = 0u64;
    match &e.source {
        Source::Empty => {}
        Source::Memory(bytes) => {
            h.update(bytes);
            total = bytes.len() as u64;
        }
        Source::Disk(path) => {
            let mut file = wharf_compose::files::open_regular(path)?;
            loop {
                let n = match file.read(buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(ContextError::io(path, e)),
                };
                h.update(&buf[..n]);
                total += n as u64;
            }
        }
    }
    h.update(&total.to_le_bytes());
    Ok(total)
}
