//! The release, all or nothing, as one type: [`Release`].
//!
//! A release goes through these steps, each owned here:
//! 1. [`Release::prepare`] — before anything is built: log into every registry the targets
//!    use ([`logins`]), check or create every repository and refuse a moving tag the
//!    repository keeps immutable ([`preflight`]).
//! 2. [`Release::unchanged`] — the skip decision ([`skip`]): which services the registry
//!    already holds by input digest; it also asks every repository something, so that a
//!    registry that cannot be used stops the release before any build.
//!    [`Release::bases_into_daemon`] then gives the daemon the images of unchanged bases that
//!    changed services build `FROM` ([`local`]).
//! 3. [`Release::identity_phase`] — phase 1: each service's identity tags (and inputs tag),
//!    an unchanged one at once by a manifest copy, a built one as soon as the caller says it
//!    is [`Ready`] (the binary builds while this runs).
//! 4. [`Release::finish`] — the gate (every identity tag of every service landed, else no
//!    moving tag moves), renewed logins where a token is about to run out, then phase 2
//!    ([`moving`]): the moving tags, restored to where they were when one cannot move or the
//!    user interrupts. Returns the manifest.
//!
//! What happens is told as [`ServiceEvent`]s; [`tagger`] does the pushing and tagging, with
//! retries of transient faults; every request has a deadline ([`Timeouts`]).

mod cache;
mod interrupt;
mod local;
mod logins;
mod manifest;
mod moving;
mod preflight;
mod skip;
mod tagger;

pub use cache::candidate_tags as cache_candidate_tags;
pub use interrupt::Interrupt;
pub use local::{LocalBase, LocalBaseError};
pub use logins::{login_all, Aws};
pub use manifest::{Manifest, ManifestImage, PlatformImage};
pub use moving::Restoration;
pub use preflight::ImmutableMovingTag;
pub use skip::{InputsDigest, PlatformCandidate, SkipInputs};
pub use tagger::{Logins, Origin, Tagger};

use crate::api::{RawManifest, RegistryApi};
use crate::events::{EventSink, Phase, ServiceEvent};
use crate::index::Platform;
use crate::local_index;
use crate::repositories::CreateSettings;
use crate::target::ImageTarget;
use crate::timeouts::Timeouts;
use crate::Error;
use bollard::Docker;
use futures_util::stream::{FuturesUnordered, StreamExt};
use indexmap::IndexMap;
use std::collections::{BTreeMap, HashMap};
use tokio::sync::mpsc;
use tracing::Instrument;

/// How many manifest copies (tags added through the registry API) run at once.
const MANIFEST_COPIES: usize = 16;

/// How a release runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Uploads through the daemon at once.
    pub parallel: usize,
    pub timeouts: Timeouts,
    /// Create missing ECR repositories with these settings (`None`: refuse them).
    pub create_repositories: Option<CreateSettings>,
}

/// Why a release stopped. Nothing a deploy follows has moved unless the variant says so.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A login, a repository lookup or a setting failed before anything was built.
    #[error("{0}")]
    Config(Error),

    /// Registries that cannot be used (no answer, refused credentials), found before any build.
    #[error("the target registry cannot be used (nothing was built or pushed):\n  {}\n  check the registry address (--registry, the image names) and its credentials (docker login, or the AWS credentials for ECR)", list(.0))]
    Unusable(Vec<(String, Error)>),

    /// Repositories missing, or moving tags their rules keep immutable.
    #[error("{}", repositories_message(missing, immutable))]
    Repositories {
        missing: Vec<String>,
        immutable: Vec<ImmutableMovingTag>,
    },

    /// Phase 1 did not land for every service: no moving tag was moved.
    #[error("the release failed; no moving tag was moved.\n  failed: {}\n  landed (identity tags only): {}", failed.join("\n          "), if landed.is_empty() { "none".to_string() } else { landed.join(", ") })]
    IdentityFailed {
        /// `` `service`: why `` for each failed build or push.
        failed: Vec<String>,
        landed: Vec<String>,
    },

    /// Phase 2 failed or was interrupted; every tag it moved was put back unless
    /// `restoration.left` says otherwise.
    #[error("{}", moving_message(failed, restoration, *interrupted))]
    MovingFailed {
        failed: Vec<(String, Error)>,
        restoration: Restoration,
        interrupted: bool,
    },
}

