//! `wharf config`: the resolved project, as `docker compose config` prints it.

use crate::cli::{ConfigArgs, ConfigFormat, ProjectArgs};
use crate::error::{Failure, Result};
use std::io::Write;

pub fn run(project: &ProjectArgs, args: &ConfigArgs) -> Result<()> {
    // Rendering and dropping a deeply nested project recurses as deep as the document (up to
    // 10000 levels): a large stack keeps that from overflowing.
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("config".into())
            .stack_size(512 << 20)
            .spawn_scoped(scope, || render(project, args));
        match worker {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(Failure::config(anyhow::anyhow!(
                    "wharf config failed unexpectedly"
                )))
            }),
            Err(_) => render(project, args),
        }
    })
}

fn render(project: &ProjectArgs, args: &ConfigArgs) -> Result<()> {
    let options = crate::release::project_options(project)?;
    // `--services` lists every active service, whatever services are named.
    let selected: &[String] = if args.services { &[] } else { &args.service };
    let loaded = wharf_compose::load_services(&options, selected).map_err(Failure::config)?;
    let mut out = String::new();
    if args.quiet {
        return Ok(());
    }
    if args.services {
        for name in loaded.service_names_in_dependency_order() {
            out.push_str(&name);
            out.push('\n');
        }
    } else if args.images {
        for image in loaded.image_names() {
            out.push_str(&image);
            out.push('\n');
        }
    } else {
        match args.format {
            ConfigFormat::Json => {
                let json = serde_json::to_string_pretty(&loaded.to_compose_json())
                    .map_err(|e| Failure::config(anyhow::anyhow!("cannot render JSON: {e}")))?;
                out.push_str(&json);
                out.push('\n');
            }
            ConfigFormat::Yaml => out.push_str(&loaded.to_compose_yaml()),
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(|e| Failure::config(anyhow::anyhow!("cannot write to standard output: {e}")))
}
