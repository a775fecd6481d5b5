//! The loading pipeline of compose-go, file by file: parse, interpolate, apply `extends`,
//! `!reset`/`!override`, `include`, merge into the model so far, remove redefinitions,
//! validate against the schema, canonicalize; then defaults, semantic checks, absolute paths
//! and normalization for the whole project.

use crate::canonical::{canonical, omit_empty, semantic_checks, set_defaults};
use crate::dotenv;
use crate::error::{Error, ErrorKind};
use crate::files;
use crate::interpolate::{substitute, InterpolateError};
use crate::merge::{enforce_unicity, extend_service, merge};
use crate::paths::PathResolver;
use crate::schema;
use crate::tree::matches;
use crate::value::{Map, Value};
use crate::yaml::{parse_documents, Document, YamlError};
use indexmap::IndexMap;
use std::cell::RefCell;
use std::collections::BTreeSet;
use wharf_docker::filepath::{abs, dir, is_abs, join, rel};

pub(crate) type Env = IndexMap<String, String>;

/// Shared state of one load: the process folder, the home folder for `~`, the files read
/// (to locate errors) and the variables found unset (warned about once).
pub(crate) struct Session {
    pub cwd: String,
    pub home: Option<String>,
    pub files: RefCell<Vec<(String, std::rc::Rc<str>)>>,
    pub unset: RefCell<BTreeSet<String>>,
    /// Documents parsed ahead (for the project name), taken by the loader: each file is
    /// parsed once.
    parsed: RefCell<std::collections::HashMap<String, Result<Vec<Document>, YamlError>>>,
}

impl Session {
    pub fn new(cwd: String, home: Option<String>) -> Self {
        Session {
            cwd,
            home,
            files: RefCell::new(Vec::new()),
            unset: RefCell::new(BTreeSet::new()),
            parsed: RefCell::new(std::collections::HashMap::new()),
        }
    }

    /// Looks at the parsed documents of a file (parsing it if needed, and keeping the result
    /// for the loader).
    pub fn peek_documents<T>(
        &self,
        filename: &str,
        f: impl FnOnce(&Result<Vec<Document>, YamlError>) -> T,
    ) -> Result<T, Error> {
        if !self.parsed.borrow().contains_key(filename) {
            let text = self.read(filename)?;
            let docs = parse_documents(&text);
            self.parsed.borrow_mut().insert(filename.to_string(), docs);
        }
        let parsed = self.parsed.borrow();
        match parsed.get(filename) {
            Some(docs) => Ok(f(docs)),
            None => Err(Error::invalid(format!("cannot read {filename}"))),
        }
    }

    /// The parsed documents of a file, parsed now unless they were already.
    pub fn take_documents(
        &self,
        filename: &str,
    ) -> Result<Result<Vec<Document>, YamlError>, Error> {
        if let Some(docs) = self.parsed.borrow_mut().remove(filename) {
            return Ok(docs);
        }
        let text = self.read(filename)?;
        Ok(parse_documents(&text))
    }

    pub fn read(&self, filename: &str) -> Result<std::rc::Rc<str>, Error> {
        if let Some((_, text)) = self.files.borrow().iter().find(|(f, _)| f == filename) {
            return Ok(text.clone());
        }
        let bytes = read_project_file(filename)?;
        let text: std::rc::Rc<str> = match String::from_utf8(bytes) {
            Ok(s) => s.into(),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Syntax,
                    "yaml: invalid leading UTF-8 octet or invalid UTF-8 content",
                )
                .in_file(filename)
                .hint("save the file as UTF-8 text"))
            }
        };
        self.files
            .borrow_mut()
            .push((filename.to_string(), text.clone()));
        Ok(text)
    }

    /// Finds the file and position of a key path, searching the files read, latest first.
    pub fn locate(&self, path: &[String]) -> Option<(String, usize, usize)> {
        let files = self.files.borrow();
        for (name, text) in files.iter().rev() {
            if let Some((line, col)) = crate::yaml::locate(text, path) {
                return Some((name.clone(), line, col));
            }
        }
        None
    }
}

/// compose-go's loader options that vary between the main project, extended files and
/// included projects.
#[derive(Clone)]
pub(crate) struct Opts {
    pub skip_validation: bool,
    pub skip_extends: bool,
    pub skip_include: bool,
    pub skip_default_values: bool,
    pub resolve_paths: bool,
    /// Where relative `extends.file` and `include` paths start (the local resource loader).
    pub local_dir: String,
    /// The variables interpolation reads.
    pub env: std::rc::Rc<Env>,
}

pub(crate) struct ConfigDetails {
    pub working_dir: String,
    pub files: Vec<String>,
    pub env: std::rc::Rc<Env>,
}

type ResetPaths = Vec<Vec<String>>;