impl ReleaseError {
    /// Whether nothing was built or pushed because the settings, credentials or registries
    /// are wrong (exit 2), rather than a build or push failing (exit 1).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            ReleaseError::Config(_) | ReleaseError::Unusable(_) | ReleaseError::Repositories { .. }
        )
    }
}

fn list(items: &[(String, Error)]) -> String {
    items
        .iter()
        .map(|(s, e)| format!("`{s}`: {e}"))
        .collect::<Vec<_>>()
        .join("\n  ")
}

fn repositories_message(missing: &[String], immutable: &[ImmutableMovingTag]) -> String {
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "these repositories do not exist:\n    {}\n  create them, or run again with --create-repositories",
            missing.join("\n    ")
        ));
    }
    if !immutable.is_empty() {
        let lines: Vec<String> = immutable
            .iter()
            .map(|i| {
                format!(
                    "{} (service `{}`): moving tag `{}` is immutable by the rule {}",
                    i.repository, i.service, i.tag, i.rule
                )
            })
            .collect();
        problems.push(format!(
            "these repositories keep tags immutable, so a moving tag cannot be pushed there:\n    {}\n  push only identity tags there (e.g. --tag '{{git_sha}}'), or make those tags mutable (an exclusion filter for them)",
            lines.join("\n    ")
        ));
    }
    problems.join("\n")
}

fn moving_message(
    failed: &[(String, Error)],
    restoration: &Restoration,
    interrupted: bool,
) -> String {
    let why = if interrupted {
        "interrupted while moving the moving tags".to_string()
    } else {
        format!(
            "every identity tag landed, but moving tags failed:\n  {}",
            list(failed)
        )
    };
    let state = if restoration.left.is_empty() {
        if restoration.restored.is_empty() {
            "no moving tag was moved: the registry holds the whole previous release".to_string()
        } else {
            format!(
                "every moving tag this run moved was put back: the registry holds the whole previous release\n  restored: {}",
                restoration.restored.join(", ")
            )
        }
    } else {
        let left: Vec<String> = restoration
            .left
            .iter()
            .map(|(r, why)| format!("{r} ({why})"))
            .collect();
        format!(
            "these moving tags may name the new release and could not be put back:\n    {}\n  restored: {}\n  run the same command again to finish the release",
            left.join("\n    "),
            if restoration.restored.is_empty() { "none".to_string() } else { restoration.restored.join(", ") }
        )
    };
    format!("{why}\n  {state}")
}

/// A service whose image the caller has built (or one platform's image of it): phase 1 may
/// push it.
#[derive(Debug, Clone)]
pub struct Ready {
    pub service: String,
    /// Its inputs tag, stored beside its identity tags so a later run can skip it.
    pub inputs_tag: Option<String>,
    /// For one platform's image of a multi-platform service: which.
    pub platform: Option<PlatformReady>,
    /// The engine that holds a single image, when not the release's (its declared platform is
    /// routed to another engine). A platform's image names its engine in `platform`.
    pub engine: Option<Docker>,
}

/// One platform's image of a multi-platform service, built.
#[derive(Debug, Clone)]
pub struct PlatformReady {
    pub platform: Platform,
    /// The local image it was built as.
    pub local_image: String,
    /// The engine that holds it, when not the release's (a platform routed to another
    /// engine): it pushes the layers.
    pub engine: Option<Docker>,
}

