//! The orchestration behind plan, build, push and verify: which services, where their images
//! go, logging in and checking repositories before anything is built, then the two push
//! phases, and the manifest.

use crate::cli::{ProjectArgs, TargetArgs};
use crate::error::{Failure, Result};
use crate::progress::Reporter;
use anyhow::anyhow;
use aws_config::SdkConfig;
use indexmap::IndexMap;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use wharf_builder::inputs::Inputs;
use wharf_compose::{Project, Service};
use wharf_pusher::api::RawManifest;
use wharf_pusher::git::Revision;
use wharf_pusher::login::{self, Login};
use wharf_pusher::registry::Registry;
use wharf_pusher::release::{Landing, Logins, Origin, PushEvent, PushEvents, Pusher};
use wharf_pusher::repositories::{CreateSettings, Ecr, EcrPublic};
use wharf_pusher::target::{self, ImageTarget, Settings, TagValues};
use wharf_pusher::template::{Template, REPOSITORY_PLACEHOLDERS, TAG_PLACEHOLDERS};
use wharf_pusher::Error as PushError;

/// Loads the compose project of the command line.
pub fn load_project(args: &ProjectArgs) -> Result<Project> {
    let options = crate::commands::config::project_options(args)?;
    wharf_compose::load(&options).map_err(Failure::config)
}

fn skipped(service: &Service) -> bool {
    service
        .x_wharf
        .as_ref()
        .and_then(|x| x.get("skip"))
        .and_then(|v| v.as_bool())
        == Some(true)
}

/// The services a command works on: those named (each must exist and have a build section),
/// else every service with a build section not marked `x-wharf.skip`.
pub fn select<'p>(project: &'p Project, names: &[String]) -> Result<Vec<&'p Service>> {
    if names.is_empty() {
        return Ok(project
            .services
            .values()
            .filter(|s| s.build.is_some() && !skipped(s))
            .collect());
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        match project.services.get(name) {
            None => {
                let known: Vec<&str> = project.services.keys().map(String::as_str).collect();
                problems.push(format!(
                    "no such service: `{name}`{} (services: {})",
                    did_you_mean(name, &known),
                    known.join(", ")
                ));
            }
            Some(s) if s.build.is_none() => {
                problems.push(format!("service `{name}` has no build section: wharf builds and pushes only images the project builds"))
            }
            Some(s) => {
                if !out.iter().any(|o: &&Service| o.name == s.name) {
                    out.push(s)
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Failure::config(anyhow!(problems.join("\n  "))))
    }
}

/// `, did you mean `api`?` when a known name is close to the one given (as clap suggests
/// subcommands).
fn did_you_mean(given: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::jaro(given, k), k))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(", did you mean `{k}`?"))
        .unwrap_or_default()
}

fn x_wharf_str<'a>(project: &'a Project, key: &str) -> Option<&'a serde_json::Value> {
    project.x_wharf.as_ref()?.get(key)
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The release settings: command line beats environment (both through clap) beats the
/// compose file's top-level `x-wharf`.
pub fn settings(project: &Project, args: &TargetArgs) -> Result<Settings> {
    let cfg = |m: String| Failure::config(anyhow!(m));
    let registry = match args.registry.clone().or_else(|| {
        x_wharf_str(project, "registry")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }) {
        Some(r) => Some(Registry::parse(&r).map_err(Failure::config)?),
        None => None,
    };
    let tag_sources: Vec<String> = if !args.tags.is_empty() {
        args.tags
            .iter()
            .filter(|t| !t.trim().is_empty())
            .cloned()
            .collect()
    } else {
        match x_wharf_str(project, "tags") {
            None => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| cfg("x-wharf.tags must be a list of strings".into()))
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(cfg("x-wharf.tags must be a list of strings".into())),
        }
    };
    let tags = tag_sources
        .iter()
        .map(|t| Template::parse(t.trim(), TAG_PLACEHOLDERS).map_err(Failure::config))
        .collect::<Result<Vec<_>>>()?;
    let repository = match args.repository.clone().or_else(|| {
        x_wharf_str(project, "repository")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }) {
        Some(r) => Some(Template::parse(&r, REPOSITORY_PLACEHOLDERS).map_err(Failure::config)?),
        None => None,
    };
    Ok(Settings {
        registry,
        tags,
        repository,
    })
}

