//! The release, all or nothing: phase 1 pushes every service's identity tags (concurrently
//! across services); phase 2 moves the moving tags (`latest`) only when phase 1 landed for
//! every service, so a failed release never leaves `latest` pointing at a mixed set.

use crate::api::{RawManifest, RegistryApi};
use crate::login::Login;
use crate::push::{push_tag, Progress};
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
    /// Bytes of one layer uploaded so far, as the daemon reports them (a layer is known by
    /// its size: see [`Progress::Layer`]).
    Layer {
        service: &'a str,
        current: u64,
        total: u64,
    },
    Landed {
        service: &'a str,
        tag: &'a str,
        digest: &'a str,
    },
    /// Something the user should know that does not fail the release.
    Warning {
        service: &'a str,
        message: &'a str,
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

/// Where a service's image comes from when its identity tags are pushed.
#[derive(Debug, Clone)]
pub enum Origin {
    /// The image the daemon just built: its layers are uploaded by the daemon.
    Daemon,
    /// An image the target repository already holds (same inputs): only tags are added.
    Registry(RawManifest),
}

/// Whether a push error is worth another try: server errors, throttling, dropped connections.
fn is_transient(e: &Error) -> bool {
    let message = match e {
        Error::Push { message, .. } | Error::Registry { message, .. } => {
            message.to_ascii_lowercase()
        }
        // A registry that is restarting, or a connection that failed once, may answer the
        // next try; one that is not there at all fails after the policy's few tries.
        Error::Unreachable { .. } => return true,
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
        "error sending request",
    ]
    .iter()
    .any(|s| message.contains(s))
}

/// The immutable-tag refusals of ECR and distribution registries.
fn is_immutable_refusal(e: &Error) -> bool {
    let m = e.to_string().to_ascii_lowercase();
    m.contains("immutable") || (m.contains("tag invalid") && m.contains("already exists"))
}

fn retry_policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_times(3)
}

/// Pushes a service's images and tags: layers through the Docker daemon (which holds them
/// after the build), every further tag through the registry's API as a manifest copy, so
/// that all tags of a release name the very same manifest bytes.
pub struct Pusher<'a> {
    docker: &'a Docker,
    api: RegistryApi,
    logins: &'a Logins,
    events: PushEvents,
}

impl<'a> Pusher<'a> {
    pub fn new(docker: &'a Docker, logins: &'a Logins, events: PushEvents) -> Self {
        Pusher {
            docker,
            api: RegistryApi::new(),
            logins,
            events,
        }
    }

    fn repository(&self, target: &ImageTarget) -> Result<(String, Option<&'a Login>), Error> {
        let host = target.host.as_deref().ok_or_else(|| Error::Registry {
            registry: format!("{:?}", target.registry),
            message: "the registry host is not resolved".into(),
        })?;
        Ok((
            format!("{host}/{}", target.repository),
            self.logins.get(host),
        ))
    }

    /// The manifest `tag` names in the target's repository, if any.
    pub async fn find(
        &self,
        target: &ImageTarget,
        tag: &str,
    ) -> Result<Option<RawManifest>, Error> {
        let (repository, login) = self.repository(target)?;
        let reference = format!("{repository}:{tag}");
        (|| self.api.manifest(&reference, login))
            .retry(retry_policy())
            .when(is_transient)
            .await
    }

    /// Whether `candidate`, found in the target's repository, may be released as this build's
    /// image (see [`crate::trust`]).
    pub async fn trust(
        &self,
        target: &ImageTarget,
        candidate: &RawManifest,
        expected: &crate::trust::Expected<'_>,
    ) -> Result<crate::trust::Verdict, Error> {
        let (repository, login) = self.repository(target)?;
        crate::trust::check(&self.api, &repository, login, candidate, expected).await
    }

