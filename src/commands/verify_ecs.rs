//! `wharf verify --ecs-service CLUSTER/SERVICE`: the post-deploy gate. After the registry
//! check, each ECS service's primary deployment (once its rollout completed, with `--wait`)
//! must run this release: every container of a released service names the release's image
//! in the task definition, and every running task that reports an image digest reports it.

use crate::deploy;
use crate::error::{Failure, Result};
use crate::github::{self, Actions};
use crate::progress::{Note, Reporter};
use anyhow::anyhow;
use aws_config::SdkConfig;
use std::collections::HashMap;
use std::time::Duration;
use wharf_compose::Project;
use wharf_deploy::check::{self, ContainerCheck, Named};
use wharf_deploy::containers::Matcher;
use wharf_deploy::ecs::{Ecs, ServiceId, Snapshot};
use wharf_deploy::rollout::{Judgement, Rollout};
use wharf_deploy::{DeployError, Pin};
use wharf_pusher::api::RegistryApi;
use wharf_pusher::events::ServiceEvent;
use wharf_pusher::release::Logins;
use wharf_pusher::target::ImageTarget;

/// How often a wait asks ECS where the rollout stands.
const POLL: Duration = Duration::from_secs(15);

/// One ECS service, checked.
#[derive(Debug, serde::Serialize)]
struct ServiceReport {
    service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_definition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout: Option<String>,
    passed: bool,
    containers: Vec<ContainerCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The registry's digest for each tag reference, with the release's logins.
async fn resolve(
    references: Vec<String>,
    logins: &Logins,
    api: &RegistryApi,
) -> std::result::Result<HashMap<String, Option<String>>, String> {
    let lookups = references.into_iter().map(|r| async move {
        let host = wharf_deploy::ImageRef::parse(&r).host;
        let digest = api.manifest_digest(&r, logins.get(&host)).await;
        (r, digest)
    });
    let mut out = HashMap::new();
    for (r, digest) in futures_util::future::join_all(lookups).await {
        out.insert(r.clone(), digest.map_err(|e| format!("{r}: {e}"))?);
    }
    Ok(out)
}

fn rollout_text(j: &Judgement) -> String {
    match &j.rollout {
        Rollout::Completed => "COMPLETED".into(),
        Rollout::Failed { reason } => format!("FAILED ({reason})"),
        Rollout::InProgress { reason: Some(r) } => format!("IN_PROGRESS ({r})"),
        Rollout::InProgress { reason: None } => "IN_PROGRESS".into(),
    }
}

/// What every service's check uses.
struct Checker<'a> {
    ecs: Ecs,
    wait: Option<Duration>,
    matcher: Matcher,
    pins: Vec<Pin>,
    logins: &'a Logins,
    api: &'a RegistryApi,
    reporter: &'a Reporter,
}

/// One service: its snapshot (after the rollout, with `wait`), then each container judged.
async fn check_service(
    checker: &Checker<'_>,
    id: &ServiceId,
) -> std::result::Result<ServiceReport, DeployError> {
    let Checker {
        ecs,
        wait,
        matcher,
        pins,
        logins,
        api,
        reporter,
    } = checker;
    let snapshot: Snapshot = match *wait {
        Some(timeout) => {
            ecs.wait(id, timeout, POLL, |j| {
                reporter.note(
                    Note::Rollout,
                    &format!(
                        "{id}: deployment {} rollout {}",
                        j.deployment,
                        rollout_text(j)
                    ),
                )
            })
            .await?
        }
        None => ecs.snapshot(id).await?,
    };
    let references = check::tags_to_resolve(&snapshot, matcher, pins);
    let resolved = resolve(references, logins, api)
        .await
        .map_err(|message| DeployError::Aws {
            operation: "check",
            target: id.to_string(),
            message: format!("cannot resolve a tag in the registry: {message}"),
        })?;
    let containers = check::check(&snapshot, matcher, pins, &resolved);
    let any_released = containers.iter().any(|c| c.service.is_some());
    let passed = any_released && !containers.iter().any(ContainerCheck::failed);
    Ok(ServiceReport {
        service: id.to_string(),
        task_definition: snapshot
            .task_definition
            .task_definition_arn()
            .map(str::to_string),
        deployment: snapshot.deployment.id().map(str::to_string),
        rollout: snapshot
            .deployment
            .rollout_state()
            .map(|s| s.as_str().to_string()),
        passed,
        error: (!any_released).then(|| {
            let names: Vec<&str> = containers.iter().map(|c| c.container.as_str()).collect();
            format!(
                "{id}: no container runs a service of the release (containers: {}); a container runs the service of its name, or the one whose x-wharf.ecs_container names it",
                names.join(", ")
            )
        }),
        containers,
    })
}