/// Whether any tag of the selected services names the commit (then a revision is needed).
fn needs_revision(settings: &Settings, services: &[&Service]) -> bool {
    let uses_git =
        |t: &Template| t.uses("git_sha") || t.uses("git_short_sha") || t.uses("git_branch");
    let global = if settings.tags.is_empty() {
        target::default_tags()
    } else {
        settings.tags.clone()
    };
    global.iter().any(uses_git)
        || services.iter().any(|s| {
            s.x_wharf
                .as_ref()
                .and_then(|x| x.get("tags"))
                .and_then(|t| t.as_array())
                .is_some_and(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str())
                        .any(|t| t.contains("{git_"))
                })
        })
}

/// Every selected service's destination, and the revision its tags name.
pub fn targets(
    project: &Project,
    services: &[&Service],
    args: &TargetArgs,
) -> Result<(Vec<ImageTarget>, Option<Revision>)> {
    let settings = settings(project, args)?;
    let revision = if needs_revision(&settings, services) {
        let r = wharf_pusher::git::revision(&project.working_dir, &env_lookup)
            .map_err(Failure::config)?;
        if r.dirty && !args.allow_dirty {
            return Err(Failure::config(anyhow!(
                "the work tree has uncommitted changes, so commit {} does not describe these images\n  commit (or stash) the changes, or pass --allow-dirty to tag them `<sha>-dirty`",
                r.sha
            )));
        }
        Some(r)
    } else {
        None
    };
    let sha = revision.as_ref().map(|r| {
        if r.dirty {
            format!("{}-dirty", r.sha)
        } else {
            r.sha.clone()
        }
    });
    let short_dirty = revision.as_ref().is_some_and(|r| r.dirty);
    let timestamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let values = TagValues {
        git_sha: sha.as_deref(),
        git_branch: revision.as_ref().and_then(|r| r.branch.as_deref()),
        timestamp: &timestamp,
        env: &env_lookup,
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for s in services {
        match target::target(project, s, &settings, &values) {
            Ok(mut t) => {
                if short_dirty {
                    // `{git_short_sha}` of a dirty tree must not look like a clean commit either.
                    for tag in &mut t.identity_tags {
                        if !tag.contains("-dirty") {
                            tag.push_str("-dirty");
                        }
                    }
                }
                out.push(t)
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(Failure::config(anyhow!(problems.join("\n  "))));
    }
    Ok((out, revision))
}

/// Resolves `--registry ecr` hosts and logs into every registry the targets use. Runs before
/// anything is built, so a missing permission costs seconds, not a build.
pub async fn login_all(targets: &mut [ImageTarget], sdk: &mut Option<SdkConfig>) -> Result<Logins> {
    let mut logins: Logins = HashMap::new();
    // `--registry ecr` resolves once to the caller's own registry host.
    let mut caller_host: Option<String> = None;
    for target in targets.iter_mut() {
        let registry = target.registry.clone();
        match &registry {
            Registry::EcrOfCaller => {
                let host = match &caller_host {
                    Some(h) => h.clone(),
                    None => {
                        let sdk = aws(sdk).await;
                        let account = login::caller_account(sdk).await.map_err(Failure::config)?;
                        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
                            Failure::config(anyhow!("--registry ecr needs an AWS region: set AWS_REGION (or a profile's region)"))
                        })?;
                        let l = login::ecr(sdk, Some(&region))
                            .await
                            .map_err(Failure::config)?;
                        let host = if l.host.starts_with(&account) {
                            l.host.clone()
                        } else {
                            format!("{account}.dkr.ecr.{region}.amazonaws.com")
                        };
                        logins.insert(
                            host.clone(),
                            Login {
                                host: host.clone(),
                                ..l
                            },
                        );
                        caller_host = Some(host.clone());
                        host
                    }
                };
                target.host = Some(host);
            }
            Registry::Ecr { region, host, .. } => {
                if let std::collections::hash_map::Entry::Vacant(slot) = logins.entry(host.clone())
                {
                    let l = login::ecr(aws(sdk).await, Some(region))
                        .await
                        .map_err(Failure::config)?;
                    // The token opens every registry of the region the caller may use.
                    slot.insert(Login {
                        host: host.clone(),
                        ..l
                    });
                }
            }
            Registry::EcrPublic { .. } => {
                let host = wharf_pusher::registry::ECR_PUBLIC_HOST.to_string();
                if let std::collections::hash_map::Entry::Vacant(slot) = logins.entry(host) {
                    slot.insert(
                        login::ecr_public(aws(sdk).await)
                            .await
                            .map_err(Failure::config)?,
                    );
                }
            }
            Registry::Other { host, .. } => {
                if !logins.contains_key(host) {
                    if let Some(l) = login::docker_config(host).map_err(Failure::config)? {
                        logins.insert(host.clone(), l);
                    }
                }
            }
        }
    }
    logins.values().for_each(crate::github::mask_login);
    Ok(logins)
}

async fn aws(sdk: &mut Option<SdkConfig>) -> &SdkConfig {
    if sdk.is_none() {
        *sdk = Some(login::aws_config().await);
    }
    sdk.as_ref().expect("just set")
}

/// Logs in again where a token is about to run out (see [`login::needs_refresh`]: never for a
/// token that claims to have expired already, so this cannot loop).
/// Whether a login's token runs out soon (see [`refresh_logins`]).
pub fn logins_stale(logins: &Logins) -> bool {
    let now = SystemTime::now();
    logins
        .values()
        .any(|l| login::needs_refresh(l.expires_at, now))
}

pub async fn refresh_logins(
    targets: &mut [ImageTarget],
    logins: &mut Logins,
    sdk: &mut Option<SdkConfig>,
) -> Result<()> {
    let now = SystemTime::now();
    let stale: Vec<String> = logins
        .values()
        .filter(|l| login::needs_refresh(l.expires_at, now))
        .map(|l| l.host.clone())
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    tracing::info!("refreshing registry tokens for {}", stale.join(", "));
    let mut affected: Vec<ImageTarget> = targets
        .iter()
        .filter(|t| t.host.as_ref().is_some_and(|h| stale.contains(h)))
        .cloned()
        .collect();
    let fresh = login_all(&mut affected, sdk).await?;
    logins.extend(fresh);
    Ok(())
}

/// Checks that every ECR / ECR Public repository exists (creating the missing ones when asked),
/// and that no moving tag would hit an immutable repository — all before anything is pushed.
pub async fn check_repositories(
    project: &Project,
    targets: &[ImageTarget],
    create: bool,
    sdk: &mut Option<SdkConfig>,
    reporter: &Reporter,
) -> Result<()> {
    let create = create
        || x_wharf_str(project, "create_repositories").and_then(|v| v.as_bool()) == Some(true);
    let settings = create_settings(project)?;
    let mut missing = Vec::new();
    let mut immutable = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in targets {
        let Some(host) = &t.host else { continue };
        if !seen.insert(format!("{host}/{}", t.repository)) {
            continue;
        }
        let info = match &t.registry {
            Registry::Ecr { .. } | Registry::EcrOfCaller => {
                let Some((account, region)) = wharf_pusher::registry::parse_ecr_host(host) else {
                    continue;
                };
                let ecr = Ecr::new(aws(sdk).await, &account, &region, host);
                match ecr.describe(&t.repository).await.map_err(Failure::config)? {
                    Some(i) => Some(i),
                    None if create => {
                        reporter.service(
                            &t.service,
                            "create-repository",
                            &format!("creating repository {host}/{}", t.repository),
                            &[],
                        );
                        Some(
                            ecr.create(&t.repository, &settings)
                                .await
                                .map_err(Failure::config)?,
                        )
                    }
                    None => {
                        missing.push(format!("{host}/{} (service `{}`)", t.repository, t.service));
                        None
                    }
                }
            }
            Registry::EcrPublic { alias } => {
                let name = t
                    .repository
                    .strip_prefix(&format!("{alias}/"))
                    .unwrap_or(&t.repository);
                let public = EcrPublic::new(aws(sdk).await);
                match public.describe(name).await.map_err(Failure::config)? {
                    Some(i) => Some(i),
                    None if create => {
                        reporter.service(
                            &t.service,
                            "create-repository",
                            &format!("creating repository {host}/{}", t.repository),
                            &[],
                        );
                        Some(public.create(name).await.map_err(Failure::config)?)
                    }
                    None => {
                        missing.push(format!("{host}/{} (service `{}`)", t.repository, t.service));
                        None
                    }
                }
            }
            Registry::Other { .. } => None,
        };
        if let Some(i) = info {
            if i.immutable_tags && !t.moving_tags.is_empty() {
                immutable.push(format!(
                    "{host}/{} (service `{}`): moving tags {}",
                    t.repository,
                    t.service,
                    t.moving_tags.join(", ")
                ));
            }
        }
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "these repositories do not exist:\n    {}\n  create them, or run again with --create-repositories",
            missing.join("\n    ")
        ));
    }
    if !immutable.is_empty() {
        problems.push(format!(
            "these repositories have immutable tags, so a moving tag cannot be pushed there:\n    {}\n  push only identity tags there (e.g. --tag '{{git_sha}}'), or make the repository's tags mutable",
            immutable.join("\n    ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::config(anyhow!(problems.join("\n"))))
    }
}

fn create_settings(project: &Project) -> Result<CreateSettings> {
    let mut s = CreateSettings::default();
    let Some(x) = &project.x_wharf else {
        return Ok(s);
    };
    if let Some(v) = x.get("scan_on_push").and_then(|v| v.as_bool()) {
        s.scan_on_push = v;
    }
    if let Some(v) = x.get("tag_mutability").and_then(|v| v.as_str()) {
        s.immutable_tags = v.eq_ignore_ascii_case("immutable");
    }
    if let Some(v) = x.get("immutable_tags").and_then(|v| v.as_bool()) {
        s.immutable_tags = v;
    }
    s.encryption = x
        .get("encryption")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    s.kms_key = x
        .get("kms_key")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    if let Some(p) = x.get("lifecycle_policy").and_then(|v| v.as_str()) {
        let path = project.working_dir.join(p);
        use wharf_compose::files::{self, Accept};
        let text = files::read(&path, Accept::RegularFile, files::MAX_TEXT_FILE)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|e| Failure::config(anyhow!("x-wharf.lifecycle_policy: cannot read {e}")))?;
        serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
            Failure::config(anyhow!(
                "x-wharf.lifecycle_policy: {} is not JSON: {e}",
                path.display()
            ))
        })?;
        s.lifecycle_policy = Some(text);
    }
    Ok(s)
}

