//! `wharf push`: push images already built, all or nothing.

use super::Run;
use crate::cli::{ProjectArgs, PushArgs};
use crate::error::{Failure, Result};
use crate::release;
use anyhow::anyhow;
use std::collections::HashMap;
use wharf_pusher::release::{Ready, SkipInputs};

pub fn run(project_args: &ProjectArgs, args: &PushArgs, run: &Run) -> Result<()> {
    let reporter = &run.reporter;
    let project = release::load_project(project_args, &args.services)?;
    let services = release::select(&project, &args.services)?;
    release::check_lambda(&project, &services)?;
    if services.is_empty() {
        return Err(Failure::config(anyhow!(
            "no service of project `{}` has a build section: nothing to push",
            project.name
        )));
    }
    let (mut targets, _) = release::targets(&project, &services, &args.target)?;
    // A multi-platform service's images: each platform's under its own local name
    // (`wharf build` leaves them there).
    let mut locals: Vec<(String, Option<wharf_compose::platform::Platform>, String)> = Vec::new();
    for t in &mut targets {
        let platforms = services
            .iter()
            .find(|s| s.name == t.service)
            .and_then(|s| {
                wharf_builder::platform::choose(
                    s,
                    s.build.as_ref()?,
                    project.default_platform.as_deref(),
                )
                .ok()
            })
            .unwrap_or_default();
        if platforms.len() > 1 {
            for p in &platforms {
                let image = wharf_builder::service::platform_image(&t.local_image, p);
                locals.push((t.service.clone(), Some(p.clone()), image));
            }
            t.use_platforms(platforms.clone(), &platforms);
        } else {
            locals.push((t.service.clone(), None, t.local_image.clone()));
        }
    }
    let parallel = args.parallel.unwrap_or(4);
    reporter.begin(
        &project.name,
        targets
            .iter()
            .map(|t| (t.service.as_str(), t.local_image.as_str())),
        true,
    );
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::failed(anyhow!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let (docker, _) = wharf_builder::daemon::connect().await.map_err(Failure::failed)?;
        let mut missing = Vec::new();
        for (service, _, image) in &locals {
            if docker.inspect_image(image).await.is_err() {
                missing.push(format!("`{service}`: {image}"));
            }
        }
        if !missing.is_empty() {
            return Err(Failure::config(anyhow!(
                "these images are not built (nothing was pushed):\n  {}\n  run `wharf build --push` to build and push",
                missing.join("\n  ")
            )));
        }
        let mut release = release::start(
            &project,
            &args.target,
            targets,
            docker.clone(),
            parallel,
            run.timeout,
            reporter.sink_for_release(),
            run.interrupt.clone(),
        )
        .await?;
        // Asks every repository before pushing (a registry that cannot be used stops here);
        // `wharf push` pushes what was built, so nothing is skipped.
        release
            .unchanged(&SkipInputs::default())
            .await
            .map_err(release::failure)?;
        reporter.expect_pushes(release.targets().iter().map(|t| {
            let mut tags: Vec<String> = t.platforms.iter().flat_map(|p| t.platform_tags(p)).collect();
            tags.extend(t.all_tags().cloned());
            (t.service.as_str(), tags)
        }));
        let (to_push, to_push_rx) = tokio::sync::mpsc::unbounded_channel();
        for (service, platform, image) in locals {
            let inputs_tag = release::inputs_tag_of_local(&docker, &image).await;
            let _ = to_push.send(Ready {
                service,
                // The index's own inputs tag is known only to the run that builds it.
                inputs_tag,
                platform: platform.map(|platform| wharf_pusher::release::PlatformReady {
                    platform,
                    local_image: image,
                    engine: None,
                }),
            });
        }
        drop(to_push);
        let first = release
            .identity_phase(&HashMap::new(), &HashMap::new(), to_push_rx, &HashMap::new())
            .await;
        let images = release
            .finish(first, Vec::new())
            .await
            .map_err(release::failure)?;
        reporter.summary(&format!("released {} image(s)", images.len()));
        reporter.released(&project.name, &images)?;
        if let Some(path) = &args.manifest {
            release::write_manifest(path, &project, &images)?;
        }
        Ok(())
    })
}
