//! `wharf verify`: the pre-deploy gate. Every expected reference (each required service, each
//! tag) must exist in its registry, checked through the registry's HTTP API — no daemon needed.
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
use wharf_pusher::release::{Aws, ManifestImage};

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
                images.push(ManifestImage::new(t, d));
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