/// One image of the manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestImage {
    pub service: String,
    pub registry: String,
    pub repository: String,
    pub tags: Vec<String>,
    pub digest: String,
    pub uri: String,
}

pub fn manifest_image(t: &ImageTarget, digest: &str) -> ManifestImage {
    let host = t.host.clone().unwrap_or_default();
    ManifestImage {
        service: t.service.clone(),
        uri: format!("{host}/{}@{digest}", t.repository),
        registry: host,
        repository: t.repository.clone(),
        tags: t.all_tags().cloned().collect(),
        digest: digest.to_string(),
    }
}

/// The manifest document (also the `manifest` step output in GitHub Actions).
pub fn manifest_json(project: &str, images: &[ManifestImage]) -> Result<String> {
    let doc = serde_json::json!({ "project": project, "images": images });
    serde_json::to_string_pretty(&doc)
        .map_err(|e| Failure::failed(anyhow!("cannot render the manifest: {e}")))
}

/// Writes the manifest to FILE, or stdout for `-`.
pub fn write_manifest(path: &Path, project: &Project, images: &[ManifestImage]) -> Result<()> {
    let text = manifest_json(&project.name, images)? + "\n";
    if path == Path::new("-") {
        print!("{text}");
        Ok(())
    } else {
        std::fs::write(path, text).map_err(|e| {
            Failure::failed(anyhow!(
                "cannot write the manifest to {}: {e}",
                path.display()
            ))
        })
    }
}

