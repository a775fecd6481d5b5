//! `wharf plan`: what build and push would do, computed from the compose file, the settings and
//! git — no build, no AWS call — so it runs anywhere and can be pasted into a review. The one
//! thing asked of the daemon is its platform, and only for services that declare none (their
//! input digests cover it); without a daemon their digests are shown as unknown.

use crate::cli::{BuilderChoice, PlanArgs, PlanFormat, ProjectArgs};
use crate::commands::Run;
use crate::error::{Failure, Result};
use crate::release;
use anyhow::anyhow;
use std::collections::HashMap;
use wharf_builder::build::BuilderKind;
use wharf_builder::inputs::Inputs;
use wharf_builder::schedule;
use wharf_builder::service::{self, Options};
use wharf_compose::{Context, Dockerfile, Project, Service};
use wharf_pusher::api::RegistryApi;
use wharf_pusher::registry::Registry;
use wharf_pusher::target::ImageTarget;
use wharf_pusher::timeouts::Timeouts;
use wharf_pusher::trust::{self, Verdict};

#[derive(serde::Serialize)]
struct PlannedService {
    service: String,
    context: Option<String>,
    dockerfile: Option<String>,
    target: Option<String>,
    image: String,
    registry: String,
    repository: String,
    identity_tags: Vec<String>,
    moving_tags: Vec<String>,
    references: Vec<String>,
    /// ECR and ECR Public repositories are checked (and created with --create-repositories)
    /// before anything is pushed; other registries create repositories on push.
    repository_checked: bool,
    inputs: PlannedInputs,
    /// Where a build takes its cache from: the service's own `cache_from`, then its last
    /// release (each used only when it passes the trust check at build time).
    cache_from: Vec<String>,
    cache_from_release: Vec<String>,
    /// The platforms of a service that declares some, each with the engine that builds it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    platforms: Vec<PlannedPlatform>,
}

#[derive(serde::Serialize)]
struct PlannedPlatform {
    platform: wharf_compose::platform::Platform,
    /// The endpoint of the engine it is routed to; `None`: the default engine.
    engine: Option<String>,
}

/// What `build --push` would do with the service: build it, or only tag the image of the
/// same inputs the registry holds.
#[derive(serde::Serialize, Default)]
struct PlannedInputs {
    /// BLAKE3 of the service's inputs (see `wharf_builder::inputs`).
    digest: Option<String>,
    /// The registry tag that marks an image of these inputs.
    tag: Option<String>,
    files: Option<u64>,
    bytes: Option<u64>,
    /// `build` or `skip` (with --check-registry: whether the registry holds the image), else
    /// `build if the tag is missing`.
    action: String,
    reason: String,
}

/// What `--check-registry` found under a service's inputs tag.
enum Found {
    /// An image a release made (see [`wharf_pusher::trust`]): it would be reused.
    Reusable,
    Missing,
    /// An image that would not be reused, and why.
    Distrusted(String),
}

fn plan_inputs(
    inputs: Option<&Inputs>,
    found: Option<&Found>,
    problem: Option<&str>,
) -> PlannedInputs {
    match (inputs, problem) {
        (_, Some(p)) => PlannedInputs {
            action: "build".into(),
            reason: format!("the build settings have problems: {p}"),
            ..Default::default()
        },
        (Some(Inputs::Known(d)), None) => PlannedInputs {
            digest: Some(d.hex.clone()),
            tag: Some(d.tag()),
            files: Some(d.entries),
            bytes: Some(d.bytes),
            action: match found {
                Some(Found::Reusable) => "skip",
                Some(Found::Missing | Found::Distrusted(_)) => "build",
                None => "build unless the registry holds the tag",
            }
            .into(),
            reason: match found {
                Some(Found::Reusable) => {
                    "the registry holds an image of the same inputs; it is tagged, not rebuilt"
                        .into()
                }
                Some(Found::Missing) => "no image of these inputs in the registry".into(),
                Some(Found::Distrusted(why)) => {
                    format!("the image under the inputs tag is not reused: {why}")
                }
                None => "run with --check-registry to look".into(),
            },
        },
        (Some(Inputs::Unknown { reason }), None) => PlannedInputs {
            action: "build".into(),
            reason: reason.clone(),
            ..Default::default()
        },
        (None, None) => PlannedInputs {
            action: "build".into(),
            reason: "its inputs are not known".into(),
            ..Default::default()
        },
    }
}

