//! The registry's HTTP API (OCI distribution), read through `oci-client`: manifest digests for
//! checking what landed and for `verify`, and manifest copies that add tags without moving a
//! layer. Works with ECR, ECR Public and any registry; Basic
//! and Bearer-token challenges are handled by the client.

use crate::error::{Fault, FaultKind, RegistryCode};
use crate::login::Login;
use crate::timeouts::Timeouts;
use crate::Error;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// A client for one or more registries. Every request has a deadline ([`Timeouts::request`]):
/// a registry that accepts the connection and never answers ends in [`Error::Timeout`], a
/// transient fault, instead of a wait without end.
pub struct RegistryApi {
    client: Client,
    /// Clients of loopback registries, by host, once it is known how they speak.
    loopback: tokio::sync::Mutex<HashMap<String, (Client, Loopback)>>,
    timeouts: Timeouts,
}

impl Default for RegistryApi {
    fn default() -> Self {
        Self::new(Timeouts::default())
    }
}

/// Whether a registry host is on loopback. Docker's daemon treats 127.0.0.0/8 as an insecure
/// registry by default — HTTPS without certificate checks, else plain HTTP — and wharf speaks
/// to such hosts the same way, so that what the daemon pushed there can be read back.
pub fn is_loopback(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    name == "localhost"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
        || name == "[::1]"
}

/// How a loopback registry speaks, from one bare request for `/v2/` over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loopback {
    Https,
    /// Plain HTTP; `open`: it answered `/v2/` without asking for credentials.
    Http {
        open: bool,
    },
}

/// How the loopback registry at `host` speaks: one bare request, read as far as the end of
/// the headers. Written by hand because an HTTP client would first build a TLS stack and load
/// the system's certificates for a question a few lines answer; a TLS server answers a plain
/// request with Go's "HTTP request to an HTTPS server" or by hanging up.
async fn probe_loopback(host: &str) -> Loopback {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::timeout;
    let connected = timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(host)).await;
    // Nothing listening: the request that follows fails with the connection error.
    let Ok(Ok(mut stream)) = connected else {
        return Loopback::Http { open: false };
    };
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return Loopback::Https;
    }
    let head = async {
        let mut answer = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        while answer.len() < 16 * 1024 && !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        answer
    };
    // A TLS server may also just wait for a handshake that never comes.
    let Ok(answer) = timeout(Duration::from_secs(2), head).await else {
        return Loopback::Https;
    };
    let text = String::from_utf8_lossy(&answer);
    let mut lines = text.lines();
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/") || status.contains("400") {
        return Loopback::Https;
    }
    let challenged = lines
        .take_while(|l| !l.is_empty())
        .any(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"));
    let ok = status.split_whitespace().nth(1) == Some("200");
    Loopback::Http {
        open: ok && !challenged,
    }
}

