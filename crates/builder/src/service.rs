//! From a compose service to a daemon build: every build field of the compose model is either
//! passed to the daemon, or reported — as an error when ignoring it would change the image,
//! as a warning when it would not. All services are checked before anything is built.

use crate::build::BuildRequest;
use crate::builder_kind::BuilderKind;
use crate::context::Context as LocalContext;
use crate::named_contexts::{self, rewrite::RewriteError, words::Vars, Helper, NamedSource};
use crate::platform::{Native, Platform, Target};
use crate::session::{RegistryCredentials, SshAgent};
use std::collections::HashMap;
use wharf_compose::{Build, Context, Dockerfile, Project, Service};
use wharf_docker::{ImageReference, ReferenceError};

/// The build arg that asks BuildKit to write inline cache metadata into the image.
pub const INLINE_CACHE: &str = "BUILDKIT_INLINE_CACHE";
/// Where a service's context comes from, ready to send.
#[derive(Debug, Clone)]
pub enum Source {
    Local(LocalContext),
    Remote(String),
}

/// One service, ready to build.
#[derive(Debug, Clone)]
pub struct ServiceBuild {
    pub service: String,
    /// The compose image name the build is tagged with.
    pub image: String,
    /// `build.tags`: more names for the same image.
    pub extra_tags: Vec<String>,
    pub source: Source,
    pub request: BuildRequest,
    /// Services whose images this build uses (`FROM` a service image, `service:` named
    /// contexts): built first.
    pub after: Vec<String>,
    /// Images made from folder named contexts before this build
    /// ([`crate::named_contexts`]).
    pub context_images: Vec<Helper>,
    /// The platform the image is made for ([`crate::platform`]).
    pub platform: Target,
    /// Every platform the service's image is made of (empty or one: a single image). With
    /// more than one, this build makes one of them ([`ServiceBuild::part`]).
    pub service_platforms: Vec<Platform>,
    /// The compose image name. For one platform of a multi-platform image, [`Self::image`] is
    /// a name of its own, and the compose name is given to one platform's image once every
    /// build has ended ([`crate::schedule`]).
    pub compose_image: String,
    /// `build.tags` of a multi-platform image, given with its compose name at the end
    /// ([`crate::schedule`]); [`Self::extra_tags`] is then empty.
    pub compose_extra_tags: Vec<String>,
    /// The platforms this run builds of the image (all of [`Self::service_platforms`], or
    /// those `--platform` keeps).
    pub platforms_built: Vec<Platform>,
    /// Of a multi-platform image with folder named contexts: each platform's helper images
    /// and the context serving the Dockerfile that names them, taken by that platform's build.
    /// A helper holds its folder for one platform (a Docker 20.10 name holds one image), and
    /// a build for another platform would not find it.
    pub named_per_platform: Vec<PlatformNamed>,
}

/// One platform's folder named contexts ([`ServiceBuild::named_per_platform`]).
#[derive(Debug, Clone)]
pub struct PlatformNamed {
    pub platform: Platform,
    pub source: Source,
    pub dockerfile: String,
    pub helpers: Vec<Helper>,
}

/// What one build makes: a service's image, or one platform's image of a multi-platform one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit {
    pub service: String,
    /// `Some` for one platform of a multi-platform image.
    pub platform: Option<Platform>,
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.platform {
            Some(p) => write!(f, "{} ({p})", self.service),
            None => write!(f, "{}", self.service),
        }
    }
}

impl ServiceBuild {
    /// Whether the service's image is made of several platforms' images.
    pub fn is_multi_platform(&self) -> bool {
        self.service_platforms.len() > 1
    }

    /// The platform of this build when it is one platform of a multi-platform image.
    pub fn part(&self) -> Option<&Platform> {
        if self.is_multi_platform() {
            self.platform.declared()
        } else {
            None
        }
    }

    pub fn unit(&self) -> Unit {
        Unit {
            service: self.service.clone(),
            platform: self.part().cloned(),
        }
    }
}

/// BuildKit's automatic platform args (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`,
/// `TARGETVARIANT`) for a build of `platform`, passed as build args: the daemon's builders set
/// them only partly (20.10's BuildKit leaves them empty before the first `FROM`, its classic
/// builder sets none), and a Dockerfile that picks its base by `${TARGETARCH}` must get the
/// platform it is built for. An arg the service sets itself is left alone.
fn target_args(args: &mut HashMap<String, String>, platform: &Platform) {
    platform_args_of(args, "TARGET", platform);
}

fn platform_args_of(args: &mut HashMap<String, String>, prefix: &str, platform: &Platform) {
    for (name, value) in [
        ("PLATFORM", platform.to_string()),
        ("OS", platform.os.clone()),
        ("ARCH", platform.architecture.clone()),
        ("VARIANT", platform.variant.clone().unwrap_or_default()),
    ] {
        args.entry(format!("{prefix}{name}")).or_insert(value);
    }
}

/// The build of `dependency` whose image a build for `platform` uses: the dependency's one
/// build, or, for a multi-platform image, the build of that platform.
pub fn dependency_unit(
    builds: &[ServiceBuild],
    dependency: &str,
    platform: Option<&Platform>,
) -> Option<Unit> {
    let mut of = builds.iter().filter(|b| b.service == dependency);
    let first = of.next()?;
    if !first.is_multi_platform() {
        return Some(first.unit());
    }
    let platform = platform?;
    std::iter::once(first)
        .chain(of)
        .find(|b| b.part() == Some(platform))
        .map(ServiceBuild::unit)
}