/// What the task definition names, and what tasks run when they report it.
fn running(c: &ContainerCheck) -> String {
    let image = if c.image.is_empty() {
        "no image".to_string()
    } else {
        c.image.clone()
    };
    if c.running.is_empty() {
        image
    } else {
        format!("{image} (tasks run {})", c.running.join(", "))
    }
}

/// Lines on stderr: one per container.
fn report_lines(report: &ServiceReport, reporter: &Reporter) {
    for c in &report.containers {
        let Some(service) = &c.service else {
            reporter.note(
                Note::EcsUnchecked,
                &format!(
                    "{}: container `{}` not checked: no service of the release runs it",
                    report.service, c.container
                ),
            );
            continue;
        };
        let service = service.clone();
        let ecs_service = report.service.clone();
        let container = c.container.clone();
        let expected = c.expected.clone().unwrap_or_default();
        let image = c.image.clone();
        if c.passed() {
            let how = match c.named {
                Some(Named::Tag) => "by a tag naming its digest",
                _ => "by digest",
            };
            let detail = format!(
                "{}: container `{}` runs the release ({how}): {}",
                report.service,
                c.container,
                running(c)
            );
            reporter.event(&ServiceEvent::EcsMatch {
                service,
                ecs_service,
                container,
                expected,
                image,
                detail,
            });
        } else {
            let detail = format!("{}: {}", report.service, mismatch(c));
            reporter.event(&ServiceEvent::EcsMismatch {
                service,
                ecs_service,
                container,
                expected,
                image,
                detail,
            });
        }
    }
}

fn mismatch(c: &ContainerCheck) -> String {
    let problems: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
    format!(
        "container `{}` (service `{}`): expected {}, runs {} — {}",
        c.container,
        c.service.as_deref().unwrap_or_default(),
        c.expected.as_deref().unwrap_or_default(),
        running(c),
        problems.join("; ")
    )
}

fn table(reports: &[ServiceReport]) -> String {
    let mut md = String::from(
        "| ECS service | container | service | expected | runs | result |\n|---|---|---|---|---|---|\n",
    );
    for r in reports {
        if let Some(e) = &r.error {
            md.push_str(&format!(
                "| {} | — | — | — | — | ❌ {} |\n",
                github::cell(&r.service),
                github::cell(e)
            ));
        }
        for c in &r.containers {
            let result = match (&c.service, c.passed()) {
                (None, _) => "not checked".to_string(),
                (Some(_), true) => match c.named {
                    Some(Named::Tag) => "✅ tag names the digest".into(),
                    _ => "✅ digest".into(),
                },
                (Some(_), false) => {
                    let p: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
                    format!("❌ {}", p.join("; "))
                }
            };
            let expected = c
                .expected
                .as_deref()
                .map_or("—".into(), |e| format!("`{}`", github::cell(e)));
            md.push_str(&format!(
                "| {} | {} | {} | {expected} | `{}` | {} |\n",
                github::cell(&r.service),
                github::cell(&c.container),
                github::cell(c.service.as_deref().unwrap_or("—")),
                github::cell(&running(c)),
                github::cell(&result)
            ));
        }
    }
    md
}

