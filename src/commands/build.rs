//! `wharf build [--push]`: build the selected services through the daemon, tagged with their
//! compose image names; with `--push`, log in and check repositories first (before any build),
//! then push all or nothing.

use super::Run;
use crate::cli::{BuildArgs, BuilderChoice, ProjectArgs};
use crate::error::{Failure, Result};
use crate::progress::Reporter;
use crate::release;
use anyhow::anyhow;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use wharf_builder::build::BuilderKind;
use wharf_builder::inputs::Inputs;
use wharf_builder::schedule::{self, Event, Outcome};
use wharf_builder::service::{self, Options};
use wharf_builder::session::RegistryCredentials;
use wharf_compose::x_wharf::Created;
use wharf_pusher::events::ServiceEvent;
use wharf_pusher::release::{InputsDigest, Ready, SkipInputs};

/// The OCI labels wharf adds to every image: the commit, where its source lives, and when it
/// was built. Compose's own labels win on a clash. `revision`: the one the release's tags name,
/// when there is a release (asking git again costs a `git status` of the whole work tree).
fn oci_labels(
    project: &wharf_compose::Project,
    revision: Option<&wharf_pusher::git::Revision>,
) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    let env = |n: &str| std::env::var(n).ok();
    let sha = match revision {
        Some(r) => Some(r.sha.clone()),
        None => wharf_pusher::git::revision(&project.working_dir, &env)
            .ok()
            .map(|r| r.sha),
    };
    let setting = project.x_wharf.as_ref().and_then(|x| x.created);
    let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let commit_time = || wharf_pusher::git::commit_time(&project.working_dir, sha.as_deref()?);
    match created(source_date_epoch.as_deref(), setting, commit_time) {
        Some(at) => {
            labels.insert("org.opencontainers.image.created".into(), at);
        }
        None => tracing::info!(
            "no org.opencontainers.image.created label: the commit's time cannot be read here \
             (set SOURCE_DATE_EPOCH, or x-wharf created: build)"
        ),
    }
    if let Some(sha) = sha {
        labels.insert("org.opencontainers.image.revision".into(), sha);
    }
    if let Some(source) = source_url(&project.working_dir) {
        labels.insert("org.opencontainers.image.source".into(), source);
    }
    labels
}

/// When the image was made, as its `created` label says. `SOURCE_DATE_EPOCH` (seconds since
/// 1970) wins, as BuildKit and buildx take it; else, by default, the commit's time (as ko, Jib
/// and Bazel's rules do), so that a rebuild of the same inputs from the daemon's cache is the
/// very same image and a re-release moves no tag; the build's time only when the project asks
/// for it (`x-wharf: {created: build}`). `None` (no label) when the commit's time is not known
/// here (no repository holding the commit): a missing label varies less than a made-up one.
fn created(
    source_date_epoch: Option<&str>,
    setting: Option<Created>,
    commit_time: impl FnOnce() -> Option<i64>,
) -> Option<String> {
    let at = match source_date_epoch.and_then(|s| s.trim().parse::<i64>().ok()) {
        Some(secs) => chrono::DateTime::from_timestamp(secs, 0)?,
        None => match setting.unwrap_or(Created::Commit) {
            Created::Build => chrono::Utc::now(),
            Created::Commit => chrono::DateTime::from_timestamp(commit_time()?, 0)?,
        },
    };
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The repository's web address: from GitHub Actions' variables, else `origin`, with any
/// credentials in the URL removed.
fn source_url(dir: &std::path::Path) -> Option<String> {
    if let (Ok(server), Ok(repo)) = (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
    ) {
        return Some(format!("{server}/{repo}"));
    }
    let out = std::process::Command::new("git")
        .args(["remote", "get-url", "origin"])
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let url = match url.strip_prefix("git@") {
        Some(rest) => format!("https://{}", rest.replacen(':', "/", 1)),
        None => url,
    };
    let url = match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host))
                if !rest.split('/').next().unwrap_or("").is_empty()
                    && rest.find('@') < rest.find('/') =>
            {
                format!("{scheme}://{host}")
            }
            _ => url.clone(),
        },
        None => url,
    };
    Some(url.trim_end_matches(".git").to_string())
}

