//! `wharf push`: push images already built, all or nothing.

use super::Run;
use crate::cli::{ProjectArgs, PushArgs};
use crate::error::{Failure, Result};
use crate::release;
use anyhow::anyhow;
use std::collections::HashMap;
use wharf_builder::engines::Engines;
use wharf_compose::platform::Platform;
use wharf_pusher::release::{PlatformReady, Ready, SkipInputs};

/// One image `wharf build` left: which service (and platform of a multi-platform one), its
/// local name, and the engine it was built on when its platform is routed.
struct Local {
    service: String,
    platform: Option<Platform>,
    image: String,
    endpoint: Option<String>,
}

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
    // `wharf build` built a declared platform routed to another engine there: its image is
    // pushed from that engine.
    let routes = release::engine_routes(&project)?;
    // A multi-platform service's images: each platform's under its own local name
    // (`wharf build` leaves them there).
    let mut locals: Vec<Local> = Vec::new();
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
        let endpoint = |p: &Platform| routes.endpoint(p).map(str::to_string);
        if platforms.len() > 1 {
            for p in &platforms {
                locals.push(Local {
                    service: t.service.clone(),
                    platform: Some(p.clone()),
                    image: wharf_builder::service::platform_image(&t.local_image, p),
                    endpoint: endpoint(p),
                });
            }
            t.use_platforms(platforms.clone(), &platforms);
        } else {
            locals.push(Local {
                service: t.service.clone(),
                platform: None,
                image: t.local_image.clone(),
                endpoint: platforms.first().and_then(endpoint),
            });
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
        let engines = Engines::connect(docker.clone(), &routes)
            .await
            .map_err(Failure::failed)?;
        let mut missing = Vec::new();
        for l in &locals {
            let on = engines.get(l.endpoint.as_deref());
            if on.inspect_image(&l.image).await.is_err() {
                let engine = match &l.endpoint {
                    Some(e) => format!(" (on the engine at {e})"),
                    None => String::new(),
                };
                missing.push(format!("`{}`: {}{engine}", l.service, l.image));
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
        for l in locals {
            let on = engines.get(l.endpoint.as_deref());
            let inputs_tag = release::inputs_tag_of_local(on, &l.image).await;
            let engine = l.endpoint.is_some().then(|| on.clone());
            let (platform, engine) = match l.platform {
                Some(platform) => (
                    Some(PlatformReady {
                        platform,
                        local_image: l.image,
                        engine,
                    }),
                    None,
                ),
                None => (None, engine),
            };
            let _ = to_push.send(Ready {
                service: l.service,
                // The index's own inputs tag is known only to the run that builds it.
                inputs_tag,
                platform,
                engine,
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