/// The local name one platform's image of a multi-platform service is built under: the
/// compose name with the platform appended to its tag (`shop-api:latest-linux-arm64`).
pub fn platform_image(compose_image: &str, platform: &Platform) -> String {
    let (repo, tag) = split_tag(compose_image);
    format!("{repo}:{tag}-{}", platform.tag_suffix())
}

/// `repository` and tag of a local image name (`latest` when it has none).
pub fn split_tag(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (image, "latest"),
    }
}

/// A problem with one service's build settings, named by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub service: String,
    /// e.g. `services.api.build.secrets`.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Settings that apply to every build.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub builder: BuilderKind,
    /// Labels added to every image; the service's `build.labels`, then compose's own labels
    /// ([`crate::labels`]), win on a clash.
    pub labels: HashMap<String, String>,
    /// The longest a build's answer may stay silent (see [`BuildRequest::idle_timeout`]).
    pub idle_timeout: Option<std::time::Duration>,
    /// Platforms routed to engines other than the default one ([`crate::engines`]).
    pub routes: crate::engines::Routes,
    /// `--platform`: the platforms this run builds. A service's own platforms are narrowed to
    /// these; a service that declares none is built for these.
    pub only_platforms: Option<Vec<Platform>>,
}

/// Everything checked: builds in dependency order input, plus warnings.
#[derive(Debug)]
pub struct Prepared {
    pub builds: Vec<ServiceBuild>,
    pub warnings: Vec<Problem>,
    /// The daemon's own platform, once asked ([`Prepared::use_daemon_platform`]).
    pub native: Option<Platform>,
}

impl Prepared {
    /// Hands registry credentials to every build, for their pulls, before the Docker
    /// config's. The handle is shared: entries inserted later (a login made after preparing)
    /// still reach the builds.
    pub fn use_credentials(&mut self, credentials: &RegistryCredentials) {
        for b in &mut self.builds {
            b.request.credentials = credentials.clone();
        }
    }

    /// Whether some build is made for the daemon's own platform, which only the daemon can
    /// tell ([`crate::daemon::native_platform`]).
    pub fn needs_daemon_platform(&self) -> bool {
        self.builds
            .iter()
            .any(|b| b.platform == Target::Daemon(Native::NotAsked) || b.is_multi_platform())
    }

    /// Records the daemon's own platform (`os/arch`, or why it is not known) for the builds
    /// that declare none, so that their input digests cover the platform actually built.
    pub fn use_daemon_platform(&mut self, native: Result<Platform, String>) {
        self.native = native.as_ref().ok().cloned();
        let native = match native {
            Ok(p) => Native::Known(p),
            Err(why) => Native::Unknown(why),
        };
        for b in &mut self.builds {
            if let Target::Daemon(n) = &mut b.platform {
                *n = native.clone();
            }
            if let (Native::Known(p), true) = (&native, b.request.platform.is_some()) {
                platform_args_of(&mut b.request.args, "BUILD", p);
            }
        }
    }
}

/// Prepares `selected` services of `project`, or reports every problem of every service.
pub fn prepare(
    project: &Project,
    selected: &[&Service],
    options: &Options,
) -> Result<Prepared, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut builds = Vec::new();
    let proxies = crate::daemon::proxy_build_args();
    // As docker compose does, the services `service:` contexts name are built (and tagged
    // under their own names) with the services that use them, enabled or not.
    let names: Vec<String> = selected.iter().map(|s| s.name.clone()).collect();
    let mut selected: Vec<&Service> = selected.to_vec();
    for name in project.with_build_dependencies(&names) {
        if let Some(s) = project.lookup_service(&name) {
            if !selected.iter().any(|o| o.name == s.name) {
                selected.push(s);
            }
        }
    }
    for service in &selected {
        // Any other bad name is the daemon's to refuse, in its words; this one would be
        // echoed with its password.
        if let Some(Err(e @ ReferenceError::Credentials { .. })) =
            service.image.as_deref().map(ImageReference::parse)
        {
            problems.push(Problem {
                service: service.name.clone(),
                key: format!("services.{}.image", service.name),
                message: format!("is not a valid image reference: {e}"),
            });
            continue;
        }
        let Some(build) = &service.build else {
            problems.push(Problem {
                service: service.name.clone(),
                key: format!("services.{}", service.name),
                message: "has no build section: there is nothing to build".into(),
            });
            continue;
        };
        match prepare_one(project, service, build, options, &proxies, &mut warnings) {
            Ok(b) => builds.push(b),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        link_dependencies(&mut builds);
        builds = builds.into_iter().flat_map(per_platform).collect();
        for b in &mut builds {
            if let Some(p) = b.platform.declared() {
                b.request.engine = options.routes.endpoint(p).map(str::to_string);
                // A folder context's image is made where the build reads it, through a
                // session on that engine.
                for helper in &mut b.context_images {
                    helper.request.engine = b.request.engine.clone();
                }
            }
        }
        if let Some(cycle) = find_cycle(&builds) {
            problems.push(Problem {
                service: cycle[0].clone(),
                key: format!("services.{}.build", cycle[0]),
                message: format!("its image depends on itself through {}", cycle.join(" → ")),
            });
        }
    }
    if problems.is_empty() {
        Ok(Prepared {
            builds,
            warnings,
            native: None,
        })
    } else {
        Err(problems)
    }
}