pub(crate) struct Loader<'s> {
    pub session: &'s Session,
}

impl Loader<'_> {
    pub fn load_yaml_model(
        &self,
        config: &ConfigDetails,
        opts: &Opts,
        included: &[String],
    ) -> Result<Map, Error> {
        let mut dict = Map::new();
        for file in &config.files {
            let (d, _) = self.load_yaml_file(
                file,
                opts,
                &config.working_dir,
                &config.env,
                &mut Vec::new(),
                dict,
                included.to_vec(),
            )?;
            dict = d;
        }
        if !opts.skip_default_values {
            set_defaults(&mut dict).map_err(Error::invalid)?;
        }
        if !opts.skip_validation {
            semantic_checks(&dict).map_err(Error::invalid)?;
        }
        if opts.resolve_paths {
            PathResolver {
                working_dir: &config.working_dir,
                home: self.session.home.as_deref(),
            }
            .resolve(&mut dict)
            .map_err(Error::invalid)?;
        }
        resolve_environment(&mut dict, &config.env);
        Ok(dict)
    }

    #[allow(clippy::too_many_arguments)]
    fn load_yaml_file(
        &self,
        filename: &str,
        opts: &Opts,
        working_dir: &str,
        env: &std::rc::Rc<Env>,
        tracker: &mut [(String, String)],
        mut dict: Map,
        mut included: Vec<String>,
    ) -> Result<(Map, ResetPaths), Error> {
        let docs: Vec<Document> = self.session.take_documents(filename)?.map_err(|e| {
            Error::syntax(
                Some(filename),
                e.line,
                e.column,
                format!("yaml: {}", e.message),
            )
        })?;
        let mut last_reset = Vec::new();
        for doc in docs {
            let mut cfg = match doc.value {
                Some(Value::Map(m)) => m,
                _ => {
                    return Err(Error::invalid("top-level object must be a mapping")
                        .in_file(filename)
                        .hint("a compose file is a mapping with keys such as `services:`"))
                }
            };
            self.interpolate_model(&mut cfg, &opts.env)
                .map_err(|e| e.in_file(filename))?;
            if !opts.skip_extends {
                self.apply_extends(&mut cfg, filename, opts, tracker, &[&doc.reset_paths])?;
            }
            apply_resets(&doc.reset_paths, &mut dict);
            if !opts.skip_include {
                included.push(filename.to_string());
                self.apply_include(working_dir, env, &mut cfg, opts, &included)
                    .map_err(|e| e.in_file(filename))?;
            }
            // Services this document does not mention are unchanged since the previous
            // document was validated and canonicalized: only the others are processed again.
            let touched: Option<Vec<String>> = if dict.is_empty() {
                None
            } else {
                match cfg.get("services") {
                    None => Some(Vec::new()),
                    Some(Value::Map(m)) => Some(m.keys().cloned().collect()),
                    Some(_) => None,
                }
            };
            let touched = touched.as_deref();
            dict = merge(dict, cfg).map_err(|e| Error::invalid(e.0).in_file(filename))?;
            enforce_unicity(&mut dict, touched)
                .map_err(|e| Error::invalid(e.0).in_file(filename))?;
            if !opts.skip_validation {
                if let Err(e) = schema::validate(&dict, touched) {
                    return Err(self.schema_error(filename, e));
                }
                self.check_x_wharf(filename, &dict, touched)?;
                if dict.shift_remove("version").is_some() {
                    tracing::warn!(
                        "{filename}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"
                    );
                }
            }
            canonical(&mut dict, touched).map_err(|e| Error::invalid(e).in_file(filename))?;
            omit_empty(&mut dict);
            enforce_unicity(&mut dict, touched)
                .map_err(|e| Error::invalid(e.0).in_file(filename))?;
            last_reset = doc.reset_paths;
        }
        Ok((dict, last_reset))
    }

    /// wharf's own `x-wharf` blocks (top level and the services this document touched), which
    /// compose's schema lets through as extensions.
    fn check_x_wharf(
        &self,
        filename: &str,
        dict: &Map,
        touched: Option<&[String]>,
    ) -> Result<(), Error> {
        if let Some(v) = dict.get("x-wharf") {
            if let Err(e) = crate::x_wharf::project_settings(&v.to_output_json()) {
                return Err(self.x_wharf_error(filename, vec!["x-wharf".into()], e));
            }
        }
        let Some(Value::Map(services)) = dict.get("services") else {
            return Ok(());
        };
        for (name, service) in services {
            if touched.is_some_and(|t| !t.contains(name)) {
                continue;
            }
            if let Some(v) = service.as_map().and_then(|s| s.get("x-wharf")) {
                if let Err(e) = crate::x_wharf::service_settings(&v.to_output_json()) {
                    let at = vec!["services".into(), name.clone(), "x-wharf".into()];
                    return Err(self.x_wharf_error(filename, at, e));
                }
            }
        }
        Ok(())
    }

    fn x_wharf_error(
        &self,
        filename: &str,
        mut path: Vec<String>,
        e: crate::x_wharf::SettingsError,
    ) -> Error {
        path.extend(e.key.iter().cloned());
        let key_path = path.join(".");
        let mut err = Error::new(
            ErrorKind::Schema,
            format!("validating {filename}: {key_path}: {}", e.message),
        );
        err.key_path = Some(key_path);
        err = err.hint(match e.closest {
            Some(known) => format!("did you mean `{known}`? (see the x-wharf keys in the README)"),
            None => "see the x-wharf keys in the README".to_string(),
        });
        match self.session.locate(&path) {
            Some((file, line, col)) => {
                err.file = Some(file.into());
                err.line = Some(line);
                err.column = Some(col);
            }
            None => err.file = Some(filename.into()),
        }
        err
    }

    fn schema_error(&self, filename: &str, e: schema::SchemaError) -> Error {
        let mut err = Error::new(
            ErrorKind::Schema,
            format!("validating {filename}: {}", e.message),
        )
        .at_key(&e.path);
        err.key_path = Some(e.path.join("."));
        let hint = if e.message.contains("additional properties") {
            "remove the key or fix its spelling; custom keys must start with x-".to_string()
        } else if e.message.contains(" must be a ") {
            "change the value to the type the compose specification expects".to_string()
        } else {
            "see the compose specification for this key".to_string()
        };
        err = err.hint(hint);
        let mut search = e.path.clone();
        if let Some(unexpected) = e.unexpected.first() {
            search.push(unexpected.clone());
        }
        if let Some((file, line, col)) = self.session.locate(&search) {
            err.file = Some(file.into());
            err.line = Some(line);
            err.column = Some(col);
            err.message = e.message.clone();
        } else {
            err.file = Some(filename.into());
            err.message = e.message.clone();
        }
        err
    }

    /// Interpolates every string of a model; the keys stay as written.
    pub fn interpolate_model(&self, cfg: &mut Map, env: &Env) -> Result<(), Error> {
        let mut path: Vec<String> = Vec::new();
        for (k, v) in cfg.iter_mut() {
            path.push(k.clone());
            let r = self.interpolate_value(v, &mut path, env);
            path.pop();
            r?;
        }
        Ok(())
    }

    fn interpolate_value(
        &self,
        v: &mut Value,
        path: &mut Vec<String>,
        env: &Env,
    ) -> Result<(), Error> {
        match v {
            Value::Str(s) => {
                let cast = cast_for(path);
                if cast.is_none() && !s.contains('$') {
                    return Ok(());
                }
                let lookup = |k: &str| env.get(k).cloned();
                let mut unset = |k: &str| {
                    self.session.unset.borrow_mut().insert(k.to_string());
                };
                let out = substitute(s, &lookup, &mut unset).map_err(|e| {
                    let at = path.join(".");
                    let (message, hint) = match &e {
                        InterpolateError::Invalid { template } => (
                            format!(
                                "invalid interpolation format for {at}.\nYou may need to escape any $ with another $.\n{template}"
                            ),
                            "write a literal $ as $$, and variables as $NAME or ${NAME}".to_string(),
                        ),
                        InterpolateError::Required { variable, .. } => (
                            format!("error while interpolating {at}: {e}"),
                            format!("set {variable} in the environment or in the project's .env file"),
                        ),
                        InterpolateError::TooDeep { .. } => (
                            format!("error while interpolating {at}: {e}"),
                            "nest fewer defaults: set the value in the environment or the .env file instead".to_string(),
                        ),
                    };
                    let mut err = Error::new(ErrorKind::Interpolation, message)
                        .at_key(path)
                        .hint(hint);
                    if let Some((_, line, col)) = self.session.locate(path) {
                        err.line = Some(line);
                        err.column = Some(col);
                    }
                    err
                })?;
                match cast {
                    None => *s = out,
                    Some(cast) => match cast_value(cast, &out) {
                        Ok(val) => *v = val,
                        Err(msg) => {
                            return Err(Error::new(
                                ErrorKind::Interpolation,
                                format!(
                                    "error while interpolating {}: failed to cast to expected type: {msg}",
                                    path.join(".")
                                ),
                            )
                            .at_key(path))
                        }
                    },
                }
                Ok(())
            }
            Value::Map(m) => {
                for (k, e) in m.iter_mut() {
                    path.push(k.clone());
                    let r = self.interpolate_value(e, path, env);
                    path.pop();
                    r?;
                }
                Ok(())
            }
            Value::Seq(items) => {
                path.push("[]".into());
                for e in items.iter_mut() {
                    if let Err(err) = self.interpolate_value(e, path, env) {
                        path.pop();
                        return Err(err);
                    }
                }
                path.pop();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn apply_extends(
        &self,
        cfg: &mut Map,
        filename: &str,
        opts: &Opts,
        tracker: &mut [(String, String)],
        post: &[&ResetPaths],
    ) -> Result<(), Error> {
        let Some(services) = cfg.get_mut("services") else {
            return Ok(());
        };
        let Value::Map(services) = services else {
            return Err(Error::invalid("services must be a mapping").in_file(filename));
        };
        // Only services with `extends` change; the others are left in place.
        let names: Vec<String> = services
            .iter()
            .filter(|(_, s)| s.as_map().is_some_and(|m| m.contains_key("extends")))
            .map(|(k, _)| k.clone())
            .collect();
        for name in names {
            let merged =
                self.apply_service_extends(filename, &name, services, opts, tracker, post)?;
            services.insert(name, merged);
        }
        Ok(())
    }

    fn apply_service_extends(
        &self,
        ctx_file: &str,
        name: &str,
        services: &mut Map,
        opts: &Opts,
        tracker: &[(String, String)],
        post: &[&ResetPaths],
    ) -> Result<Value, Error> {
        let service = match services.get(name) {
            None | Some(Value::Null) => return Ok(Value::Null),
            Some(Value::Map(m)) if !m.contains_key("extends") => {
                return Ok(Value::Map(m.clone()));
            }
            Some(Value::Map(m)) => m.clone(),
            Some(_) => {
                return Err(
                    Error::invalid(format!("services.{name} must be a mapping")).in_file(ctx_file)
                )
            }
        };
        let Some(extends) = service.get("extends") else {
            return Ok(Value::Map(service));
        };
        let mut filename = ctx_file.to_string();
        let (reference, file) = match extends {
            Value::Map(v) => match v.get("service") {
                Some(Value::Str(s)) => (s.clone(), v.get("file").cloned()),
                _ => {
                    return Err(
                        Error::invalid(format!("extends.{name}.service is required"))
                            .in_file(ctx_file),
                    )
                }
            },
            Value::Str(s) => (s.clone(), None),
            _ => (String::new(), None),
        };
        let mut other_services: Option<Map> = None;
        let mut processor: ResetPaths = Vec::new();
        match file {
            Some(Value::Null) | None => {
                if !services.contains_key(&reference) {
                    return Err(Error::invalid(format!(
                        "cannot extend service {name:?} in {filename}: service {reference:?} not found"
                    ))
                    .at_key(&["services".into(), name.into(), "extends".into()])
                    .hint("name a service defined in the same file, or add `file:`"));
                }
            }
            Some(Value::Str(ref_file)) => {
                let (svcs, reset) =
                    self.extends_base_from_file(name, &reference, &filename, &ref_file, opts)?;
                other_services = Some(svcs);
                processor = reset;
                filename = ref_file;
            }
            Some(other) => {
                return Err(Error::invalid(format!(
                    "services.{name}.extends.file must be a string, got {}",
                    other.go_type()
                ))
                .in_file(ctx_file))
            }
        }
        let entry = (filename.clone(), name.to_string());
        if tracker.contains(&entry) {
            let mut lines = vec![
                "Circular reference:".to_string(),
                format!("  {} in {}", tracker[0].1, tracker[0].0),
            ];
            for (f, s) in tracker.iter().skip(1).chain(std::iter::once(&entry)) {
                lines.push(format!("  extends {s} in {f}"));
            }
            return Err(Error::invalid(lines.join("\n"))
                .at_key(&["services".into(), name.into(), "extends".into()])
                .hint("break the cycle of `extends`"));
        }
        let mut branch = tracker.to_vec();
        branch.push(entry);
        let base = match &mut other_services {
            Some(svcs) => self.apply_service_extends(
                ctx_file,
                &reference,
                svcs,
                opts,
                &branch,
                &[&processor],
            )?,
            None => {
                let noop: ResetPaths = Vec::new();
                self.apply_service_extends(ctx_file, &reference, services, opts, &branch, &[&noop])?
            }
        };
        let mut source = match base {
            Value::Null => return Ok(Value::Map(service)),
            Value::Map(m) => m,
            other => {
                return Err(Error::invalid(format!(
                    "services.{reference} must be a mapping, got {}",
                    other.go_type()
                )))
            }
        };
        for reset in post {
            let mut wrapper = Map::new();
            let mut inner = Map::new();
            inner.insert(name.to_string(), Value::Map(std::mem::take(&mut source)));
            wrapper.insert("services".into(), Value::Map(inner));
            apply_resets(reset, &mut wrapper);
            source = wrapper
                .shift_remove("services")
                .and_then(|s| match s {
                    Value::Map(mut m) => m.shift_remove(name),
                    _ => None,
                })
                .and_then(|v| match v {
                    Value::Map(m) => Some(m),
                    _ => None,
                })
                .unwrap_or_default();
        }
        let mut merged = extend_service(source, service).map_err(|e| Error::invalid(e.0))?;
        merged.shift_remove("extends");
        let merged = Value::Map(merged);
        match &mut other_services {
            Some(svcs) => {
                svcs.insert(name.to_string(), merged.clone());
            }
            None => {
                services.insert(name.to_string(), merged.clone());
            }
        }
        Ok(merged)
    }

    fn extends_base_from_file(
        &self,
        name: &str,
        reference: &str,
        path: &str,
        ref_path: &str,
        opts: &Opts,
    ) -> Result<(Map, ResetPaths), Error> {
        let local = local_abs(&opts.local_dir, ref_path);
        let local_dir = dir(&local);
        let rel_working_dir = local_loader_dir(&opts.local_dir, ref_path);
        let mut extends_opts = opts.clone();
        extends_opts.local_dir = local_dir;
        extends_opts.resolve_paths = false;
        extends_opts.skip_include = true;
        extends_opts.skip_extends = true;
        extends_opts.skip_validation = true;
        extends_opts.skip_default_values = true;
        let empty_env = std::rc::Rc::new(Env::new());
        let (mut source, reset) = self
            .load_yaml_file(
                &local,
                &extends_opts,
                &rel_working_dir,
                &empty_env,
                &mut Vec::new(),
                Map::new(),
                Vec::new(),
            )
            .map_err(|e| {
                e.at_key(&[
                    "services".into(),
                    name.into(),
                    "extends".into(),
                    "file".into(),
                ])
                .hint(format!(
                    "`extends.file` of service {name} is resolved against the project folder"
                ))
            })?;
        match source.get("services") {
            None => {
                return Err(Error::invalid(format!(
                    "cannot extend service {name:?} in {local}: no services section"
                )))
            }
            Some(Value::Map(s)) => {
                if !s.contains_key(reference) {
                    return Err(Error::invalid(format!(
                        "cannot extend service {name:?} in {path}: service {reference:?} not found in {ref_path}"
                    ))
                    .at_key(&["services".into(), name.into(), "extends".into()]));
                }
            }
            Some(_) => {
                return Err(Error::invalid(format!(
                    "cannot extend service {name:?} in {local}: services must be a mapping"
                )))
            }
        }
        PathResolver {
            working_dir: &rel_working_dir,
            home: self.session.home.as_deref(),
        }
        .resolve(&mut source)
        .map_err(Error::invalid)?;
        let services = match source.shift_remove("services") {
            Some(Value::Map(s)) => s,
            _ => Map::new(),
        };
        Ok((services, reset))
    }

    fn apply_include(
        &self,
        working_dir: &str,
        env: &std::rc::Rc<Env>,
        cfg: &mut Map,
        opts: &Opts,
        included: &[String],
    ) -> Result<(), Error> {
        let Some(source) = cfg.get("include").cloned() else {
            return Ok(());
        };
        if source.is_null() {
            cfg.shift_remove("include");
            return Ok(());
        }
        let Value::Seq(entries) = source else {
            return Err(Error::invalid(format!(
                "`include` must be a list, got {}",
                source.go_sprint()
            ))
            .at_key(&["include".into()]));
        };
        for (index, entry) in entries.into_iter().enumerate() {
            let at = vec!["include".to_string(), index.to_string()];
            let mut r =
                IncludeConfig::from_value(entry).map_err(|m| Error::invalid(m).at_key(&at))?;
            let mut rel_working_dir = String::new();
            let mut inner_included = included.to_vec();
            for i in 0..r.path.len() {
                let path = local_abs(&opts.local_dir, &r.path[i]);
                if i == 0 {
                    if r.project_directory.is_empty() {
                        rel_working_dir = local_loader_dir(&opts.local_dir, &path);
                        r.project_directory = dir(&path);
                    } else if !is_abs(&r.project_directory) {
                        rel_working_dir = local_loader_dir(&opts.local_dir, &r.project_directory);
                        r.project_directory = join(&[working_dir, &r.project_directory]);
                    } else {
                        rel_working_dir = r.project_directory.clone();
                    }
                    if inner_included.contains(&path) {
                        inner_included.push(path.clone());
                        return Err(Error::invalid(format!(
                            "include cycle detected:\n{}\n include {}",
                            inner_included[0],
                            inner_included[1..].join("\n include ")
                        ))
                        .hint("remove the include that leads back to an including file"));
                    }
                }
                r.path[i] = path;
            }
            let mut include_opts = opts.clone();
            include_opts.resolve_paths = true;
            include_opts.local_dir = r.project_directory.clone();
            let env_files: Vec<String> = if r.env_file.is_empty() {
                let f = join(&[&r.project_directory, ".env"]);
                match std::fs::metadata(&f) {
                    Ok(m) if !m.is_dir() => vec![f],
                    _ => Vec::new(),
                }
            } else {
                let mut out = Vec::new();
                for f in &r.env_file {
                    let mut f = f.clone();
                    if !is_abs(&f) {
                        f = join(&[working_dir, &f]);
                        let full = abs(&f, &self.session.cwd);
                        match std::fs::metadata(&full) {
                            Err(_) => {
                                return Err(Error::invalid(format!(
                                    "stat {f}: no such file or directory"
                                ))
                                .at_key(&at)
                                .hint("create the env_file or fix its path"))
                            }
                            Ok(m) if m.is_dir() => {
                                return Err(Error::invalid(format!("{f} is not a file")).at_key(&at))
                            }
                            Ok(_) => {}
                        }
                    }
                    out.push(f);
                }
                out
            };
            let from_files = env_from_files(env, &env_files, &self.session.cwd)?;
            let mut include_env: Env = (**env).clone();
            for (k, v) in from_files {
                include_env.entry(k).or_insert(v);
            }
            let include_env = std::rc::Rc::new(include_env);
            include_opts.env = include_env.clone();
            let config = ConfigDetails {
                working_dir: rel_working_dir,
                files: r.path.clone(),
                env: include_env,
            };
            let imported = self.load_yaml_model(&config, &include_opts, &inner_included)?;
            import_resources(imported, cfg)?;
        }
        cfg.shift_remove("include");
        Ok(())
    }
}

/// `localResourceLoader.Load`: a path relative to the loader's folder.
pub(crate) fn local_abs(working_dir: &str, p: &str) -> String {
    if is_abs(p) {
        p.to_string()
    } else {
        join(&[working_dir, p])
    }
}

/// `localResourceLoader.Dir`: the folder of a file (or the folder itself), relative to the
/// loader's folder when possible.
fn local_loader_dir(working_dir: &str, original: &str) -> String {
    let mut path = local_abs(working_dir, original);
    let is_dir = std::fs::metadata(&path)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    if !is_dir {
        path = local_abs(working_dir, &dir(original));
    }
    rel(working_dir, &path).unwrap_or(path)
}

struct IncludeConfig {
    path: Vec<String>,
    project_directory: String,
    env_file: Vec<String>,
}

impl IncludeConfig {
    fn from_value(v: Value) -> Result<Self, String> {
        let m = match v {
            Value::Str(s) => {
                return Ok(IncludeConfig {
                    path: vec![s],
                    project_directory: String::new(),
                    env_file: Vec::new(),
                })
            }
            Value::Map(m) => m,
            other => {
                return Err(format!(
                    "expected a map or a string for an include entry, got {}",
                    other.go_type()
                ))
            }
        };
        let string_list = |v: Option<&Value>, what: &str| -> Result<Vec<String>, String> {
            match v {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Str(s)) => Ok(vec![s.clone()]),
                Some(Value::Seq(items)) => items
                    .iter()
                    .map(|i| match i {
                        Value::Str(s) => Ok(s.clone()),
                        other => Err(format!(
                            "invalid type {} for string list in include {what}",
                            other.go_type()
                        )),
                    })
                    .collect(),
                Some(other) => Err(format!(
                    "invalid type {} for string list in include {what}",
                    other.go_type()
                )),
            }
        };
        let path = string_list(m.get("path"), "path")?;
        let env_file = string_list(m.get("env_file"), "env_file")?;
        let project_directory = match m.get("project_directory") {
            None | Some(Value::Null) => String::new(),
            Some(Value::Str(s)) => s.clone(),
            Some(other) => other.go_sprint(),
        };
        Ok(IncludeConfig {
            path,
            project_directory,
            env_file,
        })
    }
}

fn import_resources(source: Map, target: &mut Map) -> Result<(), Error> {
    let mut source = source;
    for key in [
        "services", "volumes", "networks", "secrets", "configs", "models",
    ] {
        let Some(from) = source.shift_remove(key) else {
            continue;
        };
        let Value::Map(from) = from else { continue };
        let mut to = match target.shift_remove(key) {
            Some(Value::Map(m)) => m,
            _ => Map::new(),
        };
        for (name, a) in from {
            if let Some(conflict) = to.get(&name) {
                if *conflict == a {
                    continue;
                }
                return Err(Error::invalid(format!(
                    "{key}.{name} conflicts with imported resource"
                ))
                .hint(format!(
                    "rename the {key} entry {name}, or remove one of its two definitions"
                )));
            }
            to.insert(name, a);
        }
        target.insert(key.to_string(), Value::Map(to));
    }
    Ok(())
}

/// A compose, env or label file: a regular file or a pipe (`-f <(…)`), never more than
/// [`files::MAX_TEXT_FILE`] bytes.
pub(crate) fn read_project_file(path: &str) -> Result<Vec<u8>, Error> {
    files::read(
        std::path::Path::new(path),
        files::Accept::FileOrPipe,
        files::MAX_TEXT_FILE,
    )
    .map_err(|e| Error::file(path, &e))
}

/// compose-go's `dotenv.GetEnvFromFile`.
pub(crate) fn env_from_files(current: &Env, files: &[String], cwd: &str) -> Result<Env, Error> {
    let mut env_map = Env::new();
    for file in files {
        let file = abs(file, cwd);
        let meta = match std::fs::metadata(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::invalid(format!("couldn't find env file: {file}"))
                    .hint("create the file or fix the --env-file / env_file path"))
            }
            Err(e) => return Err(Error::io(&file, &e)),
            Ok(m) => m,
        };
        if meta.is_dir() {
            return Err(Error::invalid(format!("{file} is a directory")));
        }
        let text = read_project_file(&file)?;
        let text = String::from_utf8_lossy(&text).into_owned();
        // compose-go parses every file into the one map it returns, and a variable is looked
        // up in the process environment first, then in that map as it stands at that line: a
        // file's own earlier lines win over what earlier files set.
        let lookup = |k: &str| current.get(k).cloned();
        dotenv::parse(&text, &mut env_map, &lookup).map_err(|e| {
            let mut err = Error::invalid(format!("failed to read {file}: {e}"))
                .hint("fix the .env syntax: KEY=VALUE lines, quotes closed, no spaces in names");
            err.file = Some(file.clone().into());
            if let dotenv::DotenvError::Syntax { line, .. } = &e {
                err.line = Some(*line);
            }
            err
        })?;
    }
    Ok(env_map)
}