/// One service's part of phase 1.
#[derive(Debug)]
pub enum Landing {
    /// Every identity tag landed; the manifest digest the registry accepted (an index's, for
    /// a multi-platform image), and each platform's image.
    Landed {
        digest: String,
        platforms: Vec<PlatformImage>,
    },
    Failed(Error),
}

/// What phase 1 still waits for of a multi-platform service.
#[derive(Default)]
struct Assembly {
    children: Vec<crate::index::Child>,
    failed: bool,
    /// Some platform's image is not in the release's engine (built on a routed engine, or
    /// reused from the registry): the local name cannot hold the index.
    elsewhere: bool,
}

/// A release of a set of images: see the module's documentation.
pub struct Release {
    targets: Vec<ImageTarget>,
    logins: Logins,
    aws: Aws,
    docker: Docker,
    api: RegistryApi,
    events: EventSink,
    options: Options,
    interrupt: Interrupt,
    /// Manifests phase 1 already holds (found in the registry, or written: an index), by
    /// digest: phase 2 moves tags onto them without reading them again.
    landed: std::sync::Mutex<HashMap<String, RawManifest>>,
}

impl Release {
    /// Logs in and checks every repository; nothing is built or pushed yet.
    pub async fn prepare(
        mut targets: Vec<ImageTarget>,
        docker: Docker,
        options: Options,
        events: EventSink,
        interrupt: Interrupt,
    ) -> Result<Release, ReleaseError> {
        let mut aws = Aws::new(options.timeouts);
        let logins = login_all(&mut targets, &mut aws)
            .await
            .map_err(ReleaseError::Config)?;
        preflight::check_repositories(
            &targets,
            options.create_repositories.as_ref(),
            &mut aws,
            &events,
        )
        .await?;
        Ok(Release {
            targets,
            logins,
            aws,
            docker,
            api: RegistryApi::new(options.timeouts),
            events,
            options,
            interrupt,
            landed: Default::default(),
        })
    }

    fn remember(&self, manifest: &RawManifest) {
        if let Ok(mut landed) = self.landed.lock() {
            landed.insert(manifest.digest.clone(), manifest.clone());
        }
    }

    /// The targets, with their registry hosts resolved.
    pub fn targets(&self) -> &[ImageTarget] {
        &self.targets
    }

    /// The logins (the builds' pulls use them too).
    pub fn logins(&self) -> &Logins {
        &self.logins
    }

