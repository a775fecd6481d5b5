//! The resolved project: what the builder and the pusher consume.
//!
//! Values here are fully resolved (interpolated, merged, extended, profiles applied), so no
//! consumer ever needs to look at YAML again. Paths are absolute; git URL contexts are kept
//! exactly as written.

use indexmap::IndexMap;
use std::path::PathBuf;

/// A compose project after loading, as `docker compose config` would print it.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// The project name (`-p`, `COMPOSE_PROJECT_NAME`, `name:`, else the folder, normalized).
    pub name: String,
    /// The project directory (relative paths of the first compose file resolve against it).
    pub working_dir: PathBuf,
    /// The compose files that were read, in merge order.
    pub files: Vec<PathBuf>,
    /// Active services, in the order compose prints them (sorted by name).
    pub services: IndexMap<String, Service>,
    /// Services the active profiles leave out (compose-go's `DisabledServices`), sorted by
    /// name: [`Project::with_services_enabled`] brings them in.
    pub disabled_services: IndexMap<String, Service>,
    /// The active profiles (`--profile`, else `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    /// `DOCKER_DEFAULT_PLATFORM` as compose reads it: from the environment or the project's
    /// `.env` / `--env-file` files, empty counting as unset.
    pub default_platform: Option<String>,
    /// Top-level `secrets:` definitions (build secrets refer to them).
    pub secrets: IndexMap<String, SecretDef>,
    /// Top-level `x-wharf:` settings (interpolated, checked when the files were read).
    pub x_wharf: Option<crate::x_wharf::ProjectSettings>,
    /// Every top-level `x-…` extension field (including `x-wharf`), as JSON, as compose prints
    /// them.
    pub extensions: IndexMap<String, serde_json::Value>,
}

/// One service of the project.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    /// `image:` as written (interpolated), if any.
    pub image: Option<String>,
    /// `platform:`, the platform the service runs on (and, unless `build.platforms` says
    /// otherwise, is built for).
    pub platform: Option<String>,
    pub build: Option<Build>,
    pub profiles: Vec<String>,
    /// Per-service `x-wharf:` settings (interpolated, checked when the files were read).
    pub x_wharf: Option<crate::x_wharf::ServiceSettings>,
    /// The services this one depends on (`depends_on`, links and `service:` namespaces).
    pub depends_on: Vec<String>,
    /// Every `x-…` extension field of the service (including `x-wharf`), as JSON.
    pub extensions: IndexMap<String, serde_json::Value>,
    /// This service as `docker compose config` prints it (`profiles`, `build`, `image`; paths
    /// and values exactly as compose renders them, e.g. `dockerfile` as written). The build
    /// section keeps its `x-` fields, which compose shows in YAML but not in JSON.
    pub compose: serde_json::Value,
}

impl Service {
    /// The image name compose tags a build with: `image:` or `{project}-{service}`.
    pub fn image_name(&self, project: &str) -> String {
        match &self.image {
            Some(i) => i.clone(),
            None => format!("{project}-{}", self.name),
        }
    }
}

impl Service {
    /// Whether the active `profiles` enable this service (compose-go's `HasProfile`): a
    /// service without profiles always is, `*` enables every service.
    pub fn has_profile(&self, profiles: &[String]) -> bool {
        self.profiles.is_empty()
            || profiles
                .iter()
                .any(|p| p == "*" || self.profiles.iter().any(|sp| sp == p))
    }
}

impl Build {
    /// The services whose images `additional_contexts` names (`service:NAME`).
    pub fn context_services(&self) -> impl Iterator<Item = &str> {
        self.additional_contexts
            .values()
            .filter_map(|v| v.strip_prefix(SERVICE_PREFIX))
    }
}

/// The `additional_contexts` prefix naming another service's image (compose-go's
/// `types.ServicePrefix`).
pub const SERVICE_PREFIX: &str = "service:";

