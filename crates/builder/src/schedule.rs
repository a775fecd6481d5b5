//! Building many services: independent ones concurrently (at most `parallel` at a time), a
//! service whose `FROM` names another service's image (or that has it as a named context)
//! after that one. A multi-platform service is one build per platform; a build that uses it
//! uses its own platform's image. A failure stops new builds unless `keep_going`; every service ends with an
//! [`Outcome`].

use crate::build::{build, BuildError, Input};
use crate::engines::Engines;
use crate::named_contexts::Helper;
use crate::platform::Platform;
use crate::service::{dependency_unit, ServiceBuild, Source, Unit};
use bollard::Docker;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tracing::Instrument;
use wharf_docker::reference::{ImageReference, DEFAULT_TAG};

/// How one build ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Built {
        elapsed: Duration,
    },
    Failed {
        message: String,
        log_tail: Vec<String>,
    },
    /// Never started: a build it depends on failed, or wharf stopped after a failure.
    NotBuilt {
        reason: String,
    },
}

/// What happens, as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    Started {
        unit: &'a Unit,
    },
    Line {
        unit: &'a Unit,
        line: &'a str,
    },
    Finished {
        unit: &'a Unit,
        outcome: &'a Outcome,
    },
}

pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// The default for `--parallel`: two builds per core, 4 to 8. Build steps often wait (on the
/// network, a `sleep`, one single-threaded tool, the upload of a layer), so a build per core
/// leaves the daemon idle: with two cores and three services built FROM one base, two at a
/// time took a round more than docker compose, which starts every build at once. The cap keeps
/// a many-service project from loading a small daemon with every build together.
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).clamp(4, 8))
}

/// Which platform's image a multi-platform service's compose name holds while builds that
/// use it run: a build `FROM` it (by its compose name) must find its own platform's image
/// there, so builds of other platforms that use it wait.
#[derive(Default)]
struct Holders(HashMap<String, (Platform, usize)>);

impl Holders {
    fn free_for(&self, service: &str, platform: &Platform) -> bool {
        match self.0.get(service) {
            Some((held, users)) => held == platform || *users == 0,
            None => true,
        }
    }

    /// Takes `service`'s compose name for `platform`; true when it must be re-pointed.
    fn take(&mut self, service: &str, platform: &Platform) -> bool {
        let entry = self
            .0
            .entry(service.to_string())
            .or_insert_with(|| (platform.clone(), 0));
        let moved = entry.0 != *platform || entry.1 == 0;
        entry.0 = platform.clone();
        entry.1 += 1;
        moved
    }

    fn release(&mut self, service: &str) {
        if let Some(e) = self.0.get_mut(service) {
            e.1 = e.1.saturating_sub(1);
        }
    }
}

/// What a build's dependencies are, by build.
struct Needs {
    after: Vec<Unit>,
    /// Multi-platform images it uses by their compose names: (service, platform, that
    /// platform's local image, the compose name).
    held: Vec<(String, Platform, String, String)>,
}

fn needs(builds: &[ServiceBuild], b: &ServiceBuild) -> Needs {
    let mut out = Needs {
        after: Vec::new(),
        held: Vec::new(),
    };
    for dep in &b.after {
        let Some(unit) = dependency_unit(builds, dep, b.platform.known()) else {
            continue;
        };
        if let Some(p) = &unit.platform {
            if let Some(d) = builds.iter().find(|o| o.unit() == unit) {
                out.held.push((
                    dep.clone(),
                    p.clone(),
                    d.image.clone(),
                    d.compose_image.clone(),
                ));
            }
        }
        out.after.push(unit);
    }
    out
}

