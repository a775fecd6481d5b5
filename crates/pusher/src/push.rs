//! Pushing a tag through the Docker daemon.
//!
//! The daemon uploads the layers (it already holds them after the build); credentials travel
//! only in the `X-Registry-Auth` header of this one request.

use crate::login::Login;
use crate::Error;
use bollard::query_parameters::PushImageOptions;
use bollard::Docker;
use futures_util::StreamExt;

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
/// with what the daemon reports.
pub async fn push_tag(
    docker: &Docker,
    repository: &str,
    tag: &str,
    login: Option<&Login>,
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
    while let Some(item) = stream.next().await {
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

fn push_error(reference: &str, repository: &str, message: String) -> Error {
    let registry = repository
        .split('/')
        .next()
        .unwrap_or(repository)
        .to_string();
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
        message,
    }
}
