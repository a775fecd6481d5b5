//! Making relative paths absolute, field by field, as compose-go's `paths` package does:
//! build contexts (git and other URLs kept as written), additional contexts, ssh keys, env
//! files, `extends.file`, bind mounts, secret and config files, include paths.

use crate::tree::matches;
use crate::value::{Map, Value};
use wharf_docker::filepath::{is_abs, join};

#[derive(Clone, Copy)]
enum Resolver {
    Context,
    UnixPath,
    Abs,
    Extends,
    VolumeMount,
    VolumeDriverOpts,
}

const RESOLVERS: &[(&[&str], Resolver)] = &[
    (&["services", "*", "build", "context"], Resolver::Context),
    (
        &["services", "*", "build", "additional_contexts", "*"],
        Resolver::Context,
    ),
    (&["services", "*", "build", "ssh", "*"], Resolver::UnixPath),
    (&["services", "*", "env_file", "*", "path"], Resolver::Abs),
    (&["services", "*", "label_file", "*"], Resolver::Abs),
    (&["services", "*", "extends", "file"], Resolver::Extends),
    (
        &["services", "*", "develop", "watch", "*", "path"],
        Resolver::Abs,
    ),
    (&["services", "*", "volumes", "*"], Resolver::VolumeMount),
    (&["configs", "*", "file"], Resolver::UnixPath),
    (&["secrets", "*", "file"], Resolver::UnixPath),
    (&["include", "path"], Resolver::Abs),
    (&["include", "project_directory"], Resolver::Abs),
    (&["include", "env_file"], Resolver::Abs),
    (&["volumes", "*"], Resolver::VolumeDriverOpts),
];

/// Expands a leading `~` as compose does (`~anything` is the home folder joined with
/// `anything`).
pub fn expand_user(p: &str, home: Option<&str>) -> String {
    match (p.strip_prefix('~'), home) {
        (Some(rest), Some(home)) => join(&[home, rest]),
        _ => p.to_string(),
    }
}

/// Whether a build context is handed to the builder as is (git and HTTP URLs, `name://…`
/// contexts, `service:NAME`).
pub fn is_remote_context(v: &str) -> bool {
    v.contains("://")
        || v.starts_with("service:")
        || [
            "https://",
            "http://",
            "git://",
            "ssh://",
            "github.com/",
            "git@",
        ]
        .iter()
        .any(|p| v.starts_with(p))
}

pub struct PathResolver<'a> {
    pub working_dir: &'a str,
    pub home: Option<&'a str>,
}

impl PathResolver<'_> {
    pub fn resolve(&self, model: &mut Map) -> Result<(), String> {
        let mut path = Vec::new();
        for (k, v) in model.iter_mut() {
            path.push(k.clone());
            let r = self.walk(v, &mut path);
            path.pop();
            r?;
        }
        Ok(())
    }

    fn walk(&self, value: &mut Value, path: &mut Vec<String>) -> Result<(), String> {
        for (pattern, resolver) in RESOLVERS {
            if matches(path, pattern) {
                return self.apply(*resolver, value);
            }
        }
        match value {
            Value::Map(m) => {
                for (k, v) in m.iter_mut() {
                    path.push(k.clone());
                    let r = self.walk(v, path);
                    path.pop();
                    r?;
                }
            }
            Value::Seq(items) => {
                path.push("[]".into());
                for v in items.iter_mut() {
                    if let Err(e) = self.walk(v, path) {
                        path.pop();
                        return Err(e);
                    }
                }
                path.pop();
            }
            _ => {}
        }
        Ok(())
    }

    fn abs_path(&self, value: &mut Value) -> Result<(), String> {
        match value {
            Value::Seq(items) => {
                for i in items.iter_mut() {
                    self.abs_path(i)?;
                }
                Ok(())
            }
            Value::Str(s) => {
                let v = expand_user(s, self.home);
                *s = if is_abs(&v) || v.is_empty() {
                    v
                } else {
                    join(&[self.working_dir, &v])
                };
                Ok(())
            }
            other => Err(format!("unexpected type {}", other.go_type())),
        }
    }

    fn unix_path(&self, value: &mut Value) {
        if let Value::Str(s) = value {
            let v = expand_user(s, self.home);
            *s = if is_abs(&v) || is_windows_abs(&v) {
                v
            } else {
                join(&[self.working_dir, &v])
            };
        }
    }

    fn apply(&self, resolver: Resolver, value: &mut Value) -> Result<(), String> {
        match resolver {
            Resolver::Abs => self.abs_path(value),
            Resolver::UnixPath => {
                self.unix_path(value);
                Ok(())
            }
            Resolver::Context | Resolver::Extends => {
                if let Value::Str(s) = value {
                    if is_remote_context(s) && matches!(resolver, Resolver::Context) {
                        return Ok(());
                    }
                }
                self.abs_path(value)
            }
            Resolver::VolumeMount => {
                if let Value::Map(vol) = value {
                    if vol.get("type").and_then(Value::as_str) != Some("bind") {
                        return Ok(());
                    }
                    match vol.get_mut("source") {
                        None => {
                            return Err(
                                "invalid mount config for type \"bind\": field Source must not be empty"
                                    .into(),
                            )
                        }
                        Some(src) => self.unix_path(src),
                    }
                }
                Ok(())
            }
            Resolver::VolumeDriverOpts => {
                if let Value::Map(vol) = value {
                    if vol.get("driver").and_then(Value::as_str) != Some("local") {
                        return Ok(());
                    }
                    if let Some(Value::Map(opts)) = vol.get_mut("driver_opts") {
                        let bind = opts.get("o").and_then(Value::as_str) == Some("bind");
                        if bind {
                            if let Some(dev) = opts.get_mut("device") {
                                self.unix_path(dev);
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

fn is_windows_abs(p: &str) -> bool {
    let b = p.as_bytes();
    if p.starts_with("\\\\") {
        return true;
    }
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}
