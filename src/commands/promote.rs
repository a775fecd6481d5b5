//! `wharf promote [--commit SHA] [--to REGISTRY]`: the moving tags onto a commit's release,
//! once all of it is in the registry (see [`wharf_pusher::promote`]). It never builds.

use super::Run;
use crate::cli::{ProjectArgs, PromoteArgs, TargetArgs};
use crate::error::{Failure, Result};
use crate::{deploy, release};
use anyhow::anyhow;
use wharf_compose::Service;
use wharf_pusher::promote::{self, PromoteError, Promotion};
use wharf_pusher::template::{Template, TAG_PLACEHOLDERS};

pub fn run(project_args: &ProjectArgs, args: &PromoteArgs, run: &Run) -> Result<()> {
    let reporter = &run.reporter;
    let project = release::load_project(project_args, &args.services)?;
    let services = release::select(&project, &args.services)?;
    if services.is_empty() {
        return Err(Failure::config(anyhow!(
            "no service of project `{}` has a build section: nothing to promote",
            project.name
        )));
    }
    refuse_timestamp_identity(&project, &services, &args.target)?;
    if let Some(only) = &args.target.platforms {
        return Err(Failure::config(anyhow!(
            "--platform {} (or WHARF_PLATFORMS): promote releases every platform a service declares, never a part — its index names them all\n  drop --platform here; a shard's --platform tells only what that runner builds",
            only.escape_debug()
        )));
    }
    let commit = commit(&project.working_dir, args.commit.as_deref())?;
    let mut sources = deploy::targets_at(&project, &services, &args.target, Some(&commit))?;
    multi_platform(&project, &services, &mut sources)?;
    let without: Vec<String> = sources
        .iter()
        .filter(|t| t.identity_tags.is_empty())
        .map(|t| format!("`{}`", t.service))
        .collect();
    if !without.is_empty() {
        return Err(Failure::config(anyhow!(
            "{} have no identity tag (a tag template with {{git_sha}} or {{git_short_sha}}), so no release of a commit can be found for them\n  give promote the identity templates the release used, e.g. --tag '{{git_sha}}' --tag latest",
            without.join(", ")
        )));
    }
    let destination = match &args.to {
        Some(to) => {
            let mut there = args.target.clone();
            there.registry = Some(to.clone());
            let mut targets = deploy::targets_at(&project, &services, &there, Some(&commit))?;
            multi_platform(&project, &services, &mut targets)?;
            Some(targets)
        }
        None => None,
    };
    let options = release::options(&project, &args.target, 4, run.timeout)?;
    reporter.begin(
        &project.name,
        sources
            .iter()
            .map(|t| (t.service.as_str(), t.local_image.as_str())),
        true,
    );
    let moved = destination.as_ref().unwrap_or(&sources);
    reporter.expect_pushes(moved.iter().map(|t| {
        let mut tags = t.moving_tags.clone();
        if args.to.is_some() {
            tags.extend(t.identity_tags.iter().cloned());
        }
        (t.service.as_str(), tags)
    }));
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::failed(anyhow!("cannot start the async runtime: {e}")))?;
    let images = runtime.block_on(async {
        // The release engine holds a daemon client; promote never asks the daemon anything
        // (images move through the registry API), so none is contacted.
        let docker = bollard::Docker::connect_with_local_defaults()
            .map_err(|e| Failure::config(anyhow!("cannot set up a Docker client: {e}")))?;
        promote::promote(
            Promotion {
                commit: commit.clone(),
                sources,
                destination,
            },
            docker,
            options,
            reporter.sink_for_release(),
            run.interrupt.clone(),
            &release::mask_logins,
        )
        .await
        .map_err(failure)
    })?;
    reporter.summary(&format!(
        "promoted {} image(s) of commit {}",
        images.len(),
        &commit[..12]
    ));
    reporter.released(&project.name, &images)?;
    if let Some(path) = &args.manifest {
        release::write_manifest(path, &project, &images)?;
    }
    Ok(())
}

/// Marks each service the compose file gives several platforms (as the build chooses them):
/// its release is an index, or else the platform identity tags of every one of its platforms.
fn multi_platform(
    project: &wharf_compose::Project,
    services: &[&Service],
    targets: &mut [wharf_pusher::target::ImageTarget],
) -> Result<()> {
    for t in targets {
        if let Some(s) = services.iter().find(|s| s.name == t.service) {
            let platforms = release::platforms_of(project, s)?;
            t.use_platforms(platforms.clone(), &platforms);
        }
    }
    Ok(())
}

/// The full SHA of `given` (40 hex as is; an abbreviation or a ref through git), else of the
/// current commit (as a release names it: CI variables first, then git).
fn commit(dir: &std::path::Path, given: Option<&str>) -> Result<String> {
    let env = |name: &str| std::env::var(name).ok();
    let Some(given) = given.map(str::trim) else {
        return wharf_pusher::git::revision(dir, &env)
            .map(|r| r.sha)
            .map_err(Failure::config);
    };
    if given.len() == 40 && given.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(given.to_ascii_lowercase());
    }
    let refused = || {
        Failure::config(anyhow!(
            "--commit {}: not a commit git knows here (give the full 40-hex SHA when the checkout is shallow)",
            given.escape_debug()
        ))
    };
    if given.starts_with('-') || given.is_empty() {
        return Err(refused());
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{given}^{{commit}}"))
        .current_dir(dir)
        .output()
        .map_err(|_| refused())?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && sha.len() == 40 {
        Ok(sha)
    } else {
        Err(refused())
    }
}

/// An identity template with `{timestamp}` names the time its release ran, which a later
/// promotion cannot know: such a release cannot be found.
fn refuse_timestamp_identity(
    project: &wharf_compose::Project,
    services: &[&Service],
    args: &TargetArgs,
) -> Result<()> {
    let settings = release::settings(project, args)?;
    let mut templates: Vec<(String, Template)> = settings
        .tags
        .iter()
        .map(|t| ("--tag".to_string(), t.clone()))
        .collect();
    for s in services {
        for raw in s
            .x_wharf
            .as_ref()
            .and_then(|x| x.tags.as_ref())
            .into_iter()
            .flatten()
        {
            if let Ok(t) = Template::parse(raw, TAG_PLACEHOLDERS) {
                templates.push((format!("services.{}.x-wharf.tags", s.name), t));
            }
        }
    }
    let bad: Vec<String> = templates
        .iter()
        .filter(|(_, t)| t.is_identity() && t.uses("timestamp"))
        .map(|(at, t)| format!("`{}` ({at})", t.as_str()))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Failure::config(anyhow!(
            "these identity tag templates name the time of their release, which promote cannot know: {}\n  give promote the identity templates without {{timestamp}} (e.g. --tag '{{git_sha}}')",
            bad.join(", ")
        )))
    }
}

/// A stopped promotion as the failure wharf exits with.
fn failure(e: PromoteError) -> Failure {
    match e {
        PromoteError::Release(e) => release::failure(e),
        e @ PromoteError::Unusable(_) => Failure::config(anyhow!(e)),
        e @ (PromoteError::Incomplete { .. }
        | PromoteError::Copy { .. }
        | PromoteError::Index(_)) => Failure::failed(anyhow!(e)),
    }
}
