//! Input digests: one BLAKE3 digest per service of everything that decides its image, so that
//! a release can tell a service whose inputs did not change from one that must be built.
//!
//! The digest covers:
//! - the build context exactly as wharf sends it (after `.dockerignore`): each entry's path,
//!   type, permission bits, link target, size and content; the Dockerfile (or inline text)
//!   and which builder reads it;
//! - the build fields that change the image: args, target, labels, network, extra hosts,
//!   shm size, secret and SSH ids (not their values), additional contexts (a folder's content
//!   through the Dockerfile the build is served, which names the folder's image by the digest
//!   of its content);
//! - the platform actually built: the one the project declares, else the daemon's own (so a
//!   runner of another architecture never takes an image of this one for its own);
//! - the compose labels that follow from the project: its name and the service's;
//! - the version of what wharf itself writes into images ([`crate::labels::FORMAT`]);
//! - the input digests of the project's services whose images this one builds `FROM`;
//! - base images only as the Dockerfile names them: a `FROM image@sha256:…` pins its base,
//!   a tag (`FROM debian:12`) is covered by its name alone.
//!
//! It does not cover modification times and owners (the daemon's own build cache ignores
//! them too: a fresh checkout must not look changed), cache settings, the secrets' values, or
//! the labels that describe the run rather than the inputs: the OCI labels wharf adds per build
//! (commit, creation time: the commit's by default) and the tool's version
//! (`com.docker.compose.version`).
//!
//! Services whose inputs cannot be known before the build are never matched: `no_cache` and
//! `pull` ask for a fresh build, a remote context is fetched by the daemon (unless its URL
//! pins a full commit id).

use crate::builder_kind::BuilderKind;
use crate::context::ContextError;
use crate::platform::{Native, Target};
use crate::service::{dependency_unit, ServiceBuild, Source, Unit};
use std::collections::HashMap;
use wharf_compose::{Build, Dockerfile, SecretSource};

/// The tag that marks an image by its inputs in a registry: `wharf-inputs-<digest>`.
pub const TAG_PREFIX: &str = "wharf-inputs-";

/// The image label that carries the input digest.
pub const LABEL: &str = "dev.wharf.inputs";

/// Bumped whenever what the digest covers changes, so old tags are never matched wrongly.
const FORMAT: &str = "wharf-inputs/4";

/// What is known of a service's inputs before its build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inputs {
    Known(Digest),
    /// Why the inputs cannot be told before building.
    Unknown {
        reason: String,
    },
}

impl Inputs {
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Inputs::Known(d) => Some(d),
            Inputs::Unknown { .. } => None,
        }
    }
}

/// A service's input digest, with what went into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// 64 lowercase hex digits.
    pub hex: String,
    /// Context entries hashed.
    pub entries: u64,
    /// Bytes of file content it covers (read now, or remembered: [`crate::content_cache`]).
    pub bytes: u64,
}

impl Digest {
    /// The registry tag naming an image built from these inputs.
    pub fn tag(&self) -> String {
        format!("{TAG_PREFIX}{}", self.hex)
    }
}

/// Why hashing failed: the context could not be read.
#[derive(Debug, thiserror::Error)]
#[error("service `{service}`: cannot read its build inputs: {source}")]
pub struct InputsError {
    pub service: String,
    #[source]
    pub source: ContextError,
}

/// The input digests of `builds`, keyed by service: a multi-platform image's is the digest of
/// its platforms' digests (the index's inputs tag names the set). See [`digest_units`].
pub fn digest_all(
    builds: &[ServiceBuild],
    compose: &HashMap<String, &Build>,
    parallel: usize,
) -> Result<HashMap<String, Inputs>, InputsError> {
    Ok(by_service(
        builds,
        &digest_units(builds, compose, parallel)?,
    ))
}

