//! What wharf leaves in words when it stops: the job summary table of GitHub Actions, and the
//! account of an interrupted release (which tags landed, which were under way, which were
//! never pushed).

use super::{fmt_duration, Inner, Status, Svc};
use crate::github;

/// The job summary in GitHub Actions: a table of service, image, tags, digest, duration
/// (nothing when the command worked on no service).
pub(super) fn markdown(inner: &Inner, heading: &str) -> Option<String> {
    if inner.services.is_empty() {
        return None;
    }
    let project = inner.project.as_deref().unwrap_or("");
    let mut md = format!(
        "### wharf · `{}`\n\n{}\n\n",
        github::cell(project),
        github::cell(heading)
    );
    md.push_str("| service | image | tags | digest | duration |\n|---|---|---|---|---|\n");
    for (name, svc) in &inner.services {
        let image = svc
            .repository
            .clone()
            .or_else(|| svc.image.clone())
            .unwrap_or_default();
        let tags = if svc.landed.is_empty() {
            "—".to_string()
        } else {
            svc.landed
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let digest = match (svc.status, &svc.digest) {
            (Status::Failed, _) => {
                format!("❌ build failed: {}", svc.problem.as_deref().unwrap_or(""))
            }
            (Status::NotBuilt, _) => {
                format!("⏭️ not built: {}", svc.problem.as_deref().unwrap_or(""))
            }
            (Status::Missing, _) => {
                format!("❌ missing: {}", svc.problem.as_deref().unwrap_or(""))
            }
            (Status::Building | Status::Pushing, _) => "⏹️ stopped".to_string(),
            (Status::Waiting, _) => "not started".to_string(),
            (_, Some(d)) => format!("`{d}`"),
            (Status::Built, None) => "built (not pushed)".to_string(),
            (_, None) => "—".to_string(),
        };
        let took = match svc.status {
            Status::Waiting | Status::NotBuilt => String::new(),
            _ => svc.elapsed().map(fmt_duration).unwrap_or_default(),
        };
        md.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            github::cell(name),
            github::cell(&image),
            github::cell(&tags),
            github::cell(&digest),
            took
        ));
    }
    md.push('\n');
    Some(md)
}

pub(super) fn not_pushed(s: &Svc) -> Vec<String> {
    s.expected
        .iter()
        .filter(|t| !s.landed.contains(t) && s.in_flight.as_ref() != Some(*t))
        .cloned()
        .collect()
}

/// What an interruption leaves behind, in words: which tags landed, which were under way
/// (they may or may not have landed), and which were never pushed.
///
/// `left`: moving tags phase 2 moved and had not put back when a second Ctrl-C stopped it.
pub(super) fn account(inner: &Inner, left: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let landed: Vec<String> = inner
        .services
        .iter()
        .filter(|(_, s)| !s.landed.is_empty())
        .map(|(n, s)| {
            let tags: Vec<String> = s.landed.iter().map(|t| format!(":{t}")).collect();
            format!("{n} ({})", tags.join(", "))
        })
        .collect();
    if !inner.pushes {
        lines.push("interrupted: nothing was pushed".to_string());
        return lines;
    }
    if landed.is_empty() && inner.services.values().all(|s| s.in_flight.is_none()) {
        lines.push("interrupted before anything was pushed: nothing was pushed".to_string());
        return lines;
    }
    lines.push("interrupted: the release is incomplete".to_string());
    lines.push(format!(
        "  pushed: {}",
        if landed.is_empty() {
            "nothing".to_string()
        } else {
            landed.join(", ")
        }
    ));
    let in_flight: Vec<String> = inner
        .services
        .iter()
        .filter_map(|(n, s)| s.in_flight.as_ref().map(|t| format!("{n} (:{t})")))
        .collect();
    if !in_flight.is_empty() {
        lines.push(format!(
            "  under way (may or may not have landed): {}",
            in_flight.join(", ")
        ));
    }
    let missing: Vec<String> = inner
        .services
        .iter()
        .filter_map(|(n, s)| {
            let tags = not_pushed(s);
            (!tags.is_empty()).then(|| {
                let tags: Vec<String> = tags.iter().map(|t| format!(":{t}")).collect();
                format!("{n} ({})", tags.join(", "))
            })
        })
        .collect();
    if !missing.is_empty() {
        lines.push(format!("  not pushed: {}", missing.join(", ")));
    }
    if !left.is_empty() {
        lines.push(format!(
            "  moving tags that name the new release (stopped while putting them back): {}",
            left.join(", ")
        ));
    }
    lines.push("  run the same command again to finish the release".to_string());
    lines
}
