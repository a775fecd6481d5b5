//! An HTTP proxy in front of a plain-HTTP bed registry that stages a registry's faults, request
//! by request: a transient 503, a dropped connection, a permanent refusal with a registry error,
//! a request never answered. Every request it sees is logged in arrival order, with what the
//! proxy did with it, so a test can say which requests reached the registry and in which order.
//!
//! It speaks HTTP/1.1 through hyper (server side to wharf or the daemon, client side to the
//! registry), so keep-alive connections, chunked uploads and HEAD requests are framed as the
//! protocol says, and a fault hits exactly the request it matched. The daemon treats loopback
//! registries as insecure, so `docker push 127.0.0.1:<port>/repo:tag` goes through it as is.
//!
//! ```ignore
//! let proxy = RegistryProxy::start(&bed.plain_registry);
//! let latest = proxy.fault(Method::PUT, "^/v2/.+/manifests/latest$", Fault::refuse_tag());
//! let blobs = proxy.fault(Method::PATCH, "^/v2/.+/blobs/uploads/", Fault::Unavailable { times: 2 });
//! // … push to `proxy.addr` …
//! assert_eq!(blobs.hits(), 2);
//! assert!(proxy.forwarded(&Method::PUT, "/manifests/latest").is_empty());
//! ```

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use regex::Regex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

pub use hyper::Method;

/// What the proxy does to a request that matches a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answers `503 Service Unavailable` to the first `times` matching requests (a registry
    /// restarting or overloaded), then lets them through.
    Unavailable { times: usize },
    /// Closes the connection without an answer on the first `times` matching requests, then
    /// lets them through.
    Drop { times: usize },
    /// Answers every matching request with `status` and a registry error body
    /// (`{"errors":[{"code":…,"message":…}]}`), as a registry refusing for good does.
    Refuse {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// Never answers matching requests: the connection stays open and silent until the proxy
    /// is dropped (a hung registry).
    Hang,
}

impl Fault {
    /// A registry refusing a tag: 400 `TAG_INVALID`.
    pub fn refuse_tag() -> Fault {
        Fault::Refuse {
            status: StatusCode::BAD_REQUEST,
            code: "TAG_INVALID".into(),
            message: "manifest tag did not match URI".into(),
        }
    }

    /// A registry refusing access: 403 `DENIED`.
    pub fn deny() -> Fault {
        Fault::Refuse {
            status: StatusCode::FORBIDDEN,
            code: "DENIED".into(),
            message: "requested access to the resource is denied".into(),
        }
    }

    /// How many matching requests it takes; `None` for every one.
    fn budget(&self) -> Option<usize> {
        match self {
            Fault::Unavailable { times } | Fault::Drop { times } => Some(*times),
            Fault::Refuse { .. } | Fault::Hang => None,
        }
    }
}

/// A rule: requests of `method` whose path (without the query) matches `path` get `fault`.
pub struct Rule {
    method: Method,
    path: Regex,
    fault: Fault,
    hits: AtomicUsize,
}

impl Rule {
    /// How many requests this rule has faulted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Takes the request if it matches and the rule has budget left.
    fn take(&self, method: &Method, path: &str) -> bool {
        if self.method != method || !self.path.is_match(path) {
            return false;
        }
        let budget = self.fault.budget().unwrap_or(usize::MAX);
        self.hits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
                (h < budget).then_some(h + 1)
            })
            .is_ok()
    }
}

/// What the proxy did with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent on to the registry; its answer's status once it came (`None`: no answer yet, or
    /// the registry could not be reached, see `Unreachable`).
    Forwarded(Option<StatusCode>),
    /// Forwarding failed: the registry refused the connection or broke it off.
    Unreachable,
    /// Taken by a rule.
    Faulted(Fault),
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    pub outcome: Outcome,
}

type Log = Arc<Mutex<Vec<Exchange>>>;
type Rules = Arc<Mutex<Vec<Arc<Rule>>>>;

