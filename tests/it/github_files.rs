//! Every GitHub workflow and action of the repository — .github/, examples/ and action.yml,
//! found by looking, not listed — against GitHub's schemas (check-jsonschema's built-in ones,
//! offline) and zizmor (offline): they cannot run here, so they are checked.

use crate::support::lint_tools::{check_github_file, GithubFile};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
}

/// The kind of a YAML file: an action by its name, a workflow by its top-level `on` and
/// `jobs` (examples/ also holds compose files and a CodeBuild buildspec).
fn kind(path: &Path) -> Option<GithubFile> {
    let name = path.file_name()?.to_str()?;
    if name == "action.yml" || name == "action.yaml" {
        return Some(GithubFile::Action);
    }
    let text = std::fs::read_to_string(path).ok()?;
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).ok()?;
    let map = doc.as_mapping()?;
    (map.contains_key("on") && map.contains_key("jobs")).then_some(GithubFile::Workflow)
}

#[test]
fn every_workflow_and_action_passes_the_schema_and_zizmor() {
    let root = root();
    let mut files = Vec::new();
    yaml_files(&root.join(".github"), &mut files);
    yaml_files(&root.join("examples"), &mut files);
    files.push(root.join("action.yml"));
    let found: Vec<(PathBuf, GithubFile)> = files
        .into_iter()
        .filter_map(|p| kind(&p).map(|k| (p, k)))
        .collect();
    let names: Vec<String> = found
        .iter()
        .map(|(p, _)| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    for expected in [
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        "action.yml",
        "examples/github-actions.yml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not found: {names:?}"
        );
    }
    let config = root.join(".github/zizmor.yml");
    for (path, kind) in &found {
        check_github_file(path, *kind, &config);
    }
}
