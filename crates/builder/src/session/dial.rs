//! Opening `POST /session` on the daemon and taking over its connection.
//!
//! bollard keeps the upgrade of a request to a raw connection to itself, so this module dials
//! the same endpoint bollard was given ([`crate::daemon::endpoint`]): a unix socket, or TCP,
//! with TLS when `DOCKER_TLS_VERIFY` is set or the scheme is `https` (certificates from
//! `DOCKER_CERT_PATH`, as bollard reads them), or `docker system dial-stdio` over ssh. It sends one HTTP/1.1 request asking to switch
//! to `h2c`, and hands back the connection once the daemon answers `101 Switching Protocols`.

use super::SessionError;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{CONNECTION, HOST, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

/// What the session's request says about it.
pub(crate) struct SessionHeaders<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub shared_key: &'a str,
    /// Every gRPC method the session serves, as `/package.Service/Method`.
    pub methods: &'a [String],
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Opens the session on the daemon at `host` (a `DOCKER_HOST`-style address), speaking API
/// `version` (`1.41`), and returns the connection the daemon will speak gRPC over.
pub(crate) async fn open(
    host: &str,
    version: &str,
    headers: &SessionHeaders<'_>,
) -> Result<Upgraded, SessionError> {
    let io = connect(host).await?;
    let failed = |message: String| SessionError::Open {
        host: host.to_string(),
        message,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| failed(e.to_string()))?;
    // The connection must be driven until the upgrade hands it over.
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });

    let mut request = Request::post(format!("/v{version}/session"))
        // Go's HTTP server refuses HTTP/1.1 requests without a Host.
        .header(HOST, "docker")
        .header(CONNECTION, "Upgrade")
        .header(UPGRADE, "h2c")
        .header("X-Docker-Expose-Session-Uuid", headers.id)
        .header("X-Docker-Expose-Session-Name", headers.name)
        .header("X-Docker-Expose-Session-Sharedkey", headers.shared_key);
    for method in headers.methods {
        request = request.header("X-Docker-Expose-Session-Grpc-Method", method.as_str());
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        // The daemon's errors are JSON: {"message": "..."}.
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string());
        return Err(failed(format!("the daemon answered {status}: {message}")));
    }
    hyper::upgrade::on(response)
        .await
        .map_err(|e| failed(e.to_string()))
}

async fn connect(host: &str) -> Result<Box<dyn Io>, SessionError> {
    let failed = |message: String| SessionError::Open {
        host: host.to_string(),
        message,
    };
    if let Some(path) = host.strip_prefix("unix://") {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| failed(e.to_string()))?;
        return Ok(Box::new(stream));
    }
    if host.starts_with("ssh://") {
        let destination = crate::ssh_engine::Destination::parse(host).map_err(failed)?;
        let stream = crate::ssh_engine::dial_stdio(&destination).map_err(failed)?;
        return Ok(Box::new(stream));
    }
    let (tls, rest) = if let Some(rest) = host.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        // What bollard does with a tcp:// address.
        (std::env::var_os("DOCKER_TLS_VERIFY").is_some(), rest)
    } else {
        return Err(SessionError::Unsupported {
            host: host.to_string(),
        });
    };
    let addr = rest.split('/').next().unwrap_or(rest);
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !tls {
        return Ok(Box::new(stream));
    }
    let server = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(server.to_string())
        .map_err(|e| failed(format!("TLS server name {server}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config().map_err(failed)?));
    let stream = connector
        .connect(name, stream)
        .await
        .map_err(|e| failed(format!("TLS: {e}")))?;
    Ok(Box::new(stream))
}

/// The folder of `ca.pem`, `cert.pem` and `key.pem`, where bollard looks for it.
fn cert_path() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CERT_PATH")
        .or_else(|| std::env::var_os("DOCKER_CONFIG"))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// TLS as bollard sets it up: the system's roots plus `ca.pem`, and `cert.pem`/`key.pem` as
/// the client certificate when they exist.
fn tls_config() -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let dir = cert_path();
    let file = |name: &str| dir.as_ref().map(|d| d.join(name)).filter(|p| p.is_file());
    if let Some(ca) = file("ca.pem") {
        let certs = CertificateDer::pem_file_iter(&ca)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.add_parsable_certificates(certs);
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    match (file("cert.pem"), file("key.pem")) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(&cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            let key_der = PrivateKeyDer::from_pem_file(&key)
                .map_err(|e| format!("{}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("client certificate {}: {e}", cert.display()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}