    pub fn tagger(&self) -> Tagger<'_> {
        Tagger {
            docker: &self.docker,
            api: &self.api,
            logins: &self.logins,
            events: &self.events,
        }
    }

    /// The services the registry already holds by input digest (see [`skip`]).
    pub async fn unchanged(
        &self,
        inputs: &SkipInputs,
    ) -> Result<HashMap<String, RawManifest>, ReleaseError> {
        skip::unchanged(&self.tagger(), &self.targets, inputs).await
    }

    /// The platforms' images of multi-platform services the registry already holds by input
    /// digest (for a service the registry does not hold whole): tagged, not built.
    pub async fn unchanged_platforms(
        &self,
        inputs_label: &str,
        candidates: &[PlatformCandidate],
    ) -> HashMap<(String, Platform), RawManifest> {
        skip::unchanged_platforms(&self.tagger(), &self.targets, inputs_label, candidates).await
    }

    /// The cache sources a build of `service` takes by default: its last release (moving tags,
    /// and the identity tags of the `previous` commit), each passing the trust check (see
    /// [`cache`]).
    pub async fn cache_sources(&self, service: &str, previous: Option<&str>) -> Vec<String> {
        match self.targets.iter().find(|t| t.service == service) {
            Some(target) => cache::trusted(&self.tagger(), target, previous).await,
            None => Vec::new(),
        }
    }

    /// Makes the daemon hold the image of each unchanged service that a service being built
    /// builds `FROM`, under `names` (service → the local names its dependents use), so that
    /// the base keeps its image; one that cannot be had there leaves `unchanged` and must be
    /// built (see [`skip`]).
    pub async fn bases_into_daemon(
        &self,
        unchanged: &mut HashMap<String, RawManifest>,
        inputs: &SkipInputs,
        names: &HashMap<String, Vec<String>>,
    ) {
        skip::bases_into_daemon(&self.tagger(), &self.targets, inputs, unchanged, names).await
    }

    /// Phase 1: identity tags of every unchanged service at once, and of every built one as it
    /// arrives on `ready` (until the sender is dropped). A multi-platform service's platforms
    /// get their platform identity tags as each arrives; its index is written once all of
    /// them landed (not by a run that builds only some: see [`ImageTarget::partial`]).
    /// `index_inputs_tags`: each multi-platform service's inputs tag for its index.
    /// `unchanged_platforms`: platforms' images reused from the registry
    /// ([`Release::unchanged_platforms`]).
    pub async fn identity_phase(
        &self,
        unchanged: &HashMap<String, RawManifest>,
        unchanged_platforms: &HashMap<(String, Platform), RawManifest>,
        mut ready: mpsc::UnboundedReceiver<Ready>,
        index_inputs_tags: &HashMap<String, String>,
    ) -> IndexMap<String, Landing> {
        self.emit_phase(Phase::Identity);
        let tagger = self.tagger();
        let slots = tokio::sync::Semaphore::new(self.options.parallel.max(1));
        let by_service: HashMap<&str, &ImageTarget> = self
            .targets
            .iter()
            .map(|t| (t.service.as_str(), t))
            .collect();
        enum Done {
            Image(Result<String, Error>),
            Reused(Result<(String, Vec<crate::index::Child>), Error>),
            /// `here`: built by the release's own engine.
            Platform {
                child: Result<crate::index::Child, Error>,
                here: bool,
            },
        }
        let push = |t: &'_ ImageTarget,
                    origin: Origin,
                    extra: Vec<String>,
                    platform: Option<PlatformReady>,
                    engine: Option<Docker>| {
            let span = tracing::info_span!("push", service = %t.service);
            let slots = &slots;
            let tagger = &tagger;
            let t = t.clone();
            async move {
                // Only uploads through the daemon share its slots; a manifest copy costs a
                // round trip or two.
                let _slot = match origin {
                    Origin::Daemon => slots.acquire().await.ok(),
                    Origin::Registry(_) => None,
                };
                let done = match (platform, &origin) {
                    (Some(ready), _) => {
                        let engine = ready.engine.as_ref().unwrap_or(tagger.docker);
                        let on_engine = Tagger {
                            docker: engine,
                            ..*tagger
                        };
                        Done::Platform {
                            child: on_engine
                                .platform_image(&t, &ready.platform, &ready.local_image, &extra)
                                .await,
                            here: ready.engine.is_none(),
                        }
                    }
                    (None, Origin::Registry(m)) if t.is_multi_platform() => {
                        let r = match tagger.identity(&t, &origin, &extra).await {
                            Ok(digest) => tagger
                                .platform_tags_of(&t, m)
                                .await
                                .map(|children| (digest, children)),
                            Err(e) => Err(e),
                        };
                        Done::Reused(r)
                    }
                    (None, _) => {
                        let on_engine = Tagger {
                            docker: engine.as_ref().unwrap_or(tagger.docker),
                            ..*tagger
                        };
                        Done::Image(on_engine.identity(&t, &origin, &extra).await)
                    }
                };
                (t.service, done)
            }
            .instrument(span)
        };
        let mut pushes = FuturesUnordered::new();
        for t in &self.targets {
            if let Some(m) = unchanged.get(&t.service) {
                self.remember(m);
                self.emit(ServiceEvent::Unchanged {
                    service: t.service.clone(),
                    tag: m.digest.clone(),
                });
                pushes.push(push(t, Origin::Registry(m.clone()), Vec::new(), None, None));
            }
        }
        let reuse = |t: &'_ ImageTarget, platform: Platform, manifest: RawManifest| {
            let tagger = &tagger;
            let t = t.clone();
            async move {
                let r = tagger.platform_reused(&t, &platform, &manifest).await;
                (
                    t.service,
                    Done::Platform {
                        child: r,
                        here: false,
                    },
                )
            }
        };
        let mut reused = FuturesUnordered::new();
        for ((service, platform), m) in unchanged_platforms {
            if let Some(t) = by_service.get(service.as_str()) {
                self.emit(ServiceEvent::Unchanged {
                    service: format!("{service} ({platform})"),
                    tag: m.digest.clone(),
                });
                reused.push(reuse(t, platform.clone(), m.clone()));
            }
        }
        let mut assemblies: HashMap<String, Assembly> = HashMap::new();
        let holds_every_platform = tokio::sync::OnceCell::new();
        let mut to_hold: Vec<(ImageTarget, RawManifest)> = Vec::new();
        let mut results: HashMap<String, Result<(String, Vec<PlatformImage>), Error>> =
            HashMap::new();
        let mut indexes = FuturesUnordered::new();
        let mut open = true;
        loop {
            tokio::select! {
                next = ready.recv(), if open => match next {
                    Some(r) => {
                        if let Some(t) = by_service.get(r.service.as_str()) {
                            pushes.push(push(t, Origin::Daemon, r.inputs_tag.into_iter().collect(), r.platform, r.engine));
                        }
                    }
                    None => open = false,
                },
                Some((service, done)) = next_done(&mut pushes, &mut reused), if !pushes.is_empty() || !reused.is_empty() => {
                    let failed = |e: &Error| self.emit(ServiceEvent::PushFailed { service: service.clone(), message: e.to_string() });
                    match done {
                        Done::Image(r) => {
                            if let Err(e) = &r { failed(e) }
                            results.insert(service, r.map(|d| (d, Vec::new())));
                        }
                        Done::Reused(r) => {
                            if let Err(e) = &r { failed(e) }
                            results.insert(service, r.map(|(d, children)| (d, platform_images(&children))));
                        }
                        Done::Platform { child, here } => {
                            let a = assemblies.entry(service.clone()).or_default();
                            a.elsewhere |= !here;
                            match child {
                                Ok(child) => a.children.push(child),
                                Err(e) => {
                                    failed(&e);
                                    a.failed = true;
                                    results.insert(service.clone(), Err(e));
                                }
                            }
                            let Some(t) = by_service.get(service.as_str()) else { continue };
                            let complete = t.platforms.iter().all(|p| a.children.iter().any(|c| &c.platform == p));
                            if a.failed {
                                // Already failed: a platform that landed stays as it is.
                            } else if t.partial {
                                // Each platform is recorded as it lands: the first's digest
                                // stands for the service (no index in such a run).
                                let children = a.children.clone();
                                results.insert(service.clone(), Ok((children[0].digest.clone(), platform_images(&children))));
                            } else if complete {
                                let children = a.children.clone();
                                let extra: Vec<String> = index_inputs_tags.get(&service).cloned().into_iter().collect();
                                let t = (*t).clone();
                                let tagger = &tagger;
                                let local = !a.elsewhere && holds_every_platform.get_or_init(|| local_index::holds_every_platform(tagger.docker)).await == &true;
                                indexes.push(async move {
                                    let r = tagger.index(&t, &children, &extra).await;
                                    let hold = match (&r, local) {
                                        (Ok(index), true) => Some((t.clone(), index.clone())),
                                        _ => None,
                                    };
                                    (t.service, r.map(|m| (m.digest, platform_images(&children))), hold)
                                });
                            }
                        }
                    }
                }
                Some((service, r, hold)) = indexes.next(), if !indexes.is_empty() => {
                    if let Err(e) = &r {
                        self.emit(ServiceEvent::PushFailed { service: service.clone(), message: e.to_string() });
                    }
                    results.insert(service, r);
                    if let Some((_, index)) = &hold {
                        self.remember(index);
                    }
                    to_hold.extend(hold);
                }
                else => break,
            }
        }
        // Only now: while builds ran, a compose name could stand for one platform's image for
        // the builds FROM it.
        for (t, index) in &to_hold {
            tagger.hold_locally(t, index).await;
        }
        self.targets
            .iter()
            .filter_map(|t| {
                let r = results.remove(&t.service)?;
                Some((
                    t.service.clone(),
                    match r {
                        Ok((digest, platforms)) => Landing::Landed { digest, platforms },
                        Err(e) => Landing::Failed(e),
                    },
                ))
            })
            .collect()
    }

    /// The gate, then phase 2; returns the manifest of the release. `failed_builds`: the
    /// services that did not build (`` `service`: why ``), which fail the release too.
    pub async fn finish(
        &mut self,
        first: IndexMap<String, Landing>,
        failed_builds: Vec<String>,
    ) -> Result<Vec<ManifestImage>, ReleaseError> {
        let (digests, platforms) = gate(first, failed_builds)?;
        let mut images = self.move_to(digests).await?;
        for image in &mut images {
            let (Some(t), Some(p)) = (
                self.targets.iter().find(|t| t.service == image.service),
                platforms.get(&image.service),
            ) else {
                continue;
            };
            *image = ManifestImage::with_platforms(t, &image.digest, p.clone());
        }
        Ok(images)
    }

    /// Phase 2 alone, onto images the registry already holds (`digests`: each service's
    /// manifest digest, which its identity tags name): the fan-in of a sharded release, a
    /// rollback, a promotion. All or nothing, as after phase 1. Returns the manifest.
    pub async fn move_to(
        &mut self,
        digests: BTreeMap<String, String>,
    ) -> Result<Vec<ManifestImage>, ReleaseError> {
        logins::refresh(&self.targets, &mut self.logins, &mut self.aws)
            .await
            .map_err(ReleaseError::Config)?;
        if self.targets.iter().any(|t| !t.moving_tags.is_empty()) {
            self.emit_phase(Phase::Moving);
            let tagger = Tagger {
                docker: &self.docker,
                api: &self.api,
                logins: &self.logins,
                events: &self.events,
            };
            let landed = self.landed.lock().map(|l| l.clone()).unwrap_or_default();
            moving::move_all(
                &tagger,
                &mut self.aws,
                &self.targets,
                &digests,
                &landed,
                &self.interrupt,
                MANIFEST_COPIES,
            )
            .await?;
        }
        Ok(self
            .targets
            .iter()
            .map(|t| ManifestImage::new(t, digests.get(&t.service).map_or("", String::as_str)))
            .collect())
    }

    fn emit(&self, event: ServiceEvent) {
        self.events.service(event)
    }

    fn emit_phase(&self, phase: Phase) {
        self.interrupt.enter(phase);
        self.events.phase(phase);
    }
}