fn relative(project: &Project, p: &std::path::Path) -> String {
    match p.strip_prefix(&project.working_dir) {
        Ok(r) if r.as_os_str().is_empty() => ".".into(),
        Ok(r) => format!("./{}", r.display()),
        Err(_) => p.display().to_string(),
    }
}

fn registry_label(t: &ImageTarget) -> String {
    match (&t.host, &t.registry) {
        (Some(h), _) => h.clone(),
        (None, Registry::EcrOfCaller) => {
            let region = std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "<region>".into());
            format!("<account>.dkr.ecr.{region}.amazonaws.com")
        }
        (None, r) => format!("{r:?}"),
    }
}

fn plan_one(
    project: &Project,
    s: &Service,
    t: &ImageTarget,
    inputs: PlannedInputs,
    release_cache_tags: Vec<String>,
) -> PlannedService {
    let build = s.build.as_ref();
    let context = build.and_then(|b| b.context.as_ref()).map(|c| match c {
        Context::Dir(d) => relative(project, d),
        Context::Remote(u) => wharf_compose::redact::userinfo(u).into_owned(),
    });
    let dockerfile = build.map(|b| match &b.dockerfile {
        Some(Dockerfile::Path(p)) => relative(project, p),
        Some(Dockerfile::Inline(_)) => "(inline)".into(),
        None => "Dockerfile".into(),
    });
    let registry = registry_label(t);
    let references = t
        .all_tags()
        .map(|tag| format!("{registry}/{}:{tag}", t.repository))
        .collect();
    PlannedService {
        service: s.name.clone(),
        context,
        dockerfile,
        target: build.and_then(|b| b.target.clone()),
        image: t.local_image.clone(),
        repository_checked: matches!(
            t.registry,
            Registry::Ecr { .. } | Registry::EcrOfCaller | Registry::EcrPublic { .. }
        ),
        repository: t.repository.clone(),
        identity_tags: t.identity_tags.clone(),
        moving_tags: t.moving_tags.clone(),
        references,
        inputs,
        platforms: Vec::new(),
        cache_from: build.map(|b| b.cache_from.clone()).unwrap_or_default(),
        cache_from_release: release_cache_tags
            .iter()
            .map(|tag| format!("{registry}/{}:{tag}", t.repository))
            .collect(),
        registry,
    }
}

