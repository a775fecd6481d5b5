//! Writing the context as a tar archive, and streaming it with bounded memory.
//!
//! The archive is written by a plain blocking writer (the `tar` crate) on its own thread, into
//! a small bounded channel of byte chunks; the async side reads the channel as a `Stream`, which
//! is what bollard's streaming request body takes. At most a few chunks are in flight, so memory
//! stays flat whatever the size of the context.

use super::walk::{Entry, EntryKind, Source};
use super::ContextError;
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use std::io::{self, Read, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use tokio::sync::mpsc;

/// Sees every entry, and the bytes of every regular file, exactly as they go into the archive:
/// the hook for hashing a context during the single read of each file.
///
/// `entry` is called once per entry in archive order; for a regular file, `data` follows with
/// its content in chunks until the next `entry` (or `finish`).
pub trait EntrySink: Send {
    fn entry(&mut self, _entry: &Entry) -> io::Result<()> {
        Ok(())
    }
    fn data(&mut self, _chunk: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The sink that looks at nothing.
impl EntrySink for () {}

/// Size of the chunks sent through the channel.
const CHUNK: usize = 256 * 1024;
/// Chunks the channel holds before the writer waits for the reader.
const CHANNEL_CHUNKS: usize = 4;

/// Appends one entry to the archive.
pub(crate) fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    entry: &Entry,
    sink: &mut dyn EntrySink,
) -> Result<(), ContextError> {
    sink.entry(entry).map_err(ContextError::Sink)?;
    let mut header = tar::Header::new_gnu();
    header.set_mode(entry.mode);
    header.set_uid(entry.uid.into());
    header.set_gid(entry.gid.into());
    header.set_mtime(entry.mtime.max(0) as u64);
    header.set_size(0);
    let wr = |e: io::Error| ContextError::io(&entry.path, e);
    // The archive holds a name's own bytes, even when they are not UTF-8.
    let path: &Path = entry
        .raw_path
        .as_deref()
        .map(Path::new)
        .unwrap_or(Path::new(&entry.path));
    match &entry.kind {
        EntryKind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            builder
                .append_data(&mut header, path.join(""), io::empty())
                .map_err(wr)?;
        }
        EntryKind::Symlink { target } => {
            header.set_entry_type(tar::EntryType::Symlink);
            builder.append_link(&mut header, path, target).map_err(wr)?;
        }
        EntryKind::Hardlink { target } => {
            header.set_entry_type(tar::EntryType::Link);
            let target: &Path = entry
                .raw_link
                .as_deref()
                .map(Path::new)
                .unwrap_or(Path::new(target));
            builder.append_link(&mut header, path, target).map_err(wr)?;
        }
        EntryKind::Fifo => {
            header.set_entry_type(tar::EntryType::Fifo);
            builder
                .append_data(&mut header, path, io::empty())
                .map_err(wr)?;
        }
        EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
            header.set_entry_type(if matches!(entry.kind, EntryKind::CharDevice { .. }) {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            header.set_device_major(*major).map_err(wr)?;
            header.set_device_minor(*minor).map_err(wr)?;
            builder
                .append_data(&mut header, path, io::empty())
                .map_err(wr)?;
        }
        EntryKind::File => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(entry.size);
            match &entry.source {
                Source::Disk(abs) => {
                    let file = wharf_compose::files::open_regular(abs)?;
                    let mut reader = Tee {
                        inner: file.take(entry.size),
                        sink,
                        read: 0,
                        sink_error: None,
                    };
                    let res = builder.append_data(&mut header, path, &mut reader);
                    if let Some(e) = reader.sink_error.take() {
                        return Err(ContextError::Sink(e));
                    }
                    res.map_err(|e| ContextError::io(abs, e))?;
                    if reader.read != entry.size {
                        return Err(ContextError::Changed { path: abs.clone() });
                    }
                }
                Source::Memory(bytes) => {
                    sink.data(bytes).map_err(ContextError::Sink)?;
                    builder
                        .append_data(&mut header, path, &bytes[..])
                        .map_err(wr)?;
                }
                Source::Empty => {
                    builder
                        .append_data(&mut header, path, io::empty())
                        .map_err(wr)?;
                }
            }
        }
    }
    Ok(())
}

/// Reads a file for the archive while showing the same bytes to the sink.
struct Tee<'a, R> {
    inner: R,
    sink: &'a mut dyn EntrySink,
    read: u64,
    sink_error: Option<io::Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if n > 0 {
            if let Err(e) = self.sink.data(&buf[..n]) {
                let msg = e.to_string();
                self.sink_error = Some(e);
                return Err(io::Error::other(msg));
            }
        }
        Ok(n)
    }
}

/// A `Write` that cuts the archive into chunks and sends them through the channel, waiting
/// while the channel is full.
pub(crate) struct ChannelWriter {
    buf: BytesMut,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the build context reader went away",
            )
        })
    }

    pub(crate) fn fail(self, e: io::Error) {
        let _ = self.tx.blocking_send(Err(e));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
            self.buf.reserve(CHUNK);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

/// The build context as a stream of archive chunks, for `bollard::body_try_stream`.
///
/// The archive is produced on a background thread as the stream is read; dropping the stream
/// stops it. A failure (an unreadable file, a file that changed size while being sent) ends the
/// stream with that error, so the daemon never sees a silently truncated context.
pub struct TarStream {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl Stream for TarStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// Starts the writer thread; `produce` writes the whole archive into the writer it is given.
pub(crate) fn spawn<P>(produce: P) -> TarStream
where
    P: FnOnce(&mut ChannelWriter) -> Result<(), ContextError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let spawned = std::thread::Builder::new()
        .name("wharf-context".into())
        .spawn({
            let tx = tx.clone();
            move || {
                let mut writer = ChannelWriter {
                    buf: BytesMut::with_capacity(CHUNK),
                    tx,
                };
                match produce(&mut writer)
                    .and_then(|()| writer.flush().map_err(ContextError::Stream))
                {
                    Ok(()) => {}
                    // The reader is gone: nobody to tell.
                    Err(ContextError::Stream(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    Err(e) => writer.fail(io::Error::other(e.to_string())),
                }
            }
        });
    if let Err(e) = spawned {
        let _ = tx.try_send(Err(e));
    }
    TarStream { rx }
}
