//! One image build through the daemon: the request, the streamed context, and the daemon's
//! answer turned into progress lines and a typed outcome.

use bollard::query_parameters::{BuildImageOptions, BuilderVersion};
use bollard::{body_try_stream, Docker};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;

/// Which of the daemon's builders runs the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuilderKind {
    /// BuildKit (the default): cache/secret/ssh mounts, parallel stages.
    #[default]
    BuildKit,
    /// The classic builder, for daemons without BuildKit.
    Classic,
}

/// What the daemon is asked to build. The context itself travels separately, as a stream.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The image reference the result is tagged with.
    pub tag: String,
    /// The Dockerfile's path inside the context tar.
    pub dockerfile: String,
    pub args: HashMap<String, String>,
    pub target: Option<String>,
    pub labels: HashMap<String, String>,
    pub builder: BuilderKind,
    pub no_cache: bool,
    /// Always try to pull newer base images.
    pub pull: bool,
    pub network: Option<String>,
    /// `host:ip`; the engine's build endpoint takes one entry through this API client.
    pub extra_host: Option<String>,
    /// Bytes.
    pub shm_size: Option<i32>,
    pub cache_from: Vec<String>,
    pub platform: Option<String>,
    /// A remote context (git URL, tarball URL) the daemon fetches itself; no body is sent.
    pub remote: Option<String>,
}

/// A failed build, with what the daemon said.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{message}")]
    Daemon {
        message: String,
        log_tail: Vec<String>,
    },
}

/// Builds the image, streaming `context` (a tar) as the request body. `on_line` receives the
/// daemon's output line by line.
pub async fn build(
    docker: &Docker,
    request: &BuildRequest,
    context: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    mut on_line: impl FnMut(&str),
) -> Result<(), BuildError> {
    let buildkit = request.builder == BuilderKind::BuildKit;
    let options = BuildImageOptions {
        dockerfile: request.dockerfile.clone(),
        t: Some(request.tag.clone()),
        buildargs: Some(request.args.clone()),
        labels: Some(request.labels.clone()),
        target: request.target.clone().unwrap_or_default(),
        rm: true,
        forcerm: true,
        nocache: request.no_cache,
        pull: request.pull.then(|| "1".to_string()),
        networkmode: request.network.clone(),
        extrahosts: request.extra_host.clone(),
        shmsize: request.shm_size,
        cachefrom: (!request.cache_from.is_empty()).then(|| request.cache_from.clone()),
        platform: request.platform.clone().unwrap_or_default(),
        remote: request.remote.clone(),
        version: if buildkit {
            BuilderVersion::BuilderBuildKit
        } else {
            BuilderVersion::BuilderV1
        },
        session: buildkit.then(|| uuid::Uuid::new_v4().to_string()),
        ..Default::default()
    };
    let mut tail: Vec<String> = Vec::new();
    let mut remember = |line: &str, tail: &mut Vec<String>| {
        if tail.len() == 40 {
            tail.remove(0);
        }
        tail.push(line.to_string());
        on_line(line);
    };
    let mut stream = docker.build_image(options, None, Some(body_try_stream(context)));
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        remember(line, &mut tail);
                    }
                }
                if let Some(bollard::models::BuildInfoAux::BuildKit(status)) = &info.aux {
                    for log in &status.logs {
                        for line in String::from_utf8_lossy(&log.msg)
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                        {
                            remember(line, &mut tail);
                        }
                    }
                    for v in &status.vertexes {
                        if !v.error.is_empty() {
                            remember(&format!("{}: {}", v.name, v.error), &mut tail);
                        }
                    }
                }
            }
            Err(e) => {
                let message = match e {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    bollard::errors::Error::DockerResponseServerError { message, .. } => message,
                    other => other.to_string(),
                };
                return Err(BuildError::Daemon {
                    message,
                    log_tail: tail,
                });
            }
        }
    }
    Ok(())
}
