//! `wharf build [--push]`: build the selected services through the daemon, tagged with their
//! compose image names; with `--push`, log in and check repositories first (before any build),
//! then push all or nothing.

use crate::cli::{BuildArgs, BuilderChoice, ProjectArgs};
use crate::error::{Failure, Result};
use crate::progress::Reporter;
use crate::release;
use anyhow::anyhow;
use futures_util::StreamExt;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::Instrument;
use wharf_builder::build::BuilderKind;
use wharf_builder::inputs::Inputs;
use wharf_builder::schedule::{self, Event, Outcome};
use wharf_builder::service::{self, Options};
use wharf_builder::session::RegistryCredentials;
use wharf_pusher::api::RawManifest;
use wharf_pusher::release::{Landing, Origin, Pusher};
use wharf_pusher::target::ImageTarget;

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
    if let Some(sha) = sha {
        labels.insert("org.opencontainers.image.revision".into(), sha);
    }
    if let Some(source) = source_url(&project.working_dir) {
        labels.insert("org.opencontainers.image.source".into(), source);
    }
    labels.insert("org.opencontainers.image.created".into(), created());
    labels
}

/// When the image was made: now, or `SOURCE_DATE_EPOCH` (seconds since 1970) when set — the
/// reproducible-builds convention BuildKit and buildx follow too, so that building one commit
/// twice need not give two images.
fn created() -> String {
    let at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_else(chrono::Utc::now);
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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

pub fn run(project_args: &ProjectArgs, args: &BuildArgs, reporter: Arc<Reporter>) -> Result<()> {
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
        let mut sdk = None;
        let pushing = match targets {
            Some(mut targets) => {
                let logins = release::login_all(&mut targets, &mut sdk).await?;
                for l in logins.values() {
                    credentials.insert(&l.host, &l.username, l.password.clone());
                }
                release::check_repositories(
                    &project,
                    &targets,
                    args.target.create_repositories,
                    &mut sdk,
                    &reporter,
                )
                .await?;
                Some((targets, logins))
            }
            None => None,
        };
        let (docker, _) = wharf_builder::daemon::connect()
            .await
            .map_err(Failure::failed)?;
        match pushing {
            None => {
                let outcomes =
                    build_all(&docker, prepared.builds, parallel, args, &reporter, None).await;
                let failed = failures(&outcomes);
                if !failed.is_empty() {
                    return Err(Failure::failed(anyhow!(
                        "{} of {} service(s) did not build:\n  {}",
                        failed.len(),
                        outcomes.len(),
                        failed.join("\n  ")
                    )));
                }
                reporter.note("summary", &format!("built {} service(s)", outcomes.len()));
                Ok(())
            }
            Some((mut targets, mut logins)) => {
                let pusher = Pusher::new(&docker, &logins, release::push_events(&reporter));
                let unchanged = release::unchanged(
                    &pusher,
                    &targets,
                    &prepared.builds,
                    &inputs,
                    !args.no_skip,
                    &reporter,
                )
                .await?;
                let (builds, skipped): (Vec<_>, Vec<_>) = prepared
                    .builds
                    .into_iter()
                    .partition(|b| !unchanged.contains_key(&b.service));
                for b in &skipped {
                    reporter.service(
                        &b.service,
                        "unchanged",
                        "unchanged: the registry holds an image of the same inputs",
                        &[],
                    );
                }
                release::expect_pushes(&targets, &reporter);
                reporter.note(
                    "phase",
                    "phase 1: identity tags, each as its image is ready",
                );
                let (outcomes, first) = build_and_push(
                    &docker, &pusher, builds, &targets, &unchanged, &inputs, parallel, args,
                    &reporter,
                )
                .await;
                let built = outcomes.len();
                let digests = release::check_first_phase(first, &failures(&outcomes))?;
                reporter.note(
                    "summary",
                    &format!("built {built} service(s), {} unchanged", skipped.len()),
                );
                // ECR tokens last hours, but a long build may outlive one: renew before the
                // moving tags.
                let images = if release::logins_stale(&logins) {
                    drop(pusher);
                    release::refresh_logins(&mut targets, &mut logins, &mut sdk).await?;
                    let pusher = Pusher::new(&docker, &logins, release::push_events(&reporter));
                    release::second_phase(&pusher, &targets, digests, &reporter).await?
                } else {
                    release::second_phase(&pusher, &targets, digests, &reporter).await?
                };
                reporter.note("summary", &format!("released {} image(s)", images.len()));
                reporter.released(&project.name, &images)?;
                if let Some(path) = &args.manifest {
                    release::write_manifest(path, &project, &images)?;
                }
                Ok(())
            }
        }
    })
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
            Event::Started { service } => r.service(service, "building", "building", &[]),
            Event::Line { service, line } => r.output(service, line),
            Event::Finished { service, outcome } => match outcome {
                Outcome::Built { elapsed } => {
                    let secs = format!("{:.1}", elapsed.as_secs_f64());
                    r.service(
                        service,
                        "built",
                        &format!("built in {secs}s"),
                        &[("seconds", &secs)],
                    );
                    if let Some(done) = &done {
                        let _ = done.send(service.to_string());
                    }
                }
                Outcome::Failed { message, log_tail } => r.build_failed(service, message, log_tail),
                Outcome::NotBuilt { reason } => {
                    r.service(service, "not-built", &format!("not built: {reason}"), &[])
                }
            },
        })
    };
    schedule::run(docker, builds, parallel, args.keep_going, events).await
}