/// Builds every build of `builds`, returning each one's outcome in the given order. `native`:
/// the daemon's own platform, whose image of a multi-platform service takes its compose name
/// once every build has ended.
pub async fn run(
    engines: &Engines,
    builds: Vec<ServiceBuild>,
    parallel: usize,
    keep_going: bool,
    native: Option<&Platform>,
    events: EventSink,
) -> IndexMap<Unit, Outcome> {
    let parallel = parallel.max(1);
    // The images made from folder contexts are removed once every build has ended, whatever
    // the outcomes (see `crate::named_contexts`).
    // Each engine that made some of them has its own to remove.
    let mut helpers: Vec<Helper> = Vec::new();
    for h in builds.iter().flat_map(|b| &b.context_images) {
        if !helpers
            .iter()
            .any(|o| o.repository == h.repository && o.request.engine == h.request.engine)
        {
            helpers.push(h.clone());
        }
    }
    let needs_of: HashMap<Unit, Needs> = builds
        .iter()
        .map(|b| (b.unit(), needs(&builds, b)))
        .collect();
    let compose_names = compose_names(&builds, native);
    let mut outcomes: IndexMap<Unit, Option<Outcome>> =
        builds.iter().map(|b| (b.unit(), None)).collect();
    let mut waiting: Vec<ServiceBuild> = builds;
    let mut running = JoinSet::new();
    let mut stopped = false;
    let mut holders = Holders::default();
    let mut task_unit: HashMap<tokio::task::Id, Unit> = Default::default();
    // Every build holds this shared while it runs; a build run again after the engine lost
    // its image at export (`lost_at_export`) holds it alone, so that it never races the
    // builds beside it a second time.
    let alone = Arc::new(tokio::sync::RwLock::new(()));
    let built = |outcomes: &IndexMap<Unit, Option<Outcome>>, d: &Unit| {
        matches!(outcomes.get(d), Some(Some(Outcome::Built { .. })) | None)
    };

    loop {
        // Settle builds whose dependencies failed.
        loop {
            let mut changed = false;
            waiting.retain(|b| {
                let unit = b.unit();
                let failed_dep = needs_of[&unit].after.iter().find(|d| matches!(outcomes.get(*d), Some(Some(o)) if !matches!(o, Outcome::Built { .. }))).cloned();
                match failed_dep {
                    Some(dep) => {
                        let o = Outcome::NotBuilt { reason: format!("the build of `{dep}`, whose image it uses, did not succeed") };
                        events(Event::Finished { unit: &unit, outcome: &o });
                        outcomes.insert(unit, Some(o));
                        changed = true;
                        false
                    }
                    None => true,
                }
            });
            if !changed {
                break;
            }
        }
        if stopped {
            for b in waiting.drain(..) {
                let unit = b.unit();
                let o = Outcome::NotBuilt { reason: "not started: another build failed (use --keep-going to build the rest anyway)".into() };
                events(Event::Finished {
                    unit: &unit,
                    outcome: &o,
                });
                outcomes.insert(unit, Some(o));
            }
        }
        while running.len() < parallel {
            let ready = waiting.iter().position(|b| {
                let n = &needs_of[&b.unit()];
                n.after.iter().all(|d| built(&outcomes, d))
                    && n.held.iter().all(|(s, p, _, _)| holders.free_for(s, p))
            });
            let Some(i) = ready else { break };
            let b = waiting.remove(i);
            let unit = b.unit();
            let mut repoint = Vec::new();
            for (service, platform, image, compose) in &needs_of[&unit].held {
                if holders.take(service, platform) {
                    repoint.push((image.clone(), compose.clone()));
                }
            }
            events(Event::Started { unit: &unit });
            let docker = engines.get(b.request.engine.as_deref()).clone();
            let events = events.clone();
            let alone = alone.clone();
            let span = tracing::info_span!("build", unit = %unit);
            let handle = running.spawn(
                async move {
                    let started = Instant::now();
                    let mut result = Ok(());
                    for (image, compose) in &repoint {
                        result = tag(&docker, image, compose).await;
                        if result.is_err() {
                            break;
                        }
                    }
                    if result.is_ok() {
                        let _shared = alone.read().await;
                        result = build_one(&docker, &b, &events).await;
                    }
                    for pause in LOST_AT_EXPORT_PAUSES {
                        if !matches!(&result, Err(BuildError::Daemon { message, log_tail }) if lost_at_export(message, log_tail))
                        {
                            break;
                        }
                        let unit = b.unit();
                        events(Event::Line {
                            unit: &unit,
                            line: "the engine lost the image while exporting it; building again once the builds beside it have ended",
                        });
                        tokio::time::sleep(pause).await;
                        let _alone = alone.write().await;
                        result = build_one(&docker, &b, &events).await;
                    }
                    let outcome = match result {
                        Ok(()) => Outcome::Built {
                            elapsed: started.elapsed(),
                        },
                        Err(BuildError::Daemon { message, log_tail }) => {
                            let message = b
                                .platform
                                .declared()
                                .and_then(|p| {
                                    crate::emulation::explain_failure(p, &message, &log_tail)
                                })
                                .unwrap_or(message);
                            Outcome::Failed { message, log_tail }
                        }
                    };
                    (b.unit(), outcome)
                }
                .instrument(span),
            );
            task_unit.insert(handle.id(), unit);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (unit, outcome) = match joined {
            Ok((_, done)) => done,
            // A panic inside a build task is a bug in wharf; report it as that build failing.
            Err(e) => {
                let Some(unit) = task_unit.get(&e.id()).cloned() else {
                    continue;
                };
                (
                    unit,
                    Outcome::Failed {
                        message: format!("internal error: {e}"),
                        log_tail: Vec::new(),
                    },
                )
            }
        };
        for (service, _, _, _) in &needs_of[&unit].held {
            holders.release(service);
        }
        if matches!(outcome, Outcome::Failed { .. }) && !keep_going {
            stopped = true;
        }
        events(Event::Finished {
            unit: &unit,
            outcome: &outcome,
        });
        outcomes.insert(unit, Some(outcome));
    }
    // Each multi-platform image's compose name (and `build.tags`) ends on one platform's image.
    for (unit, image, names, engine) in &compose_names {
        if !matches!(outcomes.get(unit), Some(Some(Outcome::Built { .. }))) {
            continue;
        }
        let docker = engines.get(engine.as_deref());
        for name in names {
            if let Err(e) = tag(docker, image, name).await {
                tracing::warn!("{e}");
            }
        }
    }
    for helper in &helpers {
        helper
            .remove(engines.get(helper.request.engine.as_deref()))
            .await;
    }
    outcomes
        .into_iter()
        .map(|(s, o)| {
            let o = o.unwrap_or(Outcome::NotBuilt {
                reason: "not started".into(),
            });
            (s, o)
        })
        .collect()
}

/// A build the engine lost at export ([`lost_at_export`]) is run again at most twice, each
/// time alone (see `alone` in [`run`]), after these pauses, so that the engine's own clean-up
/// can end first.
const LOST_AT_EXPORT_PAUSES: [Duration; 2] = [Duration::from_millis(200), Duration::from_secs(2)];

/// Docker 26's containerd image store was seen to end a build with a bare "not found" while
/// exporting its image: a build `FROM` a multi-platform service's image while that image was
/// being pushed, and builds of targets of one Dockerfile (whose images share layers)
/// exporting at the same time while the engine removed other images. It is the engine's race
/// (moby/buildkit#6521), not the build's: the same build run again from the build cache
/// succeeds.
fn lost_at_export(message: &str, log_tail: &[String]) -> bool {
    message.trim() == "not found"
        && log_tail
            .last()
            .is_some_and(|l| l.starts_with("exporting to image"))
}

/// For each multi-platform service, the build whose image its compose name and `build.tags`
/// hold at the end: the daemon's own platform, else the first one built (an image store of
/// one image per name cannot hold them all).
fn compose_names(
    builds: &[ServiceBuild],
    native: Option<&Platform>,
) -> Vec<(Unit, String, Vec<String>, Option<String>)> {
    let mut out: Vec<(Unit, String, Vec<String>, Option<String>)> = Vec::new();
    for b in builds.iter().filter(|b| b.is_multi_platform()) {
        if out.iter().any(|(u, _, _, _)| u.service == b.service) {
            continue;
        }
        let parts: Vec<&ServiceBuild> = builds.iter().filter(|o| o.service == b.service).collect();
        let chosen = parts
            .iter()
            .find(|p| p.part().is_some() && p.part() == native)
            .unwrap_or(&parts[0]);
        let mut names = vec![chosen.compose_image.clone()];
        names.extend(chosen_extra_tags(chosen));
        out.push((
            chosen.unit(),
            chosen.image.clone(),
            names,
            chosen.request.engine.clone(),
        ));
    }
    out
}

fn chosen_extra_tags(b: &ServiceBuild) -> Vec<String> {
    b.compose_extra_tags.clone()
}

/// Tags `image` as `name` on the daemon.
async fn tag(docker: &Docker, image: &str, name: &str) -> Result<(), BuildError> {
    let reference = ImageReference::parse(name).map_err(|e| BuildError::Daemon {
        message: format!("tagging {image} as {name}: {e}"),
        log_tail: Vec::new(),
    })?;
    let options = bollard::query_parameters::TagImageOptions {
        repo: Some(reference.written_name()),
        tag: Some(reference.tag().unwrap_or(DEFAULT_TAG).to_string()),
    };
    docker
        .tag_image(image, Some(options))
        .await
        .map_err(|e| BuildError::Daemon {
            message: format!("tagging {image} as {name}: {e}"),
            log_tail: Vec::new(),
        })
}

async fn build_one(
    docker: &Docker,
    b: &ServiceBuild,
    events: &EventSink,
) -> Result<(), BuildError> {
    let unit = b.unit();
    let on_line = |line: &str| events(Event::Line { unit: &unit, line });
    // Named contexts from folders: their images first.
    for helper in &b.context_images {
        helper.ensure(docker, on_line).await?;
    }
    match &b.source {
        Source::Local(ctx) => build(docker, &b.request, ctx, on_line).await?,
        Source::Remote(_) => build(docker, &b.request, Input::Remote, on_line).await?,
    }
    for extra in &b.extra_tags {
        let tagging = |message: String| BuildError::Daemon {
            message: format!("tagging {} as {extra} (build.tags): {message}", b.image),
            log_tail: Vec::new(),
        };
        let reference = ImageReference::parse(extra).map_err(|e| tagging(e.to_string()))?;
        if reference.digest().is_some() {
            // As the daemon refuses it.
            return Err(tagging("a tag cannot name a digest".into()));
        }
        let options = bollard::query_parameters::TagImageOptions {
            repo: Some(reference.written_name()),
            tag: Some(reference.tag().unwrap_or(DEFAULT_TAG).to_string()),
        };
        docker
            .tag_image(&b.image, Some(options))
            .await
            .map_err(|e| tagging(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::lost_at_export;

    fn tail(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn only_a_bare_not_found_at_export_is_the_engine_losing_the_image() {
        let at_export = tail(&["[build 1/1] RUN true", "exporting to image: not found"]);
        assert!(lost_at_export("not found", &at_export));
        assert!(lost_at_export(
            "not found\n",
            &tail(&["exporting to image"])
        ));
        // A missing file or base names itself, and fails at its own step.
        assert!(!lost_at_export(
            "failed to compute cache key: \"/app.py\": not found",
            &at_export
        ));
        assert!(!lost_at_export(
            "not found",
            &tail(&["[2/3] COPY app.py /", "[2/3] COPY app.py /: not found"])
        ));
        assert!(!lost_at_export("not found", &[]));
    }
}
