//! Turning short syntaxes into compose's canonical forms (`build: ./dir` into
//! `{context: ./dir}`, `KEY=VALUE` lists into mappings, port and volume strings into their long
//! syntax…), default values, and the checks compose-go makes beyond the JSON schema: its
//! `transform` and `validation` packages.

use crate::tree::matches;
use crate::value::{Map, Value};
use crate::volume::{parse_port, parse_volume};

type R = Result<Value, String>;

#[derive(Clone, Copy)]
enum T {
    Service,
    FileMount,
    StringOrX,
    KeyValue,
    DependsOn,
    EnvFile,
    StringOrList,
    Extends,
    Gpus,
    StringSliceToMap,
    VolumeMount,
    DeviceMapping,
    Ports,
    Build,
    Ssh,
    Ulimits,
    MaybeExternal,
    Include,
}

const TRANSFORMERS: &[(&[&str], T)] = &[
    (&["services", "*"], T::Service),
    (&["services", "*", "build", "secrets", "*"], T::FileMount),
    (&["services", "*", "build", "provenance"], T::StringOrX),
    (&["services", "*", "build", "sbom"], T::StringOrX),
    (
        &["services", "*", "build", "additional_contexts"],
        T::KeyValue,
    ),
    (&["services", "*", "depends_on"], T::DependsOn),
    (&["services", "*", "env_file"], T::EnvFile),
    (&["services", "*", "label_file"], T::StringOrList),
    (&["services", "*", "extends"], T::Extends),
    (&["services", "*", "gpus"], T::Gpus),
    (&["services", "*", "networks"], T::StringSliceToMap),
    (&["services", "*", "models"], T::StringSliceToMap),
    (&["services", "*", "volumes", "*"], T::VolumeMount),
    (&["services", "*", "dns"], T::StringOrList),
    (&["services", "*", "devices", "*"], T::DeviceMapping),
    (&["services", "*", "secrets", "*"], T::FileMount),
    (&["services", "*", "configs", "*"], T::FileMount),
    (&["services", "*", "ports"], T::Ports),
    (&["services", "*", "build"], T::Build),
    (&["services", "*", "build", "ssh"], T::Ssh),
    (&["services", "*", "ulimits", "*"], T::Ulimits),
    (&["services", "*", "build", "ulimits", "*"], T::Ulimits),
    (
        &["services", "*", "develop", "watch", "*", "ignore"],
        T::StringOrList,
    ),
    (
        &["services", "*", "develop", "watch", "*", "include"],
        T::StringOrList,
    ),
    (&["volumes", "*"], T::MaybeExternal),
    (&["networks", "*"], T::MaybeExternal),
    (&["secrets", "*"], T::MaybeExternal),
    (&["configs", "*"], T::MaybeExternal),
    (&["include", "*"], T::Include),
];

/// compose-go's `transform.Canonical`, over the whole model or, when `services` names them,
/// only those services (the others are canonical already: the transformation is idempotent).
pub fn canonical(model: &mut Map, services: Option<&[String]>) -> Result<(), String> {
    let mut path = Vec::new();
    for (k, v) in model.iter_mut() {
        if k == "services" {
            if let (Some(names), Value::Map(all)) = (services, &mut *v) {
                path.push(k.clone());
                for name in names {
                    if let Some(slot) = all.get_mut(name) {
                        path.push(name.clone());
                        let t = transform(std::mem::replace(slot, Value::Null), &mut path);
                        path.pop();
                        *slot = t?;
                    }
                }
                path.pop();
                continue;
            }
        }
        path.push(k.clone());
        let t = transform(std::mem::replace(v, Value::Null), &mut path);
        path.pop();
        *v = t?;
    }
    Ok(())
}

fn transform(data: Value, path: &mut Vec<String>) -> R {
    for (pattern, t) in TRANSFORMERS {
        if matches(path, pattern) {
            return apply(*t, data, path);
        }
    }
    match data {
        Value::Map(m) => transform_mapping(m, path).map(Value::Map),
        Value::Seq(s) => transform_sequence(s, path).map(Value::Seq),
        other => Ok(other),
    }
}