    /// Phase 1 for one service: its identity tags, then `extra` tags that describe the image
    /// (the inputs tag). Returns the manifest digest every identity tag names.
    pub async fn identity(
        &self,
        target: &ImageTarget,
        origin: &Origin,
        extra: &[String],
    ) -> Result<String, Error> {
        let (repository, login) = self.repository(target)?;
        let mut tags = target.identity_tags.iter();
        let manifest = match origin {
            Origin::Registry(m) => m.clone(),
            Origin::Daemon => {
                let first = tags.next().ok_or_else(|| Error::Push {
                    reference: repository.clone(),
                    message: "no identity tag to push".into(),
                })?;
                // What the identity tag named before, if anything: a rebuild of the same commit
                // that made a different image (no cache, a newer unpinned base) re-points it in
                // a mutable repository, and that must not go unsaid.
                let before = self
                    .api
                    .manifest_digest(&format!("{repository}:{first}"), login)
                    .await
                    .ok()
                    .flatten();
                let digest = self
                    .push_from_daemon(target, &repository, first, login)
                    .await?;
                if let Some(before) = before.filter(|b| *b != digest) {
                    let message = format!(
                        "{repository}:{first} named {before} and now names {digest}: this commit was \
                         released before and built again into different bytes (each build records \
                         its time, see SOURCE_DATE_EPOCH; no cache, a newer base or uncommitted \
                         changes differ more); deployments that pulled it by tag may run either"
                    );
                    (self.events)(PushEvent::Warning {
                        service: &target.service,
                        message: &message,
                    });
                }
                self.landed(target, first, &digest);
                self.manifest_at(&repository, &digest, login).await?
            }
        };
        for tag in tags {
            self.copy(target, &repository, tag, &manifest, login, true)
                .await?;
        }
        for tag in extra {
            if let Err(e) = self
                .copy(target, &repository, tag, &manifest, login, false)
                .await
            {
                let message = format!("the tag {tag} was not stored ({e}); the next release of the same inputs will build again");
                (self.events)(PushEvent::Warning {
                    service: &target.service,
                    message: &message,
                });
            }
        }
        Ok(manifest.digest)
    }

    /// Phase 2 for one service: its moving tags, on the manifest phase 1 landed.
    pub async fn moving(&self, target: &ImageTarget, digest: &str) -> Result<String, Error> {
        let (repository, login) = self.repository(target)?;
        let manifest = self.manifest_at(&repository, digest, login).await?;
        for tag in &target.moving_tags {
            self.copy(target, &repository, tag, &manifest, login, true)
                .await?;
        }
        Ok(manifest.digest)
    }

    /// The manifest `digest` names in `repository`, which the release pushed: it must be there.
    async fn manifest_at(
        &self,
        repository: &str,
        digest: &str,
        login: Option<&Login>,
    ) -> Result<RawManifest, Error> {
        let by_digest = format!("{repository}@{digest}");
        (|| self.api.manifest(&by_digest, login))
            .retry(retry_policy())
            .when(is_transient)
            .await?
            .ok_or_else(|| Error::Push {
                reference: by_digest.clone(),
                message: "the registry does not serve the manifest this release pushed".into(),
            })
    }

    fn landed(&self, target: &ImageTarget, tag: &str, digest: &str) {
        (self.events)(PushEvent::Landed {
            service: &target.service,
            tag,
            digest,
        });
    }

    /// Points `tag` at `manifest` through the registry API (retrying transient failures).
    /// An immutable repository refuses to re-point a tag; when the tag already names this
    /// very manifest, it is where it should be. `shown`: a release tag the user follows (the
    /// inputs tag is bookkeeping, kept quiet).
    async fn copy(
        &self,
        target: &ImageTarget,
        repository: &str,
        tag: &str,
        manifest: &RawManifest,
        login: Option<&Login>,
        shown: bool,
    ) -> Result<(), Error> {
        if shown {
            (self.events)(PushEvent::Started {
                service: &target.service,
                tag,
            });
        }
        let put = || self.api.put_manifest(repository, tag, manifest, login);
        let put = put
            .retry(retry_policy())
            .when(is_transient)
            .notify(|e, wait| tracing::warn!(service = %target.service, "retrying {repository}:{tag} in {wait:?}: {e}"));
        match put.await {
            Ok(_) => {}
            Err(e) if is_immutable_refusal(&e) => {
                let served = self
                    .api
                    .manifest_digest(&format!("{repository}:{tag}"), login)
                    .await?;
                if served.as_deref() != Some(manifest.digest.as_str()) {
                    return Err(immutable_clash(repository, tag));
                }
            }
            Err(e) => return Err(e),
        }
        if shown {
            self.landed(target, tag, &manifest.digest);
        }
        Ok(())
    }

