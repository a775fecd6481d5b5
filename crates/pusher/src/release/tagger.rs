//! Putting tags on images: layers through the Docker daemon (which holds them after the
//! build), every further tag through the registry's API as a manifest copy, so that all tags
//! of a release name the very same manifest bytes. Transient faults are retried here, each
//! retry said as a [`ServiceEvent::Retrying`].

use crate::api::{RawManifest, RegistryApi};
use crate::error::FaultKind;
use crate::events::{EventSink, ServiceEvent};
use crate::index::{Child, Platform};
use crate::login::Login;
use crate::push::{push_tag, Progress};
use crate::target::ImageTarget;
use crate::Error;
use backon::{ExponentialBuilder, Retryable};
use bollard::Docker;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Credentials per registry host (absent: anonymous).
pub type Logins = HashMap<String, Login>;

/// Where a service's image comes from when its identity tags are pushed.
#[derive(Debug, Clone)]
pub enum Origin {
    /// The image the daemon just built: its layers are uploaded by the daemon.
    Daemon,
    /// An image the target repository already holds (same inputs): only tags are added.
    Registry(RawManifest),
}

/// The retry policy of every registry request: a few tries, backing off from half a second.
pub(crate) fn retry_policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_times(3)
}

/// Puts tags on one release's images.
#[derive(Clone, Copy)]
pub struct Tagger<'a> {
    pub(crate) docker: &'a Docker,
    pub(crate) api: &'a RegistryApi,
    pub(crate) logins: &'a Logins,
    pub(crate) events: &'a EventSink,
}

impl<'a> Tagger<'a> {
    pub(crate) fn repository(
        &self,
        target: &ImageTarget,
    ) -> Result<(String, Option<&'a Login>), Error> {
        let host = target.host.as_deref().ok_or_else(|| Error::Registry {
            registry: format!("{:?}", target.registry),
            message: "the registry host is not resolved".into(),
            fault: crate::error::Fault::permanent(),
        })?;
        Ok((
            format!("{host}/{}", target.repository),
            self.logins.get(host),
        ))
    }

    fn emit(&self, event: ServiceEvent) {
        self.events.service(event)
    }

    /// Runs `request` with the retry policy, saying each retry.
    pub(crate) async fn retried<T, F, Fut>(
        &self,
        service: &str,
        what: &str,
        request: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let attempt = AtomicUsize::new(0);
        request
            .retry(retry_policy())
            .when(Error::is_transient)
            .notify(|e: &Error, wait: Duration| {
                let n = attempt.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!(service, "retrying {what} in {wait:?}: {e}");
                self.emit(ServiceEvent::Retrying {
                    service: service.to_string(),
                    request: what.to_string(),
                    attempt: n,
                    wait_ms: wait.as_millis() as u64,
                    error: e.to_string(),
                });
            })
            .await
    }

    /// The manifest `tag` names in the target's repository, if any.
    pub async fn find(
        &self,
        target: &ImageTarget,
        tag: &str,
    ) -> Result<Option<RawManifest>, Error> {
        let (repository, login) = self.repository(target)?;
        let reference = format!("{repository}:{tag}");
        self.retried(&target.service, &format!("GET {reference}"), || {
            self.api.manifest(&reference, login)
        })
        .await
    }

    /// Phase 1 for one service: its identity tags, then `extra` tags that describe the image
    /// (the inputs tag). Returns the manifest digest every identity tag names.
    pub async fn identity(
        &self,
        target: &ImageTarget,
        origin: &Origin,
        extra: &[String],
    ) -> Result<String, Error> {
        Ok(self.identity_manifest(target, origin, extra).await?.digest)
    }