/// Applies the `!reset` / `!override` paths of a document to the model merged so far.
fn apply_resets(paths: &ResetPaths, target: &mut Map) {
    if paths.is_empty() {
        return;
    }
    let mut path = Vec::new();
    reset_map(paths, target, &mut path);
}

fn reset_map(paths: &ResetPaths, map: &mut Map, path: &mut Vec<String>) {
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        path.push(k.clone());
        let hit = paths.iter().any(|p| {
            let pat: Vec<&str> = p.iter().map(String::as_str).collect();
            matches(path, &pat)
        });
        if hit {
            map.shift_remove(&k);
        } else if let Some(v) = map.get_mut(&k) {
            match v {
                Value::Map(m) => reset_map(paths, m, path),
                Value::Seq(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        if let Value::Map(m) = item {
                            path.push(format!("[{i}]"));
                            reset_map(paths, m, path);
                            path.pop();
                        }
                    }
                }
                _ => {}
            }
        }
        path.pop();
    }
}

/// compose-go's `ResolveEnvironment`: bare names in `environment` lists take their value from
/// the project environment.
fn resolve_environment(dict: &mut Map, env: &Env) {
    let Some(Value::Map(services)) = dict.get_mut("services") else {
        return;
    };
    for service in services.values_mut() {
        let Some(Value::Seq(list)) = service.as_map_mut().and_then(|s| s.get_mut("environment"))
        else {
            continue;
        };
        let mut out = Vec::with_capacity(list.len());
        for item in list.drain(..) {
            if let Value::Str(s) = item {
                match env.get(&s) {
                    Some(v) => out.push(Value::Str(format!("{s}={v}"))),
                    None => out.push(Value::Str(s)),
                }
            }
        }
        *list = out;
    }
}

