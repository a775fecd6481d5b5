//! Merging compose files (and `extends` bases) into one model, and removing redefinitions from
//! sequences: compose-go's `override` package, rule for rule.
//!
//! Mappings merge key by key, sequences are appended, scalars are replaced, except where the
//! compose specification says otherwise for a field (`command` replaced whole, `environment`
//! and labels merged as `KEY=VALUE` lists, `extra_hosts` without duplicates, `depends_on` and
//! `networks` as mappings, the short and long forms of `build`, and so on).

use crate::tree::matches;
use crate::value::{Map, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct MergeError(pub String);

#[derive(Clone, Copy)]
enum Rule {
    IpamConfig,
    ToSequence,
    Build,
    Override,
    DependsOn,
    ToMapping,
    ExtraHosts,
    Logging,
    Ulimit,
}

const RULES: &[(&[&str], Rule)] = &[
    (&["networks", "*", "ipam", "config"], Rule::IpamConfig),
    (&["networks", "*", "labels"], Rule::ToSequence),
    (&["volumes", "*", "labels"], Rule::ToSequence),
    (&["services", "*", "annotations"], Rule::ToSequence),
    (&["services", "*", "build"], Rule::Build),
    (&["services", "*", "build", "args"], Rule::ToSequence),
    (
        &["services", "*", "build", "additional_contexts"],
        Rule::ToSequence,
    ),
    (&["services", "*", "build", "extra_hosts"], Rule::ExtraHosts),
    (&["services", "*", "build", "labels"], Rule::ToSequence),
    (&["services", "*", "command"], Rule::Override),
    (&["services", "*", "depends_on"], Rule::DependsOn),
    (&["services", "*", "deploy", "labels"], Rule::ToSequence),
    (&["services", "*", "dns"], Rule::ToSequence),
    (&["services", "*", "dns_opt"], Rule::ToSequence),
    (&["services", "*", "dns_search"], Rule::ToSequence),
    (&["services", "*", "entrypoint"], Rule::Override),
    (&["services", "*", "env_file"], Rule::ToSequence),
    (&["services", "*", "label_file"], Rule::ToSequence),
    (&["services", "*", "environment"], Rule::ToSequence),
    (&["services", "*", "extra_hosts"], Rule::ExtraHosts),
    (&["services", "*", "healthcheck", "test"], Rule::Override),
    (&["services", "*", "labels"], Rule::ToSequence),
    (
        &["services", "*", "volumes", "*", "volume", "labels"],
        Rule::ToSequence,
    ),
    (&["services", "*", "logging"], Rule::Logging),
    (&["services", "*", "models"], Rule::ToMapping),
    (&["services", "*", "networks"], Rule::ToMapping),
    (&["services", "*", "sysctls"], Rule::ToSequence),
    (&["services", "*", "tmpfs"], Rule::ToSequence),
    (&["services", "*", "ulimits", "*"], Rule::Ulimit),
];

/// Merges `other` (a later file) into `base`.
pub fn merge(base: Map, other: Map) -> Result<Map, MergeError> {
    let mut path = Vec::new();
    merge_mappings(base, other, &mut path)
}

/// Merges a service definition over the one it extends (paths as `services.x.*`).
pub fn extend_service(base: Map, service: Map) -> Result<Map, MergeError> {
    let mut path = vec!["services".to_string(), "x".to_string()];
    match merge_value(Value::Map(base), Value::Map(service), &mut path)? {
        Value::Map(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

fn merge_value(e: Value, o: Value, path: &mut Vec<String>) -> Result<Value, MergeError> {
    for (pattern, rule) in RULES {
        if matches(path, pattern) {
            return apply_rule(*rule, e, o, path);
        }
    }
    if o.is_null() {
        return Ok(e);
    }
    match e {
        Value::Map(m) => match o {
            Value::Map(other) => merge_mappings(m, other, path).map(Value::Map),
            _ => Err(cannot_override(path)),
        },
        Value::Seq(mut s) => match o {
            Value::Seq(other) => {
                s.extend(other);
                Ok(Value::Seq(s))
            }
            _ => Err(cannot_override(path)),
        },
        _ => Ok(o),
    }
}

fn cannot_override(path: &[String]) -> MergeError {
    MergeError(format!("cannot override {}", path.join(".")))
}

fn merge_mappings(mut mapping: Map, other: Map, path: &mut Vec<String>) -> Result<Map, MergeError> {
    for (k, v) in other {
        match mapping.get_mut(&k) {
            None => {
                mapping.insert(k, v);
            }
            Some(slot) => {
                let e = std::mem::replace(slot, Value::Null);
                path.push(k);
                let merged = merge_value(e, v, path);
                let k = path.pop().unwrap_or_default();
                let merged = merged?;
                if let Some(slot) = mapping.get_mut(&k) {
                    *slot = merged;
                }
            }
        }
    }
    Ok(mapping)
}

fn apply_rule(rule: Rule, e: Value, o: Value, path: &mut Vec<String>) -> Result<Value, MergeError> {
    match rule {
        Rule::Override => Ok(o),
        Rule::ToSequence => {
            let mut right = into_sequence(e);
            right.extend(into_sequence(o));
            Ok(Value::Seq(right))
        }
        Rule::ExtraHosts => {
            let mut right = into_sequence(e);
            let left: Vec<Value> = into_sequence(o)
                .into_iter()
                .filter(|v| !right.contains(v))
                .collect();
            right.extend(left);
            Ok(Value::Seq(right))
        }
        Rule::Build => {
            let to_build = |v: Value| match v {
                Value::Str(s) => {
                    let mut m = Map::new();
                    m.insert("context".into(), Value::Str(s));
                    Some(m)
                }
                Value::Map(m) => Some(m),
                _ => None,
            };
            let base = to_build(e).unwrap_or_default();
            match to_build(o) {
                Some(other) => merge_mappings(base, other, path).map(Value::Map),
                None => Ok(Value::Map(base)),
            }
        }
        Rule::DependsOn => {
            let defaults = || {
                let mut m = Map::new();
                m.insert("condition".into(), Value::Str("service_started".into()));
                m.insert("required".into(), Value::Bool(true));
                m
            };
            let right = into_mapping(e, Some(&defaults))?;
            let left = into_mapping(o, Some(&defaults))?;
            merge_opt(right, left, path)
        }
        Rule::ToMapping => {
            let right = into_mapping(e, None)?;
            let left = into_mapping(o, None)?;
            merge_opt(right, left, path)
        }
        Rule::Logging => match (e, o) {
            (Value::Map(config), Value::Map(other)) => {
                let same = match (other.get("driver"), config.get("driver")) {
                    (Some(d), Some(c)) => d == c,
                    _ => true,
                };
                if same {
                    merge_mappings(config, other, path).map(Value::Map)
                } else {
                    Ok(Value::Map(other))
                }
            }
            (_, o) => Err(MergeError(format!(
                "{}: logging must be a mapping, got {}",
                path.join("."),
                o.go_type()
            ))),
        },
        // compose-go merges the override with itself here: the later file wins whole.
        Rule::Ulimit => Ok(o),
        Rule::IpamConfig => merge_ipam(e, o, path),
    }
}

fn merge_opt(
    right: Option<Map>,
    left: Option<Map>,
    path: &mut Vec<String>,
) -> Result<Value, MergeError> {
    match (right, left) {
        (Some(r), Some(l)) => merge_mappings(r, l, path).map(Value::Map),
        (Some(r), None) => Ok(Value::Map(r)),
        (None, Some(l)) => merge_mappings(Map::new(), l, path).map(Value::Map),
        (None, None) => Ok(Value::Map(Map::new())),
    }
}

/// compose's `convertIntoSequence`: a mapping becomes sorted `key=value` strings.
pub(crate) fn into_sequence(v: Value) -> Vec<Value> {
    match v {
        Value::Map(m) => {
            let mut seq: Vec<String> = Vec::with_capacity(m.len());
            for (k, val) in m {
                match val {
                    Value::Null => seq.push(k),
                    Value::Seq(items) => {
                        for item in items {
                            seq.push(format!("{k}={}", item.go_sprint()));
                        }
                    }
                    other => seq.push(format!("{k}={}", other.go_sprint())),
                }
            }
            seq.sort();
            seq.into_iter().map(Value::Str).collect()
        }
        Value::Seq(s) => s,
        Value::Str(s) => vec![Value::Str(s)],
        _ => Vec::new(),
    }
}

fn into_mapping(v: Value, defaults: Option<&dyn Fn() -> Map>) -> Result<Option<Map>, MergeError> {
    match v {
        Value::Map(m) => Ok(Some(m)),
        Value::Seq(items) => {
            let mut out = Map::new();
            for item in items {
                match item {
                    Value::Str(s) => {
                        let value = match defaults {
                            Some(d) => Value::Map(d()),
                            None => Value::Null,
                        };
                        out.insert(s, value);
                    }
                    other => {
                        return Err(MergeError(format!(
                            "invalid list item of type {}, expected a string",
                            other.go_type()
                        )))
                    }
                }
            }
            Ok(Some(out))
        }
        _ => Ok(None),
    }
}

fn merge_ipam(e: Value, o: Value, path: &mut Vec<String>) -> Result<Value, MergeError> {
    let configs = match e {
        Value::Seq(s) => s,
        other => {
            return Err(MergeError(format!(
                "{}: unexpected type {}",
                path.join("."),
                other.go_type()
            )))
        }
    };
    let overrides = match o {
        Value::Seq(s) => s,
        _ => {
            return Err(MergeError(format!(
                "{}: unexpected type []interface {{}}",
                path.join(".")
            )))
        }
    };
    let subnet = |m: &Map| m.get("subnet").cloned();
    let mut result: Vec<Map> = Vec::new();
    for original in configs {
        let right = match into_mapping(original, None)? {
            Some(m) => m,
            None => Map::new(),
        };
        for over in &overrides {
            let left = into_mapping(over.clone(), None)?.unwrap_or_default();
            if subnet(&left) != subnet(&right) && !result.iter().any(|m| subnet(m) == subnet(&left))
            {
                result.push(left);
                continue;
            }
            let merged = merge_mappings(right.clone(), left, path)?;
            match result.iter().position(|m| subnet(m) == subnet(&merged)) {
                Some(i) => result[i] = merged,
                None => result.push(merged),
            }
        }
    }
    Ok(Value::Seq(result.into_iter().map(Value::Map).collect()))
}

#[derive(Clone, Copy)]
enum Indexer {
    KeyValue,
    Volume,
    Device,
    Mount(&'static str),
    Expose,
    Port,
    EnvFile,
}

const UNIQUE: &[(&[&str], Indexer)] = &[
    (&["networks", "*", "labels"], Indexer::KeyValue),
    (&["networks", "*", "ipam", "options"], Indexer::KeyValue),
    (&["services", "*", "annotations"], Indexer::KeyValue),
    (&["services", "*", "build", "args"], Indexer::KeyValue),
    (
        &["services", "*", "build", "additional_contexts"],
        Indexer::KeyValue,
    ),
    (&["services", "*", "build", "platform"], Indexer::KeyValue),
    (&["services", "*", "build", "tags"], Indexer::KeyValue),
    (&["services", "*", "build", "labels"], Indexer::KeyValue),
    (&["services", "*", "cap_add"], Indexer::KeyValue),
    (&["services", "*", "cap_drop"], Indexer::KeyValue),
    (&["services", "*", "configs"], Indexer::Mount("")),
    (&["services", "*", "deploy", "labels"], Indexer::KeyValue),
    (&["services", "*", "dns"], Indexer::KeyValue),
    (&["services", "*", "dns_opt"], Indexer::KeyValue),
    (&["services", "*", "dns_search"], Indexer::KeyValue),
    (&["services", "*", "environment"], Indexer::KeyValue),
    (&["services", "*", "env_file"], Indexer::EnvFile),
    (&["services", "*", "expose"], Indexer::Expose),
    (&["services", "*", "labels"], Indexer::KeyValue),
    (&["services", "*", "links"], Indexer::KeyValue),
    (
        &["services", "*", "networks", "*", "aliases"],
        Indexer::KeyValue,
    ),
    (
        &["services", "*", "networks", "*", "link_local_ips"],
        Indexer::KeyValue,
    ),
    (&["services", "*", "ports"], Indexer::Port),
    (&["services", "*", "profiles"], Indexer::KeyValue),
    (
        &["services", "*", "secrets"],
        Indexer::Mount("/run/secrets"),
    ),
    (&["services", "*", "sysctls"], Indexer::KeyValue),
    (&["services", "*", "tmpfs"], Indexer::KeyValue),
    (&["services", "*", "volumes"], Indexer::Volume),
    (&["services", "*", "devices"], Indexer::Device),
];

/// Removes redefinitions from the sequences compose keys (`environment` entries by name,
/// volumes by target, ports by mapping…): a later entry replaces an earlier one in place.
/// When `services` names them, only those services are looked at (the others were already).
pub fn enforce_unicity(model: &mut Map, services: Option<&[String]>) -> Result<(), MergeError> {
    let mut path = Vec::new();
    for (k, v) in model.iter_mut() {
        path.push(k.clone());
        match (k.as_str(), services, &mut *v) {
            ("services", Some(names), Value::Map(all)) => {
                for name in names {
                    if let Some(s) = all.get_mut(name) {
                        path.push(name.clone());
                        let r = unicity(s, &mut path);
                        path.pop();
                        r?;
                    }
                }
            }
            _ => unicity(v, &mut path)?,
        }
        path.pop();
    }
    Ok(())
}

fn unicity(value: &mut Value, path: &mut Vec<String>) -> Result<(), MergeError> {
    match value {
        Value::Map(m) => {
            for (k, v) in m.iter_mut() {
                path.push(k.clone());
                let r = unicity(v, path);
                path.pop();
                r?;
            }
            Ok(())
        }
        Value::Seq(items) => {
            let Some(indexer) = UNIQUE
                .iter()
                .find(|(p, _)| matches(path, p))
                .map(|(_, i)| *i)
            else {
                return Ok(());
            };
            let mut seq: Vec<Value> = Vec::with_capacity(items.len());
            let mut keys: std::collections::HashMap<String, usize> = Default::default();
            for (i, entry) in std::mem::take(items).into_iter().enumerate() {
                let key = index_of(indexer, &entry, path, i)?;
                match keys.get(&key) {
                    Some(&j) => seq[j] = entry,
                    None => {
                        keys.insert(key, seq.len());
                        seq.push(entry);
                    }
                }
            }
            *items = seq;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn index_of(
    indexer: Indexer,
    entry: &Value,
    path: &[String],
    i: usize,
) -> Result<String, MergeError> {
    let at = || format!("{}.[{i}]", path.join("."));
    match indexer {
        Indexer::KeyValue => match entry {
            Value::Str(s) => Ok(s.split_once('=').map(|(k, _)| k).unwrap_or(s).to_string()),
            other => Err(MergeError(format!(
                "{}: unexpected type {}",
                at(),
                other.go_type()
            ))),
        },
        Indexer::Volume => match entry {
            Value::Map(m) => match m.get("target") {
                Some(Value::Str(t)) => Ok(t.clone()),
                _ => Err(MergeError(format!(
                    "service volume {} is missing a mount target",
                    at()
                ))),
            },
            Value::Str(s) => crate::volume::parse_volume(s)
                .map(|v| v.target)
                .map_err(MergeError),
            _ => Ok(String::new()),
        },
        Indexer::Device => match entry {
            Value::Map(m) => match m.get("target") {
                Some(Value::Str(t)) => Ok(t.clone()),
                _ => Err(MergeError(format!(
                    "service device {} is missing a mount target",
                    at()
                ))),
            },
            Value::Str(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                Ok(if parts.len() == 1 { parts[0] } else { parts[1] }.to_string())
            }
            _ => Ok(String::new()),
        },
        Indexer::Expose => match entry {
            Value::Str(s) => Ok(s.clone()),
            Value::Int(n) => Ok(n.to_string()),
            other => Err(MergeError(format!(
                "{}: unsupported expose value {}",
                at(),
                other.go_sprint()
            ))),
        },
        Indexer::Mount(default) => match entry {
            Value::Str(s) => Ok(format!("{default}/{s}")),
            Value::Map(m) => match m.get("target") {
                Some(t) => Ok(t.go_sprint()),
                None => Ok(format!(
                    "{default}/{}",
                    m.get("source")
                        .map(|s| s.go_sprint())
                        .unwrap_or_else(|| "%!s(<nil>)".into())
                )),
            },
            other => Err(MergeError(format!(
                "{}: unsupported expose value {}",
                at(),
                other.go_sprint()
            ))),
        },
        Indexer::Port => match entry {
            Value::Int(n) => Ok(n.to_string()),
            Value::Str(s) => Ok(s.clone()),
            Value::Map(m) => {
                let target = m.get("target").ok_or_else(|| {
                    MergeError(format!("service ports {} is missing a target port", at()))
                })?;
                let published = m
                    .get("published")
                    .map(|p| p.go_sprint())
                    .unwrap_or_else(|| "%!s(<nil>)".into());
                let host = m
                    .get("host_ip")
                    .map(|p| p.go_sprint())
                    .unwrap_or_else(|| "0.0.0.0".into());
                let protocol = m
                    .get("protocol")
                    .map(|p| p.go_sprint())
                    .unwrap_or_else(|| "tcp".into());
                Ok(format!(
                    "{host}:{published}:{}/{protocol}",
                    target.go_sprint()
                ))
            }
            _ => Ok(String::new()),
        },
        Indexer::EnvFile => match entry {
            Value::Str(s) => Ok(s.clone()),
            Value::Map(m) => match m.get("path") {
                Some(p) => Ok(p.go_sprint()),
                None => Err(MergeError(format!(
                    "environment path attribute {} is missing",
                    at()
                ))),
            },
            _ => Ok(String::new()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    fn map(text: &str) -> Map {
        match parse_documents(text).unwrap().remove(0).value {
            Some(Value::Map(m)) => m,
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn per_field_rules() {
        let base = map("services:\n  a:\n    build: ./x\n    command: [a, b]\n    environment: {A: '1', B: '2'}\n    ports: ['80']\n");
        let over = map("services:\n  a:\n    build: {dockerfile: D}\n    command: [c]\n    environment: [B=3]\n    ports: ['81']\n");
        let mut merged = merge(base, over).unwrap();
        enforce_unicity(&mut merged, None).unwrap();
        let a = &merged["services"].as_map().unwrap()["a"];
        let a = a.as_map().unwrap();
        assert_eq!(a["build"], Value::Map(map("context: ./x\ndockerfile: D\n")));
        assert_eq!(a["command"], Value::Seq(vec![Value::Str("c".into())]));
        assert_eq!(
            a["environment"],
            Value::Seq(vec![Value::Str("A=1".into()), Value::Str("B=3".into())])
        );
        assert_eq!(a["ports"].as_seq().unwrap().len(), 2);
    }

    #[test]
    fn type_conflicts_are_refused() {
        let base = map("services:\n  a:\n    x-list: [1]\n");
        let over = map("services:\n  a:\n    x-list: {a: 1}\n");
        assert!(merge(base, over).is_err());
    }
}