/// The digests phase 1 landed, or the failed release described: which services failed (in
/// the build or the push) and which landed their identity tags only.
type Landed = (
    BTreeMap<String, String>,
    HashMap<String, Vec<PlatformImage>>,
);

fn gate(
    first: IndexMap<String, Landing>,
    failed_builds: Vec<String>,
) -> Result<Landed, ReleaseError> {
    let mut failed = failed_builds;
    let mut landed = Vec::new();
    let mut digests = BTreeMap::new();
    let mut platforms = HashMap::new();
    for (service, l) in first {
        match l {
            Landing::Failed(e) => failed.push(format!("`{service}`: {e}")),
            Landing::Landed {
                digest,
                platforms: p,
            } => {
                landed.push(service.clone());
                digests.insert(service.clone(), digest);
                platforms.insert(service, p);
            }
        }
    }
    if failed.is_empty() {
        Ok((digests, platforms))
    } else {
        Err(ReleaseError::IdentityFailed { failed, landed })
    }
}

/// The next of either set of futures to finish.
async fn next_done<A, B, T>(a: &mut FuturesUnordered<A>, b: &mut FuturesUnordered<B>) -> Option<T>
where
    A: std::future::Future<Output = T>,
    B: std::future::Future<Output = T>,
{
    tokio::select! {
        Some(x) = a.next(), if !a.is_empty() => Some(x),
        Some(x) = b.next(), if !b.is_empty() => Some(x),
        else => None,
    }
}

