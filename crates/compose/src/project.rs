//! Everything around the loader that docker compose's command line does: finding the compose
//! files, reading `.env` / `--env-file`, choosing and checking the project name, profiles,
//! normalization, typed decoding, selected services.

use crate::error::{Error, ErrorKind};
use crate::loader::{env_from_files, ConfigDetails, Env, Loader, Opts, Session};
use crate::model::{Project, Service};
use crate::value::{Map, Value};
use crate::yaml::{Document, YamlError};
use crate::ProjectOptions;
use indexmap::IndexMap;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::Rc;
use wharf_docker::filepath::{abs, base, clean, dir, join};

const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// compose's `NormalizeProjectName`: lowercase, only `[a-z0-9_-]`, no leading `_` or `-`.
pub fn normalize_project_name(s: &str) -> String {
    let lower = s.to_lowercase();
    let kept: String = lower
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

/// `source` says where the name came from (`-p`, `COMPOSE_PROJECT_NAME`), so the fix is findable.
fn invalid_project_name(v: &str, source: &str) -> Error {
    Error::invalid(format!(
        "invalid project name {v:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
    ))
    .hint(format!(
        "the name comes from {source}: use lowercase letters, digits, '-' and '_' (e.g. the folder name in lowercase)"
    ))
}

fn path_str(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

fn exists(p: &str) -> bool {
    std::fs::metadata(p).is_ok()
}

fn is_file(p: &str) -> bool {
    std::fs::metadata(p).map(|m| !m.is_dir()).unwrap_or(false)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

struct Setup {
    cwd: String,
    process_env: Env,
    project_dir: Option<String>,
    config_paths: Vec<String>,
    env: Env,
    env_files: Vec<String>,
}

impl Setup {
    fn working_dir(&self) -> String {
        if let Some(d) = &self.project_dir {
            return d.clone();
        }
        if let Some(first) = self.config_paths.first() {
            return dir(&abs(first, &self.cwd));
        }
        self.cwd.clone()
    }

    fn with_env_files(&mut self, explicit: &[String]) -> Result<(), Error> {
        if !explicit.is_empty() {
            self.env_files = explicit.to_vec();
            return Ok(());
        }
        // compose reads this one from the process environment only, never from .env.
        if let Some(v) = self.process_env.get("COMPOSE_DISABLE_ENV_FILE") {
            match parse_bool(v) {
                Some(true) => return Ok(()),
                Some(false) => {}
                None => {
                    return Err(Error::invalid(format!(
                        "strconv.ParseBool: parsing {v:?}: invalid syntax"
                    ))
                    .hint("set COMPOSE_DISABLE_ENV_FILE to true or false"))
                }
            }
        }
        let f = join(&[&self.working_dir(), ".env"]);
        if is_file(&f) {
            self.env_files = vec![f];
        }
        Ok(())
    }

    fn with_dot_env(&mut self) -> Result<(), Error> {
        let from_files = env_from_files(&self.env, &self.env_files, &self.cwd)?;
        for (k, v) in from_files {
            self.env.entry(k).or_insert(v);
        }
        Ok(())
    }

    fn with_config_file_env(&mut self) -> Result<(), Error> {
        if !self.config_paths.is_empty() {
            return Ok(());
        }
        let Some(files) = self.env.get("COMPOSE_FILE").cloned() else {
            return Ok(());
        };
        let sep = match self.env.get("COMPOSE_PATH_SEPARATOR") {
            Some(s) if !s.is_empty() => s.clone(),
            _ => ":".to_string(),
        };
        let mut paths = Vec::new();
        for f in files.split(sep.as_str()) {
            if f == "-" {
                paths.push(f.to_string());
                continue;
            }
            let p = abs(f, &self.cwd);
            if !exists(&p) {
                return Err(Error::new(
                    ErrorKind::NoConfigFile,
                    format!("stat {p}: no such file or directory"),
                )
                .hint(
                    "fix COMPOSE_FILE (paths separated by COMPOSE_PATH_SEPARATOR, default ':')",
                ));
            }
            paths.push(p);
        }
        self.config_paths = paths;
        Ok(())
    }

    fn with_default_config_path(&mut self) {
        if !self.config_paths.is_empty() {
            return;
        }
        let mut pwd = self.working_dir();
        loop {
            let candidates: Vec<String> = DEFAULT_FILES
                .iter()
                .map(|n| join(&[&pwd, n]))
                .filter(|f| exists(f))
                .collect();
            if let Some(winner) = candidates.first() {
                if candidates.len() > 1 {
                    tracing::warn!(
                        "Found multiple config files with supported names: {}",
                        candidates.join(", ")
                    );
                    tracing::warn!("Using {winner}");
                }
                self.config_paths.push(winner.clone());
                let overrides: Vec<String> = OVERRIDE_FILES
                    .iter()
                    .map(|n| join(&[&pwd, n]))
                    .filter(|f| exists(f))
                    .collect();
                if let Some(o) = overrides.first() {
                    if overrides.len() > 1 {
                        tracing::warn!(
                            "Found multiple override files with supported names: {}",
                            overrides.join(", ")
                        );
                        tracing::warn!("Using {o}");
                    }
                    self.config_paths.push(o.clone());
                }
                return;
            }
            let parent = dir(&pwd);
            if parent == pwd {
                return;
            }
            pwd = parent;
        }
    }
}

/// What `ProjectOptions` resolve to before loading: the files, the project folder, the
/// environment for interpolation, the profiles and the project name.
struct Prepared {
    files: Vec<String>,
    working_dir: String,
    env: Env,
    profiles: Vec<String>,
    name: String,
}

fn prepare(opts: &ProjectOptions, session: &Session) -> Result<Prepared, Error> {
    let cwd = session.cwd.clone();
    let mut env: Env = opts.environment.clone();
    if !env.contains_key("PWD") {
        env.insert("PWD".into(), cwd.clone());
    }
    let explicit_env_files: Vec<String> = if !opts.env_files.is_empty() {
        opts.env_files.iter().map(|p| path_str(p)).collect()
    } else {
        env.get("COMPOSE_ENV_FILES")
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut config_paths = Vec::new();
    for f in &opts.files {
        let f = path_str(f);
        if f == "-" {
            return Err(Error::invalid(
                "reading the compose file from standard input (-f -) is not supported",
            )
            .hint("write the compose file to disk and pass its path with -f"));
        }
        config_paths.push(f);
    }
    let mut setup = Setup {
        cwd: cwd.clone(),
        process_env: opts.environment.clone(),
        project_dir: opts
            .project_directory
            .as_ref()
            .map(|p| abs(&path_str(p), &cwd)),
        config_paths,
        env,
        env_files: Vec::new(),
    };
    // Before anything else docker compose copies the COMPOSE_* variables of the project's
    // .env (or --env-file) into its own process environment, unless already set there; they
    // then count as process variables everywhere (COMPOSE_DISABLE_ENV_FILE included). Any
    // error here is ignored, as compose does: the real pass below reports it.
    if setup.with_env_files(&explicit_env_files).is_ok() {
        if let Ok(from_files) = env_from_files(&setup.env, &setup.env_files, &cwd) {
            for (k, v) in from_files {
                if k.starts_with("COMPOSE_") && !setup.process_env.contains_key(&k) {
                    setup.process_env.insert(k.clone(), v.clone());
                    setup.env.entry(k).or_insert(v);
                }
            }
        }
    }
    setup.env_files = Vec::new();
    setup.with_env_files(&explicit_env_files)?;
    setup.with_dot_env()?;
    setup.with_config_file_env()?;
    if setup.config_paths.iter().any(|p| p == "-") {
        return Err(Error::invalid(
            "reading the compose file from standard input (-) is not supported",
        ));
    }
    setup.with_default_config_path();
    setup.with_env_files(&explicit_env_files)?;
    setup.with_dot_env()?;

    let profiles: Vec<String> = if !opts.profiles.is_empty() {
        opts.profiles.clone()
    } else {
        setup
            .env
            .get("COMPOSE_PROFILES")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    };
    if let Some(name) = &opts.project_name {
        if !name.is_empty() && normalize_project_name(name) != *name {
            return Err(invalid_project_name(name, "-p/--project-name"));
        }
    }
    if setup.config_paths.is_empty() {
        return Err(Error::new(
            ErrorKind::NoConfigFile,
            "no configuration file provided: not found",
        )
        .hint(format!(
            "add a compose.yaml to {} (or a parent folder), or name files with -f / COMPOSE_FILE",
            setup.working_dir()
        )));
    }
    let working_dir = setup.working_dir();
    let files: Vec<String> = setup.config_paths.iter().map(|p| abs(p, &cwd)).collect();
    for f in &files {
        session.read(f)?;
    }

    // Project name: -p, COMPOSE_PROJECT_NAME, `name:` in a file, else the folder.
    let mut named_in_yaml = false;
    if opts.project_name.as_deref().unwrap_or("").is_empty() {
        for f in &files {
            match session.peek_documents(f, first_doc_name)? {
                Ok(n) if !n.is_empty() => {
                    named_in_yaml = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => return Err(e.in_file(f)),
            }
        }
    }
    let mut env = setup.env;
    let (mut name, imperative) = match opts.project_name.as_deref() {
        Some(n) if !n.is_empty() => (n.to_string(), true),
        _ => match env.get("COMPOSE_PROJECT_NAME") {
            Some(n) if !n.is_empty() => (n.clone(), true),
            _ if !named_in_yaml => {
                let dirname = base(&working_dir);
                if let Ok(real) = std::fs::canonicalize(&working_dir) {
                    if real.file_name().map(|n| n.to_string_lossy().into_owned())
                        != Some(dirname.clone())
                    {
                        tracing::warn!(
                            "project has been loaded without an explicit name from a symlink. Using name {dirname:?}"
                        );
                    }
                }
                (normalize_project_name(&dirname), false)
            }
            _ => (String::new(), false),
        },
    };
    if imperative {
        if normalize_project_name(&name) != name {
            let source = if opts.project_name.as_deref().is_some_and(|n| !n.is_empty()) {
                "-p/--project-name"
            } else {
                "COMPOSE_PROJECT_NAME"
            };
            return Err(invalid_project_name(&name, source));
        }
    } else {
        let mut from_files = String::new();
        for f in &files {
            let found = session.peek_documents(f, |parsed| {
                let mut found = None;
                if let Ok(docs) = parsed {
                    let mut current = String::new();
                    for doc in docs {
                        match &doc.value {
                            Some(Value::Map(m)) => match m.get("name") {
                                Some(Value::Seq(_)) | Some(Value::Map(_)) => break,
                                Some(Value::Null) | None => {}
                                Some(v) => current = v.go_sprint(),
                            },
                            None => {}
                            Some(_) => break,
                        }
                        if !current.is_empty() {
                            found = Some(current.clone());
                        }
                    }
                }
                found
            })?;
            if let Some(n) = found {
                from_files = n;
            }
        }
        let lookup = |k: &str| env.get(k).cloned();
        let interpolated = crate::interpolate::substitute(&from_files, &lookup, &mut |k| {
            session.unset.borrow_mut().insert(k.to_string());
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Interpolation,
                format!("error while interpolating name: {e}"),
            )
            .at_key(&["name".to_string()])
        })?;
        let normalized = normalize_project_name(&interpolated);
        if !normalized.is_empty() {
            name = normalized;
        }
    }
    env.insert("COMPOSE_PROJECT_NAME".into(), name.clone());
    Ok(Prepared {
        files,
        working_dir,
        env,
        profiles,
        name,
    })
}

/// The `name:` of a file's first document, as compose's pre-check reads it.
fn first_doc_name(parsed: &Result<Vec<Document>, YamlError>) -> Result<String, Error> {
    let docs = parsed
        .as_ref()
        .map_err(|e| Error::syntax(None, e.line, e.column, format!("yaml: {}", e.message)))?;
    let Some(doc) = docs.first() else {
        return Ok(String::new());
    };
    match &doc.value {
        None => Ok(String::new()),
        Some(Value::Map(m)) => match m.get("name") {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::Seq(_)) | Some(Value::Map(_)) => Err(Error::new(
                ErrorKind::Schema,
                "yaml: unmarshal errors: `name` must be a string",
            )
            .at_key(&["name".to_string()])),
            Some(v) => Ok(v.go_sprint()),
        },
        Some(_) => Err(Error::invalid("top-level object must be a mapping")),
    }
}

/// compose-go's `Normalize`.
fn normalize(dict: &mut Map, env: &Env) {
    let mut uses_default = false;
    if let Some(Value::Map(services)) = dict.get_mut("services") {
        for service in services.values_mut() {
            let Value::Map(s) = service else { continue };
            if s.contains_key("provider") || s.contains_key("network_mode") {
                continue;
            }
            match s.get("networks") {
                None => {
                    let mut m = Map::new();
                    m.insert("default".into(), Value::Null);
                    s.insert("networks".into(), Value::Map(m));
                    uses_default = true;
                }
                Some(Value::Map(n)) if n.is_empty() => {
                    let mut m = Map::new();
                    m.insert("default".into(), Value::Null);
                    s.insert("networks".into(), Value::Map(m));
                    uses_default = true;
                }
                Some(Value::Map(n)) if n.contains_key("default") => uses_default = true,
                _ => {}
            }
        }
    }
    let mut networks = match dict.get("networks") {
        Some(Value::Map(m)) => m.clone(),
        _ => Map::new(),
    };
    if uses_default && !networks.contains_key("default") {
        networks.insert("default".into(), Value::Null);
    }
    if !networks.is_empty() {
        dict.insert("networks".into(), Value::Map(networks));
    }
    if let Some(Value::Map(services)) = dict.get_mut("services") {
        for service in services.values_mut() {
            let Value::Map(s) = service else { continue };
            if s.get("pull_policy").and_then(Value::as_str) == Some("if_not_present") {
                s.insert("pull_policy".into(), Value::Str("missing".into()));
            }
            if let Some(Value::Map(build)) = s.get_mut("build") {
                if build.get("context").is_none_or(Value::is_null) {
                    build.insert("context".into(), Value::Str(".".into()));
                }
                let no_dockerfile = build.get("dockerfile").is_none_or(Value::is_null);
                let no_inline = build.get("dockerfile_inline").is_none_or(Value::is_null);
                if no_dockerfile && no_inline {
                    build.insert("dockerfile".into(), Value::Str("Dockerfile".into()));
                }
                if let Some(args) = build.get_mut("args") {
                    *args = resolve_bare(std::mem::replace(args, Value::Null), env, false);
                }
            }
            if let Some(e) = s.get_mut("environment") {
                *e = resolve_bare(std::mem::replace(e, Value::Null), env, true);
            }
            let mut depends_on = match s.get("depends_on") {
                Some(Value::Map(m)) => m.clone(),
                _ => Map::new(),
            };
            let implicit = |restart: bool| {
                let mut m = Map::new();
                m.insert("condition".into(), Value::Str("service_started".into()));
                m.insert("restart".into(), Value::Bool(restart));
                m.insert("required".into(), Value::Bool(true));
                Value::Map(m)
            };
            if let Some(Value::Seq(links)) = s.get("links") {
                for l in links {
                    let link = l.go_sprint();
                    let parts: Vec<&str> = link.split(':').collect();
                    let link = if parts.len() == 2 {
                        parts[0].to_string()
                    } else {
                        link.clone()
                    };
                    depends_on.entry(link).or_insert_with(|| implicit(true));
                }
            }
            for ns in ["network_mode", "ipc", "pid", "uts", "cgroup"] {
                if let Some(Value::Str(r)) = s.get(ns) {
                    if let Some(shared) = r.strip_prefix("service:") {
                        depends_on
                            .entry(shared.to_string())
                            .or_insert_with(|| implicit(true));
                    }
                }
            }
            if let Some(Value::Seq(vf)) = s.get("volumes_from") {
                for v in vf {
                    let v = v.go_sprint();
                    if !v.starts_with("container:") {
                        let spec = v.split(':').next().unwrap_or("").to_string();
                        depends_on.entry(spec).or_insert_with(|| implicit(false));
                    }
                }
            }
            if let Some(Value::Seq(vols)) = s.get_mut("volumes") {
                for v in vols.iter_mut() {
                    if let Some(Value::Str(t)) = v.as_map_mut().and_then(|m| m.get_mut("target")) {
                        *t = clean(t);
                    }
                }
            }
            if !depends_on.is_empty() {
                s.insert("depends_on".into(), Value::Map(depends_on));
            }
        }
    }
}

/// compose-go's `resolve` in `Normalize`: bare names take their value from the environment
/// (dropped when unset, unless `keep_empty`).
fn resolve_bare(v: Value, env: &Env, keep_empty: bool) -> Value {
    match v {
        Value::Seq(items) => {
            let mut out = Vec::new();
            for item in items {
                if let Value::Str(s) = item {
                    if s.contains('=') {
                        out.push(Value::Str(s));
                    } else if let Some(val) = env.get(&s) {
                        out.push(Value::Str(format!("{s}={val}")));
                    } else if keep_empty {
                        out.push(Value::Str(s));
                    }
                }
            }
            Value::Seq(out)
        }
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                if !val.is_null() {
                    out.insert(k, val);
                    continue;
                }
                if let Some(e) = env.get(&k) {
                    out.insert(k, Value::Str(e.clone()));
                } else if keep_empty {
                    out.insert(k, Value::Null);
                }
            }
            Value::Map(out)
        }
        other => other,
    }
}

/// Whether service `name` is selected by `pattern` (a name or a `filepath.Match` pattern; a
/// malformed pattern selects nothing).
fn glob_match(pattern: &str, name: &str) -> bool {
    wharf_docker::filepath::matches(pattern, name).unwrap_or(false)
}

fn depends_on_of(services: &Map, name: &str) -> Vec<(String, bool)> {
    services
        .get(name)
        .and_then(Value::as_map)
        .and_then(|s| s.get("depends_on"))
        .and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let required = !matches!(
                        v.as_map().and_then(|c| c.get("required")),
                        Some(Value::Bool(false))
                    );
                    (k.clone(), required)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Loads the project; `selected` are service names (or patterns) as `docker compose config`
/// takes them (empty: every active service).
pub fn load_project(opts: &ProjectOptions, selected: &[String]) -> Result<Project, Error> {
    let cwd = if opts.working_dir.is_absolute() {
        path_str(&opts.working_dir)
    } else {
        let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        path_str(&base.join(&opts.working_dir))
    };
    let cwd = clean(&cwd);
    let session = Session::new(cwd, opts.environment.get("HOME").cloned());
    let result = load_in(opts, selected, &session);
    let unset = session.unset.borrow();
    for var in unset.iter() {
        tracing::warn!("The {var:?} variable is not set. Defaulting to a blank string.");
    }
    result.map_err(|e| locate(e, &session))
}

/// What to do about errors whose cause did not say.
fn default_hint(message: &str) -> Option<&'static str> {
    let rules: &[(&str, &str)] = &[
        (
            "cannot extend service",
            "check `extends.service` (and `extends.file`, relative to the project folder)",
        ),
        (
            "healthcheck.test must start",
            "start the test with \"CMD\", \"CMD-SHELL\" or \"NONE\"",
        ),
        ("duration", "write a duration such as 30s, 1m30s or 2h"),
        (
            "invalid suffix",
            "write a size such as 512m, 2g or a number of bytes",
        ),
        (
            "invalid size",
            "write a size such as 512m, 2g or a number of bytes",
        ),
        (
            "invalid command line string",
            "close the quotes of the command, or write it as a list",
        ),
        ("invalid boolean", "write true or false"),
        ("strconv.Parse", "write a number"),
        ("strconv.Atoi", "write a whole number"),
        (
            "invalid spec",
            "write volumes as SOURCE:TARGET[:MODE] or use the long syntax",
        ),
        (
            "port",
            "write ports as [HOST:]CONTAINER[/PROTOCOL] or use the long syntax",
        ),
        ("extra_hosts", "write extra hosts as host=ip (or host:ip)"),
        (
            "additional host",
            "write extra hosts as host=ip (or host:ip)",
        ),
        (
            "include",
            "check the include entry: path, project_directory and env_file",
        ),
        ("env file", "create the file, or mark it `required: false`"),
        ("label file", "create the label file or fix its path"),
        ("conflicts with", "rename one of the two definitions"),
        ("mutually exclusive", "keep only one of the two"),
        (
            "must be a mapping",
            "write this entry as a mapping (key: value)",
        ),
        (
            "ulimit",
            "write a ulimit as a number or as {soft: N, hard: N}",
        ),
    ];
    rules
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map(|(_, hint)| *hint)
}

/// Adds the file and position of the error's key path when the message lacks them, and a
/// hint when the cause gave none.
fn locate(mut e: Error, session: &Session) -> Error {
    if e.hint.is_none() {
        if let Some(h) = default_hint(&e.message) {
            e.hint = Some(h.to_string());
        }
    }
    if e.line.is_some() {
        return e;
    }
    let Some(key) = e.key_path.clone() else {
        return e;
    };
    let path: Vec<String> = key.split('.').map(String::from).collect();
    let mut search = path.as_slice();
    while !search.is_empty() {
        if let Some((file, line, col)) = session.locate(search) {
            if e.file.is_none() || e.file.as_deref() == Some(std::path::Path::new(&file)) {
                e.file = Some(file.into());
                e.line = Some(line);
                e.column = Some(col);
            }
            return e;
        }
        search = &search[..search.len() - 1];
    }
    e
}

fn load_in(
    opts: &ProjectOptions,
    selected: &[String],
    session: &Session,
) -> Result<Project, Error> {
    let prepared = prepare(opts, session)?;
    let env = Rc::new(prepared.env.clone());
    let loader = Loader { session };
    let config = ConfigDetails {
        working_dir: prepared.working_dir.clone(),
        files: prepared.files.clone(),
        env: env.clone(),
    };
    let load_opts = Opts {
        skip_validation: false,
        skip_extends: false,
        skip_include: false,
        skip_default_values: false,
        resolve_paths: true,
        local_dir: prepared.working_dir.clone(),
        env: env.clone(),
    };
    let mut dict = loader.load_yaml_model(&config, &load_opts, &[])?;
    if dict.is_empty() {
        return Err(Error::invalid("empty compose file")
            .in_file(prepared.files[0].clone())
            .hint("add a `services:` section"));
    }
    if prepared.name.is_empty() {
        return Err(Error::invalid("project name must not be empty").hint(
            "set `name:` to a non-empty value, or pass --project-name / COMPOSE_PROJECT_NAME",
        ));
    }
    dict.insert("name".into(), Value::Str(prepared.name.clone()));
    normalize(&mut dict, &env);
    build_project(dict, &prepared, &env, selected, session)
}

fn build_project(
    dict: Map,
    prepared: &Prepared,
    env: &Env,
    selected: &[String],
    session: &Session,
) -> Result<Project, Error> {
    let extensions: IndexMap<String, serde_json::Value> = dict
        .iter()
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| (k.clone(), v.to_output_json()))
        .collect();
    let secrets = crate::typed::secret_defs(&dict);
    let empty = Map::new();
    let services_map = dict
        .get("services")
        .and_then(Value::as_map)
        .unwrap_or(&empty);
    let mut typed: BTreeMap<String, Service> = BTreeMap::new();
    for (name, s) in services_map {
        let s = match s {
            Value::Map(m) => m.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(Error::invalid(format!(
                    "services.{name} must be a mapping, got {}",
                    other.go_type()
                )))
            }
        };
        let t = crate::typed::service(name, &s, &secrets)?;
        typed.insert(name.clone(), t.service);
    }
    let mut profiles = prepared.profiles.clone();
    let mut active: BTreeSet<String> = BTreeSet::new();
    let mut disabled: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, s) in &typed {
        if s.has_profile(&profiles) {
            active.insert(name.clone());
        } else {
            disabled.insert(name.clone(), s.profiles.clone());
        }
    }
    crate::typed::check_consistency(&dict, &active, &disabled)?;
    for name in &active {
        if let Some(Value::Map(s)) = services_map.get(name) {
            resolve_env_files(name, s, env)?;
            resolve_label_files(name, s)?;
        }
    }
    // `docker compose config SERVICE…`: enable the profiles of named services, then keep the
    // named services and what they depend on.
    if !selected.is_empty() {
        for name in selected {
            if !active.contains(name) {
                if let Some(p) = disabled.get(name) {
                    profiles.extend(p.iter().cloned());
                }
            }
        }
        active.clear();
        for (name, s) in &typed {
            if s.has_profile(&profiles) {
                active.insert(name.clone());
            }
        }
        let mut keep: BTreeSet<String> = BTreeSet::new();
        let mut queue: Vec<(String, bool)> = selected.iter().map(|s| (s.clone(), true)).collect();
        while let Some((pattern, required)) = queue.pop() {
            let matched: Vec<String> = active
                .iter()
                .filter(|n| glob_match(&pattern, n))
                .cloned()
                .collect();
            if matched.is_empty() {
                if required {
                    return Err(Error::invalid(format!("no such service: {pattern}")).hint(
                        "name a service defined in the project (and enabled by its profiles)",
                    ));
                }
                continue;
            }
            for m in matched {
                if keep.insert(m.clone()) {
                    queue.extend(depends_on_of(services_map, &m));
                }
            }
        }
        active = keep;
    }
    let mut container_names: BTreeMap<String, String> = BTreeMap::new();
    for name in &active {
        if let Some(cn) = services_map
            .get(name)
            .and_then(Value::as_map)
            .and_then(|s| s.get("container_name"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            if let Some(existing) = container_names.get(cn) {
                return Err(Error::invalid(format!(
                    "services.{name}: container name {cn:?} is already in use by service {existing}\""
                )));
            }
            container_names.insert(cn.to_string(), name.clone());
        }
    }
    let mut services: IndexMap<String, Service> = IndexMap::new();
    let mut disabled_services: IndexMap<String, Service> = IndexMap::new();
    for (name, s) in typed {
        if active.contains(&name) {
            services.insert(name, s);
        } else if disabled.contains_key(&name) {
            disabled_services.insert(name, s);
        }
    }
    let _ = session;
    Ok(Project {
        name: prepared.name.clone(),
        working_dir: PathBuf::from(&prepared.working_dir),
        files: prepared.files.iter().map(PathBuf::from).collect(),
        services,
        disabled_services,
        profiles,
        default_platform: env
            .get("DOCKER_DEFAULT_PLATFORM")
            .filter(|p| !p.is_empty())
            .cloned(),
        secrets,
        x_wharf: match dict.get("x-wharf") {
            Some(v) => Some(
                crate::x_wharf::project_settings(&v.to_output_json()).map_err(|e| {
                    Error::new(
                        ErrorKind::Schema,
                        format!("x-wharf.{}: {}", e.key.join("."), e.message),
                    )
                })?,
            ),
            None => None,
        },
        extensions,
    })
}

