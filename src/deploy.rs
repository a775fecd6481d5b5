//! What the deploy hand-offs share (`config --lock-image-digests`, `render`, `verify
//! --ecs-service`): the release of a commit pinned by digest, service by service, and the
//! deploy settings of the compose file (`x-wharf.ecs_container`, `x-wharf.ecs_services`).

use crate::cli::TargetArgs;
use crate::error::{Failure, Result};
use crate::release;
use anyhow::anyhow;
use wharf_compose::{Project, Service};
use wharf_deploy::containers::Matcher;
use wharf_deploy::ecs::ServiceId;
use wharf_deploy::Pin;
use wharf_pusher::api::RegistryApi;
use wharf_pusher::release::Logins;
use wharf_pusher::target::{self, ImageTarget, TagValues};

/// The targets of the release of `commit` (a full 40-hex SHA), or of the current commit.
///
/// Unlike a release, pinning one reads the registry only: uncommitted changes (a deploy file
/// just written into the checkout) do not matter, and the current commit's release is pinned —
/// unless `--allow-dirty` asks for the `<sha>-dirty` release of this work tree.
pub fn targets_at(
    project: &Project,
    services: &[&Service],
    args: &TargetArgs,
    commit: Option<&str>,
) -> Result<Vec<ImageTarget>> {
    let env = |name: &str| std::env::var(name).ok();
    let current;
    let commit = match commit {
        Some(c) => c,
        None => match wharf_pusher::git::revision(&project.working_dir, &env) {
            Ok(r) if !(r.dirty && args.allow_dirty) => {
                current = r.sha;
                &current
            }
            // No commit (the tags may not need one, else the error says what to do), or the
            // dirty release asked for.
            _ => return Ok(release::targets(project, services, args)?.0),
        },
    };
    let commit = commit.trim().to_ascii_lowercase();
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::config(anyhow!(
            "--commit {commit}: a commit is its full 40-hex SHA (git rev-parse COMMIT gives it)"
        )));
    }
    let settings = release::settings(project, args)?;
    // `{git_branch}` in an identity tag still means the branch being worked on.
    let branch = wharf_pusher::git::revision(&project.working_dir, &env)
        .ok()
        .and_then(|r| r.branch);
    // A moving tag with `{timestamp}` names when it moves, as in a release; an identity tag
    // with it cannot be found again (promote refuses those).
    let timestamp = release::timestamp_now();
    let values = TagValues {
        git_sha: Some(&commit),
        git_branch: branch.as_deref(),
        timestamp: &timestamp,
        env: &env,
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for s in services {
        match target::target(project, s, &settings, &values) {
            Ok(t) => out.push(t),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Failure::config(anyhow!(problems.join("\n  "))))
    }
}

/// The manifest media types that list one image per platform.
const INDEX_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
];

/// The platforms' image digests an index lists.
fn platform_digests(bytes: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        digest: String,
    }
    serde_json::from_slice::<Index>(bytes)
        .map(|i| i.manifests.into_iter().map(|e| e.digest).collect())
        .unwrap_or_default()
}

/// The pins of `targets`' release, read from the registry after logging in (the runtime
/// `lock` and `render` need for it is their only async part).
pub fn released_pins(
    targets: &mut [ImageTarget],
    timeouts: wharf_pusher::timeouts::Timeouts,
    warn: &dyn Fn(&str),
) -> Result<Vec<Pin>> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::failed(anyhow!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let logins =
            release::login_all(targets, &mut wharf_pusher::release::Aws::new(timeouts)).await?;
        pins(targets, &logins, &RegistryApi::new(timeouts), warn).await
    })
}