impl Project {
    /// The project with the profiles of the named services enabled as well, as docker compose
    /// does for services named on its command line (compose-go's `WithServicesEnabled`): every
    /// service of those profiles becomes active, not only the one named. Names of active or
    /// unknown services change nothing.
    pub fn with_services_enabled(&self, names: &[String]) -> Project {
        let mut profiles = self.profiles.clone();
        for name in names {
            if self.services.contains_key(name) {
                continue;
            }
            if let Some(s) = self.disabled_services.get(name) {
                profiles.extend(s.profiles.iter().cloned());
            }
        }
        let mut all: Vec<&Service> = self
            .services
            .values()
            .chain(self.disabled_services.values())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = Project {
            services: IndexMap::new(),
            disabled_services: IndexMap::new(),
            profiles,
            ..self.clone()
        };
        for s in all {
            let to = if s.has_profile(&out.profiles) {
                &mut out.services
            } else {
                &mut out.disabled_services
            };
            to.insert(s.name.clone(), s.clone());
        }
        out
    }

    /// The service called `name`, active or disabled by its profiles.
    pub fn lookup_service(&self, name: &str) -> Option<&Service> {
        self.services
            .get(name)
            .or_else(|| self.disabled_services.get(name))
    }

    /// `names` and, transitively, the services their `additional_contexts` name with
    /// `service:` — active or not — as docker compose adds them to a build
    /// (`addBuildDependencies`): each such image is built and tagged under its own name too.
    pub fn with_build_dependencies(&self, names: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut queue: Vec<String> = names.to_vec();
        queue.reverse();
        while let Some(name) = queue.pop() {
            if out.contains(&name) {
                continue;
            }
            if let Some(build) = self.lookup_service(&name).and_then(|s| s.build.as_ref()) {
                let mut deps: Vec<String> = build.context_services().map(String::from).collect();
                deps.reverse();
                queue.extend(deps);
            }
            out.push(name);
        }
        out
    }
}

/// Where a build context comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Context {
    /// A local folder (absolute path).
    Dir(PathBuf),
    /// A remote context handed to the daemon as is (git URL, https tarball).
    Remote(String),
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Dockerfile {
    /// A file: absolute path when the context is local; as written for remote contexts.
    Path(PathBuf),
    /// `dockerfile_inline` text.
    Inline(String),
}

/// A service's `build:` section, every field of the compose spec.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Build {
    pub context: Option<Context>,
    pub dockerfile: Option<Dockerfile>,
    /// Build args; `None` = a bare name with no value in the environment (compose drops it).
    pub args: IndexMap<String, Option<String>>,
    pub target: Option<String>,
    pub labels: IndexMap<String, String>,
    pub cache_from: Vec<String>,
    pub cache_to: Vec<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub network: Option<String>,
    /// `host:ip` pairs, as compose normalizes them.
    pub extra_hosts: Vec<(String, String)>,
    /// Bytes.
    pub shm_size: Option<u64>,
    pub secrets: Vec<BuildSecret>,
    pub ssh: Vec<SshKey>,
    pub tags: Vec<String>,
    pub platforms: Vec<String>,
    /// name -> folder (absolute), `docker-image://…`, `service:NAME`, or URL.
    pub additional_contexts: IndexMap<String, String>,
    pub entitlements: Vec<String>,
    pub privileged: bool,
    pub ulimits: IndexMap<String, Ulimit>,
    pub isolation: Option<String>,
    pub provenance: Option<String>,
    pub sbom: Option<String>,
}

/// A build secret a service asks for, resolved against the top-level definition.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSecret {
    /// The id the Dockerfile mounts (`RUN --mount=type=secret,id=…`): the `target`, else the source.
    pub id: String,
    pub source: SecretSource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    File(PathBuf),
    /// The name of an environment variable.
    Environment(String),
}

/// A top-level `secrets:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretDef {
    pub file: Option<PathBuf>,
    pub environment: Option<String>,
    pub external: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SshKey {
    pub id: String,
    /// Empty for the default agent socket.
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}
