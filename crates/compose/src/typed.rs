//! From the normalized model to typed services: the checks compose-go's typed decoding makes
//! (booleans, sizes, durations, ulimits, extra hosts, commands…), the build section in the
//! exact form `docker compose config` prints it, the model the builder and pusher consume,
//! profiles and the consistency checks (references to undefined services, networks, volumes,
//! secrets; dependency cycles).

use crate::error::{Error, ErrorKind};
use crate::loader::{go_atoi, go_bool};
use crate::model::{
    Build, BuildSecret, Context, Dockerfile, SecretDef, SecretSource, Service, SshKey, Ulimit,
};
use crate::paths::is_remote_context;
use crate::value::{Map, Value};
use indexmap::IndexMap;
use serde_json::{json, Value as J};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use wharf_docker::filepath::join;

fn err_at(service: &str, field: &str, message: impl Into<String>) -> Error {
    let path: Vec<String> = std::iter::once("services".to_string())
        .chain(std::iter::once(service.to_string()))
        .chain(field.split('.').filter(|s| !s.is_empty()).map(String::from))
        .collect();
    Error::invalid(message).at_key(&path)
}

/// `units.RAMInBytes` (docker/go-units).
pub(crate) fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let sep = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ');
    let Some(sep) = sep else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] != b' ' {
        (&s[..=sep], &s[sep + 1..])
    } else {
        (&s[..sep], &s[sep + 1..])
    };
    let size: f64 = match crate::yaml::go_parse_float(num) {
        Some(f) => f,
        None => {
            return Err(format!(
                "strconv.ParseFloat: parsing {num:?}: invalid syntax"
            ))
        }
    };
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || Err(format!("invalid suffix: '{}'", sfx.to_lowercase()));
    if sfx.len() > 3 {
        return bad();
    }
    let lower = sfx.to_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        if b.len() > 1 {
            return bad();
        }
        return Ok(size as i64);
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024.0f64.powi(4),
        b'p' => 1024.0f64.powi(5),
        _ => return bad(),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &lower[1..] != "ib") {
        return bad();
    }
    Ok((size * mul) as i64)
}

/// compose's `UnitBytes` decoding: an int as is, a string through `RAMInBytes`, anything else
/// ignored (0).
fn unit_bytes(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Str(s) => ram_in_bytes(s),
        _ => Ok(0),
    }
}

/// `str2duration.ParseDuration` (Go durations plus `d` and `w`).
pub(crate) fn parse_duration(s: &str) -> Result<(), String> {
    let err = || Err(format!("time: invalid duration {s:?}"));
    let mut rest = s;
    if let Some(r) = rest.strip_prefix(['-', '+']) {
        rest = r;
    }
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return err();
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return err();
        }
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        if !matches!(
            unit,
            "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h" | "d" | "w"
        ) {
            return Err(format!("time: unknown unit {unit:?} in duration {s:?}"));
        }
        rest = &rest[unit_len..];
    }
    Ok(())
}

/// go-shellwords' refusals: an unterminated quote or a trailing escape.
fn check_shell_words(s: &str) -> Result<(), String> {
    let mut single = false;
    let mut double = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
    }
    if single || double || escaped {
        Err("invalid command line string".into())
    } else {
        Ok(())
    }
}

fn decode_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Str(s) => go_bool(s),
        Value::Null => Ok(false),
        other => Err(format!(
            "expected type 'bool', got unconvertible type '{}'",
            other.go_type()
        )),
    }
}

fn decode_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Uint(u) => Ok(*u as i64),
        Value::Float(f) => Ok(*f as i64),
        Value::Str(s) => go_atoi(s),
        Value::Null => Ok(0),
        other => Err(format!(
            "expected type 'int', got unconvertible type '{}'",
            other.go_type()
        )),
    }
}

/// compose's `HostsList`: `host=ip` or `host:ip` strings, or a mapping of host to IP(s).
fn extra_hosts(v: &Value) -> Result<Vec<(String, String)>, String> {
    let mut list: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |host: String, ips: Vec<String>| match list.iter_mut().find(|(h, _)| *h == host) {
        Some((_, existing)) => existing.extend(ips),
        None => list.push((host, ips)),
    };
    match v {
        Value::Map(m) => {
            for (host, e) in m {
                let ips = match e {
                    Value::Null => vec![String::new()],
                    Value::Str(s) => vec![s.clone()],
                    Value::Seq(items) => items.iter().map(Value::go_sprint).collect(),
                    other => {
                        return Err(format!(
                            "unexpected value type {} for extra_hosts entry",
                            other.go_type()
                        ))
                    }
                };
                add(host.clone(), ips);
            }
        }
        Value::Seq(items) => {
            for item in items {
                let s = item.go_sprint();
                let found = ["=", ":"].iter().find_map(|sep| s.split_once(sep));
                match found {
                    Some((host, ip)) => {
                        add(host.to_string(), ip.split(',').map(String::from).collect())
                    }
                    None => return Err(format!("invalid additional host, missing IP: {s}")),
                }
            }
        }
        other => {
            return Err(format!(
                "unexpected value type {} for extra_hosts",
                other.go_type()
            ))
        }
    }
    let mut out = Vec::new();
    for (host, ips) in list {
        if host.is_empty() || host.contains([':', '=']) {
            return Err(format!("bad host name '{host}'"));
        }
        for ip in ips {
            let ip = if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
                ip[1..ip.len() - 1].to_string()
            } else {
                ip
            };
            out.push((host.clone(), ip));
        }
    }
    out.sort_by(|a, b| format!("{}={}", a.0, a.1).cmp(&format!("{}={}", b.0, b.1)));
    Ok(out)
}

