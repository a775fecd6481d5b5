//! A TCP endpoint in front of the bed's Docker daemon that breaks off its answers to build
//! requests, the way a daemon under load or a dropped connection does: wharf is pointed at it
//! with `DOCKER_HOST=tcp://…`, everything else (pings, inspections, BuildKit sessions) passes
//! through untouched.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub struct DaemonProxy {
    /// `tcp://127.0.0.1:<port>`, for `DOCKER_HOST`.
    pub host: String,
    cut: Arc<AtomicUsize>,
}

/// The daemon's socket, as the bed's `DOCKER_HOST` names it (or Docker's default).
fn daemon_socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_string(),
        Ok(h) if !h.is_empty() => panic!("the daemon proxy forwards to a unix socket, not {h}"),
        _ => "/var/run/docker.sock".to_string(),
    }
}

impl DaemonProxy {
    /// Forwards to the daemon; the answers to the first `cuts` build requests are broken off
    /// once the daemon has sent its headers and the first bytes of the body.
    pub fn start(cuts: usize) -> DaemonProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let host = format!("tcp://{}", listener.local_addr().unwrap());
        let left = Arc::new(AtomicUsize::new(cuts));
        let cut = Arc::new(AtomicUsize::new(0));
        let socket = daemon_socket();
        {
            let (left, cut) = (left.clone(), cut.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    let daemon = UnixStream::connect(&socket).expect("the bed's daemon answers");
                    let armed = Arc::new(AtomicBool::new(false));
                    let (c2, d2) = (client.try_clone().unwrap(), daemon.try_clone().unwrap());
                    let (left, armed2, cut) = (left.clone(), armed.clone(), cut.clone());
                    std::thread::spawn(move || requests(client, daemon, left, armed));
                    std::thread::spawn(move || answers(d2, c2, armed2, cut));
                }
            });
        }
        DaemonProxy { host, cut }
    }

    /// How many build answers were broken off.
    pub fn cut(&self) -> usize {
        self.cut.load(Ordering::SeqCst)
    }
}

/// Client to daemon. A build request arms the cut of its connection's next answer while cuts
/// are left (a connection carries one request at a time: HTTP/1.1 without pipelining).
fn requests(
    mut from: TcpStream,
    mut to: UnixStream,
    left: Arc<AtomicUsize>,
    armed: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // `POST /build?…` or `POST /v1.41/build?…`, at the start of a request.
        let text = String::from_utf8_lossy(&buf[..n]);
        let path = text
            .strip_prefix("POST ")
            .and_then(|rest| rest.split([' ', '?']).next());
        let is_build =
            path.is_some_and(|p| p == "/build" || p.ends_with("/build") && p.starts_with("/v"));
        if is_build
            && left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1))
                .is_ok()
        {
            armed.store(true, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Daemon to client: an armed answer is forwarded up to the first bytes of its body, then both
/// ends are closed.
fn answers(mut from: UnixStream, mut to: TcpStream, armed: Arc<AtomicBool>, cut: Arc<AtomicUsize>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if armed.load(Ordering::SeqCst) {
            seen.extend_from_slice(&buf[..n]);
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                // The headers, then a few bytes of the first chunk: the answer stops inside a
                // line, as a broken connection leaves it.
                let upto = (end + 4 + 24).min(seen.len());
                if upto > end + 4 {
                    let _ = to.write_all(&seen[..upto]);
                    cut.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            }
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