pub fn run(project_args: &ProjectArgs, args: &BuildArgs, run: &Run) -> Result<()> {
    let reporter = &run.reporter;
    let project = release::load_project(project_args, &args.services)?;
    let services = release::select(&project, &args.services)?;
    if services.is_empty() {
        return Err(Failure::config(anyhow!(
            "no service of project `{}` has a build section: nothing to build",
            project.name
        )));
    }
    let builder = match args.builder {
        BuilderChoice::Buildkit => BuilderKind::BuildKit,
        BuilderChoice::Classic => BuilderKind::Classic,
    };
    let (targets, revision) = if args.push {
        let (targets, revision) = release::targets(&project, &services, &args.target)?;
        (Some(targets), revision)
    } else {
        (None, None)
    };
    let mut prepared = service::prepare(
        &project,
        &services,
        &Options {
            builder,
            labels: oci_labels(&project, revision.as_ref()),
            idle_timeout: Some(run.timeouts().build_idle),
        },
    )
    .map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        Failure::config(anyhow!(
            "the build settings have problems (nothing was built):\n  {}",
            lines.join("\n  ")
        ))
    })?;
    for w in &prepared.warnings {
        reporter.warn(&w.to_string());
    }
    if !args.push && args.manifest.is_some() {
        return Err(Failure::config(anyhow!(
            "--manifest describes pushed images: use it with --push"
        )));
    }
    if args.shard.is_some() && !args.push {
        return Err(Failure::config(anyhow!(
            "--shard releases one share of the services: use it with --push"
        )));
    }
    if args.no_skip && !args.push {
        return Err(Failure::config(anyhow!(
            "--no-skip applies to --push (a build without --push never skips)"
        )));
    }
    // The logins of the release (ECR tokens held in memory) also serve the builds' pulls, so
    // a FROM image in the same registry needs no `docker login`.
    let credentials = RegistryCredentials::new();
    prepared.use_credentials(&credentials);
    if prepared.needs_daemon_platform() {
        let native = wharf_builder::daemon::native_platform_blocking().map_err(Failure::failed)?;
        prepared.use_daemon_platform(Ok(native));
    }
    // `--shard K/N`: this run's share of the services, identity and inputs tags only (a
    // service stays with the service it is built from, so the share builds on its own).
    let targets = match (args.shard, targets) {
        (Some(shard), Some(mut targets)) => {
            let keep = crate::shard::services(&prepared.builds, shard)?;
            prepared.builds.retain(|b| keep.contains(&b.service));
            targets.retain(|t| keep.contains(&t.service));
            for t in &mut targets {
                t.moving_tags.clear();
            }
            if targets.is_empty() {
                reporter.summary(&format!(
                    "shard {shard}: no service falls to this shard; phase 2 left to `wharf promote`"
                ));
                if let Some(path) = &args.manifest {
                    release::write_manifest(path, &project, &[])?;
                }
                return Ok(());
            }
            Some(targets)
        }
        (_, targets) => targets,
    };
    let parallel = args.parallel.unwrap_or_else(schedule::default_parallelism);
    let inputs = release::input_digests(&project, &prepared.builds, parallel)?;
    for b in &mut prepared.builds {
        if let Some(d) = inputs.get(&b.service).and_then(Inputs::digest) {
            b.request
                .labels
                .insert(wharf_builder::inputs::LABEL.into(), d.hex.clone());
        }
    }
    reporter.begin(
        &project.name,
        prepared
            .builds
            .iter()
            .map(|b| (b.service.as_str(), b.image.as_str())),
        args.push,
    );

    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::failed(anyhow!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let Some(targets) = targets else {
            let (docker, _) = wharf_builder::daemon::connect()
                .await
                .map_err(Failure::failed)?;
            let outcomes =
                build_all(&docker, prepared.builds, parallel, args, reporter, None).await;
            let failed = failures(&outcomes);
            if !failed.is_empty() {
                return Err(Failure::failed(anyhow!(
                    "{} of {} service(s) did not build:\n  {}",
                    failed.len(),
                    outcomes.len(),
                    failed.join("\n  ")
                )));
            }
            reporter.summary(&format!("built {} service(s)", outcomes.len()));
            return Ok(());
        };
        let (docker, _) = wharf_builder::daemon::connect()
            .await
            .map_err(Failure::failed)?;
        let mut release = release::start(
            &project,
            &args.target,
            targets,
            docker.clone(),
            parallel,
            run.timeout,
            reporter.sink_for_release(),
            run.interrupt.clone(),
        )
        .await?;
        for l in release.logins().values() {
            credentials.insert(&l.host, &l.username, l.password.clone());
        }
        let known: HashMap<String, InputsDigest> = inputs
            .iter()
            .filter_map(|(service, i)| match i {
                Inputs::Known(d) => Some((
                    service.clone(),
                    InputsDigest {
                        hex: d.hex.clone(),
                        tag: d.tag(),
                    },
                )),
                Inputs::Unknown { reason } => {
                    tracing::info!(service = %service, "always built: {reason}");
                    None
                }
            })
            .collect();
        let inputs_tags: HashMap<String, String> = known
            .iter()
            .map(|(s, d)| (s.clone(), d.tag.clone()))
            .collect();
        let skip = SkipInputs {
            inputs: if args.no_skip { HashMap::new() } else { known },
            inputs_label: wharf_builder::inputs::LABEL.to_string(),
            builds_from: prepared
                .builds
                .iter()
                .map(|b| (b.service.clone(), b.after.clone()))
                .collect(),
        };
        let mut unchanged = release.unchanged(&skip).await.map_err(release::failure)?;
        // An unchanged base keeps its image: the daemon gets it for the services built FROM it.
        let local_names: HashMap<String, Vec<String>> = prepared
            .builds
            .iter()
            .map(|b| {
                let names = std::iter::once(&b.image).chain(&b.extra_tags).cloned();
                (b.service.clone(), names.collect())
            })
            .collect();
        release
            .bases_into_daemon(&mut unchanged, &skip, &local_names)
            .await;
        let (mut builds, skipped): (Vec<_>, Vec<_>) = prepared
            .builds
            .into_iter()
            .partition(|b| !unchanged.contains_key(&b.service));
        let previous = revision
            .as_ref()
            .and_then(|r| wharf_pusher::git::parent(&project.working_dir, &r.sha));
        add_cache_sources(&project, &release, &mut builds, previous.as_deref()).await;
        reporter.expect_pushes(
            release
                .targets()
                .iter()
                .map(|t| (t.service.as_str(), t.all_tags().cloned().collect())),
        );
        // Builds run while phase 1 pushes each image as soon as it is built.
        let (ready, ready_rx) = mpsc::unbounded_channel::<String>();
        let (to_push, to_push_rx) = mpsc::unbounded_channel::<Ready>();
        let forward = async move {
            let mut ready_rx = ready_rx;
            while let Some(service) = ready_rx.recv().await {
                let inputs_tag = inputs_tags.get(&service).cloned();
                let _ = to_push.send(Ready {
                    service,
                    inputs_tag,
                });
            }
        };
        let building = build_all(&docker, builds, parallel, args, reporter, Some(ready));
        let ((outcomes, ()), first) = tokio::join!(
            async { tokio::join!(building, forward) },
            release.identity_phase(&unchanged, to_push_rx)
        );
        reporter.summary(&format!(
            "built {} service(s), {} unchanged",
            outcomes.len(),
            skipped.len()
        ));
        let images = release
            .finish(first, failures(&outcomes))
            .await
            .map_err(release::failure)?;
        match args.shard {
            Some(shard) => reporter.summary(&format!(
                "shard {shard}: released {} image(s), identity tags only; phase 2 left to `wharf promote`",
                images.len()
            )),
            None => reporter.summary(&format!("released {} image(s)", images.len())),
        }
        reporter.released(&project.name, &images)?;
        if let Some(path) = &args.manifest {
            release::write_manifest(path, &project, &images)?;
        }
        Ok(())
    })
}

