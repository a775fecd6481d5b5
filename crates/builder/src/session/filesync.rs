//! The FileSync service: the daemon reads the context and the Dockerfile from wharf.
//!
//! Each `DiffCopy` call is one transfer of one folder, named by the `dir-name` metadata
//! (`context` or `dockerfile`), filtered by the `include-patterns`, `exclude-patterns` and
//! `followpaths` metadata. The transfer is fsutil's packet protocol, which wharf speaks as the
//! sender (as BuildKit's clients do; no crate implements it):
//!
//! 1. wharf sends a `STAT` packet per entry, in walk order, then an empty `STAT`. Entries are
//!    numbered from 0 in that order.
//! 2. Meanwhile the daemon compares the stats with what it kept from earlier builds and sends
//!    `REQ` with the number of each regular file whose content it needs; wharf answers with
//!    `DATA` packets holding the content in chunks, then an empty `DATA` for that number.
//! 3. The daemon sends `FIN` when it has everything; wharf answers `FIN` and the call ends.
//!
//! Either side sends `ERR` with a message to give up. File contents are read in small chunks
//! on a few threads and go through a bounded channel, so memory stays flat whatever the size of
//! the context.

use crate::context::walk::Source;
use crate::context::{Context, Entry, EntryKind, Filter};
use bollard::fsutil::types::{packet::PacketType, Packet, Stat};
use bollard::moby::filesync::v1::file_sync_server::FileSync;
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

/// Bytes per `DATA` packet (fsutil's buffer size).
const CHUNK: usize = 32 * 1024;
/// Packets queued for the daemon before the senders wait.
const QUEUED_PACKETS: usize = 16;
/// Files read at once (fsutil's number of senders).
const FILE_SENDERS: usize = 4;

/// Names of the folders, as the daemon's Dockerfile frontend asks for them.
pub(crate) const CONTEXT_DIR: &str = "context";
pub(crate) const DOCKERFILE_DIR: &str = "dockerfile";

/// Serves one build's context and Dockerfile.
pub(crate) struct FileSyncService {
    context: Context,
}

impl FileSyncService {
    pub(crate) fn new(context: Context) -> Self {
        FileSyncService { context }
    }
}

type PacketResult = Result<Packet, Status>;

#[tonic::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = ReceiverStream<PacketResult>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let opts = Options::from_metadata(request.metadata());
        let dir = match opts.dir_name.as_str() {
            CONTEXT_DIR => Dir::Context,
            DOCKERFILE_DIR => Dir::Dockerfile,
            other => {
                return Err(Status::not_found(format!(
                    "no access allowed to dir \"{other}\""
                )))
            }
        };
        let root = match dir {
            Dir::Context => Some(self.context.root()),
            Dir::Dockerfile => self.context.session_dockerfile_dir(),
        };
        let filter = Filter::new(root, &opts.include, &opts.exclude, &opts.follow)
            .map_err(|e| Status::invalid_argument(format!("invalid patterns: {e}")))?;
        tracing::debug!(
            dir = %opts.dir_name,
            include = ?opts.include,
            exclude = ?opts.exclude,
            follow = ?opts.follow,
            "the daemon reads a folder"
        );
        let (tx, rx) = mpsc::channel(QUEUED_PACKETS);
        send(self.context.clone(), dir, filter, request.into_inner(), tx);
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type TarStreamStream = ReceiverStream<PacketResult>;

    async fn tar_stream(
        &self,
        _request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        // Not offered in the session's method list; BuildKit's clients refuse it too.
        Err(Status::unimplemented("failed to negotiate protocol"))
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Context,
    Dockerfile,
}

/// What the daemon asks for, from the call's metadata.
#[derive(Debug, Default)]
struct Options {
    dir_name: String,
    include: Vec<String>,
    exclude: Vec<String>,
    follow: Vec<String>,
}

impl Options {
    fn from_metadata(md: &MetadataMap) -> Options {
        // Newer daemons URL-encode values that a header cannot hold, and say so in
        // `<key>-encoded`.
        let values = |key: &str| -> Vec<String> {
            let encoded = md
                .get(format!("{key}-encoded"))
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"));
            md.get_all(key)
                .iter()
                .map(|v| {
                    let raw = String::from_utf8_lossy(v.as_encoded_bytes()).into_owned();
                    if encoded {
                        query_unescape(&raw)
                    } else {
                        raw
                    }
                })
                .collect()
        };
        Options {
            dir_name: values("dir-name").into_iter().next().unwrap_or_default(),
            include: values("include-patterns"),
            exclude: values("exclude-patterns"),
            follow: values("followpaths"),
        }
    }
}

