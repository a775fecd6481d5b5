//! `wharf push`: push images already built, all or nothing.

use crate::cli::{ProjectArgs, PushArgs};
use crate::error::{Failure, Result};
use crate::progress::Reporter;
use crate::release;
use anyhow::anyhow;
use std::sync::Arc;

pub fn run(project_args: &ProjectArgs, args: &PushArgs, reporter: Arc<Reporter>) -> Result<()> {
    let project = release::load_project(project_args, &args.services)?;
    let services = release::select(&project, &args.services)?;
    if services.is_empty() {
        return Err(Failure::config(anyhow!(
            "no service of project `{}` has a build section: nothing to push",
            project.name
        )));
    }
    let (mut targets, _) = release::targets(&project, &services, &args.target)?;
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
        let mut sdk = None;
        let logins = release::login_all(&mut targets, &mut sdk).await?;
        release::check_repositories(&project, &targets, args.target.create_repositories, &mut sdk, &reporter).await?;
        let (docker, _) = wharf_builder::daemon::connect().await.map_err(Failure::failed)?;
        let mut missing = Vec::new();
        for t in &targets {
            if docker.inspect_image(&t.local_image).await.is_err() {
                missing.push(format!("`{}`: {}", t.service, t.local_image));
            }
        }
        if !missing.is_empty() {
            return Err(Failure::config(anyhow!(
                "these images are not built (nothing was pushed):\n  {}\n  run `wharf build --push` to build and push",
                missing.join("\n  ")
            )));
        }
        let images = release::push_all(&docker, &targets, &logins, parallel, &reporter).await?;
        reporter.note("summary", &format!("released {} image(s)", images.len()));
        reporter.released(&project.name, &images)?;
        if let Some(path) = &args.manifest {
            release::write_manifest(path, &project, &images)?;
        }
        Ok(())
    })
}
