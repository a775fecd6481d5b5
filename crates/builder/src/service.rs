//! From a compose service to a daemon build: every build field of the compose model is either
//! passed to the daemon, or reported — as an error when ignoring it would change the image,
//! as a warning when it would not. All services are checked before anything is built.

use crate::build::{BuildRequest, BuilderKind};
use crate::context::Context as LocalContext;
use crate::named_contexts::{self, rewrite::RewriteError, words::Vars, Helper, NamedSource};
use crate::session::{RegistryCredentials, SshAgent};
use std::collections::HashMap;
use wharf_compose::{Build, Context, Dockerfile, Project, Service};

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
    /// Labels added to every image (compose's own labels win on a clash).
    pub labels: HashMap<String, String>,
}

/// Everything checked: builds in dependency order input, plus warnings.
#[derive(Debug)]
pub struct Prepared {
    pub builds: Vec<ServiceBuild>,
    pub warnings: Vec<Problem>,
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
    for service in selected {
        let Some(build) = &service.build else {
            problems.push(Problem {
                service: service.name.clone(),
                key: format!("services.{}", service.name),
                message: "has no build section: there is nothing to build".into(),
            });
            continue;
        };
        match prepare_one(project, service, build, options, &mut warnings) {
            Ok(b) => builds.push(b),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        link_dependencies(&mut builds);
        if let Some(cycle) = find_cycle(&builds) {
            problems.push(Problem {
                service: cycle[0].clone(),
                key: format!("services.{}.build", cycle[0]),
                message: format!("its image depends on itself through {}", cycle.join(" → ")),
            });
        }
    }
    if problems.is_empty() {
        Ok(Prepared { builds, warnings })
    } else {
        Err(problems)
    }
}

fn prepare_one(
    project: &Project,
    service: &Service,
    build: &Build,
    options: &Options,
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

    let mut request = BuildRequest {
        tag: service.image_name(&project.name),
        builder: options.builder,
        target: build.target.clone(),
        no_cache: build.no_cache,
        pull: build.pull,
        network: build.network.clone(),
        cache_from: build.cache_from.clone(),
        ..Default::default()
    };
    request.args = build
        .args
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    request.labels = options.labels.clone();
    request
        .labels
        .extend(build.labels.iter().map(|(k, v)| (k.clone(), v.clone())));

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
    if !build.additional_contexts.is_empty() {
        match named(project, service, build, &request, source.as_ref(), warnings) {
            Ok(None) => {}
            Ok(Some(n)) => {
                request.dockerfile = match options.builder {
                    BuilderKind::BuildKit => n.context.session_dockerfile(),
                    BuilderKind::Classic => n.context.dockerfile(),
                }
                .to_string();
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
    match build.platforms.as_slice() {
        [] => {}
        [p] => request.platform = Some(p.clone()),
        many => problems.push(problem(
            "platforms",
            format!(
                "the Docker daemon builds one platform per image, not {} ({}); a multi-platform image needs a buildx builder",
                many.len(),
                many.join(", ")
            ),
        )),
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

    match source {
        Some(source) if problems.is_empty() => Ok(ServiceBuild {
            service: name.clone(),
            image: request.tag.clone(),
            extra_tags: build.tags.clone(),
            source,
            request,
            after,
            context_images,
        }),
        _ => Err(problems),
    }
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
            Ok(NamedSource::Service(other)) => match project.services.get(&other) {
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
                    &service.name,
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

/// The image names of `FROM` lines (and `COPY --from=`) of a Dockerfile, with build args and
/// `ARG` defaults substituted. Written by hand: only these two instructions matter here, and
/// Dockerfile parser crates do not substitute arguments.
pub fn referenced_images(dockerfile: &str, args: &HashMap<String, String>) -> Vec<String> {
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut out = Vec::new();
    // Line continuations join lines before anything else.
    let joined = dockerfile.replace("\\\r\n", " ").replace("\\\n", " ");
    for line in joined.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let instruction = words.next().unwrap_or("").to_ascii_uppercase();
        let rest: Vec<&str> = words.collect();
        match instruction.as_str() {
            "ARG" => {
                for decl in rest {
                    let (k, default) = match decl.split_once('=') {
                        Some((k, v)) => (k, Some(v.trim_matches('"').to_string())),
                        None => (decl, None),
                    };
                    if let Some(v) = args.get(k).cloned().or(default) {
                        vars.entry(k.to_string()).or_insert(v);
                    }
                }
            }
            "FROM" => {
                let mut it = rest.iter().filter(|w| !w.starts_with("--"));
                if let Some(image) = it.next() {
                    let image = substitute(image, &vars);
                    if !stages.iter().any(|s| s.eq_ignore_ascii_case(&image)) {
                        out.push(image);
                    }
                }
                if let (Some(kw), Some(stage)) = (it.next(), it.next()) {
                    if kw.eq_ignore_ascii_case("as") {
                        stages.push(stage.to_string());
                    }
                }
            }
            "COPY" | "ADD" => {
                for w in rest.iter().filter_map(|w| w.strip_prefix("--from=")) {
                    let image = substitute(w, &vars);
                    let is_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(&image))
                        || image.parse::<usize>().is_ok();
                    if !is_stage {
                        out.push(image);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn substitute(word: &str, vars: &HashMap<String, String>) -> String {
    let mut out = word.to_string();
    for (k, v) in vars {
        out = out
            .replace(&format!("${{{k}}}"), v)
            .replace(&format!("${k}"), v);
    }
    out
}

/// `name` and `name:latest` are the same image.
fn same_image(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let last = s.rsplit('/').next().unwrap_or(s);
        if last.contains(':') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    };
    norm(a) == norm(b)
}

fn link_dependencies(builds: &mut [ServiceBuild]) {
    let names: Vec<(String, Vec<String>)> = builds
        .iter()
        .map(|b| {
            let mut all = vec![b.image.clone()];
            all.extend(b.extra_tags.iter().cloned());
            (b.service.clone(), all)
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
        for image in referenced_images(&text, &b.request.args) {
            for (service, images) in &names {
                if service != &b.service
                    && images.iter().any(|i| same_image(i, &image))
                    && !b.after.contains(service)
                {
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

    #[test]
    fn from_lines_name_images_not_stages() {
        let df = "ARG BASE=shop/base:1\nFROM ${BASE} AS build\nRUN x\nFROM build AS test\nFROM --platform=linux/amd64 alpine\nCOPY --from=build /a /b\nCOPY --from=tools:2 /t /t\nCOPY --from=0 /x /y\n";
        assert_eq!(
            referenced_images(df, &HashMap::new()),
            vec!["shop/base:1", "alpine", "tools:2"]
        );
        let args = HashMap::from([("BASE".to_string(), "other:3".to_string())]);
        assert_eq!(referenced_images(df, &args)[0], "other:3");
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
            assert!(helper
                .reference
                .starts_with("wharf-context/shop-app-files-"));
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

    #[test]
    fn latest_is_implied() {
        assert!(same_image("shop/base", "shop/base:latest"));
        assert!(same_image("localhost:5000/a", "localhost:5000/a:latest"));
        assert!(!same_image("shop/base:1", "shop/base"));
    }
}
