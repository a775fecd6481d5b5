//! Engines behind `ssh://[USER@]HOST[:PORT]` endpoints, reached as the docker CLI reaches them:
//! the system's `ssh` (the user's config, keys and agent, in batch mode: never a prompt) runs
//! `docker system dial-stdio` on the remote, whose standard input and output are then a
//! connection to the remote's daemon. One `ssh` per connection, pooled by a hyper-util client
//! for bollard's requests; BuildKit sessions take one of their own.
//!
//! bollard's own `ssh` feature is not used: it hands the endpoint to `ssh` without its port
//! (`ssh://host:2222` fails to resolve `host:2222`), and its `openssh` masters are daemons
//! that outlive a killed client.

use bollard::Docker;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// Where an `ssh://` endpoint points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

impl Destination {
    /// `ssh://[USER@]HOST[:PORT][/]`, as `DOCKER_HOST` takes it; the error says what is wrong
    /// with it.
    pub(crate) fn parse(endpoint: &str) -> Result<Destination, String> {
        // (Written without `USER@`: messages mask what stands before an @ in a URL.)
        let bad = |why: &str| {
            format!("{why}; write ssh://HOST or ssh://HOST:PORT, with USER@ before HOST for another user than ssh's default")
        };
        let rest = endpoint
            .strip_prefix("ssh://")
            .ok_or_else(|| bad("not an ssh:// endpoint"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(bad("a path is not supported"));
        }
        let (user, host) = match rest.rsplit_once('@') {
            Some((user, host)) if !user.is_empty() => (Some(user.to_string()), host),
            Some(_) => return Err(bad("the user before @ is empty")),
            None => (None, rest),
        };
        let (host, port) = match host.rsplit_once(':') {
            // An IPv6 address is written in brackets, as in a URL.
            Some((h, p)) if !h.ends_with(':') => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad(&format!("`{p}` is not a port")))?;
                (h, Some(port))
            }
            _ => (host, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.starts_with('-') {
            return Err(bad("no host"));
        }
        Ok(Destination {
            user,
            host: host.to_string(),
            port,
        })
    }
}

/// A client for the engine at `destination`; nothing is dialed until a request.
pub(crate) fn connect(destination: Destination) -> Result<Docker, bollard::errors::Error> {
    let client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(Connector {
            destination: Arc::new(destination),
        });
    Docker::connect_with_custom_transport(
        move |request: bollard::BollardRequest| {
            let client = client.clone();
            async move {
                client
                    .request(request)
                    .await
                    .map_err(bollard::errors::Error::from)
            }
        },
        // Every connection goes to the one daemon: the URL's host only names the pool.
        Some("http://docker"),
        // bollard's own default: the time to a response's head, not to the end of a build.
        120,
        bollard::API_DEFAULT_VERSION,
    )
}

/// Dials one connection per call.
#[derive(Clone)]
struct Connector {
    destination: Arc<Destination>,
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = TokioIo<DialStdio>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let destination = self.destination.clone();
        Box::pin(async move {
            dial_stdio(&destination)
                .map(TokioIo::new)
                .map_err(io::Error::other)
        })
    }
}

impl Connection for DialStdio {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// A connection to the daemon at `destination`: `ssh … docker system dial-stdio`.
pub(crate) struct DialStdio {
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// ssh's verdict: `Err` with what it said when it ended in failure.
    exit: JoinHandle<Result<(), String>>,
    verdict: Option<Result<(), String>>,
}

/// Starts `ssh` for one connection. ssh connects while the first request is written: when it
/// fails (host unknown or unreachable, key refused, no docker on the remote), the connection
/// ends, and reading or writing it then fails with ssh's own words.
pub(crate) fn dial_stdio(destination: &Destination) -> Result<DialStdio, String> {
    let mut ssh = Command::new("ssh");
    // As the docker CLI runs it, in batch mode: a prompt would wait for a terminal nobody
    // watches.
    ssh.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-T"]);
    if let Some(user) = &destination.user {
        ssh.arg("-l").arg(user);
    }
    if let Some(port) = destination.port {
        ssh.arg("-p").arg(port.to_string());
    }
    ssh.arg("--")
        .arg(&destination.host)
        .args(["docker", "system", "dial-stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A connection dropped (or a wharf that stops) ends its ssh.
        .kill_on_drop(true);
    let mut child = ssh.spawn().map_err(|e| format!("cannot run ssh: {e}"))?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("ssh started without its pipes".into());
    };
    let exit = tokio::spawn(async move {
        // Read to its end (a full pipe would stall ssh), keeping what a message can use.
        let mut said = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut chunk).await {
            if said.len() < 16 * 1024 {
                said.extend_from_slice(&chunk[..n]);
            }
        }
        let status = child.wait().await.map_err(|e| e.to_string())?;
        if status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&said);
        let said = said.trim();
        Err(match (said.is_empty(), status.code()) {
            // ssh's own errors start with `ssh: `, the remote shell's do not.
            (false, _) if said.starts_with("ssh: ") => said.replace('\n', "; "),
            (false, _) => format!("ssh: {}", said.replace('\n', "; ")),
            (true, Some(code)) => format!("ssh exited with status {code}"),
            (true, None) => "ssh was killed".to_string(),
        })
    });
    Ok(DialStdio {
        stdin,
        stdout,
        exit,
        verdict: None,
    })
}

impl DialStdio {
    /// Waits for ssh to end (the connection has), and says why when it failed.
    fn poll_failure(&mut self, cx: &mut Context<'_>) -> Poll<Option<String>> {
        if self.verdict.is_none() {
            let verdict = match ready!(Pin::new(&mut self.exit).poll(cx)) {
                Ok(verdict) => verdict,
                Err(e) => Err(format!("ssh's watcher stopped: {e}")),
            };
            self.verdict = Some(verdict);
        }
        Poll::Ready(self.verdict.clone().and_then(Result::err))
    }
}

impl Drop for DialStdio {
    fn drop(&mut self) {
        // Drops the child, which kills ssh if it still runs.
        self.exit.abort();
    }
}

impl AsyncRead for DialStdio {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stdout).poll_read(cx, buf))?;
        if buf.filled().len() > before || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // The end of the stream: ssh is ending; a failure is an error, not a quiet close.
        match ready!(this.poll_failure(cx)) {
            Some(why) => Poll::Ready(Err(io::Error::other(why))),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for DialStdio {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match ready!(Pin::new(&mut this.stdin).poll_write(cx, buf)) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                match ready!(this.poll_failure(cx)) {
                    Some(why) => Poll::Ready(Err(io::Error::other(why))),
                    None => Poll::Ready(Err(e)),
                }
            }
            written => Poll::Ready(written),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_as_docker_host_writes_them() {
        let d = Destination::parse("ssh://me@arm-builder:2222").unwrap();
        assert_eq!(
            d,
            Destination {
                user: Some("me".into()),
                host: "arm-builder".into(),
                port: Some(2222)
            }
        );
        let d = Destination::parse("ssh://arm-builder/").unwrap();
        assert_eq!(
            (d.user, d.host.as_str(), d.port),
            (None, "arm-builder", None)
        );
        let d = Destination::parse("ssh://[::1]:22").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("::1", Some(22)));
        for bad in [
            "ssh://",
            "ssh://@host",
            "ssh://host:port",
            "ssh://host:0",
            "ssh://host/var/run/docker.sock",
            "ssh://-oProxyCommand=x",
            "tcp://host:2375",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }
}