#[derive(Clone, Copy)]
enum Cast {
    Int,
    Int64,
    Float,
    Float32,
    Bool,
}

const CASTS: &[(&[&str], Cast)] = &[
    (&["services", "*", "cpu_count"], Cast::Int64),
    (&["services", "*", "cpu_percent"], Cast::Float),
    (&["services", "*", "cpu_period"], Cast::Int64),
    (&["services", "*", "cpu_quota"], Cast::Int64),
    (&["services", "*", "cpu_rt_period"], Cast::Int64),
    (&["services", "*", "cpu_rt_runtime"], Cast::Int64),
    (&["services", "*", "cpus"], Cast::Float32),
    (&["services", "*", "cpu_shares"], Cast::Int64),
    (&["services", "*", "init"], Cast::Bool),
    (&["services", "*", "deploy", "replicas"], Cast::Int),
    (
        &["services", "*", "deploy", "update_config", "parallelism"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "update_config",
            "max_failure_ratio",
        ],
        Cast::Float,
    ),
    (
        &["services", "*", "deploy", "rollback_config", "parallelism"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "rollback_config",
            "max_failure_ratio",
        ],
        Cast::Float,
    ),
    (
        &["services", "*", "deploy", "restart_policy", "max_attempts"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "placement",
            "max_replicas_per_node",
        ],
        Cast::Int,
    ),
    (&["services", "*", "healthcheck", "retries"], Cast::Int),
    (&["services", "*", "healthcheck", "disable"], Cast::Bool),
    (&["services", "*", "oom_kill_disable"], Cast::Bool),
    (&["services", "*", "oom_score_adj"], Cast::Int64),
    (&["services", "*", "pids_limit"], Cast::Int64),
    (&["services", "*", "ports", "[]", "target"], Cast::Int),
    (&["services", "*", "privileged"], Cast::Bool),
    (&["services", "*", "read_only"], Cast::Bool),
    (&["services", "*", "scale"], Cast::Int),
    (&["services", "*", "stdin_open"], Cast::Bool),
    (&["services", "*", "tty"], Cast::Bool),
    (&["services", "*", "ulimits", "*"], Cast::Int),
    (&["services", "*", "ulimits", "*", "hard"], Cast::Int),
    (&["services", "*", "ulimits", "*", "soft"], Cast::Int),
    (&["services", "*", "volumes", "[]", "read_only"], Cast::Bool),
    (
        &["services", "*", "volumes", "[]", "volume", "nocopy"],
        Cast::Bool,
    ),
    (&["networks", "*", "external"], Cast::Bool),
    (&["networks", "*", "internal"], Cast::Bool),
    (&["networks", "*", "attachable"], Cast::Bool),
    (&["networks", "*", "enable_ipv4"], Cast::Bool),
    (&["networks", "*", "enable_ipv6"], Cast::Bool),
    (&["volumes", "*", "external"], Cast::Bool),
    (&["secrets", "*", "external"], Cast::Bool),
    (&["configs", "*", "external"], Cast::Bool),
];