fn ulimits(v: &Value) -> Result<BTreeMap<String, (i64, i64, i64)>, String> {
    let mut out = BTreeMap::new();
    let Value::Map(m) = v else {
        return Ok(out);
    };
    for (name, limit) in m {
        let parsed = match limit {
            Value::Int(i) => (*i, 0, 0),
            Value::Map(l) => {
                let get = |k: &str| -> Result<i64, String> {
                    match l.get(k) {
                        None => Ok(0),
                        Some(Value::Int(i)) => Ok(*i),
                        Some(other) => Err(format!(
                            "interface conversion: interface {{}} is {}, not int",
                            other.go_type()
                        )),
                    }
                };
                (0, get("soft")?, get("hard")?)
            }
            other => {
                return Err(format!(
                    "unexpected value type {} for ulimit",
                    other.go_type()
                ))
            }
        };
        out.insert(name.clone(), parsed);
    }
    Ok(out)
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Str(s)) => vec![s.clone()],
        Some(Value::Seq(items)) => items.iter().map(Value::go_sprint).collect(),
        _ => Vec::new(),
    }
}

fn str_field(m: &Map, k: &str) -> Option<String> {
    match m.get(k) {
        Some(Value::Str(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The typed checks compose makes on fields outside `build`.
fn check_service_fields(name: &str, s: &Map) -> Result<(), Error> {
    // Each key the service sets must decode as its type.
    let decodes = |keys: &[&str], decode: fn(&Value) -> Result<(), String>| {
        keys.iter().try_for_each(|&key| match s.get(key) {
            Some(v) => {
                decode(v).map_err(|e| err_at(name, key, format!("services.{name}.{key}: {e}")))
            }
            None => Ok(()),
        })
    };
    decodes(
        &[
            "attach",
            "init",
            "oom_kill_disable",
            "privileged",
            "read_only",
            "stdin_open",
            "tty",
            "use_api_socket",
        ],
        |v| decode_bool(v).map(drop),
    )?;
    decodes(
        &[
            "cpu_count",
            "cpu_period",
            "cpu_quota",
            "cpu_rt_period",
            "cpu_rt_runtime",
            "cpu_shares",
            "oom_score_adj",
            "pids_limit",
            "scale",
        ],
        |v| decode_int(v).map(drop),
    )?;
    decodes(
        &[
            "mem_limit",
            "mem_reservation",
            "memswap_limit",
            "mem_swappiness",
            "shm_size",
        ],
        |v| unit_bytes(v).map(drop),
    )?;
    let duration = |v: &Value, field: &str| -> Result<(), Error> {
        parse_duration(&v.go_sprint())
            .map_err(|e| err_at(name, field, format!("services.{name}.{field}: {e}")))
    };
    if let Some(v) = s.get("stop_grace_period") {
        duration(v, "stop_grace_period")?;
    }
    if let Some(Value::Map(h)) = s.get("healthcheck") {
        for k in ["interval", "timeout", "start_period", "start_interval"] {
            if let Some(v) = h.get(k) {
                duration(v, &format!("healthcheck.{k}"))?;
            }
        }
        if let Some(v) = h.get("disable") {
            decode_bool(v).map_err(|e| err_at(name, "healthcheck.disable", e))?;
        }
    }
    if let Some(Value::Map(deploy)) = s.get("deploy") {
        for section in ["update_config", "rollback_config", "restart_policy"] {
            if let Some(Value::Map(c)) = deploy.get(section) {
                for k in ["delay", "monitor", "window"] {
                    if let Some(v) = c.get(k) {
                        duration(v, &format!("deploy.{section}.{k}"))?;
                    }
                }
            }
        }
        if let Some(Value::Map(res)) = deploy.get("resources") {
            for section in ["limits", "reservations"] {
                if let Some(Value::Map(r)) = res.get(section) {
                    if let Some(v) = r.get("memory") {
                        unit_bytes(v).map_err(|e| {
                            err_at(name, &format!("deploy.resources.{section}.memory"), e)
                        })?;
                    }
                    if let Some(Value::Str(c)) = r.get("cpus") {
                        if crate::yaml::go_parse_float(c).is_none() {
                            return Err(err_at(
                                name,
                                &format!("deploy.resources.{section}.cpus"),
                                format!("strconv.ParseFloat: parsing {c:?}: invalid syntax"),
                            ));
                        }
                    }
                    if let Some(Value::Seq(devices)) = r.get("devices") {
                        for d in devices {
                            if let Some(count) = d.as_map().and_then(|d| d.get("count")) {
                                device_count(count).map_err(|e| {
                                    err_at(name, &format!("deploy.resources.{section}.devices"), e)
                                })?;
                            }
                        }
                    }
                }
            }
        }
    }
    for key in ["command", "entrypoint"] {
        if let Some(Value::Str(c)) = s.get(key) {
            check_shell_words(c).map_err(|e| err_at(name, key, e))?;
        }
    }
    if let Some(Value::Seq(env)) = s.get("environment") {
        for e in env {
            let text = e.go_sprint();
            let key = text.split_once('=').map(|(k, _)| k).unwrap_or(&text);
            if key.ends_with(char::is_whitespace) {
                return Err(err_at(
                    name,
                    "environment",
                    format!("environment variable {key} is declared with a trailing space"),
                )
                .hint("remove the space before `=`"));
            }
        }
    }
    if let Some(v) = s.get("extra_hosts") {
        extra_hosts(v).map_err(|e| err_at(name, "extra_hosts", e))?;
    }
    if let Some(v) = s.get("ulimits") {
        ulimits(v).map_err(|e| err_at(name, "ulimits", e))?;
    }
    for key in ["secrets", "configs"] {
        if let Some(Value::Seq(items)) = s.get(key) {
            for item in items {
                if let Some(mode) = item.as_map().and_then(|m| m.get("mode")) {
                    file_mode(mode).map_err(|e| err_at(name, key, e))?;
                }
            }
        }
    }
    if let Some(Value::Seq(gpus)) = s.get("gpus") {
        for g in gpus {
            if let Some(count) = g.as_map().and_then(|g| g.get("count")) {
                device_count(count).map_err(|e| err_at(name, "gpus", e))?;
            }
        }
    }
    if let Some(Value::Seq(volumes)) = s.get("volumes") {
        for v in volumes {
            let Some(v) = v.as_map() else { continue };
            if let Some(Value::Map(t)) = v.get("tmpfs") {
                if let Some(size) = t.get("size") {
                    unit_bytes(size).map_err(|e| err_at(name, "volumes", e))?;
                }
            }
            if let Some(ro) = v.get("read_only") {
                decode_bool(ro).map_err(|e| err_at(name, "volumes", e))?;
            }
        }
    }
    Ok(())
}

fn file_mode(v: &Value) -> Result<i64, String> {
    match v {
        Value::Str(s) => i64::from_str_radix(s, 8)
            .map_err(|_| format!("strconv.ParseInt: parsing {s:?}: invalid syntax")),
        Value::Int(i) => Ok(*i),
        other => Err(format!(
            "unexpected value type {} for mode",
            other.go_type()
        )),
    }
}

fn device_count(v: &Value) -> Result<(), String> {
    match v {
        Value::Int(_) => Ok(()),
        Value::Str(s) => {
            if s.eq_ignore_ascii_case("all") || go_atoi(s).is_ok() {
                Ok(())
            } else {
                Err(format!(
                    "invalid value {s:?}, the only value allowed is 'all' or a number"
                ))
            }
        }
        other => Err(format!("invalid type {} for device count", other.go_type())),
    }
}

/// A build section: the typed model and the JSON `docker compose config` prints.
pub(crate) struct BuildOut {
    pub model: Build,
    pub json: J,
}

pub(crate) fn build(
    name: &str,
    b: &Map,
    secrets: &IndexMap<String, SecretDef>,
) -> Result<BuildOut, Error> {
    let at = |field: &str, e: String| err_at(name, &format!("build.{field}"), e);
    let mut json = serde_json::Map::new();
    let mut model = Build::default();

    let context = str_field(b, "context");
    if let Some(c) = &context {
        json.insert("context".into(), J::String(c.clone()));
        model.context = Some(if is_remote_context(c) {
            Context::Remote(c.clone())
        } else {
            Context::Dir(PathBuf::from(c))
        });
    }
    let dockerfile = str_field(b, "dockerfile");
    let inline = str_field(b, "dockerfile_inline");
    if let Some(d) = &dockerfile {
        json.insert("dockerfile".into(), J::String(d.clone()));
    }
    if let Some(i) = &inline {
        json.insert("dockerfile_inline".into(), J::String(i.clone()));
    }
    model.dockerfile = match (&inline, &dockerfile) {
        (Some(i), _) => Some(Dockerfile::Inline(i.clone())),
        (None, Some(d)) => Some(Dockerfile::Path(match &model.context {
            Some(Context::Dir(dir)) if !d.starts_with('/') => {
                PathBuf::from(join(&[&dir.to_string_lossy(), d]))
            }
            _ => PathBuf::from(d),
        })),
        (None, None) => None,
    };
    let entitlements = string_list(b.get("entitlements"));
    if !entitlements.is_empty() {
        json.insert("entitlements".into(), json!(entitlements));
        model.entitlements = entitlements;
    }
    if let Some(args) = b.get("args") {
        let mut map: BTreeMap<String, Option<String>> = BTreeMap::new();
        match args {
            Value::Map(m) => {
                for (k, v) in m {
                    let v = match v {
                        Value::Null => None,
                        Value::Str(s) => Some(s.clone()),
                        other => Some(other.go_sprint()),
                    };
                    map.insert(k.clone(), v);
                }
            }
            Value::Seq(items) => {
                for item in items {
                    let s = item.go_sprint();
                    let (k, v) = match s.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (s.clone(), None),
                    };
                    if k.ends_with(char::is_whitespace) {
                        return Err(at(
                            "args",
                            format!("environment variable {k} is declared with a trailing space"),
                        )
                        .hint("remove the space before `=`"));
                    }
                    map.insert(k, v);
                }
            }
            _ => {}
        }
        if !map.is_empty() {
            json.insert("args".into(), json!(map));
        }
        model.args = map.into_iter().collect();
    }
    for key in ["provenance", "sbom"] {
        if let Some(v) = str_field(b, key) {
            json.insert(key.into(), J::String(v.clone()));
            if key == "provenance" {
                model.provenance = Some(v);
            } else {
                model.sbom = Some(v);
            }
        }
    }
    if let Some(Value::Map(ssh)) = b.get("ssh") {
        let mut keys: Vec<J> = Vec::new();
        // compose's order is a Go map's (random); wharf's is the ids' order.
        let mut sorted: Vec<(&String, &Value)> = ssh.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (id, path) in sorted {
            let path = match path {
                Value::Null => String::new(),
                other => other.go_sprint(),
            };
            keys.push(if path.is_empty() {
                J::String(id.clone())
            } else {
                J::String(format!("{id}: {path}"))
            });
            model.ssh.push(SshKey {
                id: id.clone(),
                paths: if path.is_empty() {
                    Vec::new()
                } else {
                    path.split(',').map(String::from).collect()
                },
            });
        }
        if !keys.is_empty() {
            json.insert("ssh".into(), J::Array(keys));
        }
    }
    if let Some(labels) = b.get("labels") {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        match labels {
            Value::Map(m) => {
                for (k, v) in m {
                    map.insert(
                        k.clone(),
                        match v {
                            Value::Null => String::new(),
                            other => other.go_sprint(),
                        },
                    );
                }
            }
            Value::Seq(items) => {
                for item in items {
                    let s = item.go_sprint();
                    let (k, v) = s.split_once('=').unwrap_or((&s, ""));
                    map.insert(k.to_string(), v.to_string());
                }
            }
            _ => {}
        }
        if !map.is_empty() {
            json.insert("labels".into(), json!(map));
        }
        model.labels = map.into_iter().collect();
    }
    for key in ["cache_from", "cache_to"] {
        let list = string_list(b.get(key));
        if !list.is_empty() {
            json.insert(key.into(), json!(list));
        }
        if key == "cache_from" {
            model.cache_from = list;
        } else {
            model.cache_to = list;
        }
    }
    if let Some(v) = b.get("no_cache") {
        model.no_cache = decode_bool(v).map_err(|e| at("no_cache", e))?;
        if model.no_cache {
            json.insert("no_cache".into(), J::Bool(true));
        }
    }
    if let Some(Value::Map(m)) = b.get("additional_contexts") {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in m {
            map.insert(
                k.clone(),
                match v {
                    Value::Null => String::new(),
                    other => other.go_sprint(),
                },
            );
        }
        if !map.is_empty() {
            json.insert("additional_contexts".into(), json!(map));
        }
        model.additional_contexts = map.into_iter().collect();
    }
    if let Some(v) = b.get("pull") {
        model.pull = decode_bool(v).map_err(|e| at("pull", e))?;
        if model.pull {
            json.insert("pull".into(), J::Bool(true));
        }
    }
    if let Some(v) = b.get("extra_hosts") {
        let hosts = extra_hosts(v).map_err(|e| at("extra_hosts", e))?;
        if !hosts.is_empty() {
            let list: Vec<String> = hosts.iter().map(|(h, ip)| format!("{h}={ip}")).collect();
            json.insert("extra_hosts".into(), json!(list));
        }
        model.extra_hosts = hosts;
    }
    for key in ["isolation", "network", "target"] {
        if let Some(v) = str_field(b, key) {
            json.insert(key.into(), J::String(v.clone()));
            match key {
                "isolation" => model.isolation = Some(v),
                "network" => model.network = Some(v),
                _ => model.target = Some(v),
            }
        }
    }
    if let Some(Value::Seq(items)) = b.get("secrets") {
        let mut list = Vec::new();
        for item in items {
            let Value::Map(m) = item else { continue };
            let mut entry = serde_json::Map::new();
            let source = str_field(m, "source").unwrap_or_default();
            let target = str_field(m, "target");
            for k in ["source", "target", "uid", "gid"] {
                if let Some(v) = str_field(m, k) {
                    entry.insert(k.into(), J::String(v));
                }
            }
            if let Some(mode) = m.get("mode") {
                let mode = file_mode(mode).map_err(|e| at("secrets", e))?;
                entry.insert("mode".into(), J::String(format!("0{mode:o}")));
            }
            list.push(J::Object(entry));
            if let Some(def) = secrets.get(&source) {
                let src = if let Some(f) = &def.file {
                    Some(SecretSource::File(f.clone()))
                } else {
                    def.environment.clone().map(SecretSource::Environment)
                };
                if let Some(src) = src {
                    model.secrets.push(BuildSecret {
                        id: target.unwrap_or_else(|| source.clone()),
                        source: src,
                    });
                }
            }
        }
        if !list.is_empty() {
            json.insert("secrets".into(), J::Array(list));
        }
    }
    if let Some(v) = b.get("shm_size") {
        let bytes = unit_bytes(v).map_err(|e| at("shm_size", e))?;
        if bytes != 0 {
            json.insert("shm_size".into(), J::String(bytes.to_string()));
            model.shm_size = u64::try_from(bytes).ok();
        }
    }
    let tags = string_list(b.get("tags"));
    if !tags.is_empty() {
        json.insert("tags".into(), json!(tags));
        model.tags = tags;
    }
    if let Some(v) = b.get("ulimits") {
        let limits = ulimits(v).map_err(|e| at("ulimits", e))?;
        let mut out = serde_json::Map::new();
        for (name, (single, soft, hard)) in &limits {
            if *single != 0 {
                out.insert(name.clone(), json!(single));
                model.ulimits.insert(
                    name.clone(),
                    Ulimit {
                        soft: *single,
                        hard: *single,
                    },
                );
            } else {
                let mut o = serde_json::Map::new();
                if *soft != 0 {
                    o.insert("soft".into(), json!(soft));
                }
                if *hard != 0 {
                    o.insert("hard".into(), json!(hard));
                }
                out.insert(name.clone(), J::Object(o));
                model.ulimits.insert(
                    name.clone(),
                    Ulimit {
                        soft: *soft,
                        hard: *hard,
                    },
                );
            }
        }
        if !out.is_empty() {
            json.insert("ulimits".into(), J::Object(out));
        }
    }
    let platforms = string_list(b.get("platforms"));
    if !platforms.is_empty() {
        json.insert("platforms".into(), json!(platforms));
        model.platforms = platforms;
    }
    if let Some(v) = b.get("privileged") {
        model.privileged = decode_bool(v).map_err(|e| at("privileged", e))?;
        if model.privileged {
            json.insert("privileged".into(), J::Bool(true));
        }
    }
    // Extension fields of the build section: compose shows them in YAML only.
    for (k, v) in b {
        if k.starts_with("x-") {
            json.insert(k.clone(), v.to_output_json());
        }
    }
    Ok(BuildOut {
        model,
        json: J::Object(json),
    })
}

/// One service after typed decoding.
pub(crate) struct TypedService {
    pub service: Service,
}

pub(crate) fn service(
    name: &str,
    s: &Map,
    secrets: &IndexMap<String, SecretDef>,
) -> Result<TypedService, Error> {
    check_service_fields(name, s)?;
    let mut json = serde_json::Map::new();
    let profiles = string_list(s.get("profiles"));
    if !profiles.is_empty() {
        json.insert("profiles".into(), json!(profiles));
    }
    let mut out_build = None;
    if let Some(Value::Map(b)) = s.get("build") {
        let b = build(name, b, secrets)?;
        json.insert("build".into(), b.json);
        out_build = Some(b.model);
    }
    let image = str_field(s, "image");
    if let Some(i) = &image {
        json.insert("image".into(), J::String(i.clone()));
    }
    let x_wharf = match s.get("x-wharf") {
        Some(v) => Some(
            crate::x_wharf::service_settings(&v.to_output_json()).map_err(|e| {
                Error::new(
                    ErrorKind::Schema,
                    format!("services.{name}.x-wharf.{}: {}", e.key.join("."), e.message),
                )
            })?,
        ),
        None => None,
    };
    let extensions: IndexMap<String, J> = s
        .iter()
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| (k.clone(), v.to_output_json()))
        .collect();
    let json = J::Object(json);
    Ok(TypedService {
        service: Service {
            name: name.to_string(),
            image,
            platform: str_field(s, "platform").filter(|p| !p.is_empty()),
            build: out_build,
            profiles,
            x_wharf,
            depends_on: s
                .get("depends_on")
                .and_then(Value::as_map)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            extensions,
            compose: json,
        },
    })
}

pub(crate) fn secret_defs(model: &Map) -> IndexMap<String, SecretDef> {
    let mut out = IndexMap::new();
    if let Some(Value::Map(secrets)) = model.get("secrets") {
        for (name, def) in secrets {
            let Value::Map(d) = def else { continue };
            out.insert(
                name.clone(),
                SecretDef {
                    file: str_field(d, "file").map(PathBuf::from),
                    environment: str_field(d, "environment"),
                    external: matches!(d.get("external"), Some(Value::Bool(true))),
                },
            );
        }
    }
    out
}

fn service_names_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Map(m)) => m.keys().cloned().collect(),
        Some(Value::Seq(items)) => items.iter().map(Value::go_sprint).collect(),
        _ => Vec::new(),
    }
}

