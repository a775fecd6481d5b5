//! `wharf init`: what it prints (snapshot), what it writes and what it refuses to overwrite,
//! and that the workflow it generates passes GitHub's schema and zizmor.

use crate::support::lint_tools::{check_github_file, GithubFile};
use crate::support::{git, run, stderr, stdout, wharf, write};
use std::path::{Path, PathBuf};

const COMPOSE: &str = "name: shop\nservices:\n  api:\n    build: .\n    image: shop/api\n  worker:\n    build: ./worker\n  cache:\n    image: redis:7\n";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    write(dir.path(), "compose.yaml", COMPOSE);
    dir
}

fn zizmor_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".github/zizmor.yml")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn prints_the_block_and_the_workflow_and_writes_nothing() {
    let dir = project();
    let out = run(wharf(dir.path()).args(["init", "--create-repositories"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
    assert_eq!(read(&dir.path().join("compose.yaml")), COMPOSE);
    assert!(!dir.path().join(".github").exists());
}

#[test]
fn writes_both_files_and_the_project_takes_the_settings() {
    let dir = project();
    let registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    let out = run(wharf(dir.path()).args([
        "init",
        "--write",
        "--registry",
        registry,
        "--tag",
        "{git_short_sha}",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "results only: {}", stdout(&out));
    let compose = read(&dir.path().join("compose.yaml"));
    assert!(compose.starts_with(COMPOSE), "the file is kept: {compose}");
    insta::assert_snapshot!(compose);
    // The written settings are the project's now: iam-policy names the registry's ARNs.
    let out = run(wharf(dir.path()).arg("iam-policy"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("arn:aws:ecr:eu-west-1:123456789012:repository/shop/api"));
    let workflow = dir.path().join(".github/workflows/release.yml");
    insta::assert_snapshot!(read(&workflow));
    check_github_file(&workflow, GithubFile::Workflow, &zizmor_config());
}

#[test]
fn never_overwrites_without_force() {
    let dir = project();
    assert!(run(wharf(dir.path()).args(["init", "--write"]))
        .status
        .success());
    let compose = read(&dir.path().join("compose.yaml"));
    let workflow = dir.path().join(".github/workflows/release.yml");
    std::fs::write(&workflow, "# mine\n").unwrap();
    let out = run(wharf(dir.path()).args(["init", "--write", "--registry", "public.ecr.aws/shop"]));
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&out).replace(&dir.path().display().to_string(), "[dir]"));
    assert_eq!(
        read(&dir.path().join("compose.yaml")),
        compose,
        "left as it was"
    );
    assert_eq!(read(&workflow), "# mine\n", "left as it was");
    // --force replaces the block (not adds a second) and the workflow.
    let out = run(wharf(dir.path()).args([
        "init",
        "--write",
        "--force",
        "--registry",
        "public.ecr.aws/shop",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let compose = read(&dir.path().join("compose.yaml"));
    assert_eq!(compose.matches("x-wharf:").count(), 1, "{compose}");
    assert!(
        compose.contains("registry: public.ecr.aws/shop"),
        "{compose}"
    );
    check_github_file(&workflow, GithubFile::Workflow, &zizmor_config());
}

#[test]
fn a_project_in_a_subfolder_gets_the_workflow_at_the_repository_root() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    let project = dir.path().join("services/shop");
    write(&project, "compose.yaml", COMPOSE);
    let out =
        run(wharf(&project).args(["init", "--write", "--registry", "registry.example.com/shop"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let workflow = dir.path().join(".github/workflows/release.yml");
    let text = read(&workflow);
    assert!(text.contains("working-directory: services/shop"), "{text}");
    // No AWS registry: no OIDC token, no AWS credentials step.
    assert!(
        !text.contains("id-token") && !text.contains("configure-aws-credentials"),
        "{text}"
    );
    check_github_file(&workflow, GithubFile::Workflow, &zizmor_config());
}