pub fn run(project_args: &ProjectArgs, args: &PlanArgs, run: &Run) -> Result<()> {
    let project = release::load_project(project_args, &args.services)?;
    let services = release::select(&project, &args.services)?;
    release::check_lambda(&project, &services)?;
    let routes = release::engine_routes(&project)?;
    let only = release::only_platforms(&args.target)?;
    // A plan is read, not pushed: a dirty tree is shown as such rather than refused.
    let mut target_args = args.target.clone();
    let refuses_dirty = !target_args.allow_dirty;
    target_args.allow_dirty = true;
    let (targets, revision) = release::targets(&project, &services, &target_args)?;
    let prepared = service::prepare(
        &project,
        &services,
        &Options {
            builder: match args.builder {
                BuilderChoice::Buildkit => BuilderKind::BuildKit,
                BuilderChoice::Classic => BuilderKind::Classic,
            },
            labels: Default::default(),
            idle_timeout: None,
            only_platforms: only.clone(),
            routes: routes.clone(),
        },
    );
    // `--shard K/N`: the services of that shard, which push identity tags only.
    let mut in_shard: Option<std::collections::BTreeSet<String>> = None;
    // The shard's estimated work and the whole release's, in units.
    let mut work = (0u64, 0u64);
    let (inputs, problem) = match prepared {
        Ok(mut p) => (
            {
                if let Some(shard) = args.shard {
                    let split = crate::shard::split(&p.builds, shard)?;
                    work = (
                        split.weight(shard.index - 1),
                        (0..shard.count).map(|i| split.weight(i)).sum(),
                    );
                    in_shard = Some(split.services(shard));
                }
                // The one question a plan asks the daemon, and only when some service is
                // built for the daemon's own platform: which that is.
                if p.needs_daemon_platform() {
                    p.use_daemon_platform(
                        wharf_builder::daemon::native_platform_blocking().map_err(|e| {
                            e.to_string().lines().next().unwrap_or_default().to_string()
                        }),
                    );
                }
                release::input_digests(&project, &p.builds, schedule::default_parallelism())?
            },
            None,
        ),
        Err(problems) if args.shard.is_some() => {
            let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(Failure::config(anyhow!(
                "the build settings have problems, so no shard can be told:\n  {}",
                lines.join("\n  ")
            )));
        }
        Err(problems) => (
            HashMap::new(),
            Some(
                problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ),
    };
    let found = if args.check_registry {
        check_registry(&targets, &inputs, run.timeouts())?
    } else {
        HashMap::new()
    };
    let previous = revision
        .as_ref()
        .and_then(|r| wharf_pusher::git::parent(&project.working_dir, &r.sha));
    let builder = match args.builder {
        BuilderChoice::Buildkit => BuilderKind::BuildKit,
        BuilderChoice::Classic => BuilderKind::Classic,
    };
    let planned: Vec<PlannedService> = services
        .iter()
        .zip(&targets)
        .filter(|(s, _)| in_shard.as_ref().is_none_or(|keep| keep.contains(&s.name)))
        .map(|(s, t)| {
            let i = plan_inputs(inputs.get(&s.name), found.get(&s.name), problem.as_deref());
            let release_cache = if super::build::default_cache(&project, &s.name, builder) {
                wharf_pusher::release::cache_candidate_tags(t, previous.as_deref())
            } else {
                Vec::new()
            };
            let mut t = t.clone();
            if in_shard.is_some() {
                t.moving_tags.clear();
            }
            let mut p = plan_one(&project, s, &t, i, release_cache);
            let mut platforms = release::platforms_of(&project, s).unwrap_or_default();
            if let Some(only) = &only {
                platforms.retain(|p| only.contains(p));
            }
            p.platforms = platforms
                .into_iter()
                .map(|platform| PlannedPlatform {
                    engine: routes.endpoint(&platform).map(str::to_string),
                    platform,
                })
                .collect();
            p
        })
        .collect();
    let shard_note = args.shard.map(|s| {
        format!(
            "shard {s}: {} of {} service(s), an estimated {} of {} units of work (one per Dockerfile instruction, one per started MiB of build context); identity tags only, phase 2 left to `wharf promote`",
            planned.len(),
            services.len(),
            work.0,
            work.1
        )
    });
    let dirty_note = revision.as_ref().filter(|r| r.dirty && refuses_dirty).map(|r| {
        format!("the work tree has uncommitted changes: build --push would refuse (commit {}, or pass --allow-dirty)", &r.sha[..12])
    });
    let create = args.target.create_repositories;
    let out = match args.format {
        PlanFormat::Json => {
            let doc = serde_json::json!({
                "project": project.name,
                "revision": revision.as_ref().map(|r| serde_json::json!({"sha": r.sha, "branch": r.branch, "dirty": r.dirty, "source": r.source})),
                "create_repositories": create,
                "services": planned,
                "warnings": dirty_note.iter().collect::<Vec<_>>(),
            });
            let mut doc = doc;
            if let Some(s) = args.shard {
                doc["shard"] = serde_json::json!({"index": s.index, "count": s.count, "estimate": work.0, "estimate_of_release": work.1});
            }
            serde_json::to_string_pretty(&doc).map_err(|e| Failure::config(anyhow!("{e}")))? + "\n"
        }
        PlanFormat::Text => {
            let mut o = format!("project {} — {} service(s)", project.name, planned.len());
            if let Some(r) = &revision {
                o.push_str(&format!(
                    ", commit {}{} ({})",
                    r.sha,
                    if r.dirty { " (dirty)" } else { "" },
                    r.source
                ));
            }
            o.push('\n');
            if let Some(n) = &shard_note {
                o.push_str(&format!("{n}\n"));
            }
            for p in &planned {
                o.push_str(&format!("\n{}\n", p.service));
                let mut row = |k: &str, v: &str| o.push_str(&format!("  {k:<11} {v}\n"));
                if let Some(c) = &p.context {
                    row("context", c);
                }
                if let Some(d) = &p.dockerfile {
                    row("dockerfile", d);
                }
                if let Some(t) = &p.target {
                    row("target", t);
                }
                row("image", &p.image);
                if !p.platforms.is_empty() {
                    let list: Vec<String> = p
                        .platforms
                        .iter()
                        .map(|pp| match &pp.engine {
                            Some(e) => format!("{} (engine {e})", pp.platform),
                            None => format!("{} (default engine)", pp.platform),
                        })
                        .collect();
                    row("platforms", &list.join(", "));
                }
                let repo = format!("{}/{}", p.registry, p.repository);
                let repo_note = match (p.repository_checked, create) {
                    (true, true) => " (created if missing)",
                    (true, false) => " (must exist)",
                    (false, _) => "",
                };
                row("repository", &format!("{repo}{repo_note}"));
                if !p.identity_tags.is_empty() {
                    row("push", &p.identity_tags.join(", "));
                }
                if !p.moving_tags.is_empty() {
                    row("then move", &p.moving_tags.join(", "));
                }
                let i = &p.inputs;
                if let (Some(d), Some(files), Some(bytes)) = (&i.digest, i.files, i.bytes) {
                    row(
                        "inputs",
                        &format!(
                            "{}… ({files} {}, {})",
                            &d[..16],
                            if files == 1 { "entry" } else { "entries" },
                            human_bytes(bytes)
                        ),
                    );
                }
                row("release", &format!("{} ({})", i.action, i.reason));
                let mut cache: Vec<String> = p.cache_from.clone();
                cache.extend(
                    p.cache_from_release
                        .iter()
                        .map(|r| format!("{r} (if a release made it)")),
                );
                if !cache.is_empty() {
                    row("cache from", &cache.join(", "));
                }
            }
            if let Some(n) = &dirty_note {
                o.push_str(&format!("\nwarning: {n}\n"));
            }
            o
        }
    };
    print!("{out}");
    Ok(())
}

fn human_bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let n = n as f64;
    if n < KIB {
        format!("{n} B")
    } else if n < KIB * KIB {
        format!("{:.1} KiB", n / KIB)
    } else if n < KIB * KIB * KIB {
        format!("{:.1} MiB", n / KIB / KIB)
    } else {
        format!("{:.1} GiB", n / KIB / KIB / KIB)
    }
}