/// Go's `url.QueryUnescape`; a malformed value is kept as it is.
fn query_unescape(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| s.to_string())
}

/// Where the content of a requested file comes from.
enum Content {
    Disk(PathBuf),
    Memory(Arc<[u8]>),
    Empty,
}

/// Runs one transfer: the walk, the daemon's requests and the file senders, all answering
/// through `tx`.
fn send(
    context: Context,
    dir: Dir,
    filter: Filter,
    mut incoming: Streaming<Packet>,
    tx: mpsc::Sender<PacketResult>,
) {
    let files: Arc<Mutex<HashMap<u32, Content>>> = Arc::default();

    // The walk, on a thread of its own: the folder is read with blocking calls.
    {
        let files = files.clone();
        let tx = tx.clone();
        tokio::task::spawn_blocking(move || {
            // `Err(None)`: the daemon went away, nobody to tell.
            if let Err(Some(message)) = walk(&context, dir, &filter, &files, &tx) {
                tracing::debug!(%message, "context transfer failed");
                let _ = tx.blocking_send(Ok(packet(PacketType::PacketErr, 0, message.clone())));
                let _ = tx.blocking_send(Err(Status::unknown(message)));
            }
        });
    }

    // The file senders take the daemon's requests in turn.
    let (req_tx, req_rx) = std_mpsc::channel::<(u32, Content)>();
    let req_rx = Arc::new(Mutex::new(req_rx));
    for _ in 0..FILE_SENDERS {
        let req_rx = req_rx.clone();
        let tx = tx.clone();
        tokio::task::spawn_blocking(move || loop {
            let next = req_rx.lock().map(|rx| rx.recv());
            let Ok(Ok((id, content))) = next else { return };
            match send_file(id, content, &tx) {
                Ok(()) => {}
                Err(SendError::Gone) => return,
                Err(SendError::Read(message)) => {
                    let _ = tx.blocking_send(Err(Status::unknown(message)));
                    return;
                }
            }
        });
    }

    // The daemon's side of the conversation.
    tokio::spawn(async move {
        loop {
            let p = match incoming.message().await {
                Ok(Some(p)) => p,
                // The daemon went away or ended the call: the senders stop when their next
                // packet finds nobody to take it.
                Ok(None) | Err(_) => return,
            };
            match PacketType::try_from(p.r#type) {
                Ok(PacketType::PacketReq) => {
                    let content = files.lock().ok().and_then(|mut f| f.remove(&p.id));
                    let Some(content) = content else {
                        let _ = tx
                            .send(Err(Status::invalid_argument(format!(
                                "invalid file id {}",
                                p.id
                            ))))
                            .await;
                        return;
                    };
                    if req_tx.send((p.id, content)).is_err() {
                        return;
                    }
                }
                Ok(PacketType::PacketFin) => {
                    let _ = tx
                        .send(Ok(packet(PacketType::PacketFin, 0, String::new())))
                        .await;
                    return;
                }
                Ok(PacketType::PacketErr) => {
                    let message = String::from_utf8_lossy(&p.data).into_owned();
                    tracing::debug!(%message, "the daemon gave up the context transfer");
                    let _ = tx
                        .send(Err(Status::aborted(format!(
                            "error from receiver: {message}"
                        ))))
                        .await;
                    return;
                }
                _ => {}
            }
        }
    });
}

fn packet(kind: PacketType, id: u32, message: String) -> Packet {
    Packet {
        r#type: kind as i32,
        stat: None,
        id,
        data: message.into_bytes(),
    }
}