/// How many manifest copies (tags added through the registry API) run at once.
const MANIFEST_COPIES: usize = 16;

/// The push events, shown by the reporter.
pub fn push_events(reporter: &Arc<Reporter>) -> PushEvents {
    let r = reporter.clone();
    Arc::new(move |e: PushEvent| match e {
        PushEvent::Started { service, tag } => r.service(
            service,
            "pushing",
            &format!("pushing :{tag}"),
            &[("tag", tag)],
        ),
        PushEvent::Status { service, line } => r.output(service, line),
        PushEvent::Layer {
            service,
            current,
            total,
        } => r.upload(service, current, total),
        PushEvent::Landed {
            service,
            tag,
            digest,
        } => r.service(
            service,
            "pushed",
            &format!("pushed :{tag} {digest}"),
            &[("tag", tag), ("digest", digest)],
        ),
        PushEvent::Warning { service, message } => r.warn(&format!("`{service}`: {message}")),
    })
}

/// The input digest a local image carries in its label, as the tag that names it.
pub async fn inputs_tag_of_local(docker: &bollard::Docker, image: &str) -> Option<String> {
    let inspect = docker.inspect_image(image).await.ok()?;
    let hex = inspect
        .config?
        .labels?
        .remove(wharf_builder::inputs::LABEL)?;
    let valid = hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit());
    valid.then(|| format!("{}{hex}", wharf_builder::inputs::TAG_PREFIX))
}