/// The input digest of every build (one thread per build, at most `parallel` at a time):
/// one per platform of a multi-platform image. `compose` gives each service's compose build
/// section.
pub fn digest_units(
    builds: &[ServiceBuild],
    compose: &HashMap<String, &Build>,
    parallel: usize,
) -> Result<HashMap<Unit, Inputs>, InputsError> {
    crate::content_cache::prune();
    // Each build's own part first (the expensive part: reading its context), concurrently.
    let own: Vec<Result<Own, InputsError>> = {
        let queue = std::sync::Mutex::new(builds.iter().enumerate());
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..parallel.clamp(1, builds.len().max(1)) {
                scope.spawn(|| loop {
                    let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some((i, b)) = next else { break };
                    let r = own_digest(b, compose.get(&b.service).copied());
                    if let Ok(mut out) = results.lock() {
                        out.push((i, r));
                    }
                });
            }
        });
        let mut results = results.into_inner().unwrap_or_default();
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    };
    let mut own_by_unit = HashMap::new();
    for (b, r) in builds.iter().zip(own) {
        own_by_unit.insert(b.unit(), (b, r?));
    }
    let mut done: HashMap<Unit, Inputs> = HashMap::new();
    for b in builds {
        combine(builds, &b.unit(), &own_by_unit, &mut done, &mut Vec::new());
    }
    Ok(done)
}

/// Each service's digest from its builds' digests: a single image's own, or the digest of
/// every platform's (known only when this run builds every platform of the image).
pub fn by_service(
    builds: &[ServiceBuild],
    units: &HashMap<Unit, Inputs>,
) -> HashMap<String, Inputs> {
    let mut out = HashMap::new();
    for b in builds {
        if out.contains_key(&b.service) {
            continue;
        }
        let inputs = if !b.is_multi_platform() {
            units.get(&b.unit()).cloned()
        } else if b.platforms_built.len() < b.service_platforms.len() {
            Some(Inputs::Unknown {
                reason: "this run builds only some of its platforms".into(),
            })
        } else {
            let mut h = blake3::Hasher::new();
            field(&mut h, "format", FORMAT);
            field(&mut h, "index", &b.service);
            let (mut entries, mut bytes) = (0, 0);
            let mut unknown = None;
            let mut platforms = b.service_platforms.clone();
            platforms.sort();
            for p in &platforms {
                let unit = Unit {
                    service: b.service.clone(),
                    platform: Some(p.clone()),
                };
                match units.get(&unit) {
                    Some(Inputs::Known(d)) => {
                        field(&mut h, "platform", &format!("{p}={}", d.hex));
                        entries += d.entries;
                        bytes += d.bytes;
                    }
                    Some(Inputs::Unknown { reason }) => {
                        unknown = Some(reason.clone());
                        break;
                    }
                    None => {
                        unknown = Some(format!("{p} is not built in this run"));
                        break;
                    }
                }
            }
            Some(match unknown {
                Some(reason) => Inputs::Unknown { reason },
                None => Inputs::Known(Digest {
                    hex: h.finalize().to_hex().to_string(),
                    entries,
                    bytes,
                }),
            })
        };
        if let Some(i) = inputs {
            out.insert(b.service.clone(), i);
        }
    }
    out
}