/// Sends the stats of `dir`. `Err(None)`: the daemon went away; `Err(Some(message))`: the
/// walk failed.
fn walk(
    context: &Context,
    dir: Dir,
    filter: &Filter,
    files: &Mutex<HashMap<u32, Content>>,
    tx: &mpsc::Sender<PacketResult>,
) -> Result<(), Option<String>> {
    let mut next_id: u32 = 0;
    let gone = || crate::context::ContextError::Sink(io::ErrorKind::BrokenPipe.into());
    let root = match dir {
        Dir::Context => Some(context.root().to_path_buf()),
        Dir::Dockerfile => context.session_dockerfile_dir().map(Path::to_path_buf),
    };
    let visit = |e: Entry| {
        let xattrs = match &root {
            Some(root) => xattrs(&root.join(&e.path))?,
            // A Dockerfile of wharf's own making: nothing to carry over.
            None => HashMap::new(),
        };
        let stat = stat(&e, xattrs);
        if can_request_data(stat.mode) {
            let content = match (&e.kind, &e.source) {
                (EntryKind::File, Source::Disk(p)) => Content::Disk(p.clone()),
                (EntryKind::File, Source::Memory(b)) => Content::Memory(b.clone()),
                _ => Content::Empty,
            };
            if let Ok(mut f) = files.lock() {
                f.insert(next_id, content);
            }
        }
        next_id = next_id.wrapping_add(1);
        tx.blocking_send(Ok(Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(stat),
            id: 0,
            data: Vec::new(),
        }))
        .map_err(|_| gone())
    };
    let result = match dir {
        Dir::Context => context.walk_context_dir(filter, visit),
        Dir::Dockerfile => context.walk_dockerfile_dir(filter, visit),
    };
    match result {
        Ok(()) => {}
        Err(crate::context::ContextError::Sink(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            return Err(None)
        }
        Err(e) => return Err(Some(e.to_string())),
    }
    // The end of the listing.
    tx.blocking_send(Ok(Packet {
        r#type: PacketType::PacketStat as i32,
        stat: None,
        id: 0,
        data: Vec::new(),
    }))
    .map_err(|_| None)
}

enum SendError {
    /// The daemon is no longer reading.
    Gone,
    Read(String),
}

/// Sends the content of file `id` in chunks, then the empty chunk that ends it. A file that
/// cannot be opened is sent empty, as fsutil does (the daemon sees a size mismatch if it cares).
fn send_file(id: u32, content: Content, tx: &mpsc::Sender<PacketResult>) -> Result<(), SendError> {
    let data = |chunk: Vec<u8>| {
        tx.blocking_send(Ok(Packet {
            r#type: PacketType::PacketData as i32,
            stat: None,
            id,
            data: chunk,
        }))
        .map_err(|_| SendError::Gone)
    };
    match content {
        Content::Disk(path) => {
            // Only a regular file: a FIFO swapped in since the walk would block the transfer.
            if let Ok(mut file) = wharf_compose::files::open_regular(&path) {
                loop {
                    let mut buf = vec![0u8; CHUNK];
                    let n = match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(SendError::Read(format!("{}: {e}", path.display()))),
                    };
                    buf.truncate(n);
                    data(buf)?;
                }
            }
        }
        Content::Memory(bytes) => {
            for chunk in bytes.chunks(CHUNK) {
                data(chunk.to_vec())?;
            }
        }
        Content::Empty => {}
    }
    data(Vec::new())
}

// Go's os.FileMode bits, which fsutil's stats carry in place of Unix mode bits.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_DEVICE: u32 = 1 << 26;
const GO_MODE_NAMED_PIPE: u32 = 1 << 25;
const GO_MODE_SOCKET: u32 = 1 << 24;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_CHAR_DEVICE: u32 = 1 << 21;
const GO_MODE_STICKY: u32 = 1 << 20;
const GO_MODE_IRREGULAR: u32 = 1 << 19;
const GO_MODE_TYPE: u32 = GO_MODE_DIR
    | GO_MODE_SYMLINK
    | GO_MODE_NAMED_PIPE
    | GO_MODE_SOCKET
    | GO_MODE_DEVICE
    | GO_MODE_CHAR_DEVICE
    | GO_MODE_IRREGULAR;

/// An entry's Unix mode as Go's `os.FileMode`.
fn go_mode(entry: &Entry) -> u32 {
    let mut mode = entry.mode & 0o777;
    if entry.mode & 0o4000 != 0 {
        mode |= GO_MODE_SETUID;
    }
    if entry.mode & 0o2000 != 0 {
        mode |= GO_MODE_SETGID;
    }
    if entry.mode & 0o1000 != 0 {
        mode |= GO_MODE_STICKY;
    }
    mode | match entry.kind {
        EntryKind::Dir => GO_MODE_DIR,
        EntryKind::Symlink { .. } => GO_MODE_SYMLINK,
        EntryKind::Fifo => GO_MODE_NAMED_PIPE,
        EntryKind::CharDevice { .. } => GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
        EntryKind::BlockDevice { .. } => GO_MODE_DEVICE,
        EntryKind::File | EntryKind::Hardlink { .. } => 0,
    }
}