fn transform_mapping(m: Map, path: &mut Vec<String>) -> Result<Map, String> {
    let mut out = Map::with_capacity(m.len());
    for (k, v) in m {
        path.push(k);
        let t = transform(v, path);
        let k = path.pop().unwrap_or_default();
        out.insert(k, t?);
    }
    Ok(out)
}

fn transform_sequence(s: Vec<Value>, path: &mut Vec<String>) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(s.len());
    path.push("[]".into());
    for v in s {
        match transform(v, path) {
            Ok(t) => out.push(t),
            Err(e) => {
                path.pop();
                return Err(e);
            }
        }
    }
    path.pop();
    Ok(out)
}

fn p(path: &[String]) -> String {
    path.join(".")
}

fn single(key: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), v);
    Value::Map(m)
}

fn apply(t: T, data: Value, path: &mut Vec<String>) -> R {
    match t {
        T::Service => match data {
            Value::Map(m) => transform_mapping(m, path).map(Value::Map),
            other => Ok(other),
        },
        T::FileMount => match data {
            Value::Map(m) => Ok(Value::Map(m)),
            Value::Str(s) => Ok(single("source", Value::Str(s))),
            other => Err(format!("{}: unsupported type {}", p(path), other.go_type())),
        },
        T::StringOrX => match data {
            Value::Str(s) => Ok(Value::Str(s)),
            other => Ok(Value::Str(other.go_sprint())),
        },
        T::KeyValue => match data {
            Value::Map(m) => Ok(Value::Map(m)),
            Value::Seq(items) => {
                let mut m = Map::new();
                for item in items {
                    let s = item.go_sprint();
                    match s.split_once('=') {
                        Some((k, v)) => {
                            m.insert(k.to_string(), Value::Str(v.to_string()));
                        }
                        None => {
                            return Err(format!(
                                "{}: invalid value {s}, expected key=value",
                                p(path)
                            ))
                        }
                    }
                }
                Ok(Value::Map(m))
            }
            other => Err(format!("{}: invalid type {}", p(path), other.go_type())),
        },
        T::DependsOn => match data {
            Value::Map(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    match v {
                        Value::Map(mut d) => {
                            d.entry("condition".to_string())
                                .or_insert_with(|| Value::Str("service_started".into()));
                            d.entry("required".to_string()).or_insert(Value::Bool(true));
                            out.insert(k, Value::Map(d));
                        }
                        other => {
                            return Err(format!(
                                "{}.{k}: unsupported value {}",
                                p(path),
                                other.go_sprint()
                            ))
                        }
                    }
                }
                Ok(Value::Map(out))
            }
            Value::Seq(items) => {
                let mut out = Map::new();
                for item in items {
                    let mut d = Map::new();
                    d.insert("condition".into(), Value::Str("service_started".into()));
                    d.insert("required".into(), Value::Bool(true));
                    out.insert(item.go_sprint(), Value::Map(d));
                }
                Ok(Value::Map(out))
            }
            other => Err(format!(
                "{}: invalid type {} for depend_on",
                p(path),
                other.go_type()
            )),
        },
        T::EnvFile => {
            let value = |v: Value| match v {
                Value::Str(s) => {
                    let mut m = Map::new();
                    m.insert("path".into(), Value::Str(s));
                    m.insert("required".into(), Value::Bool(true));
                    Value::Map(m)
                }
                Value::Map(mut m) => {
                    m.entry("required".to_string()).or_insert(Value::Bool(true));
                    Value::Map(m)
                }
                _ => Value::Null,
            };
            match data {
                Value::Str(s) => Ok(Value::Seq(vec![value(Value::Str(s))])),
                Value::Seq(items) => Ok(Value::Seq(items.into_iter().map(value).collect())),
                other => Err(format!(
                    "{}: invalid type {} for env_file",
                    p(path),
                    other.go_type()
                )),
            }
        }
        T::StringOrList => match data {
            Value::Str(s) => Ok(Value::Seq(vec![Value::Str(s)])),
            other => Ok(other),
        },
        T::Extends => match data {
            Value::Map(m) => transform_mapping(m, path).map(Value::Map),
            Value::Str(s) => Ok(single("service", Value::Str(s))),
            other => Err(format!(
                "{}: invalid type {} for extends",
                p(path),
                other.go_type()
            )),
        },
        T::Gpus => match data {
            Value::Seq(s) => transform_sequence(s, path).map(Value::Seq),
            Value::Str(_) => Ok(Value::Seq(vec![single("count", Value::Str("all".into()))])),
            other => Err(format!(
                "{}: invalid type {} for gpus",
                p(path),
                other.go_type()
            )),
        },
        T::StringSliceToMap => match data {
            Value::Seq(items) => {
                let mut m = Map::new();
                for item in items {
                    m.insert(item.go_sprint(), Value::Null);
                }
                Ok(Value::Map(m))
            }
            other => Ok(other),
        },
        T::VolumeMount => match data {
            Value::Map(m) => Ok(Value::Map(m)),
            Value::Str(s) => {
                let mut spec = parse_volume(&s)?;
                if !spec.target.is_empty() {
                    spec.target = wharf_docker::filepath::clean(&spec.target);
                }
                Ok(Value::Map(spec.to_map()))
            }
            other => Err(format!(
                "{}: invalid type {} for service volume mount",
                p(path),
                other.go_type()
            )),
        },
        T::DeviceMapping => match data {
            Value::Map(m) => Ok(Value::Map(m)),
            Value::Str(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                let (src, mut dst, perms) = match parts.len() {
                    1 => (parts[0], "", "rwm"),
                    2 => (parts[0], parts[1], "rwm"),
                    3 => (parts[0], parts[1], parts[2]),
                    _ => {
                        return Err(format!(
                            "confusing device mapping, please use long syntax: {s}"
                        ))
                    }
                };
                if dst.is_empty() {
                    dst = src;
                }
                let mut m = Map::new();
                m.insert("source".into(), Value::Str(src.into()));
                m.insert("target".into(), Value::Str(dst.into()));
                m.insert("permissions".into(), Value::Str(perms.into()));
                Ok(Value::Map(m))
            }
            other => Err(format!(
                "{}: invalid type {} for service volume mount",
                p(path),
                other.go_type()
            )),
        },
        T::Ports => match data {
            Value::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::Int(n) => {
                            for spec in parse_port(&n.to_string())? {
                                out.push(Value::Map(spec.to_map()));
                            }
                        }
                        Value::Str(s) => {
                            for spec in parse_port(&s)? {
                                out.push(Value::Map(spec.to_map()));
                            }
                        }
                        Value::Map(m) => out.push(Value::Map(m)),
                        other => {
                            return Err(format!(
                                "{}: invalid type {} for port",
                                p(path),
                                other.go_type()
                            ))
                        }
                    }
                }
                Ok(Value::Seq(out))
            }
            other => Err(format!(
                "{}: invalid type {} for port",
                p(path),
                other.go_type()
            )),
        },
        T::Build => match data {
            Value::Map(m) => transform_mapping(m, path).map(Value::Map),
            Value::Str(s) => Ok(single("context", Value::Str(s))),
            other => Err(format!(
                "{}: invalid type {} for build",
                p(path),
                other.go_type()
            )),
        },
        T::Ssh => match data {
            Value::Map(m) => Ok(Value::Map(m)),
            Value::Seq(items) => {
                let mut m = Map::new();
                for item in items {
                    let s = match item {
                        Value::Str(s) => s,
                        other => return Err(format!("invalid ssh key type {}", other.go_type())),
                    };
                    match s.split_once('=') {
                        Some((id, path)) => {
                            m.insert(id.to_string(), Value::Str(path.to_string()));
                        }
                        None => {
                            if s != "default" {
                                return Err(format!("invalid ssh key {s:?}"));
                            }
                            m.insert(s, Value::Null);
                        }
                    }
                }
                Ok(Value::Map(m))
            }
            other => Err(format!(
                "{}: invalid type {} for ssh",
                p(path),
                other.go_type()
            )),
        },
        T::Ulimits => match data {
            Value::Map(m) => Ok(Value::Map(m)),
            Value::Int(n) => Ok(Value::Int(n)),
            other => Err(format!(
                "{}: invalid type {} for external",
                p(path),
                other.go_type()
            )),
        },
        T::MaybeExternal => match data {
            Value::Null => Ok(Value::Null),
            Value::Map(m) => {
                let mut resource = transform_mapping(m, path)?;
                if let Some(Value::Map(external)) = resource.get("external").cloned() {
                    resource.insert("external".into(), Value::Bool(true));
                    if let Some(extname) = external.get("name") {
                        tracing::warn!(
                            "{}: external.name is deprecated. Please set name and external: true",
                            p(path)
                        );
                        match resource.get("name") {
                            Some(name) if name != extname => {
                                return Err(format!(
                                    "{}: name and external.name conflict; only use name",
                                    p(path)
                                ))
                            }
                            Some(_) => {}
                            None => {
                                resource.insert("name".into(), extname.clone());
                            }
                        }
                    }
                }
                Ok(Value::Map(resource))
            }
            other => Err(format!(
                "{}: must be a mapping, got {}",
                p(path),
                other.go_type()
            )),
        },
        T::Include => match data {
            Value::Map(m) => Ok(Value::Map(m)),
            Value::Str(s) => Ok(single("path", Value::Str(s))),
            other => Err(format!(
                "{}: invalid type {} for external",
                p(path),
                other.go_type()
            )),
        },
    }
}

