//! Reaching the Docker daemon as the docker CLI would: `DOCKER_HOST` (unix, tcp, tcp with TLS
//! through `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`, ssh through the system's `ssh` and `docker
//! system dial-stdio` on the remote), else the current Docker context
//! (`DOCKER_CONTEXT` or `currentContext` of the Docker config), else the default socket; then
//! the API version negotiated, so requests name a version the engine knows.

use bollard::Docker;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot reach the Docker daemon at {host}: {message}")]
    Unreachable { host: String, message: String },
    #[error("the Docker context `{context}` cannot be used: {message}")]
    Context { context: String, message: String },
    #[error("the Docker daemon at {host} does not say which platform it builds: {message}")]
    Platform { host: String, message: String },
}

/// Where the daemon is, and why wharf thinks so (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub source: &'static str,
}

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A file of the Docker config folder (a regular file of a sensible size).
fn read_config(path: &std::path::Path) -> Result<Vec<u8>, wharf_compose::files::FileError> {
    use wharf_compose::files::{self, Accept};
    files::read(path, Accept::RegularFile, files::MAX_TEXT_FILE)
}

/// Finds the daemon endpoint the docker CLI would use.
pub fn endpoint() -> Result<Endpoint, DaemonError> {
    if let Some(host) = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()) {
        return Ok(Endpoint {
            host,
            source: "DOCKER_HOST",
        });
    }
    let config = wharf_docker::config::config_dir();
    let context = std::env::var("DOCKER_CONTEXT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let text = read_config(&config.as_ref()?.join("config.json")).ok()?;
            let json: serde_json::Value = serde_json::from_slice(&text).ok()?;
            json.get("currentContext")?.as_str().map(str::to_string)
        });
    match context {
        None => Ok(Endpoint {
            host: DEFAULT_HOST.into(),
            source: "default socket",
        }),
        Some(c) if c == "default" => Ok(Endpoint {
            host: DEFAULT_HOST.into(),
            source: "default socket",
        }),
        Some(name) => {
            let err = |message: String| DaemonError::Context {
                context: name.clone(),
                message,
            };
            let dir = config
                .ok_or_else(|| err("no Docker config folder (set HOME or DOCKER_CONFIG)".into()))?;
            // The CLI stores each context's metadata under the SHA-256 of its name.
            let id = format!("{:x}", Sha256::digest(name.as_bytes()));
            let meta = dir.join("contexts").join("meta").join(id).join("meta.json");
            let text = read_config(&meta).map_err(|e| err(e.to_string()))?;
            let json: serde_json::Value = serde_json::from_slice(&text)
                .map_err(|e| err(format!("{}: {e}", meta.display())))?;
            let host = json
                .pointer("/Endpoints/docker/Host")
                .and_then(|h| h.as_str())
                .ok_or_else(|| err(format!("{} names no docker endpoint", meta.display())))?;
            Ok(Endpoint {
                host: host.to_string(),
                source: "docker context",
            })
        }
    }
}

/// Connects to the daemon, negotiates the API version and checks that it answers.
pub async fn connect() -> Result<(Docker, Endpoint), DaemonError> {
    let ep = endpoint()?;
    let docker = connect_to(&ep.host)
        .await
        .map_err(|message| DaemonError::Unreachable {
            host: ep.host.clone(),
            message,
        })?;
    Ok((docker, ep))
}

/// Connects to the engine at `host` (written as `DOCKER_HOST` is: `unix://`, `tcp://`,
/// `ssh://`), negotiates the API version and checks that it answers. The error says why it
/// could not, with what to check for that kind of endpoint.
pub async fn connect_to(host: &str) -> Result<Docker, String> {
    let failed = |e: bollard::errors::Error| format!("{}\n  {}", cause(&e), hint(host));
    let docker = if host.starts_with("ssh://") {
        crate::ssh_engine::connect(crate::ssh_engine::Destination::parse(host)?)
    } else {
        Docker::connect_with_host(host)
    }
    .map_err(failed)?;
    let docker = docker.negotiate_version().await.map_err(failed)?;
    docker.ping().await.map_err(failed)?;
    Ok(docker)
}

