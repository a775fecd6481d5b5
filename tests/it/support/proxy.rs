//! A TCP proxy in front of a bed registry, for faults the registry itself cannot stage: it
//! forwards bytes both ways until told to stop, and can stop by itself at the first request
//! matching a predicate — the way a registry "goes away" at an exact moment. It sees bytes, not
//! requests: for faults of single requests (keep-alive connections included) and a log of what
//! reached the registry, use `registry_proxy`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    pub addr: String,
    stopped: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

type Trigger = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What the proxy does when its trigger matches.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnTrigger {
    /// Stop: close every connection and refuse new ones (a registry that went away).
    Stop,
    /// Drop only the connection that carried the match, once (a dropped connection).
    DropOnce,
}

impl Proxy {
    /// Forwards 127.0.0.1:<free port> to `upstream`. When `stop_at` matches the text of a
    /// client-to-registry chunk, that chunk is not forwarded and the proxy stops: every
    /// connection is closed and new ones are refused.
    pub fn start(upstream: &str, stop_at: Option<Trigger>) -> Proxy {
        Proxy::start_with(upstream, stop_at, OnTrigger::Stop)
    }

    /// Like [`Proxy::start`], with the reaction to the trigger chosen.
    pub fn start_with(upstream: &str, trigger: Option<Trigger>, on: OnTrigger) -> Proxy {
        let stop_at = trigger;
        let fired = Arc::new(AtomicBool::new(false));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let addr = listener.local_addr().unwrap().to_string();
        let stopped = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let upstream = upstream.to_string();
        {
            let (stopped, conns) = (stopped.clone(), conns.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    if stopped.load(Ordering::SeqCst) {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        continue;
                    };
                    conns
                        .lock()
                        .unwrap()
                        .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let (st1, st2) = (stopped.clone(), stopped.clone());
                    let (k1, k2) = (conns.clone(), conns.clone());
                    let trigger = stop_at.clone();
                    let fired = fired.clone();
                    std::thread::spawn(move || {
                        pump(client, server, st1, trigger.map(|t| (t, on, fired)), k1)
                    });
                    std::thread::spawn(move || pump(s2, c2, st2, None, k2));
                }
            });
        }
        Proxy {
            addr,
            stopped,
            conns,
        }
    }

    pub fn stop(&self) {
        stop_all(&self.stopped, &self.conns);
    }
}

fn stop_all(stopped: &AtomicBool, conns: &Mutex<Vec<TcpStream>>) {
    stopped.store(true, Ordering::SeqCst);
    for c in conns.lock().unwrap().drain(..) {
        let _ = c.shutdown(Shutdown::Both);
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    stopped: Arc<AtomicBool>,
    trigger: Option<(Trigger, OnTrigger, Arc<AtomicBool>)>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
) {
    let _ = from.set_read_timeout(Some(Duration::from_secs(120)));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if stopped.load(Ordering::SeqCst) {
            break;
        }
        if let Some((t, on, fired)) = &trigger {
            if !fired.load(Ordering::SeqCst) && t(&String::from_utf8_lossy(&buf[..n])) {
                match on {
                    OnTrigger::Stop => stop_all(&stopped, &conns),
                    OnTrigger::DropOnce => fired.store(true, Ordering::SeqCst),
                }
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}
