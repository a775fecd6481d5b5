//! `wharf init`: the `x-wharf` block for the registry and tags the user chose, and a release
//! workflow that runs wharf's GitHub Action with OIDC credentials — printed, or written with
//! `--write` (never over an existing file or block without `--force`).

use crate::cli::{InitArgs, ProjectArgs};
use crate::error::{Failure, Result};
use crate::release;
use anyhow::anyhow;
use std::path::{Path, PathBuf};
use wharf_pusher::registry::Registry;

/// The action's repository and major version, as the generated workflow names it.
const ACTION: &str = "wharf-rs/wharf@v1";
/// Third-party actions, pinned by commit (a moved tag cannot change what runs).
const CHECKOUT: &str = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2";
const AWS_CREDENTIALS: &str =
    "aws-actions/configure-aws-credentials@e3dd6a429d7300a6a4c196c26e071d42e0343502 # v4.0.2";

/// The top-level `x-wharf` block as it is written into the compose file.
#[derive(serde::Serialize)]
struct Block<'a> {
    #[serde(rename = "x-wharf")]
    x_wharf: Settings<'a>,
}

#[derive(serde::Serialize)]
struct Settings<'a> {
    registry: &'a str,
    tags: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    create_repositories: bool,
}

pub fn run(project_args: &ProjectArgs, args: &InitArgs) -> Result<()> {
    let registry = Registry::parse(&args.registry).map_err(Failure::config)?;
    for t in &args.tags {
        wharf_pusher::template::Template::parse(t, wharf_pusher::template::TAG_PLACEHOLDERS)
            .map_err(Failure::config)?;
    }
    let project = release::load_project(project_args, &[])?;
    let compose_file = project
        .files
        .first()
        .cloned()
        .ok_or_else(|| Failure::config(anyhow!("the project was read from no compose file")))?;
    let block = serde_yaml_ng::to_string(&Block {
        x_wharf: Settings {
            registry: &args.registry,
            tags: &args.tags,
            create_repositories: args.create_repositories,
        },
    })
    .map_err(|e| Failure::config(anyhow!("cannot render the x-wharf block: {e}")))?;
    let repo_root = git_root(&project.working_dir).unwrap_or_else(|| project.working_dir.clone());
    let workflow_path = repo_root.join(".github/workflows/release.yml");
    let subdir = project
        .working_dir
        .strip_prefix(&repo_root)
        .ok()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.display().to_string());
    let built: Vec<&str> = project
        .services
        .iter()
        .filter(|(_, s)| s.build.is_some())
        .map(|(name, _)| name.as_str())
        // A job output's name and an expression's property take letters, digits, `_`, `-`.
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .collect();
    let workflow = workflow(&registry, args, subdir.as_deref(), &built);

    if !args.write {
        print!(
            "# Add to {} (top level):\n{block}\n# {}:\n{workflow}",
            shown(&compose_file, &project.working_dir),
            shown(&workflow_path, &project.working_dir)
        );
        return Ok(());
    }
    // Check both before writing either: a refusal leaves everything as it was.
    let compose_text = std::fs::read_to_string(&compose_file)
        .map_err(|e| Failure::config(anyhow!("cannot read {}: {e}", compose_file.display())))?;
    let has_block = top_level_block(&compose_text).is_some();
    let mut refused = Vec::new();
    if has_block && !args.force {
        refused.push(format!(
            "{} already has an x-wharf block",
            compose_file.display()
        ));
    }
    if workflow_path.exists() && !args.force {
        refused.push(format!("{} exists", workflow_path.display()));
    }
    if !refused.is_empty() {
        return Err(Failure::config(anyhow!(
            "{}: nothing was written (--force replaces them; without --write, init only prints)",
            refused.join(", ")
        )));
    }
    let mut text = match top_level_block(&compose_text) {
        Some((start, end)) => format!("{}{}", &compose_text[..start], &compose_text[end..]),
        None => compose_text.clone(),
    };
    // One blank line between the file's last key and the block, however often init ran.
    text.truncate(text.trim_end().len());
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(&block);
    std::fs::write(&compose_file, &text)
        .map_err(|e| Failure::config(anyhow!("cannot write {}: {e}", compose_file.display())))?;
    // The file must still load as the project it was, with the new settings.
    if let Err(e) = release::load_project(project_args, &[]) {
        let _ = std::fs::write(&compose_file, &compose_text);
        return Err(Failure::config(anyhow!(
            "the x-wharf block would break {} ({e}); it was left as it was",
            compose_file.display()
        )));
    }
    if let Some(dir) = workflow_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::config(anyhow!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(&workflow_path, &workflow)
        .map_err(|e| Failure::config(anyhow!("cannot write {}: {e}", workflow_path.display())))?;
    eprintln!(
        "wrote the x-wharf block to {} and the release workflow to {}\n\
         next: give the workflow's role the policy of `wharf iam-policy`, and set the \
         repository variables it reads",
        shown(&compose_file, &project.working_dir),
        shown(&workflow_path, &project.working_dir)
    );
    Ok(())
}

