//! Where each service's image goes: registry, repository and tags, from the compose file, its
//! `x-wharf` settings and the command line (command line beats environment beats compose file;
//! the binary merges those three into [`Settings`]).

use crate::registry::{is_path_component, Registry};
use crate::template::{
    check_tag, sanitize_tag, Template, TemplateError, REPOSITORY_PLACEHOLDERS, TAG_PLACEHOLDERS,
};
use std::collections::BTreeMap;
use wharf_compose::{Project, Service};
use wharf_docker::reference::{ImageReference, ReferenceError, DEFAULT_TAG};

/// Release settings after precedence is applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `None`: images go where their compose names say.
    pub registry: Option<Registry>,
    /// Tag templates; empty means the default `{git_sha}` and `latest`.
    pub tags: Vec<Template>,
    /// `None`: `{image_name}`, or `{project}-{service}` for a service without `image:`.
    pub repository: Option<Template>,
}

/// The default tags of the contract.
pub fn default_tags() -> Vec<Template> {
    ["{git_sha}", "latest"]
        .iter()
        .map(|t| Template::parse(t, TAG_PLACEHOLDERS).expect("the default templates parse"))
        .collect()
}

/// One service's destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageTarget {
    pub service: String,
    /// The local image the build produces (the compose image name).
    pub local_image: String,
    /// The registry host, or `None` while it depends on the caller's account (`--registry ecr`).
    pub host: Option<String>,
    /// The registry as the user named it, for messages.
    #[serde(skip)]
    pub registry: Registry,
    pub repository: String,
    /// Tags naming this commit: pushed first, for every service.
    pub identity_tags: Vec<String>,
    /// Tags that move (`latest`): pushed only when every identity tag landed.
    pub moving_tags: Vec<String>,
    /// Whether `verify` requires it (per-service `x-wharf.required`, default true).
    pub required: bool,
    /// How its identity tags read for any commit: what an image built from another commit
    /// must be tagged with before it is reused (see [`crate::trust`]).
    #[serde(skip)]
    pub identity: IdentityTemplates,
    /// Every platform of a multi-platform image (empty for a single image): its identity and
    /// moving tags name an index of them, and each platform's image carries platform identity
    /// tags ([`ImageTarget::platform_tags`]).
    pub platforms: Vec<wharf_compose::platform::Platform>,
    /// This run makes only some of [`Self::platforms`] (`--platform`): their platform identity
    /// tags only, no index, no moving tag.
    pub partial: bool,
}

/// A service's identity tag templates, with every placeholder that does not name the commit
/// fixed to this release's value: the identity tags of any commit, known without git.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityTemplates {
    templates: Vec<Template>,
    /// The values of the other placeholders (`compose_tag`, `git_branch`, `env:NAME`).
    values: BTreeMap<String, String>,
    /// Set: the tags are this platform's identity tags (`<tag>-<os>-<arch>[-<variant>]`), which
    /// name one platform's image of a multi-platform service.
    platform: Option<wharf_compose::platform::Platform>,
}