/// Whether a service's build takes its last release as a cache source: BuildKit builds (the
/// classic builder uses only images the daemon holds) unless `x-wharf: {cache: false}`.
pub(crate) fn default_cache(
    project: &wharf_compose::Project,
    service: &str,
    builder: BuilderKind,
) -> bool {
    builder == BuilderKind::BuildKit
        && project
            .services
            .get(service)
            .and_then(|s| s.x_wharf.as_ref())
            .and_then(|x| x.cache)
            != Some(false)
}

/// Adds to each build, after the user's `cache_from`, the service's last release that passes
/// the trust check (see `wharf_pusher::release::Release::cache_sources`).
async fn add_cache_sources(
    project: &wharf_compose::Project,
    release: &wharf_pusher::release::Release,
    builds: &mut [wharf_builder::service::ServiceBuild],
    previous: Option<&str>,
) {
    let lookups = builds.iter().map(|b| async {
        if default_cache(project, &b.service, b.request.builder) {
            release.cache_sources(&b.service, previous).await
        } else {
            Vec::new()
        }
    });
    let sources = futures_util::future::join_all(lookups).await;
    for (b, sources) in builds.iter_mut().zip(sources) {
        for s in sources {
            if !b.request.cache_from.contains(&s) {
                tracing::info!(service = %b.service, "cache source {s}");
                b.request.cache_from.push(s);
            }
        }
    }
}