/// What to check when the engine at `host` does not answer.
fn hint(host: &str) -> &'static str {
    if host.starts_with("ssh://") {
        "wharf runs `docker system dial-stdio` there through the system's ssh, in batch mode: the key must work without a prompt (ssh-agent or IdentityFile), the host key must be known, and the remote user needs the docker CLI on its PATH and access to the daemon"
    } else {
        "is dockerd running, and may this user use its socket? (DOCKER_HOST / docker context select)"
    }
}

/// The error and its causes, without the client library's wrappers (which only say which
/// layer failed), each once.
fn cause(e: &bollard::errors::Error) -> String {
    use std::error::Error;
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = next {
        next = err.source();
        let wrapper = next.is_some()
            && (err.is::<bollard::errors::Error>()
                || err.is::<hyper_util::client::legacy::Error>());
        let text = err.to_string();
        if !wrapper && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

/// The proxies of the Docker config (`proxies` in `config.json`) for the daemon wharf builds
/// with, as build args: docker compose passes them to every build the way buildx's
/// `GetProxyConfig` reads them (the entry of the daemon's host, else `default`). They are
/// BuildKit's and the classic builder's predefined args: they reach `RUN` steps without an
/// `ARG` and stay out of the image's history. None when there is no config or no entry.
pub fn proxy_build_args() -> Vec<(String, String)> {
    let Some(host) = endpoint().ok().map(|e| e.host) else {
        return Vec::new();
    };
    let config = wharf_docker::config::config_dir()
        .and_then(|d| std::fs::read_to_string(d.join("config.json")).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    match config {
        Some(c) => proxies_for(&c, &host),
        None => Vec::new(),
    }
}

fn proxies_for(config: &serde_json::Value, host: &str) -> Vec<(String, String)> {
    let Some(proxies) = config.get("proxies").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    let Some(proxy) = proxies.get(host).or_else(|| proxies.get("default")) else {
        return Vec::new();
    };
    [
        ("httpProxy", "HTTP_PROXY"),
        ("httpsProxy", "HTTPS_PROXY"),
        ("noProxy", "NO_PROXY"),
        ("ftpProxy", "FTP_PROXY"),
    ]
    .into_iter()
    .filter_map(|(field, arg)| {
        let v = proxy.get(field)?.as_str()?;
        (!v.is_empty()).then(|| (arg.to_string(), v.to_string()))
    })
    .collect()
}

/// The platform the daemon builds when none is asked for: its own `os/arch`.
pub async fn native_platform(
    docker: &Docker,
    ep: &Endpoint,
) -> Result<wharf_compose::platform::Platform, DaemonError> {
    let fail = |message: String| DaemonError::Platform {
        host: ep.host.clone(),
        message,
    };
    let v = docker.version().await.map_err(|e| fail(e.to_string()))?;
    match (v.os, v.arch) {
        (Some(os), Some(arch)) if !os.is_empty() && !arch.is_empty() => {
            wharf_compose::platform::Platform::parse(&format!("{os}/{arch}"))
                .map_err(|e| fail(e.to_string()))
        }
        _ => Err(fail("its version answer names no os/arch".into())),
    }
}

/// [`connect`], then [`native_platform`], for callers outside an async runtime.
pub fn native_platform_blocking() -> Result<wharf_compose::platform::Platform, DaemonError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DaemonError::Platform {
            host: endpoint().map(|e| e.host).unwrap_or_default(),
            message: format!("cannot start the async runtime: {e}"),
        })?;
    runtime.block_on(async {
        let (docker, ep) = connect().await?;
        native_platform(&docker, &ep).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_of_the_daemons_host_else_default() {
        let config = serde_json::json!({"proxies": {
            "default": {"httpProxy": "http://d:3128", "noProxy": "localhost"},
            "tcp://build:2376": {"httpsProxy": "http://b:3128", "ftpProxy": "", "allProxy": "x"}
        }});
        assert_eq!(
            proxies_for(&config, "unix:///var/run/docker.sock"),
            [
                ("HTTP_PROXY".to_string(), "http://d:3128".to_string()),
                ("NO_PROXY".to_string(), "localhost".to_string())
            ]
        );
        // The host's own entry replaces `default` whole, as in buildx.
        assert_eq!(
            proxies_for(&config, "tcp://build:2376"),
            [("HTTPS_PROXY".to_string(), "http://b:3128".to_string())]
        );
        assert!(proxies_for(&serde_json::json!({}), "x").is_empty());
    }
}