/// Whether the registry holds an image of each service's inputs that a release made (logging
/// in as a release would; this is the one part of a plan that talks to AWS and the registry).
fn check_registry(
    targets: &[ImageTarget],
    inputs: &HashMap<String, Inputs>,
    timeouts: Timeouts,
) -> Result<HashMap<String, Found>> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::failed(anyhow!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let mut targets = targets.to_vec();
        let logins =
            release::login_all(&mut targets, &mut wharf_pusher::release::Aws::new(timeouts))
                .await?;
        let api = RegistryApi::new(timeouts);
        // All services at once, as `build --push` asks.
        let lookups = targets.iter().filter_map(|t| {
            let (Some(Inputs::Known(d)), Some(repository)) =
                (inputs.get(&t.service), t.repository_ref())
            else {
                return None;
            };
            let login = t.host.as_ref().and_then(|h| logins.get(h));
            let reference = format!("{repository}:{}", d.tag());
            let api = &api;
            Some(async move {
                let found = match api.manifest(&reference, login).await? {
                    None => Found::Missing,
                    Some(m) => {
                        let expected = trust::Expected {
                            inputs_label: wharf_builder::inputs::LABEL,
                            inputs: &d.hex,
                            identity: &t.identity,
                            platform: None,
                            platform_inputs: None,
                        };
                        match trust::check(api, &repository, login, &m, &expected).await? {
                            Verdict::Trusted { .. } => Found::Reusable,
                            Verdict::Untrusted(why) => Found::Distrusted(why.to_string()),
                        }
                    }
                };
                Ok::<_, wharf_pusher::Error>((t.service.clone(), found))
            })
        });
        let mut found = HashMap::new();
        for lookup in futures_util::future::join_all(lookups).await {
            let (service, f) = lookup.map_err(|e| Failure::failed(anyhow!("{e}")))?;
            found.insert(service, f);
        }
        Ok(found)
    })
}
