//! `wharf config --lock-image-digests`: an override file pinning each released service's image
//! to the digest of a commit's release, as `docker compose config --lock-image-digests` prints
//! one. A server then runs exactly the release with
//! `docker compose -f compose.yaml -f release.yml up -d`.

use crate::cli::{ConfigArgs, ConfigFormat, ProjectArgs};
use crate::commands::Run;
use crate::deploy;
use crate::error::{Failure, Result};
use crate::release;
use anyhow::anyhow;
use std::io::Write;
use wharf_deploy::Pin;

/// The override document: `services.NAME.image` for each pin, nothing else.
fn override_doc(pins: &[Pin]) -> serde_json::Value {
    let services: serde_json::Map<String, serde_json::Value> = pins
        .iter()
        .map(|p| {
            (
                p.service.clone(),
                serde_json::json!({ "image": p.reference() }),
            )
        })
        .collect();
    serde_json::json!({ "services": services })
}

pub fn run(project_args: &ProjectArgs, args: &ConfigArgs, run: &Run) -> Result<()> {
    let reporter = &run.reporter;
    let project = release::load_project(project_args, &args.service)?;
    let services = release::select(&project, &args.service)?;
    if services.is_empty() {
        return Err(Failure::config(anyhow!(
            "no service of project `{}` has a build section: there is no released image to pin",
            project.name
        )));
    }
    let mut targets =
        deploy::targets_at(&project, &services, &args.target, args.commit.as_deref())?;
    let pins = deploy::released_pins(&mut targets, run.timeouts(), &|w| reporter.warn(w))?;
    let doc = override_doc(&pins);
    let text = match args.format {
        ConfigFormat::Yaml => wharf_compose::to_yaml(&doc),
        ConfigFormat::Json => {
            serde_json::to_string_pretty(&doc)
                .map_err(|e| Failure::failed(anyhow!("cannot render JSON: {e}")))?
                + "\n"
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(|e| Failure::failed(anyhow!("cannot write to standard output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_holds_only_images() {
        let pin = Pin {
            service: "api".into(),
            repository: "r.example.com/shop/api".into(),
            tag: "abc".into(),
            digest: "sha256:00".into(),
            platforms: vec![],
        };
        assert_eq!(
            wharf_compose::to_yaml(&override_doc(&[pin])),
            "services:\n  api:\n    image: r.example.com/shop/api:abc@sha256:00\n"
        );
    }
}