/// Pushes every target's local image, all or nothing, and returns the manifest entries
/// (`wharf push`).
pub async fn push_all(
    docker: &bollard::Docker,
    targets: &[ImageTarget],
    logins: &Logins,
    parallel: usize,
    reporter: &Arc<Reporter>,
) -> Result<Vec<ManifestImage>> {
    let pusher = Pusher::new(docker, logins, push_events(reporter));
    expect_pushes(targets, reporter);
    reporter.note("phase", "phase 1: identity tags");
    let first = wharf_pusher::release::for_each(targets, parallel, |t| {
        let pusher = &pusher;
        Some(async move {
            let extra: Vec<String> = inputs_tag_of_local(docker, &t.local_image)
                .await
                .into_iter()
                .collect();
            pusher.identity(t, &Origin::Daemon, &extra).await
        })
    })
    .await;
    let digests = check_first_phase(first, &[])?;
    second_phase(&pusher, targets, digests, reporter).await
}

/// Tells the reporter which tags each service's release pushes.
pub fn expect_pushes(targets: &[ImageTarget], reporter: &Reporter) {
    reporter.expect_pushes(
        targets
            .iter()
            .map(|t| (t.service.as_str(), t.all_tags().cloned().collect())),
    );
}

/// The digests phase 1 landed, or the failed release described: which services failed (in
/// the build or the push) and which landed their identity tags only.
pub fn check_first_phase(
    first: IndexMap<String, Landing>,
    failed_builds: &[String],
) -> Result<BTreeMap<String, String>> {
    let mut failed: Vec<String> = failed_builds.to_vec();
    let mut landed = Vec::new();
    let mut digests = BTreeMap::new();
    for (service, l) in first {
        match l {
            Landing::Failed(e) => failed.push(format!("`{service}`: {e}")),
            Landing::Landed { digest } => {
                landed.push(service.clone());
                digests.insert(service, digest);
            }
        }
    }
    if failed.is_empty() {
        return Ok(digests);
    }
    Err(Failure::failed(anyhow!(
        "the release failed; no moving tag was moved.\n  failed: {}\n  landed (identity tags only): {}",
        failed.join("\n          "),
        if landed.is_empty() { "none".to_string() } else { landed.join(", ") }
    )))
}