impl RegistryApi {
    pub fn new(timeouts: Timeouts) -> Self {
        crate::tls::install_crypto_provider();
        let config = ClientConfig {
            protocol: ClientProtocol::Https,
            ..client_config(&timeouts)
        };
        RegistryApi {
            client: Client::new(config),
            loopback: Default::default(),
            timeouts,
        }
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Runs one request (with the token exchange it may need) within the request deadline.
    async fn bounded<T>(
        &self,
        host: &str,
        request: impl FnOnce() -> String,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeouts.request, work).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                registry: host.to_string(),
                request: request(),
                after: self.timeouts.request,
            }),
        }
    }

    /// The client for `host`, and the credentials to send it: `login`'s, else none.
    async fn client_for(&self, host: &str, login: Option<&Login>) -> (Client, RegistryAuth) {
        let auth = login.map_or(RegistryAuth::Anonymous, Login::registry_auth);
        if !is_loopback(host) {
            return (self.client.clone(), auth);
        }
        let mut known = self.loopback.lock().await;
        let (client, speaks) = match known.get(host) {
            Some(c) => c.clone(),
            None => {
                let speaks = probe_loopback(host).await;
                let https = speaks == Loopback::Https;
                let client = Client::new(ClientConfig {
                    protocol: if https {
                        ClientProtocol::Https
                    } else {
                        ClientProtocol::Http
                    },
                    accept_invalid_certificates: https,
                    ..client_config(&self.timeouts)
                });
                known.insert(host.to_string(), (client.clone(), speaks));
                (client, speaks)
            }
        };
        // The client caches tokens, not the absence of a challenge: without credentials it
        // asks `/v2/` again before every request, doubling them. A registry that asked for none
        // takes none and ignores the header, and an empty bearer token is used as it is,
        // without that question.
        let auth = match (login, speaks) {
            (None, Loopback::Http { open: true }) => RegistryAuth::Bearer(String::new()),
            _ => auth,
        };
        (client, auth)
    }

    /// The digest the registry serves for `reference` (`host/repo:tag`), or `Ok(None)` when the
    /// tag or repository does not exist.
    pub async fn manifest_digest(
        &self,
        reference: &str,
        login: Option<&Login>,
    ) -> Result<Option<String>, Error> {
        let parsed = parse_reference(reference)?;
        let host = parsed.resolve_registry().to_string();
        let (client, auth) = self.client_for(&host, login).await;
        self.bounded(&host, || format!("HEAD of {reference}"), async {
            match client.fetch_manifest_digest(&parsed, &auth).await {
                Ok(d) => Ok(Some(d)),
                Err(e) => classify(e, &host, reference, self.timeouts.request),
            }
        })
        .await
    }
}

/// The client settings every registry client shares: connect and read deadlines, so that
/// no socket waits without end even inside a request the overall deadline covers.
fn client_config(timeouts: &Timeouts) -> ClientConfig {
    ClientConfig {
        connect_timeout: Some(timeouts.request.min(Duration::from_secs(10))),
        read_timeout: Some(timeouts.request),
        ..Default::default()
    }
}

/// The manifest media types wharf copies between tags: Docker's and OCI's, single images and
/// lists/indexes, so that a retag serves exactly the bytes (and digest) that were pushed.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// A manifest exactly as the registry serves it.
#[derive(Debug, Clone)]
pub struct RawManifest {
    pub bytes: bytes::Bytes,
    pub media_type: String,
    /// `sha256:…` of `bytes`.
    pub digest: String,
}

/// `reference` read as docker reads it, for the registry client.
fn parse_reference(reference: &str) -> Result<Reference, Error> {
    wharf_docker::ImageReference::parse(reference)
        .map(|r| r.to_oci())
        .map_err(|e| Error::Registry {
            registry: reference.to_string(),
            message: format!("not an image reference: {e}"),
            fault: Fault::permanent(),
        })
}

impl RegistryApi {
    /// The manifest `reference` names, byte for byte, or `Ok(None)` when it does not exist.
    pub async fn manifest(
        &self,
        reference: &str,
        login: Option<&Login>,
    ) -> Result<Option<RawManifest>, Error> {
        let parsed = parse_reference(reference)?;
        let host = parsed.resolve_registry().to_string();
        let (client, auth) = self.client_for(&host, login).await;
        let pulled = self
            .bounded(&host, || format!("GET of {reference}"), async {
                Ok(client
                    .pull_manifest_raw(&parsed, &auth, MANIFEST_TYPES)
                    .await)
            })
            .await?;
        match pulled {
            Ok((bytes, digest)) => {
                let media_type = media_type_of(&bytes).ok_or_else(|| Error::Registry {
                    registry: host.clone(),
                    message: format!(
                        "{reference}: the manifest names no media type wharf can copy"
                    ),
                    fault: Fault::permanent(),
                })?;
                Ok(Some(RawManifest {
                    bytes,
                    media_type,
                    digest,
                }))
            }
            Err(e) => classify(e, &host, reference, self.timeouts.request).map(|_| None),
        }
    }