    /// Tags the local image as `repository:tag` and pushes it through the daemon, retrying
    /// transient failures.
    async fn push_from_daemon(
        &self,
        target: &ImageTarget,
        repository: &str,
        tag: &str,
        login: Option<&Login>,
    ) -> Result<String, Error> {
        let reference = format!("{repository}:{tag}");
        let options = bollard::query_parameters::TagImageOptions {
            repo: Some(repository.to_string()),
            tag: Some(tag.to_string()),
        };
        self.docker
            .tag_image(&target.local_image, Some(options))
            .await
            .map_err(|e| Error::Push {
                reference: reference.clone(),
                message: format!(
                    "the local image {} cannot be tagged ({e}); was it built? (wharf build)",
                    target.local_image
                ),
            })?;
        (self.events)(PushEvent::Started {
            service: &target.service,
            tag,
        });
        let events = &self.events;
        let attempt = || async {
            push_tag(self.docker, repository, tag, login, |p| match p {
                Progress::Status(line) => events(PushEvent::Status {
                    service: &target.service,
                    line,
                }),
                Progress::Layer { current, total } => events(PushEvent::Layer {
                    service: &target.service,
                    current,
                    total,
                }),
            })
            .await
        };
        let pushed = attempt
            .retry(retry_policy())
            .when(is_transient)
            .notify(|e, wait| tracing::warn!(service = %target.service, "retrying {reference} in {wait:?}: {e}"))
            .await;
        let digest = match pushed {
            Ok(p) => p.digest.ok_or_else(|| Error::Push {
                reference: reference.clone(),
                message: "the daemon reported no digest".into(),
            })?,
            // An immutable repository refuses a tag that already exists. When the registry
            // already serves this very image under it, the tag is where it should be.
            Err(e) if is_immutable_refusal(&e) => {
                let served = self.api.manifest_digest(&reference, login).await?;
                let ours = local_digest(self.docker, &target.local_image, repository).await;
                match (served, ours) {
                    (Some(s), Some(o)) if s == o => s,
                    _ => return Err(immutable_clash(repository, tag)),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(digest)
    }
}

fn immutable_clash(repository: &str, tag: &str) -> Error {
    Error::Push {
        reference: format!("{repository}:{tag}"),
        message: format!(
            "the repository's tags are immutable and `{tag}` already names a different image; identity tags are never overwritten — build from a new commit, or delete the old tag on purpose"
        ),
    }
}

/// The digest the daemon knows for `image` in `repository` (from an earlier push).
async fn local_digest(docker: &Docker, image: &str, repository: &str) -> Option<String> {
    let inspect = docker.inspect_image(image).await.ok()?;
    inspect.repo_digests?.iter().find_map(|d| {
        d.strip_prefix(&format!("{repository}@"))
            .map(str::to_string)
    })
}

/// Runs `work` for every target concurrently, at most `parallel` at a time, each in a `push`
/// span, and returns each service's landing in the targets' order.
pub async fn for_each<'t, F, Fut>(
    targets: &'t [ImageTarget],
    parallel: usize,
    work: F,
) -> IndexMap<String, Landing>
where
    F: Fn(&'t ImageTarget) -> Option<Fut>,
    Fut: std::future::Future<Output = Result<String, Error>> + 't,
{
    let results = stream::iter(targets.iter().filter_map(|t| {
        let span = tracing::info_span!("push", service = %t.service);
        work(t).map(|f| async move { (t.service.clone(), f.await) }.instrument(span))
    }))
    .buffer_unordered(parallel.max(1))
    .collect::<Vec<_>>()
    .await;
    landings(targets, results.into_iter().collect())
}

/// Each service's landing, in the targets' order, from the results of its pushes.
pub fn landings(
    targets: &[ImageTarget],
    mut results: HashMap<String, Result<String, Error>>,
) -> IndexMap<String, Landing> {
    targets
        .iter()
        .filter_map(|t| {
            let r = results.remove(&t.service)?;
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