fn platform_images(children: &[crate::index::Child]) -> Vec<PlatformImage> {
    let mut out: Vec<PlatformImage> = children
        .iter()
        .map(|c| PlatformImage {
            platform: c.platform.clone(),
            digest: c.digest.clone(),
        })
        .collect();
    out.sort_by(|a, b| a.platform.cmp(&b.platform));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Fault;

    #[test]
    fn the_gate_lets_phase_2_run_only_when_every_service_landed() {
        let mut first = IndexMap::new();
        first.insert(
            "api".to_string(),
            Landing::Landed {
                digest: "sha256:a".into(),
                platforms: Vec::new(),
            },
        );
        first.insert(
            "web".to_string(),
            Landing::Landed {
                digest: "sha256:b".into(),
                platforms: Vec::new(),
            },
        );
        let (digests, _) = gate(first, Vec::new()).unwrap();
        assert_eq!(digests.len(), 2);

        let mut first = IndexMap::new();
        first.insert(
            "api".to_string(),
            Landing::Landed {
                digest: "sha256:a".into(),
                platforms: Vec::new(),
            },
        );
        first.insert(
            "web".to_string(),
            Landing::Failed(Error::Push {
                reference: "r:t".into(),
                message: "denied".into(),
                fault: Fault::permanent(),
            }),
        );
        let e = gate(first, vec!["`worker`: build failed".into()]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("no moving tag was moved"), "{text}");
        assert!(
            text.contains("`worker`: build failed") && text.contains("`web`"),
            "{text}"
        );
        assert!(text.contains("identity tags only): api"), "{text}");
        assert!(!e.is_config());
    }

    #[test]
    fn a_failed_phase_2_says_which_release_the_registry_holds() {
        let failed = vec![(
            "web".to_string(),
            Error::Push {
                reference: "h/web:latest".into(),
                message: "TAG_INVALID".into(),
                fault: Fault::permanent(),
            },
        )];
        let all_back = ReleaseError::MovingFailed {
            failed: failed.clone_errors(),
            restoration: Restoration {
                restored: vec!["h/api:latest".into()],
                left: Vec::new(),
            },
            interrupted: false,
        };
        let text = all_back.to_string();
        assert!(text.contains("the whole previous release"), "{text}");
        assert!(text.contains("restored: h/api:latest"), "{text}");

        let some_left = ReleaseError::MovingFailed {
            failed: failed.clone_errors(),
            restoration: Restoration {
                restored: Vec::new(),
                left: vec![("h/api:latest".into(), "no way to remove".into())],
            },
            interrupted: false,
        };
        let text = some_left.to_string();
        assert!(text.contains("could not be put back"), "{text}");
        assert!(text.contains("h/api:latest (no way to remove)"), "{text}");

        let interrupted = ReleaseError::MovingFailed {
            failed: Vec::new(),
            restoration: Restoration::default(),
            interrupted: true,
        };
        assert!(interrupted.to_string().starts_with("interrupted"));
    }

    trait CloneErrors {
        fn clone_errors(&self) -> Vec<(String, Error)>;
    }

    impl CloneErrors for Vec<(String, Error)> {
        fn clone_errors(&self) -> Vec<(String, Error)> {
            self.iter()
                .map(|(s, e)| {
                    (
                        s.clone(),
                        Error::Push {
                            reference: "h/web:latest".into(),
                            message: e.to_string(),
                            fault: Fault::permanent(),
                        },
                    )
                })
                .collect()
        }
    }
}