/// compose-go's `checkConsistency` for the active services.
pub(crate) fn check_consistency(
    model: &Map,
    active: &BTreeSet<String>,
    disabled: &BTreeMap<String, Vec<String>>,
) -> Result<(), Error> {
    let empty = Map::new();
    let services = model
        .get("services")
        .and_then(Value::as_map)
        .unwrap_or(&empty);
    let top = |k: &str| -> BTreeSet<String> {
        model
            .get(k)
            .and_then(Value::as_map)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let networks = top("networks");
    let volumes = top("volumes");
    let secrets = top("secrets");
    let configs = top("configs");
    let models = top("models");
    for name in active {
        let Some(Value::Map(s)) = services.get(name) else {
            continue;
        };
        let build = s.get("build").and_then(Value::as_map);
        let image = str_field(s, "image");
        if build.is_none() && image.is_none() && !s.contains_key("provider") {
            return Err(err_at(
                name,
                "",
                format!("service {name:?} has neither an image nor a build context specified: invalid compose project"),
            )
            .hint("add `image:` or `build:` to the service"));
        }
        if let Some(b) = build {
            if str_field(b, "dockerfile_inline").is_some() && str_field(b, "dockerfile").is_some() {
                return Err(err_at(
                    name,
                    "build",
                    format!("service {name:?} declares mutualy exclusive dockerfile and dockerfile_inline: invalid compose project"),
                )
                .hint("keep either `dockerfile` or `dockerfile_inline`"));
            }
            if let Some(Value::Map(ctxs)) = b.get("additional_contexts") {
                for (add, c) in ctxs {
                    if let Some(target) = c.go_sprint().strip_prefix("service:") {
                        let t = services.get(target).and_then(Value::as_map);
                        if !active.contains(target) || t.is_none() {
                            return Err(err_at(
                                name,
                                "build.additional_contexts",
                                format!("service {name:?} declares unknown service {target:?} as additional contexts {add}"),
                            ));
                        }
                        if t.and_then(|t| t.get("build")).is_none() {
                            return Err(err_at(
                                name,
                                "build.additional_contexts",
                                format!("service {name:?} declares non-buildable service {target:?} as additional contexts {add}"),
                            ));
                        }
                    }
                }
            }
            let platforms = string_list(b.get("platforms"));
            if let Some(platform) = str_field(s, "platform") {
                if !platforms.is_empty() && !platforms.contains(&platform) {
                    return Err(err_at(
                        name,
                        "build.platforms",
                        format!("service.build.platforms MUST include service.platform {platform:?}: invalid compose project"),
                    )
                    .hint(format!(
                        "add {platform} to services.{name}.build.platforms, or set services.{name}.platform to one of them"
                    )));
                }
            }
            if let Some(Value::Seq(items)) = b.get("secrets") {
                for item in items {
                    let source = item
                        .as_map()
                        .and_then(|m| str_field(m, "source"))
                        .unwrap_or_default();
                    if !secrets.contains(&source) {
                        return Err(err_at(
                            name,
                            "build.secrets",
                            format!("service {name:?} refers to undefined build secret {source}: invalid compose project"),
                        )
                        .hint(format!("define {source} under the top-level `secrets:`")));
                    }
                }
            }
        }
        let service_networks = service_names_of(s.get("networks"));
        if str_field(s, "network_mode").is_some() && !service_networks.is_empty() {
            return Err(err_at(
                name,
                "network_mode",
                format!("service {name} declares mutually exclusive `network_mode` and `networks`: invalid compose project"),
            ));
        }
        for n in &service_networks {
            if !networks.contains(n) {
                return Err(err_at(
                    name,
                    "networks",
                    format!(
                        "service {name:?} refers to undefined network {n}: invalid compose project"
                    ),
                )
                .hint(format!("define {n} under the top-level `networks:`")));
            }
        }
        if let Some(Value::Map(h)) = s.get("healthcheck") {
            if let Some(test) = h.get("test") {
                let first = match test {
                    Value::Str(_) => Some("CMD-SHELL".to_string()),
                    Value::Seq(items) => items.first().map(Value::go_sprint),
                    _ => None,
                };
                if let Some(first) = first {
                    if !matches!(first.as_str(), "CMD" | "CMD-SHELL" | "NONE") {
                        return Err(err_at(
                            name,
                            "healthcheck.test",
                            "healthcheck.test must start either by \"CMD\", \"CMD-SHELL\" or \"NONE\"",
                        ));
                    }
                }
            }
        }
        if let Some(Value::Map(deps)) = s.get("depends_on") {
            for (dep, cfg) in deps {
                if active.contains(dep) {
                    continue;
                }
                let required = cfg
                    .as_map()
                    .and_then(|c| c.get("required"))
                    .map(|r| decode_bool(r).unwrap_or(true))
                    .unwrap_or(true);
                if disabled.contains_key(dep) && !required {
                    continue;
                }
                return Err(err_at(
                    name,
                    "depends_on",
                    format!("service {name:?} depends on undefined service {dep:?}: invalid compose project"),
                )
                .hint(if disabled.contains_key(dep) {
                    format!("{dep} is disabled by its profiles; enable one of them or mark the dependency `required: false`")
                } else {
                    format!("define a service {dep}, or remove it from depends_on")
                }));
            }
        }
        if let Some(mode) = str_field(s, "network_mode") {
            if let Some(target) = mode.strip_prefix("service:") {
                if !active.contains(target) {
                    return Err(err_at(
                        name,
                        "network_mode",
                        format!("service {target:?} not found for network_mode 'service:{target}'"),
                    ));
                }
            }
        }
        let mut mounts: BTreeMap<String, String> = BTreeMap::new();
        for (i, t) in string_list(s.get("tmpfs")).iter().enumerate() {
            let loc = format!("services.{name}.tmpfs[{i}]");
            let path = t.split(':').next().unwrap_or("").to_string();
            if let Some(prev) = mounts.get(&path) {
                return Err(Error::invalid(format!(
                    "{loc}: target {path} already mounted as {prev}"
                )));
            }
            mounts.insert(path, loc);
        }
        if let Some(Value::Seq(vols)) = s.get("volumes") {
            for (i, v) in vols.iter().enumerate() {
                let Some(v) = v.as_map() else { continue };
                if v.get("type").and_then(Value::as_str) == Some("volume") {
                    if let Some(src) = str_field(v, "source") {
                        if !volumes.contains(&src) {
                            return Err(err_at(
                                name,
                                "volumes",
                                format!("service {name:?} refers to undefined volume {src}: invalid compose project"),
                            )
                            .hint(format!("define {src} under the top-level `volumes:`, or use a path (./{src}) for a bind mount")));
                        }
                    }
                }
                let target = v.get("target").map(Value::go_sprint).unwrap_or_default();
                let loc = format!("services.{name}.volumes[{i}]");
                if let Some(prev) = mounts.get(&target) {
                    return Err(Error::invalid(format!(
                        "{loc}: target {target} already mounted as {prev}"
                    )));
                }
                mounts.insert(target, loc);
            }
        }
        for (key, defined, what) in [
            ("configs", &configs, "config"),
            ("secrets", &secrets, "secret"),
        ] {
            if let Some(Value::Seq(items)) = s.get(key) {
                for item in items {
                    let source = item
                        .as_map()
                        .and_then(|m| str_field(m, "source"))
                        .unwrap_or_default();
                    if !defined.contains(&source) {
                        return Err(err_at(
                            name,
                            key,
                            format!("service {name:?} refers to undefined {what} {source}: invalid compose project"),
                        )
                        .hint(format!("define {source} under the top-level `{key}:`")));
                    }
                }
            }
        }
        for m in service_names_of(s.get("models")) {
            if !models.contains(&m) {
                return Err(err_at(
                    name,
                    "models",
                    format!(
                        "service {name:?} refers to undefined model {m}: invalid compose project"
                    ),
                ));
            }
        }
        let scale = s.get("scale").map(|v| decode_int(v).unwrap_or(0));
        let replicas = s
            .get("deploy")
            .and_then(Value::as_map)
            .and_then(|d| d.get("replicas"))
            .map(|v| decode_int(v).unwrap_or(0));
        if let (Some(sc), Some(r)) = (scale, replicas) {
            if sc != r {
                return Err(err_at(
                    name,
                    "scale",
                    format!("services.{name}: can't set distinct values on 'scale' and 'deploy.replicas': invalid compose project"),
                ));
            }
        }
        if scale.is_some_and(|s| s < 0) {
            return Err(err_at(
                name,
                "scale",
                format!("services.{name}.scale: must be greater than or equal to 0"),
            ));
        }
        if replicas.is_some_and(|r| r < 0) {
            return Err(err_at(
                name,
                "deploy.replicas",
                format!("services.{name}.deploy.replicas: must be greater than or equal to 0"),
            ));
        }
        let limits = s
            .get("deploy")
            .and_then(Value::as_map)
            .and_then(|d| d.get("resources"))
            .and_then(Value::as_map);
        let section = |k: &str| limits.and_then(|r| r.get(k)).and_then(Value::as_map);
        if let (Some(cpus), Some(l)) = (s.get("cpus"), section("limits")) {
            let c = match cpus {
                Value::Float(f) => *f as f32,
                Value::Int(i) => *i as f32,
                _ => 0.0,
            };
            let lc = match l.get("cpus") {
                Some(Value::Float(f)) => *f as f32,
                Some(Value::Int(i)) => *i as f32,
                Some(Value::Str(s)) => s.parse::<f64>().unwrap_or(0.0) as f32,
                _ => 0.0,
            };
            if c != 0.0 && c != lc {
                return Err(err_at(
                    name,
                    "cpus",
                    format!("services.{name}: can't set distinct values on 'cpus' and 'deploy.resources.limits.cpus': invalid compose project"),
                ));
            }
        }
        for (field, sect, what) in [
            ("mem_limit", "limits", "deploy.resources.limits.memory"),
            (
                "mem_reservation",
                "reservations",
                "deploy.resources.reservations.memory",
            ),
        ] {
            if let (Some(v), Some(l)) = (s.get(field), section(sect)) {
                let a = unit_bytes(v).unwrap_or(0);
                let b = l
                    .get("memory")
                    .map(|m| unit_bytes(m).unwrap_or(0))
                    .unwrap_or(0);
                if a != 0 && a != b {
                    return Err(err_at(
                        name,
                        field,
                        format!("services.{name}: can't set distinct values on '{field}' and '{what}': invalid compose project"),
                    ));
                }
            }
        }
        if let (Some(v), Some(l)) = (s.get("pids_limit"), section("limits")) {
            let a = decode_int(v).unwrap_or(0);
            let b = l
                .get("pids")
                .map(|m| decode_int(m).unwrap_or(0))
                .unwrap_or(0);
            if a != 0 && a != b {
                return Err(err_at(
                    name,
                    "pids_limit",
                    format!("services.{name}: can't set distinct values on 'pids_limit' and 'deploy.resources.limits.pids': invalid compose project"),
                ));
            }
        }
        let effective = scale.or(replicas).unwrap_or(1);
        if effective > 1 && str_field(s, "container_name").is_some() {
            let attr = if scale.is_some() {
                "scale"
            } else {
                "deploy.replicas"
            };
            return Err(err_at(
                name,
                "container_name",
                format!("services.{attr}: can't set container_name and {name} as container name must be unique: invalid compose project"),
            ));
        }
        if let Some(Value::Seq(watch)) = s
            .get("develop")
            .and_then(Value::as_map)
            .and_then(|d| d.get("watch"))
        {
            for w in watch {
                let Some(w) = w.as_map() else { continue };
                let action = str_field(w, "action").unwrap_or_default();
                if str_field(w, "target").is_none() && action != "rebuild" && action != "restart" {
                    return Err(err_at(
                        name,
                        "develop.watch",
                        format!("services.{name}.develop.watch: target is required for non-rebuild actions: invalid compose project"),
                    ));
                }
            }
        }
    }
    if let Some(Value::Map(defs)) = model.get("secrets") {
        for (name, def) in defs {
            let d = def.as_map();
            let external = d
                .and_then(|d| d.get("external"))
                .is_some_and(|e| matches!(e, Value::Bool(true)));
            if external {
                continue;
            }
            let has = |k: &str| d.and_then(|d| str_field(d, k)).is_some();
            if !has("file") && !has("environment") {
                return Err(Error::invalid(format!(
                    "secret {name:?} must declare either `file` or `environment`: invalid compose project"
                ))
                .at_key(&["secrets".to_string(), name.clone()]));
            }
        }
    }
    check_cycles(services, active)
}

fn check_cycles(services: &Map, active: &BTreeSet<String>) -> Result<(), Error> {
    let deps = |name: &str| -> Vec<String> {
        let mut d: Vec<String> = services
            .get(name)
            .and_then(Value::as_map)
            .and_then(|s| s.get("depends_on"))
            .and_then(Value::as_map)
            .map(|m| m.keys().filter(|k| active.contains(*k)).cloned().collect())
            .unwrap_or_default();
        d.sort();
        d
    };
    fn search(
        path: &mut Vec<String>,
        deps: &dyn Fn(&str) -> Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Result<(), String> {
        let Some(current) = path.last().cloned() else {
            return Ok(());
        };
        for child in deps(&current) {
            if let Some(i) = path.iter().position(|p| *p == child) {
                return Err(format!(
                    "dependency cycle detected: {} -> {child}",
                    path[i..].join(" -> ")
                ));
            }
            if done.contains(&child) {
                continue;
            }
            path.push(child.clone());
            search(path, deps, done)?;
            path.pop();
            done.insert(child);
        }
        Ok(())
    }
    let mut done = BTreeSet::new();
    for name in active {
        if done.contains(name) {
            continue;
        }
        let mut path = vec![name.clone()];
        search(&mut path, &deps, &mut done).map_err(|e| {
            Error::invalid(e)
                .at_key(&["services".into(), name.clone(), "depends_on".into()])
                .hint("remove one of the depends_on links of the cycle")
        })?;
        done.insert(name.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("64M"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1.5kb"), Ok(1536));
        assert_eq!(ram_in_bytes("10"), Ok(10));
        assert_eq!(ram_in_bytes("2 GiB"), Ok(2 << 30));
        assert!(ram_in_bytes("1x").is_err());
        assert!(ram_in_bytes("big").is_err());
        assert!(ram_in_bytes("1gbb").is_err());
    }

    #[test]
    fn durations() {
        assert!(parse_duration("1m30s").is_ok());
        assert!(parse_duration("2d").is_ok());
        assert!(parse_duration("0").is_ok());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1x").is_err());
    }

    #[test]
    fn hosts() {
        let v = Value::Seq(vec![
            Value::Str("b:1.2.3.4".into()),
            Value::Str("a=[::1]".into()),
        ]);
        assert_eq!(
            extra_hosts(&v).unwrap(),
            vec![
                ("a".to_string(), "::1".to_string()),
                ("b".to_string(), "1.2.3.4".to_string())
            ]
        );
        assert!(extra_hosts(&Value::Seq(vec![Value::Str("nohost".into())])).is_err());
    }
}
