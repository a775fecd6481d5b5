//! The errors users meet most, exactly as wharf prints them (snapshots): each names the file,
//! line and key, or the service, and says what to do; configuration errors exit 2 and build
//! or push nothing.

use crate::support::{bed_var, git, redact, run, stderr, stdout, wharf, write, SHA};
use std::path::Path;
use std::process::Command;

/// Runs wharf in `dir` and returns its stderr, with the folder's path redacted, after checking
/// that it failed with exit 2 and printed no result.
fn config_error(dir: &Path, cmd: &mut Command) -> String {
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stdout(&out).is_empty(),
        "no result on stdout: {}",
        stdout(&out)
    );
    redact(&stderr(&out), dir)
}

#[test]
fn bad_yaml_names_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  api:\n    build: .\n   image: x\n",
    );
    insta::assert_snapshot!(config_error(dir.path(), wharf(dir.path()).arg("plan")));
}

#[test]
fn an_unknown_key_names_its_path_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  api:\n    build: .\n    imagee: x\n",
    );
    insta::assert_snapshot!(config_error(dir.path(), wharf(dir.path()).arg("build")));
}

#[test]
fn a_typo_in_x_wharf_names_the_file_key_and_closest_known_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "x-wharf:\n  regsitry: ecr\nservices:\n  api:\n    build: .\n",
    );
    insta::assert_snapshot!(config_error(dir.path(), wharf(dir.path()).arg("plan")));
    // A value of the wrong type in a service's block, in an override file.
    write(
        dir.path(),
        "compose.override.yaml",
        "services:\n  api:\n    x-wharf:\n      skip: \"yes\"\n",
    );
    write(
        dir.path(),
        "compose.yaml",
        "x-wharf:\n  registry: ecr\nservices:\n  api:\n    build: .\n",
    );
    insta::assert_snapshot!(config_error(dir.path(), wharf(dir.path()).arg("build")));
}

#[test]
fn a_missing_variable_says_where_to_set_it() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  api:\n    build: .\n    image: \"x/api:${TAG:?set TAG to the release tag}\"\n",
    );
    insta::assert_snapshot!(config_error(
        dir.path(),
        wharf(dir.path())
            .args(["build", "--push"])
            .env_remove("TAG")
    ));
}

#[test]
fn no_such_service_suggests_the_closest_one() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  api:\n    build: .\n    image: x/api\n  worker:\n    build: .\n  db:\n    image: postgres:16\n",
    );
    insta::assert_snapshot!(
        "no_such_service",
        config_error(
            dir.path(),
            wharf(dir.path())
                .args(["build", "--push", "wrker"])
                .env("GITHUB_SHA", SHA)
        )
    );
    insta::assert_snapshot!(
        "not_built_by_the_project",
        config_error(
            dir.path(),
            wharf(dir.path())
                .args(["plan", "db"])
                .env("GITHUB_SHA", SHA)
        )
    );
}

#[test]
fn a_dirty_tree_is_refused_with_both_ways_out() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  api:\n    build: .\n    image: x/api\n",
    );
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "first"]);
    let sha = git(dir.path(), &["rev-parse", "HEAD"]);
    write(dir.path(), "Dockerfile", "FROM scratch\nLABEL changed=1\n");
    let text = config_error(
        dir.path(),
        wharf(dir.path()).args(["build", "--push", "--registry", "127.0.0.1:5000"]),
    );
    insta::assert_snapshot!(text.replace(&sha, "[sha]"));
}

/// Needs the bed: the repository check asks the ECR API (moto), before anything is built.
#[test]
fn a_missing_ecr_repository_is_named_before_anything_is_built() {
    let registry = bed_var("WHARF_TEST_ECR_REGISTRY");
    bed_var("AWS_ENDPOINT_URL");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  api:\n    build: .\n    image: wharf-never-created/api\n  worker:\n    build: .\n    image: wharf-never-created/worker\n",
    );
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    let text = config_error(
        dir.path(),
        wharf(dir.path())
            .args(["build", "--push", "--registry", &registry])
            .env("GITHUB_SHA", SHA),
    );
    assert!(!text.contains("building"), "nothing was built: {text}");
    // The repositories named here are never created by any test.
    insta::assert_snapshot!(text);
}
