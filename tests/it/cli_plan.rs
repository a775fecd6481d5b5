//! `wharf plan` on a fixed project, as text and as JSON (snapshots): what a reviewer pastes
//! into a pull request. No daemon and no AWS call are involved, so these run anywhere.

use crate::support::{run, stderr, stdout, wharf, write, SHA};
use std::path::Path;

/// Three services of different shapes: a multi-stage build to a target with a Dockerfile of
/// another name, an inline Dockerfile with per-service repository and tags, and a service
/// that is not built.
fn shop(dir: &Path) {
    write(
        dir,
        "compose.yaml",
        r#"name: shop
x-wharf:
  tags: ["{git_sha}", "{git_branch}-latest", latest]
services:
  api:
    image: shop/api:1.4
    build:
      context: ./api
      dockerfile: Dockerfile.prod
      target: runtime
  worker:
    build:
      context: ./api
      dockerfile_inline: |
        FROM wharf-test/busybox:1
    x-wharf:
      repository: shop/worker
      tags: ["w-{git_short_sha}", "{compose_tag}"]
  cache:
    image: redis:7
"#,
    );
    write(dir, "api/Dockerfile.prod", "FROM scratch AS runtime\n");
}

fn plan(dir: &Path, args: &[&str]) -> String {
    let out = run(wharf(dir)
        .arg("plan")
        .args(args)
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REF_NAME", "main"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).is_empty(),
        "plan writes its result to stdout only: {}",
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn plan_as_text_for_private_ecr() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    insta::assert_snapshot!(plan(
        dir.path(),
        &["--registry", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"]
    ));
}

#[test]
fn plan_as_text_creating_repositories() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    insta::assert_snapshot!(plan(
        dir.path(),
        &[
            "--registry",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "--create-repositories",
            "api"
        ]
    ));
}

#[test]
fn plan_as_json_for_another_registry() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    let text = plan(
        dir.path(),
        &[
            "--format",
            "json",
            "--registry",
            "registry.example.com:5000/team",
        ],
    );
    let doc: serde_json::Value = serde_json::from_str(&text).expect("plan --format json is JSON");
    insta::assert_json_snapshot!(doc);
}