/// A build's digest: its own part and the digests of the builds it builds `FROM` (the same
/// platform's, for a multi-platform base).
fn combine(
    builds: &[ServiceBuild],
    unit: &Unit,
    own: &HashMap<Unit, (&ServiceBuild, Own)>,
    done: &mut HashMap<Unit, Inputs>,
    path: &mut Vec<Unit>,
) -> Inputs {
    if let Some(d) = done.get(unit) {
        return d.clone();
    }
    let Some((build, mine)) = own.get(unit) else {
        return Inputs::Unknown {
            reason: format!("`{unit}` is not built in this run"),
        };
    };
    if path.contains(unit) {
        return Inputs::Unknown {
            reason: "its image depends on itself".into(),
        };
    }
    path.push(unit.clone());
    let result = match mine {
        Own::Unknown(reason) => Inputs::Unknown {
            reason: reason.clone(),
        },
        Own::Known {
            hasher,
            entries,
            bytes,
        } => {
            let mut hasher = (**hasher).clone();
            let mut after = build.after.clone();
            after.sort();
            let mut unknown = None;
            for base in &after {
                let Some(base_unit) = dependency_unit(builds, base, build.platform.known()) else {
                    unknown = Some(format!(
                        "it builds FROM `{base}`, which is not built for its platform"
                    ));
                    break;
                };
                match combine(builds, &base_unit, own, done, path) {
                    Inputs::Known(d) => field(&mut hasher, "after", &format!("{base}={}", d.hex)),
                    Inputs::Unknown { .. } => {
                        unknown = Some(format!(
                            "it builds FROM `{base}`, whose inputs are not known before its build"
                        ));
                        break;
                    }
                }
            }
            match unknown {
                Some(reason) => Inputs::Unknown { reason },
                None => Inputs::Known(Digest {
                    hex: hasher.finalize().to_hex().to_string(),
                    entries: *entries,
                    bytes: *bytes,
                }),
            }
        }
    };
    path.pop();
    done.insert(unit.clone(), result.clone());
    result
}

enum Own {
    Known {
        hasher: Box<blake3::Hasher>,
        entries: u64,
        bytes: u64,
    },
    Unknown(String),
}

/// Adds a named, length-prefixed field, so that no two different inputs hash alike by
/// running into each other.
fn field(h: &mut blake3::Hasher, name: &str, value: &str) {
    h.update(name.as_bytes());
    h.update(&[0]);
    h.update(&(value.len() as u64).to_le_bytes());
    h.update(value.as_bytes());
}

fn own_digest(b: &ServiceBuild, compose: Option<&Build>) -> Result<Own, InputsError> {
    let Some(compose) = compose else {
        return Ok(Own::Unknown("it has no build section".into()));
    };
    if compose.no_cache {
        return Ok(Own::Unknown(
            "`no_cache: true` asks for a fresh build every time".into(),
        ));
    }
    if compose.pull {
        return Ok(Own::Unknown(
            "`pull: true` asks for the newest base image on every build".into(),
        ));
    }
    let mut h = blake3::Hasher::new();
    field(&mut h, "format", FORMAT);
    field(&mut h, "image-format", crate::labels::FORMAT);
    field(
        &mut h,
        "builder",
        match b.request.builder {
            BuilderKind::BuildKit => "buildkit",
            BuilderKind::Classic => "classic",
        },
    );
    settings(&mut h, compose);
    match &b.platform {
        Target::Declared(p) | Target::Daemon(Native::Known(p)) => {
            field(&mut h, "platform", &p.to_string())
        }
        Target::Daemon(Native::NotAsked) => {
            return Ok(Own::Unknown(
                "it is built for the daemon's own platform, which the daemon was not asked".into(),
            ))
        }
        Target::Daemon(Native::Unknown(why)) => {
            return Ok(Own::Unknown(format!(
                "it is built for the daemon's own platform, which is not known: {why}"
            )))
        }
    }
    let mut labels: Vec<(&String, &String)> = b
        .request
        .labels
        .iter()
        .filter(|(k, _)| crate::labels::digested(k))
        .collect();
    labels.sort();
    for (k, v) in labels {
        field(&mut h, "compose-label", &format!("{k}={v}"));
    }
    let (mut entries, mut bytes) = (0, 0);
    match &b.source {
        Source::Remote(url) => match pinned_commit(url) {
            Some(_) => {
                field(&mut h, "remote", url);
                field(&mut h, "dockerfile-path", &b.request.dockerfile);
            }
            None => {
                return Ok(Own::Unknown(format!(
                    "its context {} is fetched by the daemon (pin a full commit id, `#<sha>`, to make it known)",
                    wharf_compose::redact::userinfo(url)
                )))
            }
        },
        Source::Local(ctx) => {
            let err = |source| InputsError {
                service: b.service.clone(),
                source,
            };
            field(&mut h, "dockerfile-path", &b.request.dockerfile);
            let text = ctx.dockerfile_content().map_err(err)?;
            h.update(b"dockerfile\0");
            h.update(&(text.len() as u64).to_le_bytes());
            h.update(&text);
            (entries, bytes) = crate::entry_digest::hash_context(&mut h, ctx).map_err(err)?;
        }
    }
    Ok(Own::Known {
        hasher: Box::new(h),
        entries,
        bytes,
    })
}