/// The proxy, listening on `addr` (`127.0.0.1:<port>`) until dropped.
pub struct RegistryProxy {
    /// `127.0.0.1:<port>`: use it as the registry's host.
    pub addr: String,
    rules: Rules,
    log: Log,
    connections: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RegistryProxy {
    /// Forwards 127.0.0.1:<free port> to the plain-HTTP registry at `upstream` (`host:port`).
    /// The proxy runs on a thread of its own, so it serves sync and async tests alike.
    pub fn start(upstream: &str) -> RegistryProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        let addr = listener.local_addr().expect("a local address").to_string();
        let rules: Rules = Arc::default();
        let log: Log = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel();
        let upstream = upstream.to_string();
        let thread = {
            let (rules, log, connections) = (rules.clone(), log.clone(), connections.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the proxy");
                rt.block_on(serve(listener, upstream, rules, log, connections, stopped));
                // Dropping the runtime cancels every connection, hung ones included.
            })
        };
        RegistryProxy {
            addr,
            rules,
            log,
            connections,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Adds a rule; `path` is a regular expression over the request path (without the query).
    /// Rules are tried in the order they were added; one out of budget lets requests fall
    /// through to the next, and then to the registry.
    pub fn fault(&self, method: Method, path: &str, fault: Fault) -> Arc<Rule> {
        let rule = Arc::new(Rule {
            method,
            path: Regex::new(path).expect("a valid path pattern"),
            fault,
            hits: AtomicUsize::new(0),
        });
        self.rules.lock().unwrap().push(rule.clone());
        rule
    }

    /// How many connections clients opened to the proxy.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }

    /// The requests of `method` whose path contains `path_part` that were sent on to the
    /// registry, in arrival order.
    pub fn forwarded(&self, method: &Method, path_part: &str) -> Vec<Exchange> {
        self.requests()
            .into_iter()
            .filter(|e| {
                e.method == *method
                    && e.path.contains(path_part)
                    && matches!(e.outcome, Outcome::Forwarded(_))
            })
            .collect()
    }
}

impl Drop for RegistryProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Why a connection is closed without an answer (hyper closes a connection whose service
/// fails, writing nothing).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a fault rule")
    }
}

impl std::error::Error for Dropped {}

async fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    rules: Rules,
    log: Log,
    connections: Arc<AtomicUsize>,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build_http();
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        connections.fetch_add(1, Ordering::SeqCst);
        let (client, upstream, rules, log) =
            (client.clone(), upstream.clone(), rules.clone(), log.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                handle(
                    req,
                    client.clone(),
                    upstream.clone(),
                    rules.clone(),
                    log.clone(),
                )
            });
            // An error here is a dropped connection (ours or the client's): nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    client: Client<HttpConnector, Incoming>,
    upstream: String,
    rules: Rules,
    log: Log,
) -> Result<Response<ProxyBody>, Dropped> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let rule = rules
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.take(&method, &path))
        .cloned();
    let outcome = match &rule {
        Some(rule) => Outcome::Faulted(rule.fault.clone()),
        None => Outcome::Forwarded(None),
    };
    let entry = {
        let mut log = log.lock().unwrap();
        log.push(Exchange {
            method,
            path,
            outcome,
        });
        log.len() - 1
    };
    match rule.as_ref().map(|r| &r.fault) {
        Some(Fault::Unavailable { .. }) => {
            drain(req).await?;
            Ok(registry_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "service unavailable",
            ))
        }
        Some(Fault::Drop { .. }) => Err(Dropped),
        Some(Fault::Refuse {
            status,
            code,
            message,
        }) => {
            drain(req).await?;
            Ok(registry_error(*status, code, message))
        }
        Some(Fault::Hang) => std::future::pending().await,
        None => {
            let answer = forward(req, &client, &upstream).await;
            log.lock().unwrap()[entry].outcome = match &answer {
                Ok(response) => Outcome::Forwarded(Some(response.status())),
                Err(_) => Outcome::Unreachable,
            };
            answer
        }
    }
}

/// Reads the request's body to its end before a fault answers it: a client still sending
/// would meet a closed connection instead of the answer, and the connection stays usable.
async fn drain(req: Request<Incoming>) -> Result<(), Dropped> {
    req.into_body().collect().await.map_err(|_| Dropped)?;
    Ok(())
}

/// Headers that describe one connection, not the request: never passed on.
const HOP_BY_HOP: &[header::HeaderName] = &[
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Sends the request on to the registry, keeping its Host header, so that the upload URLs the
/// registry hands out point back at the proxy.
async fn forward(
    req: Request<Incoming>,
    client: &Client<HttpConnector, Incoming>,
    upstream: &str,
) -> Result<Response<ProxyBody>, Dropped> {
    let (mut parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = format!("http://{upstream}{path_and_query}")
        .parse()
        .expect("a valid upstream URI");
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    parts.headers.remove("keep-alive");
    let response = client
        .request(Request::from_parts(parts, body))
        .await
        .map_err(|_| Dropped)?;
    let (mut parts, body) = response.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    parts.headers.remove("keep-alive");
    Ok(Response::from_parts(parts, body.boxed()))
}

/// An answer in the registry API's error format.
fn registry_error(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "errors": [{ "code": code, "message": message }] });
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header("Docker-Distribution-API-Version", "registry/2.0")
        .body(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("a valid response")
}