/// Builds the services that changed while phase 1 runs: an unchanged service is tagged in
/// the registry at once, a built one is pushed as soon as its build is done, while others
/// still build.
#[allow(clippy::too_many_arguments)]
async fn build_and_push(
    docker: &bollard::Docker,
    pusher: &Pusher<'_>,
    builds: Vec<wharf_builder::service::ServiceBuild>,
    targets: &[ImageTarget],
    unchanged: &HashMap<String, RawManifest>,
    inputs: &HashMap<String, Inputs>,
    parallel: usize,
    args: &BuildArgs,
    reporter: &Arc<Reporter>,
) -> (IndexMap<String, Outcome>, IndexMap<String, Landing>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let building = build_all(docker, builds, parallel, args, reporter, Some(tx));
    let slots = tokio::sync::Semaphore::new(parallel.max(1));
    let by_service: HashMap<&str, usize> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.service.as_str(), i))
        .collect();
    let push = |i: usize, origin: Origin| {
        let t = &targets[i];
        let slots = &slots;
        let extra: Vec<String> = match origin {
            Origin::Daemon => inputs
                .get(&t.service)
                .and_then(Inputs::digest)
                .map(|d| d.tag())
                .into_iter()
                .collect(),
            Origin::Registry(_) => Vec::new(),
        };
        let span = tracing::info_span!("push", service = %t.service);
        async move {
            // Only uploads through the daemon share its slots; a manifest copy costs a round
            // trip or two.
            let _slot = match origin {
                Origin::Daemon => slots.acquire().await.ok(),
                Origin::Registry(_) => None,
            };
            (t.service.clone(), pusher.identity(t, &origin, &extra).await)
        }
        .instrument(span)
    };
    let mut pushes = futures_util::stream::FuturesUnordered::new();
    for (i, t) in targets.iter().enumerate() {
        if let Some(m) = unchanged.get(&t.service) {
            pushes.push(push(i, Origin::Registry(m.clone())));
        }
    }
    let mut results = HashMap::new();
    let pushing = async {
        let mut open = true;
        loop {
            tokio::select! {
                next = rx.recv(), if open => match next {
                    Some(service) => {
                        if let Some(&i) = by_service.get(service.as_str()) {
                            pushes.push(push(i, Origin::Daemon));
                        }
                    }
                    None => open = false,
                },
                Some((service, r)) = pushes.next(), if !pushes.is_empty() => {
                    results.insert(service, r);
                }
                else => break,
            }
        }
    };
    let (outcomes, ()) = tokio::join!(building, pushing);
    let first = wharf_pusher::release::landings(targets, results);
    (outcomes, first)
}
