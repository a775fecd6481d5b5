//! Unchanged services cost nothing: `wharf build --push` of a new commit whose service inputs
//! did not change finds the image of the same inputs in the registry and only adds the new
//! tags there — also from a daemon that never built it — while a changed service, and the
//! services built FROM it, are built and pushed. An unchanged base of a changed service keeps
//! its image: the daemon takes it from its own images or pulls it by digest. Driven through the binary against the bed's
//! plain registry.

use crate::support::{
    bed, digests, fake_sha, manifest_of, progress_events, run, served, unique, wharf_on, write,
    Engine,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `wharf build --push` for commit `sha` with JSON progress; returns the output and
/// each service's events in order.
fn release(
    engine: Engine,
    dir: &Path,
    sha: &str,
    extra: &[&str],
) -> (Output, BTreeMap<String, Vec<String>>) {
    let out = run(wharf_on(engine, dir, sha)
        .args(["build", "--push", "--progress", "json", "--manifest", "-"])
        .args(extra));
    let mut events: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in progress_events(&out) {
        if let (Some(s), Some(e)) = (v["service"].as_str(), v["event"].as_str()) {
            events.entry(s.into()).or_default().push(e.into());
        }
    }
    (out, events)
}

fn built(events: &BTreeMap<String, Vec<String>>, service: &str) -> bool {
    events
        .get(service)
        .is_some_and(|e| e.iter().any(|x| x == "building"))
}

fn unchanged(events: &BTreeMap<String, Vec<String>>, service: &str) -> bool {
    events
        .get(service)
        .is_some_and(|e| e.iter().any(|x| x == "unchanged"))
}

/// base ← api (FROM the base service's image), and worker on its own, with a .dockerignore.
fn project(dir: &Path, prefix: &str, base_image: &str) {
    write(
        dir,
        "compose.yaml",
        &format!(
            "services:\n  base:\n    image: {prefix}/base\n    build: ./base\n  api:\n    image: {prefix}/api\n    build:\n      context: ./api\n      args:\n        BASE: {prefix}/base\n  worker:\n    image: {prefix}/worker\n    build: ./worker\n"
        ),
    );
    write(
        dir,
        "base/Dockerfile",
        &format!("FROM {base_image}\nCOPY lib /lib/app\n"),
    );
    write(dir, "base/lib", "base library v1\n");
    write(
        dir,
        "api/Dockerfile",
        "ARG BASE\nFROM ${BASE}\nCOPY . /api\n",
    );
    write(dir, "api/main", "api v1\n");
    write(
        dir,
        "worker/Dockerfile",
        &format!("FROM {base_image}\nCOPY . /worker\n"),
    );
    write(dir, "worker/.dockerignore", "*.log\n");
    write(dir, "worker/job", "worker v1\n");
}

#[tokio::test]
async fn unchanged_services_are_tagged_in_the_registry_not_rebuilt_on_docker20() {
    unchanged_services_are_tagged_in_the_registry_not_rebuilt(Engine::Docker20).await;
}

#[tokio::test]
async fn unchanged_services_are_tagged_in_the_registry_not_rebuilt_on_docker26() {
    unchanged_services_are_tagged_in_the_registry_not_rebuilt(Engine::Docker26).await;
}

async fn unchanged_services_are_tagged_in_the_registry_not_rebuilt(engine: Engine) {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let ns = unique("skip");
    let prefix = format!("{}/{ns}", bed.plain_registry);
    project(dir.path(), &prefix, &bed.base_image);

    // First release: everything is built and pushed, with its inputs tag.
    let first_sha = fake_sha();
    let (out, events) = release(engine, dir.path(), &first_sha, &[]);
    let first = digests(&manifest_of(&out, "the release"));
    for s in ["base", "api", "worker"] {
        assert!(built(&events, s), "{s} is built the first time: {events:?}");
    }

    // A new commit with nothing changed, on a daemon that never built the images (a fresh
    // runner) and with a log file the worker's .dockerignore excludes: nothing is built, the
    // new tags name the very same images.
    engine.forget_images(&prefix);
    write(dir.path(), "worker/debug.log", "noise\n");
    filetime_touch(&dir.path().join("api/main"));
    let second_sha = fake_sha();
    let (out, events) = release(engine, dir.path(), &second_sha, &[]);
    let second = digests(&manifest_of(&out, "the release"));
    for s in ["base", "api", "worker"] {
        assert!(unchanged(&events, s), "{s} is unchanged: {events:?}");
        assert!(!built(&events, s), "{s} is not rebuilt: {events:?}");
    }
    assert_eq!(
        first, second,
        "the new tags name the first release's images"
    );
    for s in ["base", "api", "worker"] {
        let r = format!("{prefix}/{s}:{second_sha}");
        assert_eq!(served(&r, None).await.as_ref(), first.get(s), "{r}");
        let latest = format!("{prefix}/{s}:latest");
        assert_eq!(
            served(&latest, None).await.as_ref(),
            first.get(s),
            "{latest}"
        );
    }

    // The worker changes: only it is built.
    write(dir.path(), "worker/job", "worker v2\n");
    let (out, events) = release(engine, dir.path(), &fake_sha(), &[]);
    let third = digests(&manifest_of(&out, "the release"));
    assert!(built(&events, "worker"), "{events:?}");
    assert!(
        unchanged(&events, "base") && unchanged(&events, "api"),
        "{events:?}"
    );
    assert_ne!(third["worker"], first["worker"]);
    assert_eq!(third["api"], first["api"]);

    // The base changes: the api, built FROM it, changes too.
    write(dir.path(), "base/lib", "base library v2\n");
    let (out, events) = release(engine, dir.path(), &fake_sha(), &[]);
    let fourth = digests(&manifest_of(&out, "the release"));
    assert!(
        built(&events, "base") && built(&events, "api"),
        "{events:?}"
    );
    assert!(unchanged(&events, "worker"), "{events:?}");
    assert_ne!(fourth["api"], third["api"]);

    // Only the api changes, on a fresh daemon: its base is unchanged and keeps its image,
    // which the daemon pulls from the registry by digest to build the api FROM.
    engine.forget_images(&prefix);
    write(dir.path(), "api/main", "api v2\n");
    let fifth_sha = fake_sha();
    let (out, events) = release(engine, dir.path(), &fifth_sha, &[]);
    let fifth = digests(&manifest_of(&out, "the release"));
    assert!(built(&events, "api"), "{events:?}");
    assert!(
        unchanged(&events, "base") && !built(&events, "base"),
        "{events:?}"
    );
    assert!(unchanged(&events, "worker"), "{events:?}");
    assert_eq!(fifth["base"], fourth["base"], "the base keeps its digest");
    let base_now = format!("{prefix}/base:{fifth_sha}");
    assert_eq!(
        served(&base_now, None).await.as_ref(),
        Some(&fourth["base"]),
        "{base_now}"
    );
    assert_ne!(fifth["api"], fourth["api"]);
    assert_eq!(
        engine.run_in(&format!("{prefix}/api"), "cat /lib/app /api/main"),
        "base library v2\napi v2",
        "the api is built FROM the base's image"
    );

    // Again, with the daemon holding the base's image (under its name, with its inputs label).
    write(dir.path(), "api/main", "api v3\n");
    let (out, events) = release(engine, dir.path(), &fake_sha(), &[]);
    let sixth = digests(&manifest_of(&out, "the release"));
    assert!(built(&events, "api"), "{events:?}");
    assert!(
        unchanged(&events, "base") && !built(&events, "base"),
        "{events:?}"
    );
    assert_eq!(sixth["base"], fourth["base"], "the base keeps its digest");

    // --no-skip builds everything.
    let (out, events) = release(engine, dir.path(), &fake_sha(), &["--no-skip"]);
    manifest_of(&out, "the release");
    for s in ["base", "api", "worker"] {
        assert!(built(&events, s), "{s} is built with --no-skip: {events:?}");
    }
}

#[test]
fn plan_says_which_services_would_be_skipped_on_docker20() {
    plan_says_which_services_would_be_skipped(Engine::Docker20);
}

#[test]
fn plan_says_which_services_would_be_skipped_on_docker26() {
    plan_says_which_services_would_be_skipped(Engine::Docker26);
}

fn plan_says_which_services_would_be_skipped(engine: Engine) {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let ns = unique("skipplan");
    let prefix = format!("{}/{ns}", bed.plain_registry);
    project(dir.path(), &prefix, &bed.base_image);
    let (out, _) = release(engine, dir.path(), &fake_sha(), &["worker"]);
    manifest_of(&out, "the release");
    write(
        dir.path(),
        "worker/.dockerignore",
        "*.log\n# a comment changes nothing\n",
    );
    // The .dockerignore is part of the context, so editing it is a change of inputs.
    let plan = checked_plan(engine, dir.path());
    assert_eq!(action(&plan, "worker"), "build", "{plan}");
    assert_eq!(action(&plan, "api"), "build", "{plan}");
    write(dir.path(), "worker/.dockerignore", "*.log\n");
    let plan = checked_plan(engine, dir.path());
    assert_eq!(action(&plan, "worker"), "skip", "{plan}");
}

/// `wharf plan --check-registry --format json` for a new commit.
fn checked_plan(engine: Engine, dir: &Path) -> serde_json::Value {
    let plan = run(wharf_on(engine, dir, &fake_sha()).args([
        "plan",
        "--check-registry",
        "--format",
        "json",
    ]));
    assert!(plan.status.success(), "{plan:?}");
    serde_json::from_slice(&plan.stdout).unwrap()
}

fn action(plan: &serde_json::Value, service: &str) -> String {
    plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["service"] == service)
        .unwrap()["inputs"]["action"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Sets a file's modification time to an hour ago: a fresh checkout has new times, which
/// must not count as a change.
fn filetime_touch(path: &Path) {
    let status = Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(path)
        .status()
        .expect("touch runs");
    assert!(status.success());
}

#[test]
fn a_service_is_pushed_while_others_still_build_on_docker20() {
    a_service_is_pushed_while_others_still_build(Engine::Docker20);
}

#[test]
fn a_service_is_pushed_while_others_still_build_on_docker26() {
    a_service_is_pushed_while_others_still_build(Engine::Docker26);
}

fn a_service_is_pushed_while_others_still_build(engine: Engine) {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}/{}", bed.plain_registry, unique("overlap"));
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  quick:\n    image: {prefix}/quick\n    build: ./quick\n  slow:\n    image: {prefix}/slow\n    build: ./slow\n"
        ),
    );
    let base = &bed.base_image;
    write(
        dir.path(),
        "quick/Dockerfile",
        &format!("FROM {base}\nCOPY . /q\n"),
    );
    write(dir.path(), "quick/stamp", &unique("quick"));
    write(
        dir.path(),
        "slow/Dockerfile",
        &format!("FROM {base}\nCOPY . /s\nRUN sleep 6\n"),
    );
    write(dir.path(), "slow/stamp", &unique("slow"));
    let out = run(wharf_on(engine, dir.path(), &fake_sha()).args([
        "build",
        "--push",
        "--progress",
        "json",
    ]));
    assert!(out.status.success(), "{out:?}");
    let events: Vec<(String, String)> = progress_events(&out)
        .into_iter()
        .filter_map(|v| {
            Some((
                v["service"].as_str()?.to_string(),
                v["event"].as_str()?.to_string(),
            ))
        })
        .collect();
    let at = |service: &str, event: &str| {
        events
            .iter()
            .position(|(s, e)| s == service && e == event)
            .unwrap_or_else(|| panic!("no {event} of {service}: {events:?}"))
    };
    assert!(
        at("quick", "pushed") < at("slow", "built"),
        "quick's identity tag lands while slow still builds: {events:?}"
    );
}

#[test]
fn build_then_push_records_the_inputs_too_on_docker20() {
    build_then_push_records_the_inputs_too(Engine::Docker20);
}

#[test]
fn build_then_push_records_the_inputs_too_on_docker26() {
    build_then_push_records_the_inputs_too(Engine::Docker26);
}

fn build_then_push_records_the_inputs_too(engine: Engine) {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}/{}", bed.plain_registry, unique("twostep"));
    project(dir.path(), &prefix, &bed.base_image);
    let sha = fake_sha();
    for args in [&["build"][..], &["push"][..]] {
        let out = run(wharf_on(engine, dir.path(), &sha).args(args));
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let (out, events) = release(engine, dir.path(), &fake_sha(), &[]);
    manifest_of(&out, "the release");
    for s in ["base", "api", "worker"] {
        assert!(unchanged(&events, s), "{s}: {events:?}");
    }
}