/// compose-go's `transform.SetDefaultValues`: a build context defaults to `.`, secrets to
/// `/run/secrets/<source>`, ports to tcp/ingress, device requests to all devices.
pub fn set_defaults(model: &mut Map) -> Result<(), String> {
    let Some(Value::Map(services)) = model.get_mut("services") else {
        return Ok(());
    };
    for (name, service) in services.iter_mut() {
        let Value::Map(service) = service else {
            continue;
        };
        if let Some(Value::Map(build)) = service.get_mut("build") {
            build
                .entry("context".to_string())
                .or_insert_with(|| Value::Str(".".into()));
        }
        if let Some(Value::Seq(secrets)) = service.get_mut("secrets") {
            for secret in secrets.iter_mut() {
                match secret {
                    Value::Map(m) => {
                        if !m.contains_key("target") {
                            let source = m
                                .get("source")
                                .map(|s| s.go_sprint())
                                .unwrap_or_else(|| "%!s(<nil>)".into());
                            m.insert(
                                "target".into(),
                                Value::Str(format!("/run/secrets/{source}")),
                            );
                        }
                    }
                    other => {
                        return Err(format!(
                            "services.{name}.secrets.[]: unsupported type {}",
                            other.go_type()
                        ))
                    }
                }
            }
        }
        if let Some(Value::Seq(ports)) = service.get_mut("ports") {
            for port in ports.iter_mut() {
                if let Value::Map(m) = port {
                    m.entry("protocol".to_string())
                        .or_insert_with(|| Value::Str("tcp".into()));
                    m.entry("mode".to_string())
                        .or_insert_with(|| Value::Str("ingress".into()));
                }
            }
        }
        let device_defaults = |v: &mut Value, at: &str| -> Result<(), String> {
            match v {
                Value::Map(m) => {
                    if !m.contains_key("count") && !m.contains_key("device_ids") {
                        m.insert("count".into(), Value::Str("all".into()));
                    }
                    Ok(())
                }
                other => Err(format!(
                    "{at}: invalid type {} for device request",
                    other.go_type()
                )),
            }
        };
        if let Some(Value::Seq(gpus)) = service.get_mut("gpus") {
            for g in gpus.iter_mut() {
                device_defaults(g, &format!("services.{name}.gpus.[]"))?;
            }
        }
        if let Some(Value::Seq(devices)) = service
            .get_mut("deploy")
            .and_then(Value::as_map_mut)
            .and_then(|d| d.get_mut("resources"))
            .and_then(Value::as_map_mut)
            .and_then(|r| r.get_mut("reservations"))
            .and_then(Value::as_map_mut)
            .and_then(|r| r.get_mut("devices"))
        {
            for d in devices.iter_mut() {
                device_defaults(
                    d,
                    &format!("services.{name}.deploy.resources.reservations.devices.[]"),
                )?;
            }
        }
    }
    Ok(())
}