    /// [`Tagger::identity`], returning the manifest every identity tag names.
    pub async fn identity_manifest(
        &self,
        target: &ImageTarget,
        origin: &Origin,
        extra: &[String],
    ) -> Result<RawManifest, Error> {
        let (repository, login) = self.repository(target)?;
        let mut tags = target.identity_tags.iter();
        let manifest = match origin {
            Origin::Registry(m) => m.clone(),
            Origin::Daemon => {
                let first = tags.next().ok_or_else(|| Error::Push {
                    reference: repository.clone(),
                    message: "no identity tag to push".into(),
                    fault: crate::error::Fault::permanent(),
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
                    self.emit(ServiceEvent::Warning {
                        service: target.service.clone(),
                        message: format!(
                            "{repository}:{first} named {before} and now names {digest}: this commit was \
                             released before and built again into different bytes (each build records \
                             its time, see SOURCE_DATE_EPOCH; no cache, a newer base or uncommitted \
                             changes differ more); deployments that pulled it by tag may run either"
                        ),
                    });
                }
                self.landed(target, first, &digest);
                self.manifest_at(target, &repository, &digest, login)
                    .await?
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
                self.emit(ServiceEvent::Warning {
                    service: target.service.clone(),
                    message: format!("the tag {tag} was not stored ({e}); the next release of the same inputs will build again"),
                });
            }
        }
        Ok(manifest)
    }

    /// Phase 1 for one platform's image of a multi-platform service, built locally as
    /// `local_image`: its platform identity tags, then `extra` (its inputs tag).
    pub async fn platform_image(
        &self,
        target: &ImageTarget,
        platform: &Platform,
        local_image: &str,
        extra: &[String],
    ) -> Result<Child, Error> {
        let part = ImageTarget {
            local_image: local_image.to_string(),
            identity_tags: target.platform_tags(platform),
            moving_tags: Vec::new(),
            ..target.clone()
        };
        let manifest = self
            .identity_manifest(&part, &Origin::Daemon, extra)
            .await?;
        Ok(Child::of(&manifest, platform.clone()))
    }

    /// Phase 1 for one platform's image the repository already holds (same inputs): its
    /// platform identity tags, by manifest copy.
    pub async fn platform_reused(
        &self,
        target: &ImageTarget,
        platform: &Platform,
        manifest: &RawManifest,
    ) -> Result<Child, Error> {
        let part = ImageTarget {
            identity_tags: target.platform_tags(platform),
            moving_tags: Vec::new(),
            ..target.clone()
        };
        let m = self
            .identity_manifest(&part, &Origin::Registry(manifest.clone()), &[])
            .await?;
        Ok(Child::of(&m, platform.clone()))
    }

    /// Phase 1's end for a multi-platform service: the index of `children` under its identity
    /// tags, then `extra` (the index's inputs tag). Returns the index.
    pub async fn index(
        &self,
        target: &ImageTarget,
        children: &[Child],
        extra: &[String],
    ) -> Result<RawManifest, Error> {
        let (repository, login) = self.repository(target)?;
        let index = crate::index::document(children);
        for tag in &target.identity_tags {
            self.copy(target, &repository, tag, &index, login, true)
                .await?;
        }
        for tag in extra {
            if let Err(e) = self
                .copy(target, &repository, tag, &index, login, false)
                .await
            {
                self.emit(ServiceEvent::Warning {
                    service: target.service.clone(),
                    message: format!("the tag {tag} was not stored ({e}); the next release of the same inputs will build again"),
                });
            }
        }
        Ok(index)
    }

    /// Makes the service's local name hold `index`, the one it released, where the engine's
    /// image store can hold every platform under one name ([`crate::local_index`]). The
    /// release does not depend on it: a failure is a warning.
    pub async fn hold_locally(&self, target: &ImageTarget, index: &RawManifest) {
        match crate::local_index::load(self.docker, &target.local_image, index).await {
            Ok(()) => tracing::debug!(
                service = %target.service,
                image = %target.local_image,
                "the local image holds every platform"
            ),
            Err(e) => self.emit(ServiceEvent::Warning {
                service: target.service.clone(),
                message: format!("{} keeps one platform locally: {e}", target.local_image),
            }),
        }
    }

    /// For an index the repository already holds (an unchanged multi-platform service): each
    /// of its platforms' images gets this release's platform identity tags. Returns them.
    pub async fn platform_tags_of(
        &self,
        target: &ImageTarget,
        index: &RawManifest,
    ) -> Result<Vec<Child>, Error> {
        let (repository, login) = self.repository(target)?;
        let children = crate::index::children(index).map_err(|e| Error::Registry {
            registry: repository.clone(),
            message: format!("the index {} cannot be read: {e}", index.digest),
            fault: crate::error::Fault::permanent(),
        })?;
        for child in &children {
            let manifest = self
                .manifest_at(target, &repository, &child.digest, login)
                .await?;
            for tag in target.platform_tags(&child.platform) {
                self.copy(target, &repository, &tag, &manifest, login, true)
                    .await?;
            }
        }
        Ok(children)
    }

    /// The manifest `digest` names in `repository`, which the release pushed: it must be there.
    pub(crate) async fn manifest_at(
        &self,
        target: &ImageTarget,
        repository: &str,
        digest: &str,
        login: Option<&Login>,
    ) -> Result<RawManifest, Error> {
        let by_digest = format!("{repository}@{digest}");
        self.retried(&target.service, &format!("GET {by_digest}"), || {
            self.api.manifest(&by_digest, login)
        })
        .await?
        .ok_or_else(|| Error::Push {
            reference: by_digest.clone(),
            message: "the registry does not serve the manifest this release pushed".into(),
            fault: crate::error::Fault::permanent(),
        })
    }

    fn landed(&self, target: &ImageTarget, tag: &str, digest: &str) {
        self.emit(ServiceEvent::Pushed {
            service: target.service.clone(),
            tag: tag.to_string(),
            digest: digest.to_string(),
        });
    }

    /// Points `tag` at `manifest` through the registry API (retrying transient failures).
    /// An immutable repository refuses to re-point a tag; when the tag already names this
    /// very manifest, it is where it should be. `shown`: a release tag the user follows (the
    /// inputs tag is bookkeeping, kept quiet).
    pub(crate) async fn copy(
        &self,
        target: &ImageTarget,
        repository: &str,
        tag: &str,
        manifest: &RawManifest,
        login: Option<&Login>,
        shown: bool,
    ) -> Result<(), Error> {
        if shown {
            self.emit(ServiceEvent::Pushing {
                service: target.service.clone(),
                tag: tag.to_string(),
            });
        }
        let put = self
            .retried(&target.service, &format!("PUT {repository}:{tag}"), || {
                self.api.put_manifest(repository, tag, manifest, login)
            })
            .await;
        match put {
            Ok(_) => {}
            Err(e) if e.kind() == FaultKind::ImmutableTag => {
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
                fault: crate::error::Fault::permanent(),
            })?;
        self.emit(ServiceEvent::Pushing {
            service: target.service.clone(),
            tag: tag.to_string(),
        });
        let idle = self.api.timeouts().push_idle;
        let service = &target.service;
        let attempt = || async {
            push_tag(self.docker, repository, tag, login, idle, |p| match p {
                Progress::Status(line) => self.emit(ServiceEvent::Output {
                    service: service.clone(),
                    line: line.to_string(),
                }),
                Progress::Layer { current, total } => self.emit(ServiceEvent::Upload {
                    service: service.clone(),
                    current,
                    total,
                }),
            })
            .await
        };
        let pushed = self
            .retried(service, &format!("push of {reference}"), attempt)
            .await;
        let digest = match pushed {
            Ok(p) => p.digest.ok_or_else(|| Error::Push {
                reference: reference.clone(),
                message: "the daemon reported no digest".into(),
                fault: crate::error::Fault::permanent(),
            })?,
            // An immutable repository refuses a tag that already exists. When the registry
            // already serves this very image under it, the tag is where it should be.
            Err(e) if e.kind() == FaultKind::ImmutableTag => {
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
        fault: crate::error::Fault {
            status: None,
            code: Some(crate::error::RegistryCode::TagInvalid),
            kind: FaultKind::Permanent,
        },
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