/// `path` relative to the project folder when it is inside it.
fn shown(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

fn git_root(dir: &Path) -> Option<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The byte range of the top-level `x-wharf:` block: its key line and every following line
/// that is indented, blank or a comment, up to the next top-level key.
fn top_level_block(text: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    let mut start = None;
    for line in text.split_inclusive('\n') {
        let top_level = !line.starts_with([' ', '\t', '#', '\n', '\r']);
        match start {
            None if line.starts_with("x-wharf:") => start = Some(offset),
            Some(s) if top_level => return Some((s, offset)),
            _ => {}
        }
        offset += line.len();
    }
    start.map(|s| (s, text.len()))
}

/// The release workflow: on each push to the branch, OIDC credentials for AWS registries,
/// then `build --push` through the action; the manifest and each built service's image URI
/// as job outputs for the deploy jobs that follow.
fn workflow(registry: &Registry, args: &InitArgs, subdir: Option<&str>, built: &[&str]) -> String {
    let aws = matches!(
        registry,
        Registry::Ecr { .. } | Registry::EcrOfCaller | Registry::EcrPublic { .. }
    );
    let region = match registry {
        Registry::Ecr { region, .. } => region.clone(),
        Registry::EcrPublic { .. } => "us-east-1".into(),
        _ => args
            .region
            .clone()
            .unwrap_or_else(|| "${{ vars.AWS_REGION }}".into()),
    };
    let role = args
        .role_arn
        .clone()
        .unwrap_or_else(|| "${{ vars.WHARF_RELEASE_ROLE_ARN }}".into());
    let mut w = String::new();
    w.push_str(&format!(
        "# Release every compose service with wharf on each push to {branch}: build, push under\n\
         # the tags of x-wharf, and move the moving tags only when every service landed.\n\
         # Generated by `wharf init`.",
        branch = args.branch
    ));
    if aws {
        w.push_str(
            "\n# The role trusts GitHub's OIDC provider for this repository; its policy is the one\n\
             # `wharf iam-policy` prints.",
        );
    }
    w.push_str(&format!(
        "\nname: release\n\non:\n  push:\n    branches: [{}]\n\npermissions: {{}}\n\n\
         jobs:\n  release:\n    runs-on: ubuntu-latest\n    permissions:\n",
        yaml_scalar(&args.branch)
    ));
    if aws {
        w.push_str("      id-token: write   # OIDC: short-lived AWS credentials, no stored keys\n");
    }
    w.push_str("      contents: read\n    outputs:\n");
    w.push_str("      manifest: ${{ steps.wharf.outputs.manifest }}\n");
    for s in built {
        w.push_str(&format!(
            "      {s}: ${{{{ fromJSON(steps.wharf.outputs.images).{s}.uri }}}}\n"
        ));
    }
    w.push_str(&format!(
        "    steps:\n      - uses: {CHECKOUT}\n        with:\n          persist-credentials: false\n"
    ));
    if aws {
        w.push_str(&format!(
            "\n      - uses: {AWS_CREDENTIALS}\n        with:\n          role-to-assume: {}\n          aws-region: {}\n",
            yaml_scalar(&role),
            yaml_scalar(&region)
        ));
    }
    w.push_str(&format!(
        "\n      - id: wharf\n        uses: {ACTION}\n        with:\n          command: build --push\n"
    ));
    if let Some(dir) = subdir {
        w.push_str(&format!(
            "          working-directory: {}\n",
            yaml_scalar(dir)
        ));
    }
    w
}

/// A value as one YAML scalar (quoted when YAML would read it otherwise).
fn yaml_scalar(value: &str) -> String {
    serde_yaml_ng::to_string(value)
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| format!("{value:?}"))
}

#[cfg(test)]
mod tests {
    use super::top_level_block;

    #[test]
    fn the_block_ends_at_the_next_top_level_key() {
        let text =
            "name: x\nx-wharf:\n  registry: ecr\n\n  # note\n  tags: [a]\nservices:\n  a: {}\n";
        let (s, e) = top_level_block(text).unwrap();
        assert_eq!(
            &text[s..e],
            "x-wharf:\n  registry: ecr\n\n  # note\n  tags: [a]\n"
        );
        let last = "services: {}\nx-wharf:\n  registry: ecr\n";
        let (s, e) = top_level_block(last).unwrap();
        assert_eq!(&last[s..e], "x-wharf:\n  registry: ecr\n");
        assert!(top_level_block("services: {}\n").is_none());
    }
}
