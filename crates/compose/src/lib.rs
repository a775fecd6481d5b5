//! wharf-compose: reads a compose project exactly as docker compose v2 does.
//!
//! docker compose is built on compose-go; every step here mirrors one of its steps, quirks
//! included, because a project read differently is an image built from something else than
//! `docker compose build` would build. [`load`] runs them in order:
//!
//! - `project`: finds the files (`compose.yaml` … in the folder or its parents, the override
//!   file, `-f`, `COMPOSE_FILE`), reads `.env` / `--env-file` (`dotenv`), picks the project name
//!   and the profiles, then selects services;
//! - `yaml`: parses each file as go-yaml does (libyaml's parser; go-yaml's scalar types, merge
//!   keys, anchors, `!reset` / `!override`) into the untyped model of `value`;
//! - [`interpolate`]: `${VAR}` substitution in every value;
//! - `loader`: compose-go's per-file pipeline: `extends`, `include`, merging (`merge`), schema
//!   validation (`schema`, the compose specification's JSON schema), canonical forms
//!   (`canonical`, `volume`), absolute paths (`paths`, on Go's `filepath` from wharf-docker);
//! - `typed`: the checks of compose's typed decoding, profiles and consistency checks, and the
//!   [`model`] the builder and the pusher consume, with each service's build section as
//!   `docker compose config` prints it ([`Project::to_compose_json`]; `yaml_out` for YAML).
//!
//! Loading reads files only: it never talks to the Docker daemon or the network, and it reads
//! the environment only from [`ProjectOptions::environment`].

mod canonical;
mod dotenv;
mod error;
pub mod files;
pub mod interpolate;
mod loader;
mod merge;
pub mod model;
mod paths;
pub mod platform;
mod project;
pub mod redact;
mod schema;
mod tree;
mod typed;
mod value;
mod volume;
pub mod x_wharf;
mod yaml;
mod yaml_out;

pub use error::{Error, ErrorDetails, ErrorKind};
pub use model::*;
pub use project::normalize_project_name;
pub use yaml_out::to_yaml;

use indexmap::IndexMap;
use std::path::PathBuf;

/// How to find and read a project: docker compose's project options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectOptions {
    /// `-f` files, in merge order (relative to `working_dir`).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--profile` (empty: `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    /// `--env-file` (empty: `COMPOSE_ENV_FILES`, else the project's `.env`).
    pub env_files: Vec<PathBuf>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// The process's current directory.
    pub working_dir: PathBuf,
    /// The process environment. `COMPOSE_FILE`, `COMPOSE_PATH_SEPARATOR`, `COMPOSE_PROFILES`,
    /// `COMPOSE_PROJECT_NAME`, `COMPOSE_ENV_FILES`, `COMPOSE_DISABLE_ENV_FILE`, `HOME` and
    /// every interpolated variable are read from here, never from the real environment.
    pub environment: IndexMap<String, String>,
}

/// Loads the project: every active service (profiles applied).
pub fn load(opts: &ProjectOptions) -> Result<Project, Error> {
    load_services(opts, &[])
}

/// Loads the project keeping only `services` (names or `filepath.Match` patterns, as
/// `docker compose config SERVICE…` takes them) and what they depend on; naming a service
/// enables its profiles. An empty list keeps every active service.
pub fn load_services(opts: &ProjectOptions, services: &[String]) -> Result<Project, Error> {
    // Loading recurses along the document's nesting, which YAML allows to be thousands of
    // levels deep (go-yaml stops at 10000): a thread with a large stack keeps that an error or
    // a result instead of a stack overflow.
    const STACK: usize = 512 << 20;
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("compose-load".into())
            .stack_size(STACK)
            .spawn_scoped(scope, || {
                let _span = tracing::debug_span!("compose.load").entered();
                project::load_project(opts, services)
            });
        match worker {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(Error::invalid(
                    "the compose loader failed unexpectedly on this project",
                ))
            }),
            Err(_) => project::load_project(opts, services),
        }
    })
}

impl Project {
    /// What `docker compose config --format json` prints, restricted to what wharf reads:
    /// the project name, each service's `profiles`, `build` and `image`, and the top-level
    /// `x-` extension fields. Values are resolved: a literal `$` is `$` (compose prints `$$`).
    pub fn to_compose_json(&self) -> serde_json::Value {
        let mut root = serde_json::Map::new();
        root.insert("name".into(), serde_json::Value::String(self.name.clone()));
        let mut services = serde_json::Map::new();
        for (name, s) in &self.services {
            let mut entry = s.compose.clone();
            if let Some(build) = entry.get_mut("build").and_then(|b| b.as_object_mut()) {
                build.retain(|k, _| !k.starts_with("x-"));
            }
            services.insert(name.clone(), entry);
        }
        root.insert("services".into(), serde_json::Value::Object(services));
        let mut ext: Vec<(&String, &serde_json::Value)> = self.extensions.iter().collect();
        ext.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in ext {
            root.insert(k.clone(), v.clone());
        }
        serde_json::Value::Object(root)
    }