fn failures(outcomes: &IndexMap<String, Outcome>) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|(s, o)| match o {
            Outcome::Built { .. } => None,
            Outcome::Failed { message, .. } => Some(format!("`{s}`: {message}")),
            Outcome::NotBuilt { reason } => Some(format!("`{s}`: not built ({reason})")),
        })
        .collect()
}

/// Builds `builds`, reporting each; `done` hears of each service built.
async fn build_all(
    docker: &bollard::Docker,
    builds: Vec<wharf_builder::service::ServiceBuild>,
    parallel: usize,
    args: &BuildArgs,
    reporter: &Arc<Reporter>,
    done: Option<mpsc::UnboundedSender<String>>,
) -> IndexMap<String, Outcome> {
    let events: schedule::EventSink = {
        let r = reporter.clone();
        Arc::new(move |e: Event| match e {
            Event::Started { service } => r.event(&ServiceEvent::Building {
                service: service.to_string(),
            }),
            Event::Line { service, line } => r.output(service, line),
            Event::Finished { service, outcome } => {
                let service = service.to_string();
                match outcome {
                    Outcome::Built { elapsed } => {
                        r.event(&ServiceEvent::Built {
                            service: service.clone(),
                            seconds: elapsed.as_secs_f64(),
                        });
                        if let Some(done) = &done {
                            let _ = done.send(service);
                        }
                    }
                    Outcome::Failed { message, log_tail } => r.event(&ServiceEvent::BuildFailed {
                        service,
                        message: message.clone(),
                        log_tail: log_tail.clone(),
                    }),
                    Outcome::NotBuilt { reason } => r.event(&ServiceEvent::NotBuilt {
                        service,
                        reason: reason.clone(),
                    }),
                }
            }
        })
    };
    schedule::run(docker, builds, parallel, args.keep_going, events).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_is_the_commits_time_unless_source_date_epoch_or_the_build_is_asked_for() {
        let commit = || Some(1_704_164_645);
        assert_eq!(
            created(None, None, commit).as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            created(Some("1700000000"), Some(Created::Build), commit).as_deref(),
            Some("2023-11-14T22:13:20Z"),
            "SOURCE_DATE_EPOCH wins"
        );
        assert_eq!(created(None, Some(Created::Commit), || None), None);
        let now = created(None, Some(Created::Build), || None).unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(&now).is_ok(), "{now}");
    }
}
