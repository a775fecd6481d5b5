//! `wharf render ecs-task-definition FILE`: the task definition with each container of a
//! released service pinned to the release's image, and nothing else changed.

use crate::cli::{ProjectArgs, RenderCommand, RenderTaskDefinitionArgs};
use crate::commands::Run;
use crate::deploy;
use crate::error::{Failure, Result};
use crate::github::{self, Actions};
use crate::progress::Reporter;
use crate::release;
use anyhow::anyhow;
use std::io::{Read, Write};
use std::path::Path;
use wharf_deploy::task_definition::{Rendered, TaskDefinitionFile};

pub fn run(project_args: &ProjectArgs, command: &RenderCommand, run: &Run) -> Result<()> {
    match command {
        RenderCommand::EcsTaskDefinition(args) => ecs_task_definition(project_args, args, run),
    }
}

/// The file's text and its name for messages.
fn read_input(path: &Path) -> Result<(String, String)> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::config(anyhow!("cannot read standard input: {e}")))?;
        return Ok((text, "standard input".into()));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::config(anyhow!("cannot read {}: {e}", path.display())))?;
    Ok((text, path.display().to_string()))
}

fn ecs_task_definition(
    project_args: &ProjectArgs,
    args: &RenderTaskDefinitionArgs,
    run: &Run,
) -> Result<()> {
    let reporter = &run.reporter;
    // A file that is not a task definition is refused before any registry is asked.
    let (text, source_name) = read_input(&args.file)?;
    let mut file = TaskDefinitionFile::parse(&text, &source_name).map_err(deploy::failure)?;
    let project = release::load_project(project_args, &[])?;
    let services = release::select(&project, &[])?;
    if services.is_empty() {
        return Err(Failure::config(anyhow!(
            "no service of project `{}` has a build section: there is no released image to pin",
            project.name
        )));
    }
    let matcher = deploy::matcher(&project)?;
    let mut targets =
        deploy::targets_at(&project, &services, &args.target, args.commit.as_deref())?;
    let pins = deploy::released_pins(&mut targets, run.timeouts(), &|w| reporter.warn(w))?;
    let rendered = file.render(&matcher, &pins);
    if rendered.pinned.is_empty() {
        let containers: Vec<&str> = rendered
            .unmatched
            .iter()
            .map(|u| u.container.as_str())
            .collect();
        let released: Vec<&str> = pins.iter().map(|p| p.service.as_str()).collect();
        return Err(Failure::config(anyhow!(
            "no container of {source_name} runs a service of the release (containers: {}; released services: {})\n  a container runs the service of its name, or the one whose x-wharf.ecs_container names it",
            containers.join(", "),
            released.join(", ")
        )));
    }
    report(&rendered, &source_name, reporter);
    let out = file.to_text();
    match &args.output {
        Some(path) => std::fs::write(path, &out)
            .map_err(|e| Failure::failed(anyhow!("cannot write {}: {e}", path.display())))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(out.as_bytes())
                .and_then(|_| stdout.flush())
                .map_err(|e| Failure::failed(anyhow!("cannot write to standard output: {e}")))?
        }
    }
    if let Some(actions) = Actions::from_env() {
        github_step(&actions, &rendered, &source_name, args.output.as_deref())?;
    }
    Ok(())
}

/// What was pinned (with -v) and what was left alone (always) goes to stderr.
fn report(rendered: &Rendered, source_name: &str, reporter: &Reporter) {
    for c in &rendered.pinned {
        tracing::info!(
            "container `{}` runs `{}`: {}",
            c.container,
            c.service,
            c.image
        );
    }
    for u in &rendered.unmatched {
        let why = match &u.service {
            Some(s) => format!("its service `{s}` is not part of the release"),
            None => "no compose service runs it (name it in a service's x-wharf.ecs_container)"
                .to_string(),
        };
        reporter.warn(&format!(
            "{source_name}: container `{}` left as it is: {why}",
            u.container
        ));
    }
    for s in &rendered.unused {
        reporter.warn(&format!(
            "{source_name}: no container runs the released service `{s}`"
        ));
    }
}

/// The job summary's table of containers and images, and the step output `task-definition`
/// (the rendered file's path, for aws-actions/amazon-ecs-deploy-task-definition).
fn github_step(
    actions: &Actions,
    rendered: &Rendered,
    source_name: &str,
    output: Option<&Path>,
) -> Result<()> {
    let target = output.map_or("standard output".to_string(), |p| p.display().to_string());
    let mut md = format!(
        "### wharf · render `{}` → `{}`\n\n| container | service | image |\n|---|---|---|\n",
        github::cell(source_name),
        github::cell(&target)
    );
    for c in &rendered.pinned {
        md.push_str(&format!(
            "| {} | {} | `{}` |\n",
            github::cell(&c.container),
            github::cell(&c.service),
            github::cell(&c.image)
        ));
    }
    for u in &rendered.unmatched {
        md.push_str(&format!(
            "| {} | — | left as it is |\n",
            github::cell(&u.container)
        ));
    }
    for s in &rendered.unused {
        md.push_str(&format!(
            "| — | {} | no container runs it |\n",
            github::cell(s)
        ));
    }
    md.push('\n');
    actions
        .append_summary(&md)
        .map_err(|e| Failure::failed(anyhow!("cannot write the job summary: {e}")))?;
    if let Some(path) = output {
        actions
            .set_outputs(&[("task-definition".into(), path.display().to_string())])
            .map_err(|e| {
                Failure::failed(anyhow!(
                    "cannot write the step outputs to $GITHUB_OUTPUT: {e}"
                ))
            })?;
    }
    Ok(())
}