    /// The same as [`Project::to_compose_json`] in YAML, as `--format yaml` prints it (where
    /// compose also shows each service's `x-` fields).
    pub fn to_compose_yaml(&self) -> String {
        let mut root = serde_json::Map::new();
        root.insert("name".into(), serde_json::Value::String(self.name.clone()));
        let mut services = serde_json::Map::new();
        for (name, s) in &self.services {
            let mut entry = match &s.compose {
                serde_json::Value::Object(m) => m.clone(),
                _ => serde_json::Map::new(),
            };
            // In YAML compose prints both limits of a ulimit, zeros included.
            if let Some(serde_json::Value::Object(limits)) = entry
                .get_mut("build")
                .and_then(|b| b.as_object_mut())
                .and_then(|b| b.get_mut("ulimits"))
            {
                for limit in limits.values_mut() {
                    if let serde_json::Value::Object(l) = limit {
                        let soft = l.get("soft").cloned().unwrap_or(serde_json::json!(0));
                        let hard = l.get("hard").cloned().unwrap_or(serde_json::json!(0));
                        l.clear();
                        l.insert("soft".into(), soft);
                        l.insert("hard".into(), hard);
                    }
                }
            }
            let mut ext: Vec<(&String, &serde_json::Value)> = s.extensions.iter().collect();
            ext.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in ext {
                entry.insert(k.clone(), v.clone());
            }
            services.insert(name.clone(), serde_json::Value::Object(entry));
        }
        root.insert("services".into(), serde_json::Value::Object(services));
        let mut ext: Vec<(&String, &serde_json::Value)> = self.extensions.iter().collect();
        ext.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in ext {
            root.insert(k.clone(), v.clone());
        }
        yaml_out::to_yaml(&serde_json::Value::Object(root))
    }

    /// The image name of every service, as `config --images` prints them.
    pub fn image_names(&self) -> Vec<String> {
        self.services
            .values()
            .map(|s| s.image_name(&self.name))
            .collect()
    }

