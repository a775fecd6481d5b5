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
use wharf_builder::engines::{Engines, Routes};
use wharf_builder::inputs::Inputs;
use wharf_builder::platform::Platform;
use wharf_builder::schedule::{self, Event, Outcome};
use wharf_builder::service::{self, Options, Unit};
use wharf_builder::session::RegistryCredentials;
use wharf_compose::x_wharf::Created;
use wharf_pusher::events::ServiceEvent;
use wharf_pusher::release::{InputsDigest, PlatformCandidate, PlatformReady, Ready, SkipInputs};

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

/// What `run` needs of the project before it talks to a daemon or registry, known without git.
struct Prepared {
    prepared: service::Prepared,
    credentials: RegistryCredentials,
    /// `--shard K/N` and the services of this share (the builds are already cut to it).
    shard_services: Option<(
        wharf_pusher::shard::Shard,
        std::collections::BTreeSet<String>,
    )>,
    unit_inputs: HashMap<Unit, Inputs>,
}

/// The builds of `services`, checked, cut to this run's shard, and their input digests.
fn prepare_and_hash(
    project: &wharf_compose::Project,
    services: &[&wharf_compose::Service],
    args: &BuildArgs,
    run: &Run,
    builder: BuilderKind,
    only_platforms: &Option<Vec<wharf_compose::platform::Platform>>,
    routes: &Routes,
) -> Result<Prepared> {
    let mut prepared = service::prepare(
        project,
        services,
        &Options {
            builder,
            labels: HashMap::new(),
            idle_timeout: Some(run.timeouts().build_idle),
            only_platforms: only_platforms.clone(),
            routes: routes.clone(),
        },
    )
    .map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        Failure::config(anyhow!(
            "the build settings have problems (nothing was built):\n  {}",
            lines.join("\n  ")
        ))
    })?;
    // The logins of the release (ECR tokens held in memory) also serve the builds' pulls, so
    // a FROM image in the same registry needs no `docker login`.
    let credentials = RegistryCredentials::new();
    prepared.use_credentials(&credentials);
    if prepared.needs_daemon_platform() {
        let native = wharf_builder::daemon::native_platform_blocking().map_err(Failure::failed)?;
        prepared.use_daemon_platform(Ok(native));
    }
    let shard_services = match args.shard {
        Some(shard) if args.push => {
            let keep = crate::shard::services(&prepared.builds, shard)?;
            prepared.builds.retain(|b| keep.contains(&b.service));
            Some((shard, keep))
        }
        _ => None,
    };
    let parallel = args.parallel.unwrap_or_else(schedule::default_parallelism);
    let unit_inputs = release::unit_digests(project, &prepared.builds, parallel)?;
    Ok(Prepared {
        prepared,
        credentials,
        shard_services,
        unit_inputs,
    })
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
    release::check_lambda(&project, &services)?;
    let only_platforms = release::only_platforms(&args.target)?;
    let routes = release::engine_routes(&project)?;
    let services = release::declaring(&project, services, only_platforms.as_deref())?;
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
    // git (a `git status` of the whole work tree, the commit's time, the origin's address)
    // runs beside the preparation and the hashing of the contexts, which do not depend on it:
    // on a large work tree each is a good share of a release that builds nothing. The labels
    // it gives are not part of the input digest (`wharf_builder::inputs`), so they are added
    // to the builds after the hashing, below every label of the project's own.
    let (git, prepared) = std::thread::scope(|scope| {
        let git = scope.spawn(|| -> Result<_> {
            let (targets, revision) = if args.push {
                let (targets, revision) = release::targets(&project, &services, &args.target)?;
                (Some(targets), revision)
            } else {
                (None, None)
            };
            let labels = oci_labels(&project, revision.as_ref());
            Ok((targets, revision, labels))
        });
        let prepared = prepare_and_hash(
            &project,
            &services,
            args,
            run,
            builder,
            &only_platforms,
            &routes,
        );
        let git = git
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (git, prepared)
    });
    let (targets, revision, labels) = git?;
    let Prepared {
        mut prepared,
        credentials,
        shard_services,
        unit_inputs,
    } = prepared?;
    for b in &mut prepared.builds {
        for (k, v) in &labels {
            b.request
                .labels
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        if let Some(d) = unit_inputs.get(&b.unit()).and_then(Inputs::digest) {
            b.request
                .labels
                .insert(wharf_builder::inputs::LABEL.into(), d.hex.clone());
        }
    }
    for w in &prepared.warnings {
        reporter.warn(&w.to_string());
    }
    let native = prepared.native.clone();
    // `--shard K/N`: this run's share of the services, identity and inputs tags only (a
    // service stays with the service it is built from, so the share builds on its own).
    let targets = match (shard_services, targets) {
        (Some((shard, keep)), Some(mut targets)) => {
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
    let inputs = wharf_builder::inputs::by_service(&prepared.builds, &unit_inputs);
    let targets = targets.map(|mut targets| {
        for t in &mut targets {
            if let Some(b) = prepared.builds.iter().find(|b| b.service == t.service) {
                t.use_platforms(b.service_platforms.clone(), &b.platforms_built);
            }
        }
        targets
    });
    if let Some(targets) = &targets {
        for t in targets.iter().filter(|t| t.partial) {
            reporter.warn(&format!(
                "`{}` is built for {} of its platforms ({}): only their platform identity tags are pushed, no index and no moving tag (a run with every platform, or `wharf promote`, writes the index)",
                t.service,
                prepared.builds.iter().filter(|b| b.service == t.service).count(),
                t.platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let labels: Vec<(String, String)> = prepared
        .builds
        .iter()
        .map(|b| (b.unit().to_string(), b.image.clone()))
        .collect();
    reporter.begin(
        &project.name,
        labels.iter().map(|(u, i)| (u.as_str(), i.as_str())),
        args.push,
    );

    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::failed(anyhow!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let Some(targets) = targets else {
            let (docker, _) = wharf_builder::daemon::connect()
                .await
                .map_err(Failure::failed)?;
            let multi = multi_platform_images(&prepared.builds, &routes);
            let engines = Engines::connect(docker.clone(), &routes)
                .await
                .map_err(Failure::failed)?;
            check_emulation(&prepared.builds, &engines, native.as_ref()).await?;
            let outcomes = build_all(
                &engines,
                prepared.builds,
                parallel,
                native.as_ref(),
                args,
                reporter,
                None,
            )
            .await;
            let failed = failures(&outcomes);
            if !failed.is_empty() {
                return Err(Failure::failed(anyhow!(
                    "{} of {} service(s) did not build:\n  {}",
                    failed.len(),
                    outcomes.len(),
                    failed.join("\n  ")
                )));
            }
            if !multi.is_empty()
                && wharf_pusher::local_index::holds_every_platform(&docker).await
            {
                for (name, built) in &multi {
                    if let Err(e) =
                        wharf_pusher::local_index::hold_built(&docker, name, built).await
                    {
                        reporter.warn(&format!("{name} keeps one platform locally: {e}"));
                    }
                }
            }
            reporter.summary(&format!("built {} image(s)", outcomes.len()));
            return Ok(());
        };
        let (docker, _) = wharf_builder::daemon::connect()
            .await
            .map_err(Failure::failed)?;
        let engines = Engines::connect(docker.clone(), &routes)
            .await
            .map_err(Failure::failed)?;
        check_emulation(&prepared.builds, &engines, native.as_ref()).await?;
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
        // The inputs tag each build's image is stored under: a single image's is its
        // service's; each platform of a multi-platform image has its own, and its index the
        // service's.
        let unit_tags: HashMap<Unit, String> = prepared
            .builds
            .iter()
            .filter_map(|b| {
                let tag = match b.part() {
                    Some(_) => unit_inputs.get(&b.unit())?.digest()?.tag(),
                    None => known.get(&b.service)?.tag.clone(),
                };
                Some((b.unit(), tag))
            })
            .collect();
        let index_inputs_tags: HashMap<String, String> = prepared
            .builds
            .iter()
            .filter(|b| b.is_multi_platform())
            .filter_map(|b| Some((b.service.clone(), known.get(&b.service)?.tag.clone())))
            .collect();
        let mut platform_inputs: HashMap<String, HashMap<Platform, String>> = HashMap::new();
        for b in &prepared.builds {
            if let (Some(p), Some(d)) = (
                b.part(),
                unit_inputs.get(&b.unit()).and_then(Inputs::digest),
            ) {
                platform_inputs
                    .entry(b.service.clone())
                    .or_default()
                    .insert(p.clone(), d.hex.clone());
            }
        }
        let local_images: HashMap<Unit, (String, Option<bollard::Docker>)> = prepared
            .builds
            .iter()
            .map(|b| {
                let engine = b
                    .request
                    .engine
                    .as_deref()
                    .map(|e| engines.get(Some(e)).clone());
                (b.unit(), (b.image.clone(), engine))
            })
            .collect();
        let skip = SkipInputs {
            inputs: if args.no_skip { HashMap::new() } else { known },
            inputs_label: wharf_builder::inputs::LABEL.to_string(),
            builds_from: prepared
                .builds
                .iter()
                .map(|b| (b.service.clone(), b.after.clone()))
                .collect(),
            platform_inputs,
        };
        let mut unchanged = release.unchanged(&skip).await.map_err(release::failure)?;
        // A multi-platform base of a service that is built is built too: each platform's build
        // FROM it needs that platform's image in the engine.
        loop {
            let mut needed = Vec::new();
            for (user, bases) in &skip.builds_from {
                if unchanged.contains_key(user) {
                    continue;
                }
                for base in bases {
                    let multi = prepared
                        .builds
                        .iter()
                        .any(|b| &b.service == base && b.is_multi_platform());
                    if multi && unchanged.contains_key(base) {
                        needed.push(base.clone());
                    }
                }
            }
            if needed.is_empty() {
                break;
            }
            for base in needed {
                unchanged.remove(&base);
            }
        }
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
        let unchanged = unchanged;
        // A multi-platform service the registry does not hold whole may hold some of its
        // platforms (a run narrowed by --platform, on another runner): those are tagged.
        let candidates: Vec<PlatformCandidate> = if args.no_skip {
            Vec::new()
        } else {
            prepared
                .builds
                .iter()
                .filter(|b| !unchanged.contains_key(&b.service))
                .filter_map(|b| {
                    let platform = b.part()?.clone();
                    let d = unit_inputs.get(&b.unit())?.digest()?;
                    Some(PlatformCandidate {
                        service: b.service.clone(),
                        platform,
                        inputs: InputsDigest {
                            hex: d.hex.clone(),
                            tag: d.tag(),
                        },
                    })
                })
                .collect()
        };
        let mut unchanged_platforms = release
            .unchanged_platforms(wharf_builder::inputs::LABEL, &candidates)
            .await;
        let reused = |u: &HashMap<(String, Platform), _>, b: &service::ServiceBuild| {
            unchanged.contains_key(&b.service)
                || b.part()
                    .is_some_and(|p| u.contains_key(&(b.service.clone(), p.clone())))
        };
        // A platform's image that a build uses as its base is built too: the engine needs it.
        loop {
            let mut needed = Vec::new();
            for b in prepared
                .builds
                .iter()
                .filter(|b| !reused(&unchanged_platforms, b))
            {
                for dep in &b.after {
                    let unit = service::dependency_unit(&prepared.builds, dep, b.platform.known());
                    if let Some(Unit {
                        service,
                        platform: Some(p),
                    }) = unit
                    {
                        if unchanged_platforms.contains_key(&(service.clone(), p.clone())) {
                            needed.push((service, p));
                        }
                    }
                }
            }
            if needed.is_empty() {
                break;
            }
            for key in needed {
                unchanged_platforms.remove(&key);
            }
        }
        let (mut builds, skipped): (Vec<_>, Vec<_>) = prepared
            .builds
            .into_iter()
            .partition(|b| !reused(&unchanged_platforms, b));
        let previous = revision
            .as_ref()
            .and_then(|r| wharf_pusher::git::parent(&project.working_dir, &r.sha));
        add_cache_sources(&project, &release, &mut builds, previous.as_deref()).await;
        reporter.expect_pushes(release.targets().iter().map(|t| {
            let mut tags: Vec<String> = t
                .platforms
                .iter()
                .flat_map(|p| t.platform_tags(p))
                .collect();
            if !t.partial {
                tags.extend(t.all_tags().cloned());
            }
            (t.service.as_str(), tags)
        }));
        // Builds run while phase 1 pushes each image as soon as it is built.
        let (ready, ready_rx) = mpsc::unbounded_channel::<Unit>();
        let (to_push, to_push_rx) = mpsc::unbounded_channel::<Ready>();
        let forward = async move {
            let mut ready_rx = ready_rx;
            while let Some(unit) = ready_rx.recv().await {
                let inputs_tag = unit_tags.get(&unit).cloned();
                let local = local_images.get(&unit);
                let (platform, engine) = match &unit.platform {
                    Some(p) => (
                        local.map(|(image, engine)| PlatformReady {
                            platform: p.clone(),
                            local_image: image.clone(),
                            engine: engine.clone(),
                        }),
                        None,
                    ),
                    // A single image of a routed platform is on its engine too.
                    None => (None, local.and_then(|(_, engine)| engine.clone())),
                };
                let _ = to_push.send(Ready {
                    service: unit.service,
                    inputs_tag,
                    platform,
                    engine,
                });
            }
        };
        let building = build_all(
            &engines,
            builds,
            parallel,
            native.as_ref(),
            args,
            reporter,
            Some(ready),
        );
        let ((outcomes, ()), first) = tokio::join!(
            async { tokio::join!(building, forward) },
            release.identity_phase(
                &unchanged,
                &unchanged_platforms,
                to_push_rx,
                &index_inputs_tags
            )
        );
        let mut skipped_services: Vec<&str> = skipped.iter().map(|b| b.service.as_str()).collect();
        skipped_services.dedup();
        reporter.summary(&format!(
            "built {} image(s), {} service(s) unchanged",
            outcomes.len(),
            skipped_services.len()
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

/// Refuses, before anything is built or pushed, platforms the engine cannot run where that can
/// be known: its architecture, and this host's emulators when the engine runs here.
async fn check_emulation(
    builds: &[service::ServiceBuild],
    engines: &Engines,
    native: Option<&Platform>,
) -> Result<()> {
    use wharf_builder::emulation::{runs, ways_out, Runs};
    let default_host = wharf_builder::daemon::endpoint()
        .map(|e| e.host)
        .unwrap_or_default();
    let mut natives: HashMap<Option<String>, Option<Platform>> = HashMap::new();
    natives.insert(None, native.cloned());
    let mut problems: Vec<String> = Vec::new();
    for b in builds {
        let Some(p) = b.platform.declared() else {
            continue;
        };
        if !runs_steps(b) {
            continue;
        }
        let engine = b.request.engine.clone();
        if !natives.contains_key(&engine) {
            let docker = engines.get(engine.as_deref());
            let ep = wharf_builder::daemon::Endpoint {
                host: engine.clone().unwrap_or_default(),
                source: "x-wharf.engines / WHARF_ENGINES",
            };
            let n = wharf_builder::daemon::native_platform(docker, &ep)
                .await
                .ok();
            natives.insert(engine.clone(), n);
        }
        let Some(Some(native)) = natives.get(&engine) else {
            continue;
        };
        let host = engine.as_deref().unwrap_or(&default_host);
        let binfmt = host
            .starts_with("unix://")
            .then_some(std::path::Path::new("/proc/sys/fs/binfmt_misc"));
        match runs(native, p, binfmt) {
            Runs::Cannot(why) => {
                let line = format!(
                    "`{}` cannot be built for {p} by the engine at {host} ({native}): {why}\n    {}",
                    b.service,
                    ways_out(p)
                );
                if !problems.contains(&line) {
                    problems.push(line);
                }
            }
            Runs::Emulated(handler) => {
                tracing::info!(service = %b.service, "{p} runs through {handler}")
            }
            Runs::Natively | Runs::Unknown => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        // The engine's environment, found before anything ran: a configuration error, as
        // the other refusals before a build are. An `exec format error` met during a build
        // stays a failed build.
        Err(Failure::config(anyhow!(
            "nothing was built or pushed:\n  {}",
            problems.join("\n  ")
        )))
    }
}

/// Whether a build runs commands of its image (a `RUN` instruction): one that only copies
/// files needs no emulator. A context the daemon fetches is taken to run some.
fn runs_steps(b: &service::ServiceBuild) -> bool {
    let service::Source::Local(ctx) = &b.source else {
        return true;
    };
    let Ok(text) = ctx.dockerfile_content() else {
        return true;
    };
    String::from_utf8_lossy(&text).lines().any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("RUN"))
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

fn failures(outcomes: &IndexMap<Unit, Outcome>) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|(s, o)| match o {
            Outcome::Built { .. } => None,
            Outcome::Failed { message, .. } => Some(format!("`{s}`: {message}")),
            Outcome::NotBuilt { reason } => Some(format!("`{s}`: not built ({reason})")),
        })
        .collect()
}

/// Builds `builds`, reporting each; `done` hears of each one built.
/// Each multi-platform image this run builds whole on the default engine: its compose name,
/// and each platform with the local name it is built as. On an engine whose store holds every
/// platform under one name, the compose name then holds them all.
fn multi_platform_images(
    builds: &[wharf_builder::service::ServiceBuild],
    routes: &Routes,
) -> Vec<(String, Vec<(Platform, String)>)> {
    let mut images: Vec<(String, Vec<(Platform, String)>)> = Vec::new();
    for b in builds {
        let Some(platform) = b.part() else { continue };
        let whole = b.platforms_built.len() == b.service_platforms.len();
        if !whole || routes.endpoint(platform).is_some() {
            continue;
        }
        let entry = (platform.clone(), b.image.clone());
        match images.iter_mut().find(|(name, _)| name == &b.compose_image) {
            Some((_, built)) => built.push(entry),
            None => images.push((b.compose_image.clone(), vec![entry])),
        }
    }
    images.retain(|(_, built)| built.len() > 1);
    images
}

async fn build_all(
    engines: &Engines,
    builds: Vec<wharf_builder::service::ServiceBuild>,
    parallel: usize,
    native: Option<&Platform>,
    args: &BuildArgs,
    reporter: &Arc<Reporter>,
    done: Option<mpsc::UnboundedSender<Unit>>,
) -> IndexMap<Unit, Outcome> {
    let events: schedule::EventSink = {
        let r = reporter.clone();
        Arc::new(move |e: Event| match e {
            Event::Started { unit } => r.event(&ServiceEvent::Building {
                service: unit.to_string(),
            }),
            Event::Line { unit, line } => r.output(&unit.to_string(), line),
            Event::Finished { unit, outcome } => {
                let service = unit.to_string();
                match outcome {
                    Outcome::Built { elapsed } => {
                        r.event(&ServiceEvent::Built {
                            service: service.clone(),
                            seconds: elapsed.as_secs_f64(),
                        });
                        if let Some(done) = &done {
                            let _ = done.send(unit.clone());
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
    schedule::run(engines, builds, parallel, args.keep_going, native, events).await
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
