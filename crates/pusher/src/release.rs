//! The release, all or nothing: phase 1 pushes every service's identity tags (concurrently
//! across services); phase 2 moves the moving tags (`latest`) only when phase 1 landed for
//! every service, so a failed release never leaves `latest` pointing at a mixed set.

use crate::login::Login;
use crate::push::push_tag;
use crate::target::ImageTarget;
use crate::Error;
use backon::{ExponentialBuilder, Retryable};
use bollard::Docker;
use futures_util::stream::{self, StreamExt};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Progress of pushes, as it happens.
#[derive(Debug)]
pub enum PushEvent<'a> {
    Started {
        service: &'a str,
        tag: &'a str,
    },
    Status {
        service: &'a str,
        line: &'a str,
    },
    Landed {
        service: &'a str,
        tag: &'a str,
        digest: &'a str,
    },
}

pub type PushEvents = Arc<dyn Fn(PushEvent) + Send + Sync>;

/// Credentials per registry host (absent: anonymous).
pub type Logins = HashMap<String, Login>;

/// One service's part of a phase.
#[derive(Debug)]
pub enum Landing {
    /// Every tag of the phase landed; the manifest digest the registry accepted.
    Landed {
        digest: String,
    },
    Failed(Error),
}

/// Whether a push error is worth another try: server errors, throttling, dropped connections.
fn is_transient(e: &Error) -> bool {
    let message = match e {
        Error::Push { message, .. } | Error::Registry { message, .. } => {
            message.to_ascii_lowercase()
        }
        _ => return false,
    };
    [
        "500",
        "502",
        "503",
        "504",
        "429",
        "toomanyrequests",
        "too many requests",
        "throttl",
        "connection reset",
        "broken pipe",
        "timeout",
        "timed out",
        "eof",
        "connection refused",
        "service unavailable",
    ]
    .iter()
    .any(|s| message.contains(s))
}

/// The immutable-tag refusals of ECR and distribution registries.
fn is_immutable_refusal(e: &Error) -> bool {
    let m = e.to_string().to_ascii_lowercase();
    m.contains("immutable") || (m.contains("tag invalid") && m.contains("already exists"))
}

/// Tags the local image as `repository:tag` and pushes it, retrying transient failures.
async fn push_one(
    docker: &Docker,
    target: &ImageTarget,
    repository: &str,
    tag: &str,
    login: Option<&Login>,
    events: &PushEvents,
) -> Result<String, Error> {
    let reference = format!("{repository}:{tag}");
    let options = bollard::query_parameters::TagImageOptions {
        repo: Some(repository.to_string()),
        tag: Some(tag.to_string()),
    };
    docker
        .tag_image(&target.local_image, Some(options))
        .await
        .map_err(|e| Error::Push {
            reference: reference.clone(),
            message: format!(
                "the local image {} cannot be tagged ({e}); was it built? (wharf build)",
                target.local_image
            ),
        })?;
    events(PushEvent::Started {
        service: &target.service,
        tag,
    });
    let attempt = || async {
        push_tag(docker, repository, tag, login, |line| {
            events(PushEvent::Status {
                service: &target.service,
                line,
            })
        })
        .await
    };
    let pushed = attempt
        .retry(ExponentialBuilder::default().with_min_delay(Duration::from_millis(500)).with_max_times(3))
        .when(is_transient)
        .notify(|e, wait| tracing::warn!(service = %target.service, "retrying {reference} in {wait:?}: {e}"))
        .await?;
    pushed.digest.ok_or_else(|| Error::Push {
        reference,
        message: "the daemon reported no digest".into(),
    })
}