/// The compose build fields that change the image, in a fixed order.
fn settings(h: &mut blake3::Hasher, b: &Build) {
    if let Some(Dockerfile::Inline(text)) = &b.dockerfile {
        field(h, "inline", text);
    }
    let mut args: Vec<(&String, &String)> = b
        .args
        .iter()
        .filter_map(|(k, v)| Some((k, v.as_ref()?)))
        .collect();
    args.sort();
    for (k, v) in args {
        field(h, "arg", &format!("{k}={v}"));
    }
    if let Some(t) = &b.target {
        field(h, "target", t);
    }
    let mut labels: Vec<_> = b.labels.iter().collect();
    labels.sort();
    for (k, v) in labels {
        field(h, "label", &format!("{k}={v}"));
    }
    if let Some(n) = &b.network {
        field(h, "network", n);
    }
    let mut hosts: Vec<_> = b.extra_hosts.iter().collect();
    hosts.sort();
    for (host, ip) in hosts {
        field(h, "extra_host", &format!("{host}={ip}"));
    }
    if let Some(n) = b.shm_size {
        field(h, "shm_size", &n.to_string());
    }
    let mut secrets: Vec<String> = b
        .secrets
        .iter()
        .map(|s| match &s.source {
            SecretSource::File(_) => format!("{}:file", s.id),
            SecretSource::Environment(_) => format!("{}:env", s.id),
        })
        .collect();
    secrets.sort();
    for s in secrets {
        field(h, "secret", &s);
    }
    let mut ssh: Vec<&str> = b.ssh.iter().map(|k| k.id.as_str()).collect();
    ssh.sort();
    for s in ssh {
        field(h, "ssh", s);
    }
    // A folder is named by kind only: its path differs between machines, and its content
    // reaches the digest through the Dockerfile the build is served, which names the folder's
    // image by a digest of its content (see `crate::named_contexts`).
    let mut contexts: Vec<(&String, String)> = b
        .additional_contexts
        .iter()
        .map(|(k, v)| match crate::named_contexts::classify(v) {
            Ok(crate::named_contexts::NamedSource::Folder(_)) => (k, "folder".to_string()),
            _ => (k, v.clone()),
        })
        .collect();
    contexts.sort();
    for (k, v) in contexts {
        field(h, "additional_context", &format!("{k}={v}"));
    }
    for e in &b.entitlements {
        field(h, "entitlement", e);
    }
    if b.privileged {
        field(h, "privileged", "true");
    }
}

