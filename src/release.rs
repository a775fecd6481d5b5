//! Wiring between the command line and the release engine ([`wharf_pusher::release`]): which
//! services a command works on, the release settings (command line, environment, `x-wharf`),
//! each service's target, and the engine's errors as failures with their exit code.

use crate::cli::{ProjectArgs, TargetArgs};
use crate::error::{Failure, Result};
use anyhow::anyhow;
use std::collections::HashMap;
use std::path::Path;
use wharf_builder::inputs::Inputs;
use wharf_compose::x_wharf::{Encryption, TagMutabilitySetting};
use wharf_compose::{Project, Service};
use wharf_pusher::git::Revision;
use wharf_pusher::registry::Registry;
use wharf_pusher::release::{Manifest, ManifestImage, Options, ReleaseError};
use wharf_pusher::repositories::CreateSettings;
use wharf_pusher::target::{self, ImageTarget, Settings, TagValues};
use wharf_pusher::template::{Template, REPOSITORY_PLACEHOLDERS, TAG_PLACEHOLDERS};
use wharf_pusher::timeouts::Timeouts;

/// The current folder as Go's `os.Getwd` gives it to docker compose: `$PWD` when it names
/// this folder (so a folder reached through a symbolic link keeps that name, which the default
/// project name comes from), else the physical path.
fn current_dir() -> Result<std::path::PathBuf> {
    let physical = std::env::current_dir()
        .map_err(|e| Failure::config(anyhow::anyhow!("cannot read the current folder: {e}")))?;
    #[cfg(unix)]
    if let Some(pwd) = std::env::var_os("PWD").map(std::path::PathBuf::from) {
        use std::os::unix::fs::MetadataExt;
        if pwd.is_absolute() {
            if let (Ok(a), Ok(b)) = (std::fs::metadata(&pwd), std::fs::metadata(".")) {
                if a.dev() == b.dev() && a.ino() == b.ino() {
                    return Ok(pwd);
                }
            }
        }
    }
    Ok(physical)
}

/// The project options of the command line, with the process's folder and environment.
pub fn project_options(project: &ProjectArgs) -> Result<wharf_compose::ProjectOptions> {
    let working_dir = current_dir()?;
    Ok(wharf_compose::ProjectOptions {
        files: project.files.clone(),
        project_name: project.project_name.clone(),
        profiles: project.profiles.clone(),
        env_files: project.env_files.clone(),
        project_directory: project.project_directory.clone(),
        working_dir,
        environment: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    })
}

/// Loads the compose project of the command line; the services named on it are enabled with
/// their profiles, as docker compose enables them.
pub fn load_project(args: &ProjectArgs, named: &[String]) -> Result<Project> {
    let options = project_options(args)?;
    let project = wharf_compose::load(&options).map_err(Failure::config)?;
    Ok(project.with_services_enabled(named))
}