fn resolve_env_files(name: &str, s: &Map, env: &Env) -> Result<(), Error> {
    let Some(Value::Seq(files)) = s.get("env_file") else {
        return Ok(());
    };
    let service_env: Env = match s.get("environment") {
        Some(Value::Map(m)) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.go_sprint()))
            .collect(),
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|i| {
                let s = i.go_sprint();
                s.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect(),
        _ => Env::new(),
    };
    let mut vars = service_env.clone();
    for f in files {
        let Some(f) = f.as_map() else { continue };
        let path = f.get("path").map(Value::go_sprint).unwrap_or_default();
        let required = !matches!(f.get("required"), Some(Value::Bool(false)));
        let format = f.get("format").map(Value::go_sprint).unwrap_or_default();
        let meta = std::fs::metadata(&path);
        if meta.is_err() {
            if required {
                return Err(Error::invalid(format!(
                    "env file {path} not found: stat {path}: no such file or directory"
                ))
                .at_key(&["services".into(), name.into(), "env_file".into()])
                .hint("create the file, or mark it `required: false`"));
            }
            continue;
        }
        if !format.is_empty() && format != ".env" {
            return Err(Error::invalid(format!(
                "unsupported env_file format {format:?}"
            )));
        }
        let text = crate::loader::read_project_file(&path)?;
        let text = String::from_utf8_lossy(&text);
        let lookup = |k: &str| env.get(k).cloned().or_else(|| service_env.get(k).cloned());
        crate::dotenv::parse(&text, &mut vars, &lookup).map_err(|e| {
            let mut err = Error::invalid(format!("failed to read {path}: {e}"));
            err.file = Some(path.clone().into());
            if let crate::dotenv::DotenvError::Syntax { line, .. } = e {
                err.line = Some(line);
            }
            err
        })?;
    }
    Ok(())
}