/// The full commit id a git context URL pins (`…#<40 or 64 hex>[:subdir]`), if any.
fn pinned_commit(url: &str) -> Option<&str> {
    let fragment = url.split_once('#')?.1;
    let reference = fragment.split(':').next()?;
    let hex = reference.len() == 40 || reference.len() == 64;
    (hex && reference.bytes().all(|c| c.is_ascii_hexdigit())).then_some(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_commit_ids_pin_a_remote_context() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            pinned_commit(&format!("https://github.com/o/r.git#{sha}")),
            Some(sha)
        );
        assert_eq!(
            pinned_commit(&format!("https://github.com/o/r.git#{sha}:sub/dir")),
            Some(sha)
        );
        assert_eq!(pinned_commit("https://github.com/o/r.git#main"), None);
        assert_eq!(pinned_commit("https://github.com/o/r.git"), None);
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        let digest = |pairs: &[(&str, &str)]| {
            let mut h = blake3::Hasher::new();
            for (k, v) in pairs {
                field(&mut h, k, v);
            }
            h.finalize()
        };
        assert_ne!(
            digest(&[("arg", "A=1"), ("arg", "B=2")]),
            digest(&[("arg", "A=1arg\0B=2")])
        );
    }

    /// The digest of service `app` of the project of `compose` (named `name`), its daemon
    /// platform `native` when it declares none.
    fn digest_of(name: &str, compose: &str, native: Option<&str>) -> Inputs {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        std::fs::create_dir(dir.path().join("ctx")).unwrap();
        std::fs::write(dir.path().join("ctx/Dockerfile"), "FROM scratch\n").unwrap();
        let project = wharf_compose::load(&wharf_compose::ProjectOptions {
            working_dir: dir.path().to_path_buf(),
            project_name: Some(name.into()),
            ..Default::default()
        })
        .unwrap();
        let app = &project.services["app"];
        let mut prepared = crate::service::prepare(&project, &[app], &Default::default()).unwrap();
        if let Some(n) = native {
            prepared.use_daemon_platform(Ok(crate::platform::Platform::parse(n).unwrap()));
        }
        let compose: HashMap<String, &Build> = project
            .services
            .values()
            .filter_map(|s| Some((s.name.clone(), s.build.as_ref()?)))
            .collect();
        digest_all(&prepared.builds, &compose, 1).unwrap()["app"].clone()
    }

    #[test]
    fn the_platform_built_and_the_project_are_covered() {
        let free = "services:\n  app: {build: ./ctx}\n";
        let declared = "services:\n  app: {build: ./ctx, platform: linux/amd64}\n";
        let amd64 = digest_of("shop", free, Some("linux/amd64"));
        assert!(amd64.digest().is_some());
        // What is built decides, not how it was chosen.
        assert_eq!(digest_of("shop", declared, None), amd64);
        assert_ne!(digest_of("shop", free, Some("linux/arm64")), amd64);
        assert!(matches!(
            digest_of("shop", free, None),
            Inputs::Unknown { reason } if reason.contains("daemon's own platform")
        ));
        // The compose labels name the project and the service.
        assert_ne!(digest_of("other", free, Some("linux/amd64")), amd64);
    }

    #[test]
    fn each_platform_has_its_digest_and_the_index_the_set() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  app: {build: {context: ./ctx, platforms: [linux/amd64, linux/arm64]}}\n  one: {build: {context: ./ctx, platforms: [linux/amd64]}}\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("ctx")).unwrap();
        std::fs::write(dir.path().join("ctx/Dockerfile"), "FROM scratch\n").unwrap();
        let project = wharf_compose::load(&wharf_compose::ProjectOptions {
            working_dir: dir.path().to_path_buf(),
            project_name: Some("shop".into()),
            ..Default::default()
        })
        .unwrap();
        let all: Vec<&wharf_compose::Service> = project.services.values().collect();
        let prepared = crate::service::prepare(&project, &all, &Default::default()).unwrap();
        let compose: HashMap<String, &Build> = project
            .services
            .values()
            .filter_map(|s| Some((s.name.clone(), s.build.as_ref()?)))
            .collect();
        let units = digest_units(&prepared.builds, &compose, 2).unwrap();
        let unit = |s: &str, p: Option<&str>| Unit {
            service: s.into(),
            platform: p.map(|p| crate::platform::Platform::parse(p).unwrap()),
        };
        let amd64 = units[&unit("app", Some("linux/amd64"))]
            .digest()
            .unwrap()
            .hex
            .clone();
        let arm64 = units[&unit("app", Some("linux/arm64"))]
            .digest()
            .unwrap()
            .hex
            .clone();
        assert_ne!(amd64, arm64);
        assert!(units[&unit("one", None)].digest().is_some());
        let services = by_service(&prepared.builds, &units);
        let set = services["app"].digest().unwrap().hex.clone();
        assert!(set != amd64 && set != arm64);
        assert_eq!(services["one"], units[&unit("one", None)]);
    }
}