fn skipped(service: &Service) -> bool {
    service.x_wharf.as_ref().and_then(|x| x.skip) == Some(true)
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

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The release settings: command line beats environment (both through clap) beats the
/// compose file's top-level `x-wharf`.
pub fn settings(project: &Project, args: &TargetArgs) -> Result<Settings> {
    let x = project.x_wharf.clone().unwrap_or_default();
    let registry = match args.registry.clone().or(x.registry) {
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
        x.tags.unwrap_or_default()
    };
    let tags = tag_sources
        .iter()
        .map(|t| Template::parse(t.trim(), TAG_PLACEHOLDERS).map_err(Failure::config))
        .collect::<Result<Vec<_>>>()?;
    let repository = match args.repository.clone().or(x.repository) {
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
                .and_then(|x| x.tags.as_ref())
                .is_some_and(|tags| tags.iter().any(|t| t.contains("{git_")))
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
    let timestamp = timestamp_now();
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

/// What `{timestamp}` renders as now (UTC, `YYYYMMDDhhmmss`).
pub fn timestamp_now() -> String {
    chrono::Utc::now().format("%Y%m%d%H%M%S").to_string()
}

/// How the release runs: parallelism, deadlines, and whether (and how) missing
/// repositories are created (`--create-repositories`, or `x-wharf.create_repositories`).
pub fn options(
    project: &Project,
    args: &TargetArgs,
    parallel: usize,
    timeout: Option<std::time::Duration>,
) -> Result<Options> {
    let create = args.create_repositories
        || project.x_wharf.as_ref().and_then(|x| x.create_repositories) == Some(true);
    Ok(Options {
        parallel,
        timeouts: timeout.map_or_else(Timeouts::default, Timeouts::from_request),
        create_repositories: if create {
            Some(create_settings(project)?)
        } else {
            None
        },
    })
}

fn create_settings(project: &Project) -> Result<CreateSettings> {
    let mut s = CreateSettings::default();
    let Some(x) = &project.x_wharf else {
        return Ok(s);
    };
    if let Some(v) = x.scan_on_push {
        s.scan_on_push = v;
    }
    if let Some(v) = x.tag_mutability {
        s.immutable_tags = v == TagMutabilitySetting::Immutable;
    }
    if let Some(v) = x.immutable_tags {
        s.immutable_tags = v;
    }
    s.encryption = x.encryption.map(|e| {
        match e {
            Encryption::Aes256 => "AES256",
            Encryption::Kms => "KMS",
        }
        .to_string()
    });
    s.kms_key = x.kms_key.clone();
    if let Some(p) = &x.lifecycle_policy {
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

/// Logs into every registry the targets use (resolving `--registry ecr` hosts), for the
/// commands that read registries without releasing; in GitHub Actions every token is masked.
pub async fn login_all(
    targets: &mut [ImageTarget],
    aws: &mut wharf_pusher::release::Aws,
) -> Result<wharf_pusher::release::Logins> {
    let logins = wharf_pusher::release::login_all(targets, aws)
        .await
        .map_err(Failure::config)?;
    mask_logins(&logins);
    Ok(logins)
}

/// In GitHub Actions, masks every registry token, as the ECR login action does.
pub fn mask_logins(logins: &wharf_pusher::release::Logins) {
    logins.values().for_each(crate::github::mask_login);
}

/// Prepares the release of `targets` (logins and repository checks, before anything is built
/// or pushed), telling `events`; in GitHub Actions every token is masked.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    project: &Project,
    args: &TargetArgs,
    targets: Vec<ImageTarget>,
    docker: bollard::Docker,
    parallel: usize,
    timeout: Option<std::time::Duration>,
    events: wharf_pusher::events::EventSink,
    interrupt: wharf_pusher::release::Interrupt,
) -> Result<wharf_pusher::release::Release> {
    let options = options(project, args, parallel, timeout)?;
    let release =
        wharf_pusher::release::Release::prepare(targets, docker, options, events, interrupt)
            .await
            .map_err(failure)?;
    mask_logins(release.logins());
    Ok(release)
}

/// A release that stopped, as the failure wharf exits with: 2 when nothing was built or
/// pushed because of the settings, credentials or registries, else 1.
pub fn failure(e: ReleaseError) -> Failure {
    if e.is_config() {
        Failure::config(anyhow!(e))
    } else if matches!(
        e,
        ReleaseError::MovingFailed {
            interrupted: true,
            ..
        }
    ) {
        Failure::Interrupted(anyhow!(e))
    } else {
        Failure::failed(anyhow!(e))
    }
}

/// Writes the manifest to FILE, or stdout for `-`.
pub fn write_manifest(path: &Path, project: &Project, images: &[ManifestImage]) -> Result<()> {
    let text = Manifest {
        project: &project.name,
        images,
    }
    .to_json()
        + "\n";
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

/// The input digest of every build: one per platform of a multi-platform image.
pub fn unit_digests(
    project: &Project,
    builds: &[wharf_builder::service::ServiceBuild],
    parallel: usize,
) -> Result<HashMap<wharf_builder::service::Unit, Inputs>> {
    let compose: HashMap<String, &wharf_compose::Build> = project
        .services
        .values()
        .filter_map(|s| Some((s.name.clone(), s.build.as_ref()?)))
        .collect();
    wharf_builder::inputs::digest_units(builds, &compose, parallel)
        .map_err(|e| Failure::config(anyhow!(e)))
}

/// Which engine builds which platform: `x-wharf.engines`, overridden per platform by
/// `WHARF_ENGINES`.
pub fn engine_routes(project: &Project) -> Result<wharf_builder::engines::Routes> {
    let compose = project.x_wharf.as_ref().and_then(|x| x.engines.as_ref());
    let env = std::env::var("WHARF_ENGINES").ok();
    wharf_builder::engines::Routes::new(compose, env.as_deref())
        .map_err(|e| Failure::config(anyhow!(e)))
}

/// The platforms `service`'s image is made of, as the project declares them (empty: the
/// daemon's own).
pub fn platforms_of(
    project: &Project,
    service: &Service,
) -> Result<Vec<wharf_compose::platform::Platform>> {
    let Some(build) = &service.build else {
        return Ok(Vec::new());
    };
    wharf_builder::platform::choose(service, build, project.default_platform.as_deref())
        .map_err(|e| Failure::config(anyhow!("services.{}.{}: {e}", service.name, e.field())))
}

/// Whether the service is marked as an AWS Lambda image (`x-wharf.lambda`).
pub fn is_lambda(service: &Service) -> bool {
    service.x_wharf.as_ref().and_then(|x| x.lambda) == Some(true)
}

/// Refuses a Lambda image of more than one platform: Lambda runs a plain image manifest of
/// one architecture, never an index.
pub fn check_lambda(project: &Project, services: &[&Service]) -> Result<()> {
    let mut problems = Vec::new();
    for s in services.iter().filter(|s| is_lambda(s)) {
        let platforms = platforms_of(project, s)?;
        if platforms.len() > 1 {
            problems.push(format!(
                "services.{}: x-wharf.lambda is set, but build.platforms lists {} platforms ({}); a Lambda function runs one architecture from a plain image manifest — keep one platform (linux/amd64 or linux/arm64), or make one service per architecture",
                s.name,
                platforms.len(),
                platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::config(anyhow!(problems.join("\n  "))))
    }
}

/// `--platform` / `WHARF_PLATFORMS`: the platforms this run builds, if it names some.
pub fn only_platforms(args: &TargetArgs) -> Result<Option<Vec<wharf_compose::platform::Platform>>> {
    let Some(list) = args.platforms.as_deref() else {
        return Ok(None);
    };
    let platforms = wharf_compose::platform::parse_list(list)
        .map_err(|e| Failure::config(anyhow!("--platform: {e}")))?;
    if platforms.is_empty() {
        return Err(Failure::config(anyhow!(
            "--platform: no platform given (write e.g. linux/amd64,linux/arm64)"
        )));
    }
    Ok(Some(platforms))
}

/// With `--platform`, the services of `services` that declare one of those platforms (in
/// `build.platforms` or `platform:`); others are left out of the run.
pub fn declaring<'p>(
    project: &Project,
    services: Vec<&'p Service>,
    only: Option<&[wharf_compose::platform::Platform]>,
) -> Result<Vec<&'p Service>> {
    let Some(only) = only else {
        return Ok(services);
    };
    let mut kept = Vec::new();
    for s in services {
        let Some(build) = &s.build else { continue };
        let declared =
            wharf_builder::platform::choose(s, build, project.default_platform.as_deref())
                .map_err(|e| Failure::config(anyhow!("services.{}.{}: {e}", s.name, e.field())))?;
        if declared.iter().any(|p| only.contains(p)) {
            kept.push(s);
        } else {
            tracing::info!(service = %s.name, "not built: it declares none of --platform's platforms");
        }
    }
    Ok(kept)
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
