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
        "examples/github-actions-matrix.yml",
        "examples/github-actions-rollback.yml",
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

/// The action's install step, as action.yml has it, with its download base pointed at a local
/// release folder (`file://`), the way bench/setup/run runs it.
fn install_script(release: &Path) -> String {
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let steps = doc["runs"]["steps"].as_sequence().unwrap();
    let run = steps
        .iter()
        .find(|s| s["id"].as_str() == Some("install"))
        .and_then(|s| s["run"].as_str())
        .expect("an install step")
        .to_string();
    let base = "https://github.com/$repo/releases";
    assert!(run.contains(base), "the install step downloads from {base}");
    run.replace(base, &format!("file://{}", release.display()))
        .replace("--proto '=https'", "--proto '=file'")
}

/// Runs the install step for a Linux x86_64 runner against `release`; its output and where
/// the binary went.
fn install(release: &Path, temp: &Path) -> (std::process::Output, PathBuf) {
    let output = temp.join("github-output");
    std::fs::write(&output, "").unwrap();
    let out = std::process::Command::new("bash")
        .arg("-ec")
        .arg(install_script(release))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("RUNNER_TEMP", temp)
        .env("GITHUB_OUTPUT", &output)
        .env("WHARF_ACTION_REPOSITORY", "wharf-rs/wharf")
        .env("WHARF_VERSION", "latest")
        .env("RUNNER_OS_NAME", "Linux")
        .env("RUNNER_ARCH_NAME", "X64")
        .output()
        .unwrap();
    (out, temp.join("wharf-bin/wharf"))
}

#[test]
fn the_action_installs_a_checked_binary_and_refuses_a_tampered_one() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let assets = release.join("latest/download");
    std::fs::create_dir_all(&assets).unwrap();
    // The binary under test, packed as release.yml packs it.
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(crate::support::wharf_bin(), stage.join("wharf")).unwrap();
    let asset = "wharf-x86_64-unknown-linux-musl.tar.gz";
    let sh = |script: &str| {
        let out = std::process::Command::new("bash")
            .arg("-ec")
            .arg(script)
            .current_dir(&assets)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    sh(&format!(
        "tar -C {} -czf {asset} wharf && sha256sum {asset} > SHA256SUMS",
        stage.display()
    ));
    let temp = dir.path().join("runner-temp");
    std::fs::create_dir_all(&temp).unwrap();
    let (out, bin) = install(&release, &temp);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("{asset}: OK")), "{out:?}");
    assert!(
        said.contains("\nwharf "),
        "the installed binary runs: {out:?}"
    );
    let outputs = std::fs::read_to_string(temp.join("github-output")).unwrap();
    assert_eq!(outputs.trim(), format!("path={}", bin.display()));

    // The same archive name with other contents: the checksum no longer matches.
    std::fs::write(stage.join("wharf"), "#!/bin/sh\necho not wharf\n").unwrap();
    sh(&format!("tar -C {} -czf {asset} wharf", stage.display()));
    let temp = dir.path().join("runner-temp-2");
    std::fs::create_dir_all(&temp).unwrap();
    let (out, bin) = install(&release, &temp);
    assert!(
        !out.status.success(),
        "a tampered archive is refused: {out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("does not match the release's SHA256SUMS"),
        "{out:?}"
    );
    assert!(!bin.exists(), "nothing was installed");
}