    /// Stores `manifest` under `tag` of `repository` (`host/repo`): a new tag for an image
    /// the registry already holds, with no layer moving. Returns the digest the tag names.
    pub async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        manifest: &RawManifest,
        login: Option<&Login>,
    ) -> Result<String, Error> {
        self.put_manifest_as(format!("{repository}:{tag}"), manifest, login)
            .await
    }

    /// Stores `manifest` in `repository` (`host/repo`) under its own digest, with no tag: an
    /// index's platform images, copied before the index that names them.
    pub async fn put_manifest_by_digest(
        &self,
        repository: &str,
        manifest: &RawManifest,
        login: Option<&Login>,
    ) -> Result<String, Error> {
        self.put_manifest_as(format!("{repository}@{}", manifest.digest), manifest, login)
            .await
    }

    async fn put_manifest_as(
        &self,
        reference: String,
        manifest: &RawManifest,
        login: Option<&Login>,
    ) -> Result<String, Error> {
        let parsed = parse_reference(&reference)?;
        let host = parsed.resolve_registry().to_string();
        let (client, auth) = self.client_for(&host, login).await;
        let content_type = manifest.media_type.parse().map_err(|_| Error::Registry {
            registry: host.clone(),
            message: format!("invalid media type {}", manifest.media_type),
            fault: Fault::permanent(),
        })?;
        self.bounded(&host, || format!("PUT of {reference}"), async {
            client.store_auth_if_needed(&host, &auth).await;
            client
                .push_manifest_raw(&parsed, manifest.bytes.clone(), content_type)
                .await
                .map_err(
                    |e| match classify(e, &host, &reference, self.timeouts.request) {
                        Err(e) => e,
                        Ok(_) => Error::Registry {
                            registry: host.clone(),
                            message: format!("{reference}: the repository does not exist"),
                            fault: Fault {
                                status: Some(404),
                                code: Some(RegistryCode::NameUnknown),
                                kind: FaultKind::Permanent,
                            },
                        },
                    },
                )
        })
        .await?;
        Ok(manifest.digest.clone())
    }
}

impl RegistryApi {
    /// The blob `digest` of `repository` (`host/repo`), checked against its digest, and never
    /// more than `limit` bytes of it (a config blob is small; one that is not is refused
    /// rather than read).
    pub async fn blob(
        &self,
        repository: &str,
        digest: &str,
        limit: usize,
        login: Option<&Login>,
    ) -> Result<Vec<u8>, Error> {
        let reference = format!("{repository}@{digest}");
        let parsed = parse_reference(&reference)?;
        let host = parsed.resolve_registry().to_string();
        let (client, auth) = self.client_for(&host, login).await;
        client.store_auth_if_needed(&host, &auth).await;
        let mut out = Bounded {
            buf: Vec::new(),
            limit,
            over: false,
        };
        let pulled = self
            .bounded(&host, || format!("GET of {reference}"), async {
                Ok(client.pull_blob(&parsed, digest, &mut out).await)
            })
            .await?;
        match pulled {
            Ok(()) => Ok(out.buf),
            Err(_) if out.over => Err(Error::Registry {
                registry: host,
                message: format!("{reference} is larger than the {limit} bytes wharf reads"),
                fault: Fault::permanent(),
            }),
            Err(e) => Err(
                match classify(e, &host, &reference, self.timeouts.request) {
                    Err(e) => e,
                    Ok(_) => Error::NotFound { reference },
                },
            ),
        }
    }
}

/// Blob transfers between repositories, for copying a release to another registry: every
/// byte goes from one registry's API to the other's, never through the disk or a daemon.
impl RegistryApi {
    /// Whether `repository` (`host/repo`) holds the blob `digest`.
    pub async fn blob_exists(
        &self,
        repository: &str,
        digest: &str,
        login: Option<&Login>,
    ) -> Result<bool, Error> {
        let reference = format!("{repository}@{digest}");
        let parsed = parse_reference(&reference)?;
        let host = parsed.resolve_registry().to_string();
        let (client, auth) = self.client_for(&host, login).await;
        self.bounded(&host, || format!("HEAD of {reference}"), async {
            client.store_auth_if_needed(&host, &auth).await;
            client
                .blob_exists(&parsed, digest)
                .await
                .or_else(|e| classify(e, &host, &reference, self.timeouts.request).map(|_| false))
        })
        .await
    }