    /// Service names with every service after the services it depends on, as
    /// `config --services` prints them.
    pub fn service_names_in_dependency_order(&self) -> Vec<String> {
        fn visit(
            name: &str,
            project: &Project,
            seen: &mut std::collections::BTreeSet<String>,
            out: &mut Vec<String>,
        ) {
            let Some(service) = project.services.get(name) else {
                return;
            };
            if !seen.insert(name.to_string()) {
                return;
            }
            let mut deps = service.depends_on.clone();
            deps.sort();
            for d in deps {
                visit(&d, project, seen, out);
            }
            out.push(name.to_string());
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for name in self.services.keys() {
            visit(name, self, &mut seen, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A scratch project folder with the given files.
    fn project(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("wharf-compose-unit-{}", std::process::id()))
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("scratch folder");
            }
            std::fs::write(p, text).expect("scratch file");
        }
        dir
    }

    fn options(dir: &Path, env: &[(&str, &str)]) -> ProjectOptions {
        ProjectOptions {
            working_dir: dir.to_path_buf(),
            environment: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_model_holds_what_the_builder_needs() {
        let dir = project(
            "model",
            &[(
                "compose.yaml",
                "name: Shop\nx-wharf: {registry: ecr}\nservices:\n  api:\n    build:\n      context: ./api\n      dockerfile: docker/Dockerfile\n      args: [TAG, UNSET, X=1]\n      secrets: [npm]\n      shm_size: 1g\n      extra_hosts: [\"db:10.0.0.1\"]\n    x-wharf: {repository: shop/api}\n  web:\n    build: https://github.com/org/web.git#main\n    image: web:${TAG}\nsecrets:\n  npm: {environment: NPM_TOKEN}\n",
            )],
        );
        let p = load(&options(&dir, &[("TAG", "1.0")])).expect("loads");
        assert_eq!(p.name, "shop");
        assert_eq!(
            p.x_wharf.as_ref().and_then(|x| x.registry.as_deref()),
            Some("ecr")
        );
        let api = &p.services["api"];
        let build = api.build.as_ref().expect("build");
        assert_eq!(build.context, Some(Context::Dir(dir.join("api"))));
        assert_eq!(
            build.dockerfile,
            Some(Dockerfile::Path(dir.join("api/docker/Dockerfile")))
        );
        assert_eq!(build.args.get("TAG"), Some(&Some("1.0".to_string())));
        assert_eq!(build.args.get("X"), Some(&Some("1".to_string())));
        assert!(!build.args.contains_key("UNSET"));
        assert_eq!(build.shm_size, Some(1 << 30));
        assert_eq!(build.extra_hosts, vec![("db".into(), "10.0.0.1".into())]);
        assert_eq!(
            build.secrets,
            vec![BuildSecret {
                id: "npm".into(),
                source: SecretSource::Environment("NPM_TOKEN".into())
            }]
        );
        assert_eq!(api.image_name(&p.name), "shop-api");
        assert_eq!(
            api.x_wharf.as_ref().and_then(|x| x.repository.as_deref()),
            Some("shop/api")
        );
        let web = &p.services["web"];
        assert_eq!(
            web.build.as_ref().and_then(|b| b.context.clone()),
            Some(Context::Remote(
                "https://github.com/org/web.git#main".into()
            ))
        );
        assert_eq!(web.image.as_deref(), Some("web:1.0"));
        let json = p.to_compose_json();
        assert_eq!(
            json["services"]["api"]["build"]["dockerfile"],
            "docker/Dockerfile"
        );
        assert_eq!(json["services"]["api"]["build"]["shm_size"], "1073741824");
    }

    #[test]
    fn discovery_env_files_and_profiles() {
        let dir = project(
            "discovery",
            &[
                (
                    "docker-compose.yml",
                    "services:\n  a: {image: \"a:${V}\"}\n  b: {image: b, profiles: [extra]}\n",
                ),
                (
                    "docker-compose.override.yml",
                    "services:\n  a: {build: .}\n",
                ),
                (".env", "V=dotenv\nCOMPOSE_PROFILES=extra\n"),
                ("sub/.keep", ""),
            ],
        );
        // From a subfolder: the files are found in the parent, the process environment wins
        // over .env, and COMPOSE_PROFILES may come from .env.
        let p = load(&options(&dir.join("sub"), &[("V", "process")])).expect("loads");
        assert_eq!(p.name, "discovery");
        assert_eq!(p.services["a"].image.as_deref(), Some("a:process"));
        assert!(p.services["a"].build.is_some());
        assert!(p.services.contains_key("b"));
        let p = load(&ProjectOptions {
            profiles: vec!["other".into()],
            ..options(&dir, &[])
        })
        .expect("loads");
        assert_eq!(p.services["a"].image.as_deref(), Some("a:dotenv"));
        assert!(!p.services.contains_key("b"));
    }

    #[test]
    fn a_later_env_file_reads_its_own_lines_first() {
        let dir = project(
            "env-file-order",
            &[
                (
                    "compose.yaml",
                    "services:\n  a: {image: \"a:${PORT}\", build: {context: ., args: {URL: \"${URL}\", FIRST: \"${FIRST}\"}}}\n",
                ),
                ("base.env", "HOST=localhost\nURL=\"http://${HOST}\"\nPORT=80\n"),
                (
                    "override.env",
                    "HOST=dev.example.com\nURL=\"http://${HOST}\"\nFIRST=${PORT}\nPORT=81\n",
                ),
            ],
        );
        let p = load(&ProjectOptions {
            env_files: vec!["base.env".into(), "override.env".into()],
            ..options(&dir, &[("HOST", "")])
        })
        .expect("loads");
        let a = &p.services["a"];
        let args = &a.build.as_ref().expect("build").args;
        // The process environment still comes first (an empty value counts as set).
        assert_eq!(args["URL"].as_deref(), Some("http://"));
        let p = load(&ProjectOptions {
            env_files: vec!["base.env".into(), "override.env".into()],
            ..options(&dir, &[])
        })
        .expect("loads");
        let a = &p.services["a"];
        let args = &a.build.as_ref().expect("build").args;
        assert_eq!(args["URL"].as_deref(), Some("http://dev.example.com"));
        assert_eq!(
            args["FIRST"].as_deref(),
            Some("80"),
            "an earlier file's value"
        );
        assert_eq!(a.image.as_deref(), Some("a:81"));
    }

    #[test]
    fn naming_a_service_enables_its_profiles() {
        let dir = project(
            "enable",
            &[
                (
                    "compose.yaml",
                    "services:\n  app: {build: ., profiles: [secret]}\n  other: {build: ., profiles: [secret]}\n  tool: {build: ., profiles: [tools]}\n  web: {build: ., platform: linux/386}\n",
                ),
                (".env", "DOCKER_DEFAULT_PLATFORM=linux/arm64\n"),
            ],
        );
        let p = load(&options(&dir, &[])).expect("loads");
        assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web"]);
        assert_eq!(
            p.disabled_services.keys().collect::<Vec<_>>(),
            ["app", "other", "tool"]
        );
        assert_eq!(p.services["web"].platform.as_deref(), Some("linux/386"));
        assert_eq!(p.default_platform.as_deref(), Some("linux/arm64"));
        // As compose-go's WithServicesEnabled: the whole profile comes in, in name order.
        let e = p.with_services_enabled(&["app".into(), "web".into(), "nope".into()]);
        assert_eq!(
            e.services.keys().collect::<Vec<_>>(),
            ["app", "other", "web"]
        );
        assert_eq!(e.disabled_services.keys().collect::<Vec<_>>(), ["tool"]);
        assert_eq!(e.profiles, ["", "secret"]);
        let p = load(&options(&dir, &[("DOCKER_DEFAULT_PLATFORM", "")])).expect("loads");
        assert_eq!(p.default_platform, None, "the process's empty value wins");
    }

    #[test]
    fn service_contexts_are_build_dependencies() {
        let dir = project(
            "build-deps",
            &[(
                "compose.yaml",
                "services:\n  main:\n    profiles: [m]\n    build: {context: ., additional_contexts: {a: service:dep1, b: service:dep2, c: ./x}}\n  dep1:\n    profiles: [off]\n    build: {context: ., additional_contexts: {s: service:sub}}\n  dep2: {build: .}\n  sub: {build: ., profiles: [off]}\n  alone: {build: .}\n",
            )],
        );
        // Disabled services count too (compose refuses an active one naming a disabled one).
        let p = load(&options(&dir, &[])).expect("loads");
        assert_eq!(
            p.with_build_dependencies(&["main".into()]),
            ["main", "dep1", "sub", "dep2"]
        );
        assert_eq!(
            p.with_build_dependencies(&["alone".into(), "dep2".into()]),
            ["alone", "dep2"]
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let dir = project(
            "errors",
            &[(
                "compose.yaml",
                "services:\n  api:\n    build:\n      context: .\n      args:\n        TAG: ${TAG:?set TAG}\n",
            )],
        );
        let e = load(&options(&dir, &[])).expect_err("refused");
        assert_eq!(e.kind, ErrorKind::Interpolation);
        assert_eq!(e.line, Some(6));
        let text = e.to_string();
        assert!(text.contains("compose.yaml:6:"), "{text}");
        assert!(text.contains("services.api.build.args.TAG"), "{text}");
        assert!(
            text.contains("required variable TAG is missing a value: set TAG"),
            "{text}"
        );
        assert!(text.contains("hint:"), "{text}");

        let dir = project(
            "unknown-key",
            &[(
                "compose.yaml",
                "services:\n  api:\n    image: x\n    biuld: .\n",
            )],
        );
        let e = load(&options(&dir, &[])).expect_err("refused");
        assert_eq!(e.kind, ErrorKind::Schema);
        assert_eq!(e.line, Some(4));
        assert!(e.to_string().contains("'biuld'"), "{e}");
    }

    #[test]
    fn extends_and_include_resolve_paths_against_their_files() {
        let dir = project(
            "paths",
            &[
                (
                    "compose.yaml",
                    "include: [lib/compose.yaml]\nservices:\n  app:\n    extends: {file: common/base.yml, service: base}\n",
                ),
                ("common/base.yml", "services:\n  base:\n    build: ./ctx\n"),
                ("lib/compose.yaml", "services:\n  worker:\n    build: ./w\n"),
            ],
        );
        let p = load(&options(&dir, &[])).expect("loads");
        let ctx = |s: &str| p.services[s].build.as_ref().and_then(|b| b.context.clone());
        assert_eq!(ctx("app"), Some(Context::Dir(dir.join("common/ctx"))));
        assert_eq!(ctx("worker"), Some(Context::Dir(dir.join("lib/w"))));
    }

    #[test]
    fn selected_services_bring_their_dependencies() {
        let dir = project(
            "select",
            &[(
                "compose.yaml",
                "services:\n  web: {image: web, depends_on: [api]}\n  api: {build: .}\n  tool: {image: t, profiles: [tools]}\n",
            )],
        );
        let p = load_services(&options(&dir, &[]), &["web".into()]).expect("loads");
        assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["api", "web"]);
        assert_eq!(p.service_names_in_dependency_order(), vec!["api", "web"]);
        let p = load_services(&options(&dir, &[]), &["tool".into()]).expect("loads");
        assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["tool"]);
        assert!(load_services(&options(&dir, &[]), &["nope".into()]).is_err());
    }
}
