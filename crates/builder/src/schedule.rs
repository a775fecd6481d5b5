//! Building many services: independent ones concurrently (at most `parallel` at a time), a
//! service whose `FROM` names another service's image (or that has it as a named context)
//! after that one. A failure stops new builds unless `keep_going`; every service ends with an
//! [`Outcome`].

use crate::build::{build, BuildError, Input};
use crate::named_contexts::Helper;
use crate::service::{ServiceBuild, Source};
use bollard::Docker;
use indexmap::IndexMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tracing::Instrument;
use wharf_docker::reference::{ImageReference, DEFAULT_TAG};

/// How one service's build ended.
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
        service: &'a str,
    },
    Line {
        service: &'a str,
        line: &'a str,
    },
    Finished {
        service: &'a str,
        outcome: &'a Outcome,
    },
}

pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// A sensible default for `--parallel`: the daemon's builder uses every core for each build,
/// so more than a few concurrent builds only add contention.
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

/// Builds every service of `builds`, returning each one's outcome in the given order.
pub async fn run(
    docker: &Docker,
    builds: Vec<ServiceBuild>,
    parallel: usize,
    keep_going: bool,
    events: EventSink,
) -> IndexMap<String, Outcome> {
    let parallel = parallel.max(1);
    // The images made from folder contexts are removed once every build has ended, whatever
    // the outcomes (see `crate::named_contexts`).
    let mut helpers: Vec<Helper> = Vec::new();
    for h in builds.iter().flat_map(|b| &b.context_images) {
        if !helpers.iter().any(|o| o.repository == h.repository) {
            helpers.push(h.clone());
        }
    }
    let mut outcomes: IndexMap<String, Option<Outcome>> =
        builds.iter().map(|b| (b.service.clone(), None)).collect();
    let mut waiting: Vec<ServiceBuild> = builds;
    let mut running = JoinSet::new();
    let mut stopped = false;
    let mut task_service: std::collections::HashMap<tokio::task::Id, String> = Default::default();

    loop {
        // Settle services whose dependencies failed.
        loop {
            let mut changed = false;
            waiting.retain(|b| {
                let failed_dep = b.after.iter().find(|d| matches!(outcomes.get(*d), Some(Some(o)) if !matches!(o, Outcome::Built { .. })));
                match failed_dep {
                    Some(dep) => {
                        let o = Outcome::NotBuilt { reason: format!("the build of `{dep}`, whose image it uses, did not succeed") };
                        events(Event::Finished { service: &b.service, outcome: &o });
                        outcomes.insert(b.service.clone(), Some(o));
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
                let o = Outcome::NotBuilt { reason: "not started: another build failed (use --keep-going to build the rest anyway)".into() };
                events(Event::Finished {
                    service: &b.service,
                    outcome: &o,
                });
                outcomes.insert(b.service.clone(), Some(o));
            }
        }
        while running.len() < parallel {
            let ready = waiting.iter().position(|b| {
                b.after
                    .iter()
                    .all(|d| matches!(outcomes.get(d), Some(Some(Outcome::Built { .. })) | None))
            });
            let Some(i) = ready else { break };
            let b = waiting.remove(i);
            events(Event::Started {
                service: &b.service,
            });
            let docker = docker.clone();
            let events = events.clone();
            let span = tracing::info_span!("build", service = %b.service);
            let service_name = b.service.clone();
            let handle = running.spawn(
                async move {
                    let started = Instant::now();
                    let result = build_one(&docker, &b, &events).await;
                    let outcome = match result {
                        Ok(()) => Outcome::Built {
                            elapsed: started.elapsed(),
                        },
                        Err(BuildError::Daemon { message, log_tail }) => {
                            Outcome::Failed { message, log_tail }
                        }
                    };
                    (b.service, outcome)
                }
                .instrument(span),
            );
            task_service.insert(handle.id(), service_name);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (service, outcome) = match joined {
            Ok((_, done)) => done,
            // A panic inside a build task is a bug in wharf; report it as that service failing.
            Err(e) => {
                let service = task_service.get(&e.id()).cloned().unwrap_or_default();
                (
                    service,
                    Outcome::Failed {
                        message: format!("internal error: {e}"),
                        log_tail: Vec::new(),
                    },
                )
            }
        };
        if matches!(outcome, Outcome::Failed { .. }) && !keep_going {
            stopped = true;
        }
        events(Event::Finished {
            service: &service,
            outcome: &outcome,
        });
        outcomes.insert(service, Some(outcome));
    }
    for helper in &helpers {
        helper.remove(docker).await;
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

async fn build_one(
    docker: &Docker,
    b: &ServiceBuild,
    events: &EventSink,
) -> Result<(), BuildError> {
    build_and_tag(docker, b, events).await
}

async fn build_and_tag(
    docker: &Docker,
    b: &ServiceBuild,
    events: &EventSink,
) -> Result<(), BuildError> {
    let on_line = |line: &str| {
        events(Event::Line {
            service: &b.service,
            line,
        })
    };
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