    /// Asks the registry of `to` (`host/repo`) to mount the blob `digest` from `from`, a
    /// repository of the same registry: no byte moves. `Ok(false)` when the registry did not
    /// mount it (no support, or no access to `from`); the caller then copies the bytes.
    pub async fn mount_blob(
        &self,
        to: &str,
        from: &str,
        digest: &str,
        login: Option<&Login>,
    ) -> Result<bool, Error> {
        let target = parse_reference(&format!("{to}@{digest}"))?;
        let source = parse_reference(&format!("{from}@{digest}"))?;
        let host = target.resolve_registry().to_string();
        let (client, auth) = self.client_for(&host, login).await;
        self.bounded(&host, || format!("mount of {digest} into {to}"), async {
            client.store_auth_if_needed(&host, &auth).await;
            match client.mount_blob(&target, &source, digest).await {
                Ok(()) => Ok(true),
                Err(e) => {
                    tracing::debug!("{to}: {digest} was not mounted from {from}: {e}");
                    Ok(false)
                }
            }
        })
        .await
    }

    /// Streams the blob `digest` from `from` into `to` (repositories `host/repo`, on any two
    /// registries), chunk by chunk as it arrives. The destination checks the digest when the
    /// upload ends. Not bounded by the request deadline as a whole (a large layer takes longer
    /// than any one request): each socket read is, so a stalled stream still ends.
    pub async fn copy_blob(
        &self,
        from: &str,
        from_login: Option<&Login>,
        to: &str,
        to_login: Option<&Login>,
        digest: &str,
    ) -> Result<(), Error> {
        use futures_util::TryStreamExt;
        let source = parse_reference(&format!("{from}@{digest}"))?;
        let target = parse_reference(&format!("{to}@{digest}"))?;
        let from_host = source.resolve_registry().to_string();
        let to_host = target.resolve_registry().to_string();
        let (pull, from_auth) = self.client_for(&from_host, from_login).await;
        let (push, to_auth) = self.client_for(&to_host, to_login).await;
        let reference = format!("{from}@{digest}");
        let stream = self
            .bounded(&from_host, || format!("GET of {reference}"), async {
                pull.store_auth_if_needed(&from_host, &from_auth).await;
                pull.pull_blob_stream(&source, digest).await.map_err(|e| {
                    match classify(e, &from_host, &reference, self.timeouts.request) {
                        Err(e) => e,
                        Ok(_) => Error::NotFound {
                            reference: reference.clone(),
                        },
                    }
                })
            })
            .await?;
        let size = stream.content_length;
        let body = stream.map_err(OciDistributionError::IoError);
        push.store_auth_if_needed(&to_host, &to_auth).await;
        let target_ref = format!("{to}@{digest}");
        push.push_blob_stream(&target, body, digest, size)
            .await
            .map_err(
                |e| match classify(e, &to_host, &target_ref, self.timeouts.request) {
                    Err(e) => e,
                    Ok(_) => Error::Registry {
                        registry: to_host.clone(),
                        message: format!("{to}: the repository does not exist"),
                        fault: Fault {
                            status: Some(404),
                            code: Some(RegistryCode::NameUnknown),
                            kind: FaultKind::Permanent,
                        },
                    },
                },
            )?;
        Ok(())
    }
}