/// Phase 2: moves every moving tag onto the image phase 1 landed, then returns the manifest
/// entries.
pub async fn second_phase(
    pusher: &Pusher<'_>,
    targets: &[ImageTarget],
    digests: BTreeMap<String, String>,
    reporter: &Arc<Reporter>,
) -> Result<Vec<ManifestImage>> {
    if targets.iter().any(|t| !t.moving_tags.is_empty()) {
        reporter.note("phase", "phase 2: moving tags");
        // Moving a tag is a manifest copy through the registry API, no upload: many at once.
        let second = wharf_pusher::release::for_each(targets, MANIFEST_COPIES, |t| {
            let digest = digests.get(&t.service)?.clone();
            (!t.moving_tags.is_empty()).then_some(async move { pusher.moving(t, &digest).await })
        })
        .await;
        let mut problems = Vec::new();
        for (s, l) in &second {
            match l {
                Landing::Failed(e) => problems.push(format!("`{s}`: {e}")),
                Landing::Landed { digest } => {
                    if digests.get(s) != Some(digest) {
                        problems.push(format!("`{s}`: moving tags landed as {digest}"));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(Failure::failed(anyhow!(
                "every identity tag landed, but moving tags failed:\n  {}\n  run `wharf push` again to move them",
                problems.join("\n  ")
            )));
        }
    }
    Ok(targets
        .iter()
        .map(|t| manifest_image(t, digests.get(&t.service).map_or("", String::as_str)))
        .collect())
}

/// Every service's input digest (reading every context once), or why it cannot be known.
pub fn input_digests(
    project: &Project,
    builds: &[wharf_builder::service::ServiceBuild],
    parallel: usize,
) -> Result<HashMap<String, Inputs>> {
    let compose: HashMap<String, &wharf_compose::Build> = project
        .services
        .values()
        .filter_map(|s| Some((s.name.clone(), s.build.as_ref()?)))
        .collect();
    wharf_builder::inputs::digest_all(builds, &compose, parallel)
        .map_err(|e| Failure::config(anyhow!(e)))
}

/// The services whose image, by input digest, the target registry already holds: these are
/// tagged there instead of built (with `skip`). A service another one builds `FROM` is built
/// anyway when that one must be built (the daemon needs the base image), and so is one the
/// registry could not be asked about for a passing reason.
///
/// Every target repository is asked something before anything is built, skip or not — the
/// inputs tag, or the first tag the release will write — so that a registry that cannot be
/// reached, or refuses the credentials, stops the release before any build time is spent.
pub async fn unchanged(
    pusher: &Pusher<'_>,
    targets: &[ImageTarget],
    builds: &[wharf_builder::service::ServiceBuild],
    inputs: &HashMap<String, Inputs>,
    skip: bool,
    reporter: &Reporter,
) -> Result<HashMap<String, RawManifest>> {
    let lookups = targets.iter().filter_map(|t| {
        let inputs_tag = match inputs.get(&t.service) {
            Some(Inputs::Known(d)) if skip => Some(d.tag()),
            Some(Inputs::Unknown { reason }) => {
                tracing::info!(service = %t.service, "always built: {reason}");
                None
            }
            _ => None,
        };
        let (tag, may_skip) = match inputs_tag {
            Some(tag) => (tag, true),
            None => (
                t.identity_tags.iter().chain(&t.moving_tags).next()?.clone(),
                false,
            ),
        };
        Some(async move { (t, may_skip, pusher.find(t, &tag).await) })
    });
    let found = futures_util::future::join_all(lookups).await;
    let mut unchanged = HashMap::new();
    let mut refused = Vec::new();
    for (t, may_skip, r) in found {
        match r {
            Ok(Some(m)) if may_skip => {
                unchanged.insert(t.service.clone(), m);
            }
            Ok(_) => {}
            Err(e @ (PushError::Unauthorized { .. } | PushError::Unreachable { .. })) => {
                refused.push(format!("`{}`: {e}", t.service));
            }
            Err(e) => reporter.warn(&format!(
                "`{}`: cannot look for an image of the same inputs ({e}); building it",
                t.service
            )),
        }
    }
    if !refused.is_empty() {
        return Err(Failure::config(anyhow!(
            "the target registry cannot be used (nothing was built or pushed):\n  {}\n  \
             check the registry address (--registry, the image names) and its credentials \
             (docker login, or the AWS credentials for ECR)",
            refused.join("\n  ")
        )));
    }
    let mut unchanged =
        crate::reuse::keep_trusted(pusher, targets, inputs, unchanged, reporter).await;
    loop {
        let needed: Vec<(String, String)> = builds
            .iter()
            .filter(|b| !unchanged.contains_key(&b.service))
            .flat_map(|b| {
                b.after
                    .iter()
                    .filter(|a| unchanged.contains_key(*a))
                    .map(|a| (a.clone(), b.service.clone()))
            })
            .collect();
        if needed.is_empty() {
            break;
        }
        for (base, user) in needed {
            if unchanged.remove(&base).is_some() {
                tracing::info!(service = %base, "built although unchanged: `{user}` builds FROM its image");
            }
        }
    }
    Ok(unchanged)
}