/// The job summary's table and the step outputs `ecs-verification` (JSON) and
/// `ecs-verification-table` (the table, markdown).
fn github_step(actions: &Actions, project: &str, reports: &[ServiceReport]) -> Result<()> {
    let passed = reports.iter().all(|r| r.passed);
    let table = table(reports);
    let md = format!(
        "### wharf · `{}` on ECS\n\n{}\n\n{table}\n",
        github::cell(project),
        if passed {
            "every ECS service runs this release"
        } else {
            "failed: not every ECS service runs this release"
        }
    );
    actions
        .append_summary(&md)
        .map_err(|e| Failure::failed(anyhow!("cannot write the job summary: {e}")))?;
    let json = serde_json::to_string_pretty(&serde_json::json!({ "services": reports }))
        .map_err(|e| Failure::failed(anyhow!("cannot render the verification: {e}")))?;
    actions
        .set_outputs(&[
            ("ecs-verification".into(), json),
            ("ecs-verification-table".into(), table),
        ])
        .map_err(|e| {
            Failure::failed(anyhow!(
                "cannot write the step outputs to $GITHUB_OUTPUT: {e}"
            ))
        })
}

/// Checks every ECS service (concurrently: each may wait for its rollout) against the
/// release of `targets`.
#[allow(clippy::too_many_arguments)]
pub async fn verify(
    project: &Project,
    services: &[ServiceId],
    wait: Option<Duration>,
    targets: &[ImageTarget],
    logins: &Logins,
    sdk: Option<SdkConfig>,
    api: &RegistryApi,
    reporter: &Reporter,
) -> Result<()> {
    let matcher = deploy::matcher(project)?;
    let pins = deploy::pins(targets, logins, api, &|w| reporter.warn(w)).await?;
    let sdk = match sdk {
        Some(s) => s,
        None => wharf_pusher::login::aws_config(api.timeouts()).await,
    };
    let checker = Checker {
        ecs: Ecs::new(&sdk),
        wait,
        matcher,
        pins,
        logins,
        api,
        reporter,
    };
    let checks = services.iter().map(|id| check_service(&checker, id));
    let results = futures_util::future::join_all(checks).await;
    let mut usage = Vec::new();
    let mut reports = Vec::new();
    for (id, r) in services.iter().zip(results) {
        match r {
            Ok(report) => {
                report_lines(&report, reporter);
                reports.push(report);
            }
            Err(e) if e.is_usage() => usage.push(e.to_string()),
            Err(e) => reports.push(ServiceReport {
                service: id.to_string(),
                task_definition: None,
                deployment: None,
                rollout: None,
                passed: false,
                containers: Vec::new(),
                error: Some(e.to_string()),
            }),
        }
    }
    if !usage.is_empty() {
        return Err(Failure::config(anyhow!(
            "cannot check these ECS services:\n  {}",
            usage.join("\n  ")
        )));
    }
    if let Some(actions) = Actions::from_env() {
        github_step(&actions, &project.name, &reports)?;
    }
    let mut problems = Vec::new();
    for r in &reports {
        if let Some(e) = &r.error {
            problems.push(e.clone());
        }
        for c in r.containers.iter().filter(|c| c.failed()) {
            problems.push(format!("{}: {}", r.service, mismatch(c)));
        }
    }
    if !problems.is_empty() {
        return Err(Failure::failed(anyhow!(
            "ECS does not run this release:\n  {}",
            problems.join("\n  ")
        )));
    }
    let checked: usize = reports
        .iter()
        .map(|r| r.containers.iter().filter(|c| c.passed()).count())
        .sum();
    reporter.summary(&format!(
        "{} ECS service(s) run this release ({checked} container(s) checked)",
        reports.len()
    ));
    Ok(())
}