/// A buffer that refuses to grow past its limit.
struct Bounded {
    buf: Vec<u8>,
    limit: usize,
    over: bool,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.buf.len() + data.len() > self.limit {
            self.over = true;
            return std::task::Poll::Ready(Err(std::io::Error::other("over the limit")));
        }
        self.buf.extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The `mediaType` a manifest declares (every manifest Docker and ECR store declares one).
pub(crate) fn media_type_of(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Head>(bytes).ok()?.media_type
}

/// A client error as wharf's [`Error`], with its [`Fault`] decided here, where the status and
/// the registry's error code are still at hand. `Ok(None)`: the thing asked for does not exist.
fn classify(
    e: OciDistributionError,
    host: &str,
    reference: &str,
    limit: Duration,
) -> Result<Option<String>, Error> {
    use OciDistributionError as O;
    let registry = host.to_string();
    match e {
        O::ImageManifestNotFoundError(_) => Ok(None),
        O::ServerError { code: 404, .. } => Ok(None),
        O::RegistryError { ref envelope, .. }
            if envelope.errors.iter().any(|x| {
                matches!(
                    x.code,
                    oci_client::errors::OciErrorCode::ManifestUnknown
                        | oci_client::errors::OciErrorCode::NameUnknown
                )
            }) =>
        {
            Ok(None)
        }
        O::AuthenticationFailure(m) => Err(Error::Unauthorized {
            hint: format!("{m} — check the credentials for {host}"),
            registry,
            status: 401,
        }),
        O::UnauthorizedError { .. } | O::ServerError { code: 401, .. } => {
            Err(Error::Unauthorized {
                registry,
                status: 401,
                hint: format!("reading {reference} needs valid credentials for {host}"),
            })
        }
        O::ServerError { code: 403, .. } => Err(Error::Unauthorized {
            registry,
            status: 403,
            hint: format!("the credentials may not read {reference}"),
        }),
        O::RequestError(ref r) if r.is_connect() => Err(Error::Unreachable {
            registry,
            message: with_causes(&e),
        }),
        O::RequestError(ref r) if r.is_timeout() => Err(Error::Timeout {
            registry,
            request: reference.to_string(),
            after: limit,
        }),
        O::ServerError { code, .. } => Err(Error::Registry {
            registry,
            message: with_causes(&e),
            fault: Fault::from_status(code),
        }),
        O::RegistryError { ref envelope, .. } => {
            let first = envelope.errors.first();
            let code = first.map(|x| RegistryCode::from_oci(&x.code));
            let text = first
                .map(|x| x.message.to_ascii_lowercase())
                .unwrap_or_default();
            let kind = match &code {
                Some(RegistryCode::TooManyRequests) => FaultKind::Transient,
                // ECR refuses to re-point a tag of an immutable repository with TAG_INVALID
                // and says why; the distribution registry has no immutable tags.
                Some(RegistryCode::TagInvalid)
                    if text.contains("immutable") || text.contains("already exists") =>
                {
                    FaultKind::ImmutableTag
                }
                _ => FaultKind::Permanent,
            };
            Err(Error::Registry {
                registry,
                message: with_causes(&e),
                fault: Fault {
                    status: None,
                    code,
                    kind,
                },
            })
        }
        // A connection that broke mid-request, a body cut short: the next try may pass.
        O::RequestError(_) | O::IoError(_) => Err(Error::Registry {
            registry,
            message: with_causes(&e),
            fault: Fault::transient(),
        }),
        other => Err(Error::Registry {
            registry,
            message: with_causes(&other),
            fault: Fault::permanent(),
        }),
    }
}

/// An error with its causes ("error sending request …: connection refused"): the cause says
/// whether another try may help.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::{is_loopback, probe_loopback, Loopback};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on loopback that answers every connection with `answer` once it has read a
    /// request's head.
    async fn answering(answer: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 512];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        host
    }

    #[tokio::test]
    async fn only_a_registry_that_asks_for_no_credentials_is_open() {
        let open = answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await;
        assert_eq!(probe_loopback(&open).await, Loopback::Http { open: true });
        let basic = answering(
            "HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Basic realm=\"r\"\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert_eq!(probe_loopback(&basic).await, Loopback::Http { open: false });
        // A 200 that still names a challenge is not taken for an open registry.
        let challenged =
            answering("HTTP/1.1 200 OK\r\nWWW-Authenticate: Bearer realm=\"https://auth\"\r\n\r\n")
                .await;
        assert_eq!(
            probe_loopback(&challenged).await,
            Loopback::Http { open: false }
        );
        let tls = answering(
            "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        )
        .await;
        assert_eq!(probe_loopback(&tls).await, Loopback::Https);
    }

    #[test]
    fn loopback_registries_are_insecure_registries() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(!is_loopback("123456789012.dkr.ecr.us-east-1.amazonaws.com"));
        assert!(!is_loopback("public.ecr.aws"));
    }
}