/// The release's image of each target, pinned: the digest the registry serves for the
/// target's first identity tag. A required service without a release fails (exit 1, each
/// named); one marked `x-wharf.required: false` is left out with a warning.
pub async fn pins(
    targets: &[ImageTarget],
    logins: &Logins,
    api: &RegistryApi,
    warn: &dyn Fn(&str),
) -> Result<Vec<Pin>> {
    let mut no_identity = Vec::new();
    let lookups = targets.iter().filter_map(|t| {
        let Some(tag) = t.identity_tags.first() else {
            no_identity.push(format!("`{}`", t.service));
            return None;
        };
        let host = t.host.clone().unwrap_or_default();
        let repository = format!("{host}/{}", t.repository);
        Some(async move {
            let reference = format!("{repository}:{tag}");
            let found = api.manifest(&reference, logins.get(&host)).await;
            (t, repository, tag.clone(), reference, found)
        })
    });
    let found = futures_util::future::join_all(lookups).await;
    if !no_identity.is_empty() {
        return Err(Failure::config(anyhow!(
            "{} have no identity tag (a tag template with {{git_sha}} or {{git_short_sha}}), so no release of a commit can be found for them",
            no_identity.join(", ")
        )));
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    let mut errors = Vec::new();
    for (t, repository, tag, reference, found) in found {
        match found {
            Ok(Some(m)) => out.push(Pin {
                service: t.service.clone(),
                repository,
                tag,
                platforms: if INDEX_TYPES.contains(&m.media_type.as_str()) {
                    platform_digests(&m.bytes)
                } else {
                    Vec::new()
                },
                digest: m.digest,
            }),
            Ok(None) if !t.required => warn(&format!(
                "`{}`: {reference} is not in the registry; left out (x-wharf.required: false)",
                t.service
            )),
            Ok(None) => missing.push(format!("`{}`: {reference}", t.service)),
            Err(e) => errors.push(format!("`{}`: {e}", t.service)),
        }
    }
    if !errors.is_empty() {
        return Err(Failure::failed(anyhow!(
            "cannot read the release from the registry:\n  {}",
            errors.join("\n  ")
        )));
    }
    if !missing.is_empty() {
        return Err(Failure::failed(anyhow!(
            "{} service(s) have no release of this commit in the registry:\n  {}\n  release it first (wharf build --push), or name the released commit with --commit",
            missing.len(),
            missing.join("\n  ")
        )));
    }
    Ok(out)
}

/// Which service each ECS container runs: every compose service, each with the containers
/// its `x-wharf.ecs_container` names (a name or a list of names).
pub fn matcher(project: &Project) -> Result<Matcher> {
    let mut named: Vec<(&str, Vec<String>)> = Vec::new();
    for s in project.services.values() {
        let containers = s
            .x_wharf
            .as_ref()
            .and_then(|x| x.ecs_container.as_ref())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        named.push((s.name.as_str(), containers));
    }
    Matcher::new(named.iter().map(|(s, c)| (*s, c.as_slice()))).map_err(Failure::config)
}

/// The ECS services to check: those given on the command line, else the compose file's
/// top-level `x-wharf.ecs_services`.
pub fn ecs_services(project: &Project, given: &[String]) -> Result<Vec<ServiceId>> {
    let listed: Vec<String> = if !given.is_empty() {
        given.to_vec()
    } else {
        project
            .x_wharf
            .as_ref()
            .and_then(|x| x.ecs_services.clone())
            .unwrap_or_default()
    };
    let mut out: Vec<ServiceId> = Vec::new();
    for s in listed {
        let id: ServiceId = s.parse().map_err(Failure::config)?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// A deploy error with the exit code of its kind.
pub fn failure(e: wharf_deploy::DeployError) -> Failure {
    if e.is_usage() {
        Failure::config(e)
    } else {
        Failure::failed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::platform_digests;

    #[test]
    fn an_index_lists_its_platforms_images() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}},{"digest":"sha256:b"}]}"#;
        assert_eq!(platform_digests(index), vec!["sha256:a", "sha256:b"]);
        assert!(platform_digests(b"{}").is_empty());
    }
}