/// Pushes `tags` of one service; all must land with the same digest.
async fn push_tags(
    docker: &Docker,
    api: &crate::api::RegistryApi,
    target: &ImageTarget,
    tags: &[String],
    logins: &Logins,
    events: &PushEvents,
) -> Result<String, Error> {
    let host = target.host.as_deref().ok_or_else(|| Error::Registry {
        registry: format!("{:?}", target.registry),
        message: "the registry host is not resolved".into(),
    })?;
    let repository = format!("{host}/{}", target.repository);
    let login = logins.get(host);
    let mut digest: Option<String> = None;
    for tag in tags {
        let landed = match push_one(docker, target, &repository, tag, login, events).await {
            Ok(d) => d,
            // An immutable repository refuses a tag that already exists. When the registry
            // already serves this very image under it, the tag is where it should be.
            Err(e) if is_immutable_refusal(&e) => {
                let served = api
                    .manifest_digest(&format!("{repository}:{tag}"), login)
                    .await?;
                let ours = local_digest(docker, &target.local_image, &repository).await;
                match (served, ours) {
                    (Some(s), Some(o)) if s == o => s,
                    _ => {
                        return Err(Error::Push {
                            reference: format!("{repository}:{tag}"),
                            message: format!(
                                "the repository's tags are immutable and `{tag}` already names a different image; identity tags are never overwritten — build from a new commit, or delete the old tag on purpose"
                            ),
                        })
                    }
                }
            }
            Err(e) => return Err(e),
        };
        events(PushEvent::Landed {
            service: &target.service,
            tag,
            digest: &landed,
        });
        match &digest {
            Some(d) if d != &landed => {
                return Err(Error::Push {
                    reference: format!("{repository}:{tag}"),
                    message: format!(
                        "landed as {landed}, but the other tags of this release are {d}"
                    ),
                })
            }
            _ => digest = Some(landed),
        }
    }
    digest.ok_or_else(|| Error::Push {
        reference: repository,
        message: "no tag to push".into(),
    })
}

/// The digest the daemon knows for `image` in `repository` (from an earlier push).
async fn local_digest(docker: &Docker, image: &str, repository: &str) -> Option<String> {
    let inspect = docker.inspect_image(image).await.ok()?;
    inspect.repo_digests?.iter().find_map(|d| {
        d.strip_prefix(&format!("{repository}@"))
            .map(str::to_string)
    })
}

/// Runs one phase for every target: `tags_of` picks the phase's tags. Services run
/// concurrently, at most `parallel` at a time.
pub async fn phase(
    docker: &Docker,
    targets: &[ImageTarget],
    tags_of: fn(&ImageTarget) -> &[String],
    logins: &Logins,
    parallel: usize,
    events: PushEvents,
) -> IndexMap<String, Landing> {
    let api = crate::api::RegistryApi::new();
    let results = stream::iter(targets.iter().filter(|t| !tags_of(t).is_empty()))
        .map(|t| {
            let events = events.clone();
            let api = &api;
            let span = tracing::info_span!("push", service = %t.service);
            async move {
                let r = push_tags(docker, api, t, tags_of(t), logins, &events).await;
                (t.service.clone(), r)
            }
            .instrument(span)
        })
        .buffer_unordered(parallel.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut by_service: HashMap<String, Result<String, Error>> = results.into_iter().collect();
    targets
        .iter()
        .filter_map(|t| {
            let r = by_service.remove(&t.service)?;
            Some((
                t.service.clone(),
                match r {
                    Ok(digest) => Landing::Landed { digest },
                    Err(e) => Landing::Failed(e),
                },
            ))
        })
        .collect()
}

/// The identity tags of a target (phase 1).
pub fn identity_tags(t: &ImageTarget) -> &[String] {
    &t.identity_tags
}

/// The moving tags of a target (phase 2).
pub fn moving_tags(t: &ImageTarget) -> &[String] {
    &t.moving_tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_and_permanent_errors() {
        let push = |m: &str| Error::Push {
            reference: "r".into(),
            message: m.into(),
        };
        assert!(is_transient(&push(
            "received unexpected HTTP status: 503 Service Unavailable"
        )));
        assert!(is_transient(&push("toomanyrequests: Rate exceeded")));
        assert!(is_transient(&push("read tcp: connection reset by peer")));
        assert!(!is_transient(&push(
            "denied: requested access to the resource is denied"
        )));
        assert!(!is_transient(&Error::Unauthorized {
            registry: "r".into(),
            status: 401,
            hint: "h".into()
        }));
        assert!(is_immutable_refusal(&push(
            "tag invalid: The image tag 'abc' already exists in the 'x' repository and cannot be overwritten because the repository is immutable."
        )));
    }
}