impl IdentityTemplates {
    /// Captures `templates` (those naming the commit) and the values `lookup` gives their
    /// other placeholders. `{timestamp}` is left out: another commit's release ran at another
    /// time, so a template using it cannot be rendered for that commit.
    pub fn capture<'t>(
        templates: impl IntoIterator<Item = &'t Template>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> IdentityTemplates {
        let mut out = IdentityTemplates::default();
        for t in templates.into_iter().filter(|t| t.is_identity()) {
            for name in t.placeholders() {
                if matches!(name, "git_sha" | "git_short_sha" | "timestamp") {
                    continue;
                }
                if let Some(v) = lookup(name) {
                    out.values.insert(name.to_string(), v);
                }
            }
            out.templates.push(t.clone());
        }
        out
    }

    /// The same templates naming `platform`'s image: the platform identity tags.
    pub fn for_platform(&self, platform: &wharf_compose::platform::Platform) -> IdentityTemplates {
        IdentityTemplates {
            platform: Some(platform.clone()),
            ..self.clone()
        }
    }

    /// The identity tags of commit `sha` (a full 40-hex id), in template order; a template
    /// that cannot be rendered for another commit is skipped.
    pub fn for_commit(&self, sha: &str) -> Vec<String> {
        let lookup = |v: &str| -> Option<String> {
            match v {
                "git_sha" => Some(sha.to_string()),
                "git_short_sha" => Some(sha.chars().take(7).collect()),
                other => self.values.get(other).cloned(),
            }
        };
        let mut tags: Vec<String> = Vec::new();
        for t in &self.templates {
            if let Ok(tag) = t.render(&lookup) {
                let tag = match &self.platform {
                    Some(p) => p.identity_tag(&tag),
                    None => tag,
                };
                if check_tag(&tag).is_ok() && !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        tags
    }
}

impl ImageTarget {
    /// `HOST/REPOSITORY` once the host is known.
    pub fn repository_ref(&self) -> Option<String> {
        self.host
            .as_ref()
            .map(|h| format!("{h}/{}", self.repository))
    }

    pub fn all_tags(&self) -> impl Iterator<Item = &String> {
        self.identity_tags.iter().chain(self.moving_tags.iter())
    }

    /// Whether its tags name an index of several platforms' images.
    pub fn is_multi_platform(&self) -> bool {
        self.platforms.len() > 1
    }

    /// The platform identity tags of `platform`: each identity tag with the platform
    /// appended (`<sha>-linux-arm64`).
    pub fn platform_tags(&self, platform: &wharf_compose::platform::Platform) -> Vec<String> {
        self.identity_tags
            .iter()
            .map(|t| platform.identity_tag(t))
            .collect()
    }

    /// Makes it a multi-platform image of `platforms` (more than one), of which this run
    /// builds `built`; a run that builds only some moves no moving tag.
    pub fn use_platforms(
        &mut self,
        platforms: Vec<wharf_compose::platform::Platform>,
        built: &[wharf_compose::platform::Platform],
    ) {
        if platforms.len() < 2 {
            return;
        }
        self.partial = platforms.iter().any(|p| !built.contains(p));
        if self.partial {
            self.moving_tags.clear();
        }
        self.platforms = platforms;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("service `{service}`: {source}")]
    Template {
        service: String,
        #[source]
        source: TemplateError,
    },
    #[error("service `{service}`: {message}")]
    Invalid { service: String, message: String },
}

/// What tag templates may refer to besides the service.
pub struct TagValues<'a> {
    pub git_sha: Option<&'a str>,
    pub git_branch: Option<&'a str>,
    pub timestamp: &'a str,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// The destination of `service`.
pub fn target(
    project: &Project,
    service: &Service,
    settings: &Settings,
    values: &TagValues,
) -> Result<ImageTarget, TargetError> {
    let invalid = |message: String| TargetError::Invalid {
        service: service.name.clone(),
        message,
    };
    let templ = |source| TargetError::Template {
        service: service.name.clone(),
        source,
    };
    let local_image = service.image_name(&project.name);
    // The image as the user wrote it: its registry, path and tag name wharf's targets, with no
    // Docker Hub `library/` added (`image: api` pushed elsewhere is the repository `api`).
    let image = match &service.image {
        Some(written) => Some(ImageReference::parse(written).map_err(|e| match e {
            ReferenceError::Credentials { .. } => {
                invalid(format!("its image is not a valid image reference: {e}"))
            }
            e => invalid(format!(
                "its image `{written}` is not a valid image reference: {e}"
            )),
        })?),
        None => None,
    };
    let written_registry = image.as_ref().and_then(ImageReference::written_registry);

    let registry = match (&settings.registry, written_registry) {
        (Some(r), _) => r.clone(),
        (None, Some(host)) => Registry::parse(host).map_err(|e| invalid(e.to_string()))?,
        (None, None) => {
            return Err(invalid(format!(
                "its image `{local_image}` names no registry: set --registry (or WHARF_REGISTRY, or x-wharf.registry in the compose file), or write the registry into `image:`"
            )))
        }
    };

    let own = service.x_wharf.clone().unwrap_or_default();
    let repository_template = match &own.repository {
        Some(s) => Some(Template::parse(s, REPOSITORY_PLACEHOLDERS).map_err(templ)?),
        None => settings.repository.clone(),
    };
    let image_path = match &image {
        Some(i) => i.written_path().to_string(),
        None => format!("{}-{}", project.name, service.name),
    };
    let mut repository = match &repository_template {
        Some(t) => t
            .render(&|v: &str| match v {
                "image_name" => Some(image_path.clone()),
                "project" => Some(project.name.clone()),
                "service" => Some(service.name.clone()),
                other => other.strip_prefix("env:").and_then(|n| (values.env)(n)),
            })
            .map_err(templ)?,
        None => image_path.clone(),
    };
    if let Registry::Other {
        namespace: Some(ns),
        ..
    }
    | Registry::EcrPublic { alias: ns } = &registry
    {
        if settings.registry.is_some() {
            repository = format!("{ns}/{repository}");
        }
    }
    check_repository(&repository, registry.host()).map_err(invalid)?;

    let tag_templates = match &own.tags {
        Some(items) => items
            .iter()
            .map(|s| Template::parse(s, TAG_PLACEHOLDERS).map_err(templ))
            .collect::<Result<Vec<_>, _>>()?,
        None if settings.tags.is_empty() => default_tags(),
        None => settings.tags.clone(),
    };
    let compose_tag = image
        .as_ref()
        .and_then(ImageReference::tag)
        .unwrap_or(DEFAULT_TAG)
        .to_string();
    let lookup = |v: &str| -> Option<String> {
        match v {
            "git_sha" => values.git_sha.map(str::to_string),
            "git_short_sha" => values.git_sha.map(|s| s.chars().take(7).collect()),
            "git_branch" => values.git_branch.map(sanitize_tag),
            "compose_tag" => Some(compose_tag.clone()),
            "timestamp" => Some(values.timestamp.to_string()),
            other => other.strip_prefix("env:").and_then(|n| (values.env)(n)),
        }
    };
    let identity = IdentityTemplates::capture(&tag_templates, &lookup);
    let (mut identity_tags, mut moving_tags) = (Vec::new(), Vec::new());
    for t in &tag_templates {
        let tag = t.render(&lookup).map_err(templ)?;
        check_tag(&tag).map_err(|m| invalid(format!("tag template `{}`: {m}", t.as_str())))?;
        let list = if t.is_identity() {
            &mut identity_tags
        } else {
            &mut moving_tags
        };
        if !list.contains(&tag) {
            list.push(tag);
        }
    }
    moving_tags.retain(|t| !identity_tags.contains(t));

    let required = own.required.unwrap_or(true);
    Ok(ImageTarget {
        service: service.name.clone(),
        local_image,
        host: registry.host().map(str::to_string),
        registry,
        repository,
        identity_tags,
        moving_tags,
        required,
        identity,
        platforms: Vec::new(),
        partial: false,
    })
}

/// The longest name (host and repository) the distribution grammar allows.
const MAX_NAME: usize = 255;

/// Repository names by the distribution grammar, checked before anything is built (a registry
/// refuses a bad name only at push time): lowercase path components
/// (`[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`) joined by `/`, at most 255 characters with the
/// host.
fn check_repository(repo: &str, host: Option<&str>) -> Result<(), String> {
    if !repo.split('/').all(is_path_component) {
        return Err(format!(
            "`{}` is not a valid repository name: lowercase letters and digits, with single `.` or `_`, `__`, or dashes between them, in components joined by `/`",
            repo.escape_debug()
        ));
    }
    let name_len = host.map_or(0, |h| h.len() + 1) + repo.len();
    if name_len > MAX_NAME {
        return Err(format!(
            "the repository name `{repo}` is {name_len} characters long with its registry host; registries accept at most {MAX_NAME}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_identity_templates_name_platform_identity_tags() {
        let templates = [
            Template::parse("{git_sha}", TAG_PLACEHOLDERS).unwrap(),
            Template::parse("{git_branch}-{git_short_sha}", TAG_PLACEHOLDERS).unwrap(),
            Template::parse("latest", TAG_PLACEHOLDERS).unwrap(),
        ];
        let lookup = |v: &str| (v == "git_branch").then(|| "main".to_string());
        let identity = IdentityTemplates::capture(&templates, &lookup);
        let sha = "3f2a9c1".repeat(5) + "abcde";
        let arm = wharf_compose::platform::Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(
            identity.for_platform(&arm).for_commit(&sha),
            [
                format!("{sha}-linux-arm-v7"),
                "main-3f2a9c1-linux-arm-v7".into()
            ]
        );
        assert_eq!(
            identity.for_commit(&sha),
            [sha.clone(), "main-3f2a9c1".into()],
            "the service's own stay as they were"
        );
    }

    fn project(
        services: &[(
            &str,
            Option<&str>,
            Option<wharf_compose::x_wharf::ServiceSettings>,
        )],
    ) -> Project {
        Project {
            name: "shop".into(),
            working_dir: "/p".into(),
            files: vec![],
            services: services
                .iter()
                .map(|(n, image, x)| {
                    let s = Service {
                        name: n.to_string(),
                        image: image.map(str::to_string),
                        platform: None,
                        build: Some(Default::default()),
                        profiles: vec![],
                        x_wharf: x.clone(),
                        depends_on: vec![],
                        extensions: Default::default(),
                        compose: serde_json::Value::Null,
                    };
                    (n.to_string(), s)
                })
                .collect(),
            disabled_services: Default::default(),
            profiles: vec![],
            default_platform: None,
            secrets: Default::default(),
            x_wharf: None,
            extensions: Default::default(),
        }
    }

    fn values() -> TagValues<'static> {
        TagValues {
            git_sha: Some("0123456789abcdef0123456789abcdef01234567"),
            git_branch: Some("feature/login"),
            timestamp: "20261122030000",
            env: &|n| (n == "STAGE").then(|| "prod".to_string()),
        }
    }

    fn settings(registry: &str, tags: &[&str], repository: Option<&str>) -> Settings {
        Settings {
            registry: Some(Registry::parse(registry).unwrap()),
            tags: tags
                .iter()
                .map(|t| Template::parse(t, TAG_PLACEHOLDERS).unwrap())
                .collect(),
            repository: repository.map(|r| Template::parse(r, REPOSITORY_PLACEHOLDERS).unwrap()),
        }
    }

    #[test]
    fn repositories_follow_the_compose_image_name() {
        let p = project(&[
            ("codeguardians-gateway", Some("gateway:dev"), None),
            ("backend", Some("gamepulse/backend:latest"), None),
            ("worker", None, None),
        ]);
        let s = settings("123456789012.dkr.ecr.us-east-1.amazonaws.com", &[], None);
        let repo = |name: &str| {
            target(&p, &p.services[name], &s, &values())
                .unwrap()
                .repository
        };
        assert_eq!(repo("codeguardians-gateway"), "gateway");
        assert_eq!(repo("backend"), "gamepulse/backend");
        assert_eq!(repo("worker"), "shop-worker");
    }

    #[test]
    fn an_image_docker_cannot_read_is_refused_by_name() {
        let p = project(&[("api", Some("Shop/API"), None)]);
        let e = target(
            &p,
            &p.services["api"],
            &settings("ecr", &[], None),
            &values(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`Shop/API` is not a valid image reference") && e.contains("lowercase"),
            "{e}"
        );
    }

    #[test]
    fn templates_and_per_service_settings() {
        let x = wharf_compose::x_wharf::service_settings(&serde_json::json!({"repository": "special/{service}", "tags": ["{env:STAGE}-{git_short_sha}", "{env:STAGE}-latest"]})).unwrap();
        let p = project(&[("parser", None, None), ("variants", None, Some(x))]);
        let s = settings(
            "ecr",
            &["{git_sha}", "{git_branch}", "{compose_tag}", "latest"],
            Some("creative-automation-{service}"),
        );
        let t = target(&p, &p.services["parser"], &s, &values()).unwrap();
        assert_eq!(t.repository, "creative-automation-parser");
        assert_eq!(
            t.identity_tags,
            vec!["0123456789abcdef0123456789abcdef01234567"]
        );
        assert_eq!(
            t.moving_tags,
            vec!["feature-login", "latest"],
            "compose_tag of an untagged name is latest, deduplicated"
        );
        assert_eq!(t.host, None, "the caller's account is resolved at login");
        let t = target(&p, &p.services["variants"], &s, &values()).unwrap();
        assert_eq!(t.repository, "special/variants");
        assert_eq!(t.identity_tags, vec!["prod-0123456"]);
        assert_eq!(t.moving_tags, vec!["prod-latest"]);
    }

    #[test]
    fn namespaces_and_aliases_prefix_the_repository() {
        let p = project(&[("api", Some("shop/api:1.2"), None)]);
        let public = target(
            &p,
            &p.services["api"],
            &settings("public.ecr.aws/acme", &[], None),
            &values(),
        )
        .unwrap();
        assert_eq!(public.repository, "acme/shop/api");
        assert_eq!(public.host.as_deref(), Some("public.ecr.aws"));
        let other = target(
            &p,
            &p.services["api"],
            &settings("ghcr.io/acme", &["{compose_tag}"], None),
            &values(),
        )
        .unwrap();
        assert_eq!(other.repository, "acme/shop/api");
        assert_eq!(other.moving_tags, vec!["1.2"]);
    }

    #[test]
    fn an_image_without_registry_needs_one() {
        let p = project(&[("api", Some("shop/api"), None)]);
        let none = Settings {
            registry: None,
            tags: vec![],
            repository: None,
        };
        let e = target(&p, &p.services["api"], &none, &values())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--registry") && e.contains("x-wharf.registry"),
            "{e}"
        );
        let p = project(&[("api", Some("localhost:5000/shop/api:1"), None)]);
        let t = target(&p, &p.services["api"], &none, &values()).unwrap();
        assert_eq!(
            (t.host.as_deref(), t.repository.as_str()),
            (Some("localhost:5000"), "shop/api")
        );
    }

    #[test]
    fn repository_names_are_checked() {
        assert!(check_repository("shop/api-v2", None).is_ok());
        assert!(check_repository("shop/api__v2.x--y_z", Some("ghcr.io")).is_ok());
        for bad in [
            "Shop", "a//b", "a..b", "a-", "_a", "a___b", "a.-b", "/a", "a/",
        ] {
            let e = check_repository(bad, None).unwrap_err();
            assert!(e.contains("is not a valid repository name"), "{bad}: {e}");
        }
        let long = "a".repeat(250);
        assert!(check_repository(&long, None).is_ok());
        let e = check_repository(&long, Some("registry.example.com")).unwrap_err();
        assert!(e.contains("at most 255"), "{e}");
    }

    #[test]
    fn identity_tags_render_for_any_commit() {
        let x = wharf_compose::x_wharf::service_settings(&serde_json::json!({"tags": ["{env:STAGE}-{git_short_sha}", "{git_sha}-{timestamp}", "{git_branch}-{git_sha}", "latest"]})).unwrap();
        let p = project(&[("api", None, Some(x))]);
        let s = settings("ghcr.io/acme", &[], None);
        let t = target(&p, &p.services["api"], &s, &values()).unwrap();
        let other = "fedcba9876543210fedcba9876543210fedcba98";
        assert_eq!(
            t.identity.for_commit(other),
            vec!["prod-fedcba9".to_string(), format!("feature-login-{other}")],
            "this release's other values; a timestamp cannot be known for another commit"
        );
        let sha = values().git_sha.unwrap();
        assert!(t.identity_tags.contains(&t.identity.for_commit(sha)[0]));
    }
}