/// compose-go's `OmitEmpty`: empty `dns` entries are dropped.
pub fn omit_empty(model: &mut Map) {
    let Some(Value::Map(services)) = model.get_mut("services") else {
        return;
    };
    for service in services.values_mut() {
        if let Some(Value::Seq(dns)) = service.as_map_mut().and_then(|s| s.get_mut("dns")) {
            dns.retain(|d| !matches!(d, Value::Null) && d.as_str() != Some(""));
        }
    }
}

/// compose-go's `validation.Validate`: the checks the schema cannot express.
pub fn semantic_checks(model: &Map) -> Result<(), String> {
    for (kind, keys) in [
        ("configs", &["file", "environment", "content"][..]),
        ("secrets", &["file", "environment"][..]),
    ] {
        if let Some(Value::Map(resources)) = model.get(kind) {
            for (name, r) in resources {
                let Value::Map(r) = r else { continue };
                let count = keys.iter().filter(|k| r.contains_key(**k)).count();
                if count > 1 {
                    return Err(format!(
                        "{kind}.{name}: {} attributes are mutually exclusive",
                        keys.join("|")
                    ));
                }
                if count == 0 && !r.contains_key("driver") && !r.contains_key("external") {
                    return Err(format!(
                        "{kind}.{name}: one of {} must be set",
                        keys.join("|")
                    ));
                }
            }
        }
    }
    if let Some(Value::Map(volumes)) = model.get("volumes") {
        for (name, v) in volumes {
            if let Value::Map(v) = v {
                check_external(v, &format!("volumes.{name}"))?;
            }
        }
    }
    let Some(Value::Map(services)) = model.get("services") else {
        return Ok(());
    };
    for (name, service) in services {
        let Value::Map(service) = service else {
            continue;
        };
        if let Some(Value::Seq(ports)) = service.get("ports") {
            for port in ports {
                if let Value::Map(m) = port {
                    if let Some(ip) = m.get("host_ip") {
                        let s = ip.go_sprint();
                        if s.parse::<std::net::IpAddr>().is_err() {
                            return Err(format!(
                                "services.{name}.ports.[]: invalid ip address: {s}"
                            ));
                        }
                    }
                }
            }
        }
        if let Some(Value::Seq(watch)) = service
            .get("develop")
            .and_then(Value::as_map)
            .and_then(|d| d.get("watch"))
        {
            for w in watch {
                if let Some(Value::Str(path)) = w.as_map().and_then(|w| w.get("path")) {
                    if path.is_empty() {
                        return Err(format!(
                            "services.{name}.develop.watch.[].path: value can't be blank"
                        ));
                    }
                }
            }
        }
        let requests = service
            .get("gpus")
            .and_then(Value::as_seq)
            .into_iter()
            .flatten()
            .chain(
                service
                    .get("deploy")
                    .and_then(Value::as_map)
                    .and_then(|d| d.get("resources"))
                    .and_then(Value::as_map)
                    .and_then(|r| r.get("reservations"))
                    .and_then(Value::as_map)
                    .and_then(|r| r.get("devices"))
                    .and_then(Value::as_seq)
                    .into_iter()
                    .flatten(),
            );
        for r in requests {
            if let Value::Map(m) = r {
                if m.contains_key("count") && m.contains_key("device_ids") {
                    return Err(format!(
                        "services.{name}: \"count\" and \"device_ids\" attributes are exclusive"
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_external(v: &Map, at: &str) -> Result<(), String> {
    if !matches!(v.get("external"), Some(Value::Bool(true))) {
        return Ok(());
    }
    for k in v.keys() {
        if k == "name" || k == "external" || k.starts_with("x-") {
            continue;
        }
        return Err(format!(
            "{at}: conflicting parameters \"external\" and {k:?} specified"
        ));
    }
    Ok(())
}
