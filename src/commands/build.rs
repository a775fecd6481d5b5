//! `wharf build [--push]`: build the selected services through the daemon, tagged with their
//! compose image names; with `--push`, log in and check repositories first (before any build),
//! then push all or nothing.

use crate::cli::{BuildArgs, BuilderChoice, ProjectArgs};
use crate::error::{Failure, Result};
use crate::progress::Reporter;
use crate::release;
use anyhow::anyhow;
use std::collections::HashMap;
use std::sync::Arc;
use wharf_builder::build::BuilderKind;
use wharf_builder::schedule::{self, Event, Outcome};
use wharf_builder::service::{self, Options};

/// The OCI labels wharf adds to every image: the commit, where its source lives, and when it
/// was built. Compose's own labels win on a clash.
fn oci_labels(project: &wharf_compose::Project) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    let env = |n: &str| std::env::var(n).ok();
    if let Ok(r) = wharf_pusher::git::revision(&project.working_dir, &env) {
        labels.insert("org.opencontainers.image.revision".into(), r.sha);
    }
    if let Some(source) = source_url(&project.working_dir) {
        labels.insert("org.opencontainers.image.source".into(), source);
    }
    labels.insert(
        "org.opencontainers.image.created".into(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    labels
}

/// The repository's web address: from GitHub Actions' variables, else `origin`, with any
/// credentials in the URL removed.
fn source_url(dir: &std::path::Path) -> Option<String> {
    if let (Ok(server), Ok(repo)) = (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
    ) {
        return Some(format!("{server}/{repo}"));
    }
    let out = std::process::Command::new("git")
        .args(["remote", "get-url", "origin"])
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let url = match url.strip_prefix("git@") {
        Some(rest) => format!("https://{}", rest.replacen(':', "/", 1)),
        None => url,
    };
    let url = match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host))
                if !rest.split('/').next().unwrap_or("").is_empty()
                    && rest.find('@') < rest.find('/') =>
            {
                format!("{scheme}://{host}")
            }
            _ => url.clone(),
        },
        None => url,
    };
    Some(url.trim_end_matches(".git").to_string())
}

pub fn run(project_args: &ProjectArgs, args: &BuildArgs, reporter: Arc<Reporter>) -> Result<()> {
    let project = release::load_project(project_args)?;
    let services = release::select(&project, &args.services)?;
    if services.is_empty() {
        return Err(Failure::config(anyhow!(
            "no service of project `{}` has a build section: nothing to build",
            project.name
        )));
    }
    let builder = match args.builder {
        BuilderChoice::Buildkit => BuilderKind::BuildKit,
        BuilderChoice::Classic => BuilderKind::Classic,
    };
    let prepared = service::prepare(
        &project,
        &services,
        &Options {
            builder,
            labels: oci_labels(&project),
        },
    )
    .map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        Failure::config(anyhow!(
            "the build settings have problems (nothing was built):\n  {}",
            lines.join("\n  ")
        ))
    })?;
    for w in &prepared.warnings {
        reporter.warn(&w.to_string());
    }
    let targets = if args.push {
        Some(release::targets(&project, &services, &args.target)?.0)
    } else {
        None
    };
    if !args.push && args.manifest.is_some() {
        return Err(Failure::config(anyhow!(
            "--manifest describes pushed images: use it with --push"
        )));
    }
    let parallel = args.parallel.unwrap_or_else(schedule::default_parallelism);
    reporter.begin(
        &project.name,
        prepared
            .builds
            .iter()
            .map(|b| (b.service.as_str(), b.image.as_str())),
        args.push,
    );

    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::failed(anyhow!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let mut sdk = None;
        let mut pushing = match targets {
            Some(mut targets) => {
                let logins = release::login_all(&mut targets, &mut sdk).await?;
                release::check_repositories(
                    &project,
                    &targets,
                    args.target.create_repositories,
                    &mut sdk,
                    &reporter,
                )
                .await?;
                Some((targets, logins))
            }
            None => None,
        };
        let (docker, _) = wharf_builder::daemon::connect()
            .await
            .map_err(Failure::failed)?;
        let events: schedule::EventSink = {
            let r = reporter.clone();
            Arc::new(move |e: Event| match e {
                Event::Started { service } => r.service(service, "building", "building", &[]),
                Event::Line { service, line } => r.output(service, line),
                Event::Finished { service, outcome } => match outcome {
                    Outcome::Built { elapsed } => {
                        let secs = format!("{:.1}", elapsed.as_secs_f64());
                        r.service(
                            service,
                            "built",
                            &format!("built in {secs}s"),
                            &[("seconds", &secs)],
                        )
                    }
                    Outcome::Failed { message, log_tail } => {
                        r.build_failed(service, message, log_tail)
                    }
                    Outcome::NotBuilt { reason } => {
                        r.service(service, "not-built", &format!("not built: {reason}"), &[])
                    }
                },
            })
        };
        let outcomes =
            schedule::run(&docker, prepared.builds, parallel, args.keep_going, events).await;
        let failed: Vec<String> = outcomes
            .iter()
            .filter_map(|(s, o)| match o {
                Outcome::Built { .. } => None,
                Outcome::Failed { message, .. } => Some(format!("`{s}`: {message}")),
                Outcome::NotBuilt { reason } => Some(format!("`{s}`: not built ({reason})")),
            })
            .collect();
        if !failed.is_empty() {
            let suffix = if args.push {
                "\n  nothing was pushed"
            } else {
                ""
            };
            return Err(Failure::failed(anyhow!(
                "{} of {} service(s) did not build:\n  {}{suffix}",
                failed.len(),
                outcomes.len(),
                failed.join("\n  ")
            )));
        }
        reporter.note("summary", &format!("built {} service(s)", outcomes.len()));
        if let Some((targets, logins)) = pushing.as_mut() {
            release::refresh_logins(targets, logins, &mut sdk).await?;
            let images = release::push_all(&docker, targets, logins, parallel, &reporter).await?;
            reporter.note("summary", &format!("released {} image(s)", images.len()));
            reporter.released(&project.name, &images)?;
            if let Some(path) = &args.manifest {
                release::write_manifest(path, &project, &images)?;
            }
        }
        Ok(())
    })
}
