//! `wharf config`: the resolved project, as `docker compose config` prints it.

use crate::cli::{ConfigArgs, ConfigFormat, ProjectArgs};
use crate::error::{Failure, Result};
use std::io::Write;

/// The current folder as Go's `os.Getwd` gives it to docker compose: `$PWD` when it names
/// this folder (so a folder reached through a symbolic link keeps that name, which the default
/// project name comes from), else the physical path.
fn current_dir() -> Result<std::path::PathBuf> {
    let physical = std::env::current_dir()
        .map_err(|e| Failure::config(anyhow::anyhow!("cannot read the current folder: {e}")))?;
    #[cfg(unix)]
    if let Some(pwd) = std::env::var_os("PWD").map(std::path::PathBuf::from) {
        use std::os::unix::fs::MetadataExt;
        if pwd.is_absolute() {
            if let (Ok(a), Ok(b)) = (std::fs::metadata(&pwd), std::fs::metadata(".")) {
                if a.dev() == b.dev() && a.ino() == b.ino() {
                    return Ok(pwd);
                }
            }
        }
    }
    Ok(physical)
}

/// The project options of the command line, with the process's folder and environment.
pub fn project_options(project: &ProjectArgs) -> Result<wharf_compose::ProjectOptions> {
    let working_dir = current_dir()?;
    Ok(wharf_compose::ProjectOptions {
        files: project.files.clone(),
        project_name: project.project_name.clone(),
        profiles: project.profiles.clone(),
        env_files: project.env_files.clone(),
        project_directory: project.project_directory.clone(),
        working_dir,
        environment: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    })
}

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
    let options = project_options(project)?;
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
