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
        .env("GITHUB_REF_NAME", "main")
        // Input digests cover the platform built: named here, the plan (and its digests) is
        // the same on every machine, and no daemon is asked.
        .env("DOCKER_DEFAULT_PLATFORM", "linux/amd64")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"));
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

/// The services a JSON plan lists.
fn planned(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--format", "json", "--registry", "registry.example.com"];
    all.extend_from_slice(args);
    let doc: serde_json::Value = serde_json::from_str(&plan(dir, &all)).unwrap();
    doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn naming_a_service_enables_its_profile() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  app: {build: .}\n  secret: {build: ., profiles: [secret]}\n  also: {build: ., profiles: [secret]}\n",
    );
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    assert_eq!(planned(dir.path(), &[]), ["app"]);
    // As `docker compose build secret`: named, it is enabled with its profile.
    assert_eq!(planned(dir.path(), &["secret"]), ["secret"]);
    assert_eq!(planned(dir.path(), &["app", "secret"]), ["app", "secret"]);
    // push and verify find it too (and then miss its image: it was never built or pushed).
    for command in ["push", "verify"] {
        let out = run(wharf(dir.path())
            .args([
                command,
                "--registry",
                "127.0.0.1:1",
                "--allow-dirty",
                "secret",
            ])
            .env("GITHUB_SHA", SHA));
        let err = stderr(&out);
        assert!(!err.contains("no such service"), "{command}: {err}");
        assert!(err.contains("secret"), "{command}: {err}");
    }
}

#[test]
fn without_a_daemon_a_plan_says_why_an_input_digest_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  app: {build: .}\n  pinned: {build: ., platform: linux/arm64}\n",
    );
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    let doc = plan_json(
        dir.path(),
        ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
    );
    let inputs = |i: usize| doc["services"][i]["inputs"].clone();
    assert_eq!(doc["services"][0]["service"], "app");
    assert!(inputs(0)["digest"].is_null());
    let reason = inputs(0)["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("daemon's own platform") && reason.contains("/nonexistent/docker.sock"),
        "{reason}"
    );
    // A service that names its platform needs no daemon.
    assert!(inputs(1)["digest"].is_string(), "{}", inputs(1));
}

/// `plan --format json` of the project in `dir` for commit [`SHA`], with `env` set.
fn plan_json(dir: &Path, env: (&str, &str)) -> serde_json::Value {
    let out = run(wharf(dir)
        .args([
            "plan",
            "--format",
            "json",
            "--registry",
            "registry.example.com",
        ])
        .env("GITHUB_SHA", SHA)
        .env(env.0, env.1));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// The input digest `plan` prints for the project's one service, with content digests
/// remembered under `cache` (empty: none).
fn planned_inputs(dir: &Path, cache: &str) -> String {
    let doc = plan_json(dir, ("WHARF_CACHE_DIR", cache));
    let digest = &doc["services"][0]["inputs"]["digest"];
    digest
        .as_str()
        .unwrap_or_else(|| panic!("{doc}"))
        .to_string()
}

/// The content digests remembered between runs are used (a remembered digest stands for the
/// file), and only while the file is the one they were taken of: a file rewritten in place
/// with the same size and its modification time set back is read again, because a write
/// always moves the change time.
#[test]
fn remembered_content_digests_stand_only_for_the_file_they_were_taken_of() {
    use std::time::{Duration, SystemTime};
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    write(
        &project,
        "compose.yaml",
        "services:\n  app: {build: ., platform: linux/amd64}\n",
    );
    write(&project, "Dockerfile", "FROM scratch\nCOPY app.txt /\n");
    let file = write(&project, "app.txt", "aaaa");
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let set_back = |path: &Path| {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(an_hour_ago).unwrap();
    };
    set_back(&file);
    // Only a file last written (its change time) a while ago is remembered.
    std::thread::sleep(Duration::from_millis(2500));

    let fresh = planned_inputs(&project, "");
    let first = planned_inputs(&project, cache_arg);
    assert_eq!(first, fresh, "a remembered digest must equal a read one");
    let remembered: Vec<_> = std::fs::read_dir(cache.join("content"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(remembered.len(), 1, "{remembered:?}");
    assert_eq!(planned_inputs(&project, cache_arg), first);

    // The remembered digest is what the next run uses: altered, it changes the input digest.
    let text = std::fs::read_to_string(&remembered[0]).unwrap();
    let blake3 = blake3_of(b"aaaa");
    assert!(text.contains(&blake3), "{text}");
    std::fs::write(&remembered[0], text.replace(&blake3, &"0".repeat(64))).unwrap();
    assert_ne!(planned_inputs(&project, cache_arg), first);
    std::fs::write(&remembered[0], &text).unwrap();
    assert_eq!(planned_inputs(&project, cache_arg), first);

    // Same size, same modification time, other content: read again.
    std::fs::write(&file, "bbbb").unwrap();
    set_back(&file);
    let changed = planned_inputs(&project, cache_arg);
    assert_ne!(changed, first);
    assert_eq!(changed, planned_inputs(&project, ""));

    // The file of a context not hashed for a month goes; the others stay.
    let stale = cache
        .join("content")
        .join("0123456789abcdef0123456789abcdef.json");
    std::fs::write(&stale, "{}").unwrap();
    let f = std::fs::File::options().write(true).open(&stale).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(31 * 24 * 3600))
        .unwrap();
    planned_inputs(&project, cache_arg);
    assert!(!stale.exists());
    assert!(remembered[0].exists());
}

fn blake3_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}
