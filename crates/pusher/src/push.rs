//! Pushing a tag through the Docker daemon.
//!
//! The daemon uploads the layers (it already holds them after the build); credentials travel
//! only in the `X-Registry-Auth` header of this one request.

use crate::error::{Fault, FaultKind};
use crate::login::Login;
use crate::Error;
use bollard::query_parameters::PushImageOptions;
use bollard::Docker;
use futures_util::StreamExt;
use std::time::Duration;

/// What the daemon reported for a finished push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest digest the registry accepted (`sha256:…`).
    pub digest: Option<String>,
}

/// What the daemon says while it pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A status line ("Pushed", "Layer already exists", the final digest line…).
    Status(&'a str),
    /// Bytes of one layer uploaded so far. bollard's push item carries no layer id, so a
    /// layer is known by its size (two layers of the very same size share a line).
    Layer { current: u64, total: u64 },
}

/// Pushes `repository:tag` (the repository including its registry host), calling `progress`
/// with what the daemon reports. A push whose stream stays silent for `idle` (a daemon waiting
/// on a registry that stopped answering) ends in [`Error::Timeout`].
pub async fn push_tag(
    docker: &Docker,
    repository: &str,
    tag: &str,
    login: Option<&Login>,
    idle: Duration,
    mut progress: impl FnMut(Progress),
) -> Result<Pushed, Error> {
    let reference = format!("{repository}:{tag}");
    let options = PushImageOptions {
        tag: Some(tag.to_string()),
        ..Default::default()
    };
    let mut stream = docker.push_image(
        repository,
        Some(options),
        login.map(Login::docker_credentials),
    );
    let mut digest = None;
    loop {
        let item = match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(_) => {
                return Err(Error::Timeout {
                    registry: registry_of(repository),
                    request: format!("the daemon's push of {reference} (no progress)"),
                    after: idle,
                })
            }
        };
        let info = item.map_err(|e| push_error(&reference, repository, daemon_message(&e)))?;
        if let Some(detail) = info.progress_detail.as_ref() {
            if let (Some(current), Some(total)) = (detail.current, detail.total) {
                if total > 0 {
                    progress(Progress::Layer {
                        current: current.max(0) as u64,
                        total: total as u64,
                    });
                    continue;
                }
            }
        }
        if let Some(status) = info.status.as_deref() {
            // The last status of a push is "<tag>: digest: sha256:… size: N".
            if let Some(rest) = status.split("digest: ").nth(1) {
                digest = rest.split_whitespace().next().map(str::to_string);
            }
            progress(Progress::Status(status));
        }
    }
    Ok(Pushed { digest })
}

/// The daemon's own words, without bollard's wrapping.
fn daemon_message(e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as B;
    match e {
        B::DockerStreamError { error } => error.clone(),
        B::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn registry_of(repository: &str) -> String {
    repository
        .split('/')
        .next()
        .unwrap_or(repository)
        .to_string()
}

/// The daemon reports a failed push as text only (the registry's status and error code are
/// inside its words), so this is the one place that reads them: the error leaves here with
/// its [`Fault`] decided.
fn push_error(reference: &str, repository: &str, message: String) -> Error {
    let registry = registry_of(repository);
    let lower = message.to_ascii_lowercase();
    if lower.contains("unauthorized")
        || lower.contains("authentication required")
        || lower.contains("no basic auth credentials")
    {
        return Error::Unauthorized {
            registry,
            status: 401,
            hint: format!("{message} — the login for this registry is wrong or expired"),
        };
    }
    if lower.contains("denied") {
        return Error::Unauthorized {
            registry,
            status: 403,
            hint: format!("{message} — the credentials may not push to this repository (does it exist? is the policy right?)"),
        };
    }
    Error::Push {
        reference: reference.to_string(),
        fault: daemon_fault(&lower),
        message,
    }
}

/// The fault in the daemon's words (lowercased) for a push error.
fn daemon_fault(lower: &str) -> Fault {
    let status = [500u16, 502, 503, 504, 429, 408]
        .into_iter()
        .find(|s| lower.contains(&s.to_string()));
    // ECR: "tag invalid: The image tag '…' already exists in the '…' repository and cannot be
    // overwritten because the repository is immutable."
    if lower.contains("immutable")
        || (lower.contains("tag invalid") && lower.contains("already exists"))
    {
        return Fault {
            status,
            code: Some(crate::error::RegistryCode::TagInvalid),
            kind: FaultKind::ImmutableTag,
        };
    }
    let transient = status.is_some()
        || [
            "toomanyrequests",
            "too many requests",
            "throttl",
            "connection reset",
            "broken pipe",
            // Docker 26 with the containerd store, when the registry drops the connection of a
            // manifest upload.
            "use of closed network connection",
            "timeout",
            "timed out",
            "eof",
            "connection refused",
            "service unavailable",
            "bad gateway",
            "error sending request",
        ]
        .iter()
        .any(|s| lower.contains(s));
    Fault {
        status,
        code: lower
            .contains("toomanyrequests")
            .then_some(crate::error::RegistryCode::TooManyRequests),
        kind: if transient {
            FaultKind::Transient
        } else {
            FaultKind::Permanent
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(message: &str) -> FaultKind {
        push_error("h/r:t", "h/r", message.to_string()).kind()
    }

    #[test]
    fn the_daemons_words_are_read_once_into_a_fault() {
        assert_eq!(
            kind("received unexpected HTTP status: 503 Service Unavailable"),
            FaultKind::Transient
        );
        assert_eq!(kind("toomanyrequests: Rate exceeded"), FaultKind::Transient);
        assert_eq!(
            kind("read tcp: connection reset by peer"),
            FaultKind::Transient
        );
        assert_eq!(
            kind(
                r#"failed commit on ref "manifest-sha256:e410": failed to do request: Put "https://127.0.0.1:41279/v2/r/manifests/t": readfrom tcp 127.0.0.1:46618->127.0.0.1:41279: write tcp 127.0.0.1:46618->127.0.0.1:41279: use of closed network connection"#
            ),
            FaultKind::Transient
        );
        assert_eq!(kind("manifest invalid: bad layer"), FaultKind::Permanent);
        assert_eq!(
            kind("tag invalid: The image tag 'abc' already exists in the 'x' repository and cannot be overwritten because the repository is immutable."),
            FaultKind::ImmutableTag
        );
        // Refusals of the credentials are their own error, never retried.
        assert!(matches!(
            push_error(
                "h/r:t",
                "h/r",
                "denied: requested access to the resource is denied".into()
            ),
            Error::Unauthorized { status: 403, .. }
        ));
        assert_eq!(
            push_error(
                "h/r:t",
                "h/r",
                "received unexpected HTTP status: 502 Bad Gateway".into()
            )
            .status(),
            Some(502)
        );
    }
}