fn prepare_one(
    project: &Project,
    service: &Service,
    build: &Build,
    options: &Options,
    proxies: &[(String, String)],
    warnings: &mut Vec<Problem>,
) -> Result<ServiceBuild, Vec<Problem>> {
    let name = &service.name;
    let mut problems = Vec::new();
    let problem = |field: &str, message: String| Problem {
        service: name.clone(),
        key: if field.is_empty() {
            format!("services.{name}.build")
        } else {
            format!("services.{name}.build.{field}")
        },
        message,
    };

    let platform = match crate::platform::choose(
        service,
        build,
        project.default_platform.as_deref(),
    ) {
        Ok(chosen) => match &options.only_platforms {
            None => Some(chosen),
            Some(only) if chosen.is_empty() => Some(only.clone()),
            Some(only) => {
                let narrowed = crate::platform::narrow(&chosen, only);
                if narrowed.is_empty() {
                    problems.push(Problem {
                            service: name.clone(),
                            key: format!("services.{name}.build.platforms"),
                            message: "lists none of the platforms this run builds (--platform / WHARF_PLATFORMS), but another service builds FROM its image".into(),
                        });
                    None
                } else {
                    Some(narrowed)
                }
            }
        },
        Err(e) => {
            problems.push(Problem {
                service: name.clone(),
                key: format!("services.{name}.{}", e.field()),
                message: e.to_string(),
            });
            None
        }
    };
    let mut request = BuildRequest {
        tag: service.image_name(&project.name),
        platform: platform
            .as_ref()
            .and_then(|p| p.first())
            .map(Platform::to_string),
        builder: options.builder,
        target: build.target.clone(),
        no_cache: build.no_cache,
        pull: build.pull,
        network: build.network.clone(),
        cache_from: build.cache_from.clone(),
        idle_timeout: options.idle_timeout,
        ..Default::default()
    };
    request.args = build
        .args
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    if let Some([p]) = platform.as_deref() {
        target_args(&mut request.args, p);
    }

    // As docker compose: the Docker config's proxies, never over an arg the service names
    // (even one left without a value).
    for (k, v) in proxies {
        if !build.args.contains_key(k) {
            request.args.insert(k.clone(), v.clone());
        }
    }
    // Inline cache metadata, so that a build elsewhere (a fresh CI runner) can take this image
    // as its cache source. BuildKit reads the predefined arg; the classic builder has no such
    // metadata (and would warn of an unused arg).
    let cache = service.x_wharf.as_ref().and_then(|x| x.cache) != Some(false);
    if options.builder == BuilderKind::BuildKit && cache && !build.args.contains_key(INLINE_CACHE) {
        request.args.insert(INLINE_CACHE.into(), "1".into());
    }
    request.labels = options.labels.clone();
    request
        .labels
        .extend(build.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    request.labels.extend(crate::labels::compose_labels(
        &project.name,
        name,
        options.builder,
    ));

    let source = match (&build.context, &build.dockerfile) {
        (Some(Context::Remote(url)), dockerfile) => {
            request.remote = Some(url.clone());
            match dockerfile {
                Some(Dockerfile::Inline(_)) => problems.push(problem(
                    "dockerfile_inline",
                    "an inline Dockerfile cannot be combined with a remote context (the daemon fetches the context itself)".into(),
                )),
                Some(Dockerfile::Path(p)) => request.dockerfile = p.to_string_lossy().into_owned(),
                None => request.dockerfile = "Dockerfile".into(),
            }
            Some(Source::Remote(url.clone()))
        }
        (Some(Context::Dir(dir)), dockerfile) => {
            if !dir.is_dir() {
                problems.push(problem(
                    "context",
                    format!("the context folder {} does not exist (paths are relative to the compose file's folder)", dir.display()),
                ));
                None
            } else {
                match LocalContext::prepare(dir, dockerfile.as_ref(), options.builder) {
                    Ok(ctx) => {
                        request.dockerfile = match options.builder {
                            BuilderKind::BuildKit => ctx.session_dockerfile(),
                            BuilderKind::Classic => ctx.dockerfile(),
                        }
                        .to_string();
                        Some(Source::Local(ctx))
                    }
                    Err(crate::context::ContextError::DockerfileNotFound { path }) => {
                        problems.push(problem(
                            "dockerfile",
                            format!("the Dockerfile {} does not exist", path.display()),
                        ));
                        None
                    }
                    Err(e) => {
                        problems.push(problem("context", e.to_string()));
                        None
                    }
                }
            }
        }
        (None, _) => {
            problems.push(problem("context", "no build context".into()));
            None
        }
    };

    let mut source = source;
    let mut after = Vec::new();
    let mut context_images = Vec::new();
    let mut named_per_platform = Vec::new();
    if !build.additional_contexts.is_empty() {
        let dockerfile_of = |ctx: &LocalContext| {
            match options.builder {
                BuilderKind::BuildKit => ctx.session_dockerfile(),
                BuilderKind::Classic => ctx.dockerfile(),
            }
            .to_string()
        };
        // The first platform's (or the only one's) in the service's build; each other
        // platform of a multi-platform image gets its own.
        let others = match platform.as_deref() {
            Some([_, others @ ..]) => others,
            _ => &[],
        };
        match named(project, service, build, &request, source.as_ref(), warnings) {
            Ok(None) => {}
            Ok(Some(n)) => {
                request.dockerfile = dockerfile_of(&n.context);
                if let (Some(first), false) = (request.platform.as_deref(), others.is_empty()) {
                    if let Ok(first) = Platform::parse(first) {
                        named_per_platform.push(PlatformNamed {
                            platform: first,
                            source: Source::Local(n.context.clone()),
                            dockerfile: request.dockerfile.clone(),
                            helpers: n.helpers.clone(),
                        });
                    }
                }
                for p in others {
                    let mut one = request.clone();
                    one.platform = Some(p.to_string());
                    // Warnings were said for the first platform: they are the same.
                    match named(
                        project,
                        service,
                        build,
                        &one,
                        source.as_ref(),
                        &mut Vec::new(),
                    ) {
                        Ok(Some(m)) => named_per_platform.push(PlatformNamed {
                            platform: p.clone(),
                            dockerfile: dockerfile_of(&m.context),
                            source: Source::Local(m.context),
                            helpers: m.helpers,
                        }),
                        Ok(None) => {}
                        Err(mut e) => problems.append(&mut e),
                    }
                }
                source = Some(Source::Local(n.context));
                after = n.after;
                context_images = n.helpers;
            }
            Err(mut p) => problems.append(&mut p),
        }
    }

    request.extra_hosts = build
        .extra_hosts
        .iter()
        .map(|(host, ip)| format!("{host}:{ip}"))
        .collect();
    match build.shm_size {
        None => {}
        Some(n) => match i32::try_from(n) {
            Ok(n) => request.shm_size = Some(n),
            Err(_) => problems.push(problem(
                "shm_size",
                format!("{n} bytes is more than the daemon's build endpoint accepts (2 GiB)"),
            )),
        },
    }
    request.secrets = build.secrets.clone();
    if !build.ssh.is_empty() {
        if options.builder == BuilderKind::Classic {
            problems.push(problem(
                "ssh",
                "is set, but the classic builder cannot forward an SSH agent; build with BuildKit (the default)".into(),
            ));
        } else {
            for key in &build.ssh {
                let paths: Vec<std::path::PathBuf> =
                    key.paths.iter().map(std::path::PathBuf::from).collect();
                match SshAgent::resolve(&key.id, &paths) {
                    Ok(agent) if request.ssh.iter().any(|a| a.id() == agent.id()) => problems.push(
                        problem("ssh", format!("`{}` is listed more than once", agent.id())),
                    ),
                    Ok(agent) => request.ssh.push(agent),
                    Err(e) => problems.push(problem("ssh", e.to_string())),
                }
            }
        }
    }
    let unsupported: [(&str, bool, &str); 5] = [
        (
            "secrets",
            !build.secrets.is_empty() && options.builder == BuilderKind::Classic,
            "the classic builder cannot mount build secrets; build with BuildKit (the default)",
        ),
        (
            "entitlements",
            !build.entitlements.is_empty(),
            "entitlements are not accepted by the daemon's build endpoint",
        ),
        (
            "privileged",
            build.privileged,
            "privileged builds are not accepted by the daemon's build endpoint",
        ),
        (
            "ulimits",
            !build.ulimits.is_empty(),
            "ulimits are not passed by wharf's daemon client",
        ),
        (
            "isolation",
            build.isolation.is_some(),
            "isolation applies to Windows daemons, which wharf does not drive",
        ),
    ];
    for (field, set, why) in unsupported {
        if set {
            problems.push(problem(field, format!("is set, but {why}")));
        }
    }
    let ignored: [(&str, bool, &str); 3] = [
        (
            "cache_to",
            !build.cache_to.is_empty(),
            "the daemon's builder keeps its own cache; no cache export is made",
        ),
        (
            "provenance",
            build.provenance.is_some(),
            "the daemon's builder attaches no provenance attestation",
        ),
        (
            "sbom",
            build.sbom.is_some(),
            "the daemon's builder attaches no SBOM attestation",
        ),
    ];
    for (field, set, why) in ignored {
        if set {
            warnings.push(problem(field, format!("is ignored: {why}")));
        }
    }

    match (source, platform) {
        (Some(source), Some(platforms)) if problems.is_empty() => {
            // Every platform of the image as the project declares it: a run narrowed to some
            // of them (`--platform`) still makes platforms of a multi-platform image.
            let declared =
                crate::platform::choose(service, build, project.default_platform.as_deref())
                    .unwrap_or_default();
            let service_platforms = if declared.len() > 1 {
                declared
            } else {
                platforms.clone()
            };
            Ok(ServiceBuild {
                service: name.clone(),
                image: request.tag.clone(),
                compose_image: request.tag.clone(),
                extra_tags: build.tags.clone(),
                source,
                request,
                after,
                context_images,
                platform: match platforms.first() {
                    Some(p) => Target::Declared(p.clone()),
                    None => Target::Daemon(Native::NotAsked),
                },
                service_platforms,
                platforms_built: platforms,
                compose_extra_tags: Vec::new(),
                named_per_platform,
            })
        }
        _ => Err(problems),
    }
}

/// A service's build as the builds it is made of: itself, or one per platform of a
/// multi-platform image (each under its own local name, for its platform alone).
fn per_platform(b: ServiceBuild) -> Vec<ServiceBuild> {
    if !b.is_multi_platform() {
        return vec![b];
    }
    b.platforms_built
        .clone()
        .into_iter()
        .map(|p| {
            let mut one = b.clone();
            one.image = platform_image(&b.compose_image, &p);
            one.request.tag = one.image.clone();
            one.request.platform = Some(p.to_string());
            target_args(&mut one.request.args, &p);
            if let Some(named) = b.named_per_platform.iter().find(|n| n.platform == p) {
                one.source = named.source.clone();
                one.request.dockerfile = named.dockerfile.clone();
                one.context_images = named.helpers.clone();
            }
            one.named_per_platform = Vec::new();
            one.platform = Target::Declared(p);
            // `build.tags` name the compose image, which is tagged once all builds end.
            one.compose_extra_tags = std::mem::take(&mut one.extra_tags);
            one
        })
        .collect()
}

/// A service's build with its named contexts resolved.
struct Named {
    /// The context, serving the rewritten Dockerfile.
    context: LocalContext,
    helpers: Vec<Helper>,
    after: Vec<String>,
}

/// Resolves `build.additional_contexts` (see [`crate::named_contexts`]): every name to an
/// image reference, the Dockerfile rewritten to use them. `None` when the source is not a
/// prepared local context (its own problem is reported already).
fn named(
    project: &Project,
    service: &Service,
    build: &Build,
    request: &BuildRequest,
    source: Option<&Source>,
    warnings: &mut Vec<Problem>,
) -> Result<Option<Named>, Vec<Problem>> {
    let problem = |key: &str, message: String| Problem {
        service: service.name.clone(),
        key: format!("services.{}.build.additional_contexts{key}", service.name),
        message,
    };
    let mut problems = Vec::new();
    let mut references = indexmap::IndexMap::new();
    let mut helpers = Vec::new();
    let mut after = Vec::new();
    let mut unusable = Vec::new();
    for (name, value) in &build.additional_contexts {
        let key = format!(".{name}");
        if name.contains("::") {
            problems.push(problem(&key, "platform-specific names (`NAME::PLATFORM`) are not supported by wharf; name the context without a platform".into()));
            continue;
        }
        match named_contexts::classify(value) {
            // Refused only when the Dockerfile uses it: BuildKit never loads an unused one.
            Err(message) => {
                references.insert(name.clone(), name.clone());
                unusable.push((name.clone(), message));
            }
            Ok(NamedSource::Image(reference)) => {
                references.insert(name.clone(), reference);
            }
            Ok(NamedSource::Service(other)) => match project.lookup_service(&other) {
                _ if other == service.name => problems.push(problem(
                    &key,
                    format!("`service:{other}` names this service itself"),
                )),
                None => problems.push(problem(
                    &key,
                    format!("there is no service `{other}` in this project"),
                )),
                Some(s) if s.build.is_none() => problems.push(problem(
                    &key,
                    format!("service `{other}` has no build section: only a service wharf builds can be a context (for an image, use `docker-image://IMAGE`)"),
                )),
                Some(s) => {
                    references.insert(name.clone(), s.image_name(&project.name));
                    if !after.contains(&other) {
                        after.push(other);
                    }
                }
            },
            Ok(NamedSource::Folder(dir)) => {
                if !dir.is_dir() {
                    problems.push(problem(
                        &key,
                        format!(
                            "the folder {} does not exist (paths are relative to the compose file's folder)",
                            dir.display()
                        ),
                    ));
                    continue;
                }
                match Helper::prepare(
                    &project.name,
                    name,
                    &dir,
                    request.platform.as_deref(),
                ) {
                    Ok(h) => {
                        references.insert(name.clone(), h.reference.clone());
                        helpers.push(h);
                    }
                    Err(e) => problems.push(problem(&key, e.to_string())),
                }
            }
        }
    }
    let ctx = match source {
        Some(Source::Local(ctx)) => ctx,
        Some(Source::Remote(url)) => {
            problems.push(problem(
                "",
                format!("cannot be combined with the remote context {}: the daemon reads that Dockerfile itself, so wharf cannot point its uses of the names at the contexts", wharf_compose::redact::userinfo(url)),
            ));
            return Err(problems);
        }
        None => {
            return if problems.is_empty() {
                Ok(None)
            } else {
                Err(problems)
            }
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let text = match ctx.dockerfile_content().map(String::from_utf8) {
        Ok(Ok(text)) => text,
        Ok(Err(_)) => {
            return Err(vec![problem(
                "",
                "the Dockerfile is not UTF-8 text, so wharf cannot rewrite it".into(),
            )])
        }
        Err(e) => return Err(vec![problem("", e.to_string())]),
    };
    let rewritten = named_contexts::rewrite::rewrite(
        &text,
        &references,
        &request.args,
        &platform_args(request.platform.as_deref()),
    )
    .map_err(|e| {
        let message = match e {
            RewriteError::Parse(m) => format!("the Dockerfile cannot be parsed: {m}"),
            RewriteError::At { .. } => e.to_string(),
        };
        vec![problem("", message)]
    })?;
    let problems: Vec<Problem> = unusable
        .into_iter()
        .filter(|(name, _)| rewritten.used.contains(name))
        .map(|(name, message)| problem(&format!(".{name}"), message))
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    for name in build.additional_contexts.keys() {
        if !rewritten.used.contains(name) {
            warnings.push(problem(
                &format!(".{name}"),
                "is not used by the Dockerfile (no `FROM`, `COPY --from=` or `RUN --mount=from=` names it, nor a stage of that name): it changes nothing".into(),
            ));
        }
    }
    helpers.retain(|h| rewritten.used.contains(&h.name));
    if build.pull {
        // `pull` makes the daemon look every image up in its registry first: a folder's image
        // exists only in the daemon, where a BuildKit named context is never pulled.
        let problems: Vec<Problem> = helpers
            .iter()
            .map(|h| problem(
                &format!(".{}", h.name),
                "is a folder, which wharf hands the daemon as an image of its own; with `pull: true` the daemon would look that image up in a registry and fail. Remove `pull: true` (run `docker pull` for the base images instead)".into(),
            ))
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
    }
    let context = LocalContext::prepare_rewritten(
        ctx.root(),
        build.dockerfile.as_ref(),
        ctx.builder(),
        &rewritten.text,
    )
    .map_err(|e| vec![problem("", e.to_string())])?;
    Ok(Some(Named {
        context,
        helpers,
        after,
    }))
}

/// The platform arguments BuildKit gives `FROM` lines: the target's when the build names a
/// platform; the rest only the daemon knows.
fn platform_args(platform: Option<&str>) -> Vars {
    let mut vars = Vars::default();
    for v in [
        "BUILDPLATFORM",
        "BUILDOS",
        "BUILDARCH",
        "BUILDVARIANT",
        "TARGETPLATFORM",
        "TARGETOS",
        "TARGETARCH",
        "TARGETVARIANT",
    ] {
        vars.values.insert(v.to_string(), None);
    }
    if let Some(p) = platform {
        let mut parts = p.split('/');
        let os = parts.next().unwrap_or("").to_string();
        let arch = parts.next().unwrap_or("").to_string();
        let variant = parts.next().unwrap_or("").to_string();
        for (k, v) in [
            ("TARGETPLATFORM", p.to_string()),
            ("TARGETOS", os),
            ("TARGETARCH", arch),
            ("TARGETVARIANT", variant),
        ] {
            vars.values.insert(k.to_string(), Some(v));
        }
    }
    vars
}

/// Orders builds after the services whose images they use: a `FROM`, `COPY --from` or
/// `RUN --mount=…,from=` naming a service's image (`image:`, its default
/// `<project>-<service>`, or one of `build.tags`), compared as BuildKit resolves references
/// (`name`, `name:latest` and `docker.io/library/name` are one image).
fn link_dependencies(builds: &mut [ServiceBuild]) {
    let names: Vec<(String, Vec<String>)> = builds
        .iter()
        .map(|b| {
            let keys = std::iter::once(&b.image)
                .chain(&b.extra_tags)
                .filter_map(|i| named_contexts::words::context_key(i))
                .collect();
            (b.service.clone(), keys)
        })
        .collect();
    for b in builds.iter_mut() {
        // The Dockerfile as the daemon gets it (named contexts already resolved).
        let text = match &b.source {
            Source::Local(ctx) => ctx
                .dockerfile_content()
                .ok()
                .and_then(|t| String::from_utf8(t).ok()),
            Source::Remote(_) => None,
        };
        let Some(text) = text else { continue };
        // A Dockerfile that cannot be read here fails its own build, with the daemon's words.
        let uses = named_contexts::rewrite::image_uses(
            &text,
            &b.request.args,
            &platform_args(b.request.platform.as_deref()),
        )
        .unwrap_or_default();
        for image in uses {
            let Some(key) = named_contexts::words::context_key(&image) else {
                continue;
            };
            for (service, keys) in &names {
                if service != &b.service && keys.contains(&key) && !b.after.contains(service) {
                    b.after.push(service.clone());
                }
            }
        }
    }
}

fn find_cycle(builds: &[ServiceBuild]) -> Option<Vec<String>> {
    fn visit(
        name: &str,
        builds: &[ServiceBuild],
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == name) {
            let mut cycle = path[i..].to_vec();
            cycle.push(name.to_string());
            return Some(cycle);
        }
        if done.iter().any(|d| d == name) {
            return None;
        }
        path.push(name.to_string());
        if let Some(b) = builds.iter().find(|b| b.service == name) {
            for dep in &b.after {
                if let Some(c) = visit(dep, builds, path, done) {
                    return Some(c);
                }
            }
        }
        path.pop();
        done.push(name.to_string());
        None
    }
    let mut done = Vec::new();
    builds
        .iter()
        .find_map(|b| visit(&b.service, builds, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    fn load(dir: &std::path::Path) -> Project {
        wharf_compose::load(&wharf_compose::ProjectOptions {
            working_dir: dir.to_path_buf(),
            project_name: Some("shop".into()),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn named_contexts_become_images_and_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w(
            "compose.yaml",
            "services:\n  app:\n    build:\n      context: ./app\n      additional_contexts:\n        files: ./files\n        base: service:base\n        img: docker-image://tools:1\n        spare: ./files\n        remote: https://example.com/x.tar.gz\n  base:\n    build: ./base\n",
        );
        w(
            "app/Dockerfile",
            "FROM img\nCOPY --from=files /a /a\nCOPY --from=base /b /b\n",
        );
        w("base/Dockerfile", "FROM scratch\n");
        w("files/a", "a");
        let project = load(dir.path());
        let selected: Vec<&Service> = project.services.values().collect();
        for builder in [BuilderKind::BuildKit, BuilderKind::Classic] {
            let options = Options {
                builder,
                ..Default::default()
            };
            let prepared = prepare(&project, &selected, &options).unwrap();
            let app = prepared.builds.iter().find(|b| b.service == "app").unwrap();
            assert_eq!(app.after, ["base"]);
            assert_eq!(app.context_images.len(), 1, "`spare` is not used");
            let helper = &app.context_images[0];
            assert!(helper.reference.starts_with("wharf-context/shop-"));
            let Source::Local(ctx) = &app.source else {
                panic!("a local context")
            };
            let text = String::from_utf8(ctx.dockerfile_content().unwrap()).unwrap();
            assert_eq!(
                text,
                format!(
                    "FROM tools:1\nCOPY --from={} /a /a\nCOPY --from=shop-base /b /b\n",
                    helper.reference
                )
            );
            assert_eq!(
                prepared
                    .warnings
                    .iter()
                    .map(|w| w.key.as_str())
                    .collect::<Vec<_>>(),
                [
                    "services.app.build.additional_contexts.remote",
                    "services.app.build.additional_contexts.spare"
                ],
                "unused: warned about, even what wharf could not use"
            );
            // The user's Dockerfile stays in the context as it is; the rewritten one travels
            // apart (for the classic builder, under a generated name).
            let mut on_disk = None;
            ctx.for_each_entry(|e| {
                if e.path == "Dockerfile" {
                    on_disk = Some(e.size);
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(on_disk, Some(56));
            match builder {
                BuilderKind::BuildKit => assert_eq!(ctx.session_dockerfile(), "Dockerfile"),
                BuilderKind::Classic => assert!(ctx.dockerfile().starts_with(".dockerfile.")),
            }
        }

        // The same content gives the same helper; a change gives another.
        let again = prepare(&project, &selected, &Options::default()).unwrap();
        let first = again.builds[0].context_images[0].reference.clone();
        w("files/a", "changed");
        let changed = prepare(&project, &selected, &Options::default()).unwrap();
        assert_ne!(changed.builds[0].context_images[0].reference, first);
    }

    /// A scratch project of `files`, loaded as project `shop` with `env` as the environment.
    fn project_of(files: &[(&str, &str)], env: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let project = wharf_compose::load(&wharf_compose::ProjectOptions {
            working_dir: dir.path().to_path_buf(),
            project_name: Some("shop".into()),
            environment: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .unwrap();
        (dir, project)
    }

    fn after_of(prepared: &Prepared, service: &str) -> Vec<String> {
        let mut a = prepared
            .builds
            .iter()
            .find(|b| b.service == service)
            .unwrap()
            .after
            .clone();
        a.sort();
        a
    }

    #[test]
    fn default_image_names_order_builds_as_references() {
        let (_dir, project) = project_of(
            &[
                (
                    "compose.yaml",
                    "services:\n  build_base: {build: ./base}\n  tagged: {build: {context: ./base, tags: [\"tools:2\"]}}\n  named: {build: ./base, image: \"registry.local:5000/team/named\"}\n  a: {build: ./a}\n  b: {build: {context: ./b, args: {FLAVOR: build_base}}}\n  c: {build: ./c}\n",
                ),
                ("base/Dockerfile", "FROM scratch\n"),
                (
                    "a/Dockerfile",
                    "FROM docker.io/library/shop-build_base:latest AS one\nFROM one\nCOPY --from=tools:2 /t /t\nRUN --mount=type=bind,from=registry.local:5000/team/named,target=/m true\n",
                ),
                (
                    "b/Dockerfile",
                    "ARG FLAVOR=none\nFROM shop-${FLAVOR}\nCOPY --from=shop-tagged /x /x\n",
                ),
                // Stages shadow images: nothing here names another service.
                (
                    "c/Dockerfile",
                    "FROM scratch AS shop-a\nFROM shop-a\nCOPY --from=shop-a /x /x\nFROM shop-b:1\n",
                ),
            ],
            &[],
        );
        let selected: Vec<&Service> = project.services.values().collect();
        let prepared = prepare(&project, &selected, &Options::default()).unwrap();
        assert_eq!(after_of(&prepared, "a"), ["build_base", "named", "tagged"]);
        assert_eq!(after_of(&prepared, "b"), ["build_base", "tagged"]);
        assert!(after_of(&prepared, "c").is_empty());
    }

    #[test]
    fn service_contexts_are_built_with_their_users() {
        let (_dir, project) = project_of(
            &[
                (
                    "compose.yaml",
                    "services:\n  main:\n    profiles: [m]\n    build:\n      context: ./m\n      additional_contexts: {dep: \"service:dep1\"}\n  dep1:\n    profiles: [deps]\n    build:\n      context: ./m\n      additional_contexts: {sub: \"service:sub\"}\n  sub: {build: ./m, profiles: [deps]}\n  other: {build: ./m}\n",
                ),
                ("m/Dockerfile", "FROM scratch\n"),
            ],
            &[],
        );
        // As `docker compose build main`: naming it enables its profile, not its context's.
        let project = project.with_services_enabled(&["main".into()]);
        assert!(project.disabled_services.contains_key("dep1"));
        let main = &project.services["main"];
        let prepared = prepare(&project, &[main], &Options::default()).unwrap();
        let built: Vec<(&str, &str)> = prepared
            .builds
            .iter()
            .map(|b| (b.service.as_str(), b.image.as_str()))
            .collect();
        assert_eq!(
            built,
            [
                ("main", "shop-main"),
                ("dep1", "shop-dep1"),
                ("sub", "shop-sub")
            ],
            "each under its own compose name, though its profile is not active"
        );
        assert_eq!(after_of(&prepared, "main"), ["dep1"]);
        assert_eq!(after_of(&prepared, "dep1"), ["sub"]);
    }

    #[test]
    fn compose_labels_win_over_the_users() {
        let (_dir, project) = project_of(
            &[
                (
                    "compose.yaml",
                    "services:\n  app:\n    build:\n      context: .\n      labels:\n        com.docker.compose.project: mine\n        com.docker.compose.other: kept\n        org.opencontainers.image.source: mine\n",
                ),
                ("Dockerfile", "FROM scratch\n"),
            ],
            &[],
        );
        let app = &project.services["app"];
        for builder in [BuilderKind::BuildKit, BuilderKind::Classic] {
            let options = Options {
                builder,
                labels: HashMap::from([
                    ("org.opencontainers.image.source".into(), "wharf's".into()),
                    ("org.opencontainers.image.revision".into(), "abc".into()),
                ]),
                ..Default::default()
            };
            let prepared = prepare(&project, &[app], &options).unwrap();
            let labels = &prepared.builds[0].request.labels;
            let get = |k: &str| labels.get(k).map(String::as_str);
            assert_eq!(get(crate::labels::PROJECT), Some("shop"));
            assert_eq!(get(crate::labels::SERVICE), Some("app"));
            assert_eq!(
                get(crate::labels::VERSION),
                Some(crate::labels::tool_version().as_str())
            );
            assert_eq!(get("com.docker.compose.other"), Some("kept"));
            assert_eq!(get("org.opencontainers.image.source"), Some("mine"));
            assert_eq!(get("org.opencontainers.image.revision"), Some("abc"));
            assert_eq!(
                get(crate::labels::IMAGE_BUILDER),
                (builder == BuilderKind::Classic).then_some("classic")
            );
        }
    }

    #[test]
    fn platforms_are_chosen_the_compose_way() {
        let files = [
            (
                "compose.yaml",
                "services:\n  i386: {build: ., platform: linux/386}\n  listed: {build: {context: ., platforms: [linux/arm64]}}\n  free: {build: .}\n",
            ),
            ("Dockerfile", "FROM scratch\n"),
        ];
        let (_dir, project) = project_of(&files, &[]);
        let all: Vec<&Service> = project.services.values().collect();
        let mut prepared = prepare(&project, &all, &Options::default()).unwrap();
        let platform = |p: &Prepared, s: &str| {
            let b = p.builds.iter().find(|b| b.service == s).unwrap();
            (b.platform.clone(), b.request.platform.clone())
        };
        assert_eq!(
            platform(&prepared, "i386"),
            (Target::Declared(pf("linux/386")), Some("linux/386".into()))
        );
        assert_eq!(
            platform(&prepared, "listed"),
            (
                Target::Declared(pf("linux/arm64")),
                Some("linux/arm64".into())
            )
        );
        assert_eq!(
            platform(&prepared, "free"),
            (Target::Daemon(Native::NotAsked), None)
        );
        assert!(prepared.needs_daemon_platform());
        prepared.use_daemon_platform(Ok(pf("linux/amd64")));
        assert!(!prepared.needs_daemon_platform());
        assert_eq!(
            platform(&prepared, "free").0,
            Target::Daemon(Native::Known(pf("linux/amd64")))
        );

        // DOCKER_DEFAULT_PLATFORM: for `free`; against `listed`'s list and `i386`'s platform.
        let (_dir, project) = project_of(&files, &[("DOCKER_DEFAULT_PLATFORM", "linux/arm64")]);
        let free = &project.services["free"];
        let prepared = prepare(&project, &[free], &Options::default()).unwrap();
        assert_eq!(
            platform(&prepared, "free").0,
            Target::Declared(pf("linux/arm64"))
        );
        let all: Vec<&Service> = project.services.values().collect();
        let problems = prepare(&project, &all, &Options::default()).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["services.i386.platform"]);
        assert!(problems[0].message.contains("DOCKER_DEFAULT_PLATFORM"));
        let (_dir, project) = project_of(&files, &[("DOCKER_DEFAULT_PLATFORM", "linux/amd64")]);
        let all: Vec<&Service> = project.services.values().collect();
        let problems = prepare(&project, &all, &Options::default()).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["services.i386.platform", "services.listed.build.platforms"]
        );
    }
}