fn cast_for(path: &[String]) -> Option<Cast> {
    const LAST: &[&str] = &[
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpus",
        "cpu_shares",
        "init",
        "replicas",
        "parallelism",
        "max_failure_ratio",
        "max_attempts",
        "max_replicas_per_node",
        "retries",
        "disable",
        "oom_kill_disable",
        "oom_score_adj",
        "pids_limit",
        "target",
        "privileged",
        "read_only",
        "scale",
        "stdin_open",
        "tty",
        "hard",
        "soft",
        "nocopy",
        "external",
        "internal",
        "attachable",
        "enable_ipv4",
        "enable_ipv6",
    ];
    let last = path.last().map(String::as_str).unwrap_or("");
    let under_ulimits = path.len() == 4 && path[2] == "ulimits";
    if !under_ulimits && !LAST.contains(&last) {
        return None;
    }
    if path.first().map(String::as_str) == Some("services") || path.len() == 3 {
        CASTS
            .iter()
            .find(|(p, _)| matches(path, p))
            .map(|(_, c)| *c)
    } else {
        None
    }
}

/// compose's `toBoolean`.
pub(crate) fn go_bool(value: &str) -> Result<bool, String> {
    match value.to_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        v @ ("y" | "yes" | "on") => {
            tracing::warn!("{v:?} for boolean is not supported by YAML 1.2, please use `true`");
            Ok(true)
        }
        v @ ("n" | "no" | "off") => {
            tracing::warn!("{v:?} for boolean is not supported by YAML 1.2, please use `false`");
            Ok(false)
        }
        _ => Err(format!("invalid boolean: {value}")),
    }
}

/// `strconv.ParseInt(value, 10, 64)` with Go's message.
pub(crate) fn go_atoi(value: &str) -> Result<i64, String> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseInt: parsing {value:?}: invalid syntax"
        ));
    }
    value
        .parse::<i64>()
        .map_err(|_| format!("strconv.ParseInt: parsing {value:?}: value out of range"))
}

fn cast_value(cast: Cast, value: &str) -> Result<Value, String> {
    match cast {
        Cast::Bool => go_bool(value).map(Value::Bool),
        Cast::Int | Cast::Int64 => go_atoi(value).map(Value::Int).map_err(|e| {
            if matches!(cast, Cast::Int) {
                e.replace("ParseInt", "Atoi")
            } else {
                e
            }
        }),
        Cast::Float | Cast::Float32 => crate::yaml::go_parse_float(value)
            .or_else(|| {
                let l = value.to_ascii_lowercase();
                let l = l.trim_start_matches(['+', '-']);
                (l == "inf" || l == "infinity").then_some(if value.starts_with('-') {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                })
            })
            .map(Value::Float)
            .ok_or_else(|| format!("strconv.ParseFloat: parsing {value:?}: invalid syntax")),
    }
}