fn resolve_label_files(name: &str, s: &Map) -> Result<(), Error> {
    let Some(Value::Seq(files)) = s.get("label_file") else {
        return Ok(());
    };
    let mut labels: Env = Env::new();
    for f in files {
        let path = f.go_sprint();
        if std::fs::metadata(&path).is_err() {
            return Err(Error::invalid(format!(
                "label file {path} not found: stat {path}: no such file or directory"
            ))
            .at_key(&["services".into(), name.into(), "label_file".into()]));
        }
        let text = crate::loader::read_project_file(&path)?;
        let text = String::from_utf8_lossy(&text);
        let snapshot = labels.clone();
        let lookup = |k: &str| snapshot.get(k).cloned();
        crate::dotenv::parse(&text, &mut labels, &lookup)
            .map_err(|e| Error::invalid(format!("failed to read {path}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert_eq!(normalize_project_name("My App_1"), "myapp_1");
        assert_eq!(normalize_project_name("__x"), "x");
        assert_eq!(normalize_project_name("Ünï"), "n");
    }

    #[test]
    fn globs() {
        assert!(glob_match("we*", "web"));
        assert!(glob_match("w?b", "web"));
        assert!(glob_match("[a-w]eb", "web"));
        assert!(!glob_match("api", "web"));
    }
}
