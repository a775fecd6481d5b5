//! `wharf verify`: the pre-deploy gate. Every expected reference (each required service, each
//! tag) must exist in its registry, checked through the registry's HTTP API — no daemon needed.
//! A multi-platform image's tags must name an index with every platform's image present; a
//! Lambda image's, a plain image manifest.
//! With ECS services (`--ecs-service`, `x-wharf.ecs_services`), also the post-deploy gate (see
//! [`super::verify_ecs`]).

use super::Run;
use crate::cli::{ProjectArgs, VerifyArgs};
use crate::deploy;
use crate::error::{Failure, Result};
use crate::release;
use anyhow::anyhow;
use wharf_pusher::api::RegistryApi;
use wharf_pusher::events::ServiceEvent;
use wharf_pusher::release::{Aws, ManifestImage, PlatformImage};

pub fn run(project_args: &ProjectArgs, args: &VerifyArgs, run: &Run) -> Result<()> {
    let reporter = &run.reporter;
    let project = release::load_project(project_args, &args.services)?;
    let services = release::select(&project, &args.services)?;
    let (mut targets, _) = release::targets(&project, &services, &args.target)?;
    targets.retain(|t| t.required || !args.services.is_empty());
    let ecs_services = if args.registry_only {
        Vec::new()
    } else {
        deploy::ecs_services(&project, &args.ecs_services)?
    };
    if args.wait.is_some() && ecs_services.is_empty() {
        return Err(Failure::config(anyhow!(
            "--wait waits for ECS rollouts: name the services with --ecs-service CLUSTER/SERVICE (or x-wharf.ecs_services)"
        )));
    }
    reporter.begin(
        &project.name,
        targets
            .iter()
            .map(|t| (t.service.as_str(), t.local_image.as_str())),
        false,
    );
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::failed(anyhow!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let timeouts = run.timeouts();
        let mut aws = Aws::new(timeouts);
        let logins = release::login_all(&mut targets, &mut aws).await?;
        let sdk = aws.loaded();
        let api = RegistryApi::new(timeouts);
        let mut missing = Vec::new();
        let mut errors = Vec::new();
        let mut images = Vec::new();
        for t in &targets {
            let host = t.host.clone().unwrap_or_default();
            let repo = format!("{host}/{}", t.repository);
            let mut digests = Vec::new();
            for tag in t.all_tags() {
                let reference = format!("{repo}:{tag}");
                match api.manifest_digest(&reference, logins.get(&host)).await {
                    Ok(Some(d)) => {
                        reporter.event(&ServiceEvent::Present {
                            service: t.service.clone(),
                            reference: reference.clone(),
                            digest: d.clone(),
                        });
                        digests.push(d);
                    }
                    Ok(None) => {
                        reporter.event(&ServiceEvent::Missing {
                            service: t.service.clone(),
                            reference: reference.clone(),
                        });
                        missing.push(format!("`{}`: {reference}", t.service));
                    }
                    Err(e) => errors.push(format!("`{}`: {reference}: {e}", t.service)),
                }
            }
            if let Some(d) = digests.first() {
                if digests.iter().any(|x| x != d) {
                    missing.push(format!(
                        "`{}`: the tags of {repo} name different images ({})",
                        t.service,
                        digests.join(", ")
                    ));
                }
                let service = services.iter().find(|s| s.name == t.service);
                let expected = match service {
                    Some(s) => release::platforms_of(&project, s)?,
                    None => Vec::new(),
                };
                let lambda = service.is_some_and(|s| release::is_lambda(s));
                match check_platforms(&api, &repo, d, &expected, lambda, logins.get(&host)).await {
                    Ok(Ok(platforms)) => {
                        images.push(ManifestImage::with_platforms(t, d, platforms))
                    }
                    Ok(Err(problems)) => {
                        for p in problems {
                            missing.push(format!("`{}`: {p}", t.service));
                        }
                    }
                    Err(e) => errors.push(format!("`{}`: {repo}@{d}: {e}", t.service)),
                }
            }
        }
        if !errors.is_empty() {
            return Err(Failure::failed(anyhow!(
                "could not verify:\n  {}",
                errors.join("\n  ")
            )));
        }
        if !missing.is_empty() {
            return Err(Failure::failed(anyhow!(
                "{} expected image reference(s) are not in their registry:\n  {}",
                missing.len(),
                missing.join("\n  ")
            )));
        }
        reporter.summary(&format!("all {} image(s) present", targets.len()));
        reporter.released(&project.name, &images)?;
        if let Some(path) = &args.manifest {
            release::write_manifest(path, &project, &images)?;
        }
        if !ecs_services.is_empty() {
            super::verify_ecs::verify(
                &project,
                &ecs_services,
                args.wait,
                &targets,
                &logins,
                sdk,
                &api,
                reporter,
            )
            .await?;
        }
        Ok(())
    })
}

/// What the manifest `digest` of `repository` must be: for a Lambda image, a plain image
/// manifest; for a multi-platform image (`expected`, more than one), an index naming every
/// expected platform, each platform's image present. Returns the platforms' images, or the
/// problems found.
async fn check_platforms(
    api: &RegistryApi,
    repository: &str,
    digest: &str,
    expected: &[wharf_compose::platform::Platform],
    lambda: bool,
    login: Option<&wharf_pusher::login::Login>,
) -> std::result::Result<std::result::Result<Vec<PlatformImage>, Vec<String>>, wharf_pusher::Error>
{
    use wharf_pusher::index::{DOCKER_LIST, OCI_INDEX};
    let reference = format!("{repository}@{digest}");
    let Some(manifest) = api.manifest(&reference, login).await? else {
        return Ok(Err(vec![format!("{reference} is not served")]));
    };
    let is_index = manifest.media_type == DOCKER_LIST || manifest.media_type == OCI_INDEX;
    if lambda {
        return Ok(if is_index {
            Err(vec![format!(
                "{reference} is an index ({}), but the service is a Lambda image (x-wharf.lambda): Lambda needs a plain image manifest",
                manifest.media_type
            )])
        } else {
            Ok(Vec::new())
        });
    }
    if expected.len() < 2 {
        return Ok(Ok(Vec::new()));
    }
    if !is_index {
        return Ok(Err(vec![format!(
            "{reference} is a single image ({}), but the service is built for {} platforms: an index was expected",
            manifest.media_type,
            expected.len()
        )]));
    }
    let children =
        wharf_pusher::index::children(&manifest).map_err(|e| wharf_pusher::Error::Registry {
            registry: repository.to_string(),
            message: format!("the index {digest} cannot be read: {e}"),
            fault: wharf_pusher::error::Fault::permanent(),
        })?;
    let mut problems = Vec::new();
    let mut platforms = Vec::new();
    for p in expected {
        match children.iter().find(|c| &c.platform == p) {
            None => problems.push(format!("the index {reference} has no {p} image")),
            Some(child) => {
                let child_ref = format!("{repository}@{}", child.digest);
                match api.manifest_digest(&child_ref, login).await? {
                    Some(_) => platforms.push(PlatformImage {
                        platform: p.clone(),
                        digest: child.digest.clone(),
                    }),
                    None => problems.push(format!(
                        "{child_ref} ({p}), named by the index, is not served"
                    )),
                }
            }
        }
    }
    Ok(if problems.is_empty() {
        Ok(platforms)
    } else {
        Err(problems)
    })
}