/// fsutil's `fileCanRequestData`: only regular files (hard links included) have content.
fn can_request_data(go_mode: u32) -> bool {
    go_mode & GO_MODE_TYPE == 0
}

/// An entry as fsutil's `Stat`.
fn stat(entry: &Entry, xattrs: HashMap<String, Vec<u8>>) -> Stat {
    let (linkname, devmajor, devminor) = match &entry.kind {
        EntryKind::Symlink { target } => (target.to_string_lossy().into_owned(), 0, 0),
        EntryKind::Hardlink { target } => (target.clone(), 0, 0),
        EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
            (String::new(), i64::from(*major), i64::from(*minor))
        }
        _ => (String::new(), 0, 0),
    };
    Stat {
        path: entry.path.clone(),
        mode: go_mode(entry),
        uid: entry.uid,
        gid: entry.gid,
        size: i64::try_from(entry.size).unwrap_or(i64::MAX),
        mod_time: entry
            .mtime
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(entry.mtime_nsec)),
        linkname,
        devmajor,
        devminor,
        xattrs,
    }
}

/// The extended attributes of `path` (not following a symlink), as fsutil reads them: every
/// name but Apple's, none at all where the file system has no such thing.
fn xattrs(path: &Path) -> Result<HashMap<String, Vec<u8>>, crate::context::ContextError> {
    let mut out = HashMap::new();
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(crate::context::ContextError::io(path, e)),
    };
    for name in names {
        let Some(key) = name.to_str() else { continue };
        if key.starts_with("com.apple.") {
            continue;
        }
        if let Ok(Some(value)) = xattr::get(path, &name) {
            out.insert(key.to_string(), value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind, mode: u32) -> Entry {
        let mut e = Entry::in_memory("x", Arc::from(&b""[..]), mode, 0);
        e.kind = kind;
        e
    }

    #[test]
    fn unix_modes_become_go_file_modes() {
        assert_eq!(go_mode(&entry(EntryKind::File, 0o644)), 0o644);
        assert_eq!(go_mode(&entry(EntryKind::Dir, 0o755)), 0o755 | GO_MODE_DIR);
        assert_eq!(
            go_mode(&entry(EntryKind::Symlink { target: "t".into() }, 0o777)),
            0o777 | GO_MODE_SYMLINK
        );
        assert_eq!(
            go_mode(&entry(EntryKind::File, 0o4755)),
            0o755 | GO_MODE_SETUID
        );
        assert_eq!(
            go_mode(&entry(EntryKind::Dir, 0o3775)),
            0o775 | GO_MODE_DIR | GO_MODE_SETGID | GO_MODE_STICKY
        );
        assert_eq!(
            go_mode(&entry(EntryKind::CharDevice { major: 1, minor: 3 }, 0o666)),
            0o666 | GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE
        );
        assert!(can_request_data(go_mode(&entry(EntryKind::File, 0o4755))));
        assert!(can_request_data(go_mode(&entry(
            EntryKind::Hardlink { target: "a".into() },
            0o644
        ))));
        assert!(!can_request_data(go_mode(&entry(EntryKind::Fifo, 0o644))));
    }

    #[test]
    fn stats_carry_nanosecond_times_and_links() {
        let mut e = entry(
            EntryKind::Symlink {
                target: "../t".into(),
            },
            0o777,
        );
        e.mtime = 2;
        e.mtime_nsec = 5;
        e.uid = 1000;
        let s = stat(&e, HashMap::new());
        assert_eq!(s.mod_time, 2_000_000_005);
        assert_eq!(s.linkname, "../t");
        assert_eq!(s.uid, 1000);
    }

    #[test]
    fn encoded_metadata_values() {
        assert_eq!(query_unescape("a%2Fb+c%C3%A9"), "a/b cé");
        assert_eq!(query_unescape("%zz"), "%zz");
    }
}
