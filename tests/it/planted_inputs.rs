//! An image planted under a service's inputs tag is not released: someone with push rights
//! reads the input digest from `wharf plan --format json` and pushes their own image under
//! `wharf-inputs-<digest>` — with the labels wharf would write — before the release. The
//! release must build the service, say why it did not reuse the tag, and never tag the planted
//! image `{git_sha}` or `latest`. Driven through the binary against the bed's plain registry.

use crate::support::{
    bed, digests, fake_sha, manifest_of, progress_events, served, unique, wharf_on, write, Engine,
};
use std::path::Path;
use std::process::Output;

fn project(dir: &Path, image: &str, base: &str) {
    write(
        dir,
        "compose.yaml",
        &format!("services:\n  api:\n    image: {image}\n    build: ./api\n"),
    );
    write(
        dir,
        "api/Dockerfile",
        &format!("FROM {base}\nCOPY app /app\n"),
    );
    write(dir, "api/app", &unique("the real app"));
}

/// The inputs tag `plan` prints for the service.
fn planned_inputs_tag(engine: Engine, dir: &Path, sha: &str) -> String {
    let out = wharf_on(engine, dir, sha)
        .args(["plan", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    plan["services"][0]["inputs"]["tag"]
        .as_str()
        .expect("plan names the inputs tag")
        .to_string()
}

fn docker(engine: Engine, args: &[&str]) -> Output {
    let out = engine
        .docker()
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker runs");
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    out
}

/// Builds an image of other content carrying the labels a release would write, and pushes
/// it as `reference`. Returns its digest in the registry.
async fn plant(
    engine: Engine,
    reference: &str,
    inputs_hex: &str,
    claimed_commit: &str,
    base: &str,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        &format!("FROM {base}\nCOPY evil /app\n"),
    );
    write(dir.path(), "evil", &unique("planted"));
    docker(
        engine,
        &[
            "build",
            "-q",
            "--label",
            &format!("dev.wharf.inputs={inputs_hex}"),
            "--label",
            &format!("org.opencontainers.image.revision={claimed_commit}"),
            "-t",
            reference,
            dir.path().to_str().unwrap(),
        ],
    );
    docker(engine, &["push", "-q", reference]);
    served(reference, None)
        .await
        .expect("the planted image is there")
}

/// `build --push` of commit `sha` with JSON progress: the output, the manifest, and each
/// event with its message.
fn release(engine: Engine, dir: &Path, sha: &str) -> (Output, Vec<(String, String)>) {
    let out = wharf_on(engine, dir, sha)
        .args(["build", "--push", "--progress", "json", "--manifest", "-"])
        .output()
        .unwrap();
    let events = progress_events(&out)
        .into_iter()
        .map(|v| {
            (
                v["event"].as_str().unwrap_or_default().to_string(),
                v["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (out, events)
}

#[tokio::test]
async fn a_planted_inputs_tag_is_built_over_not_promoted_on_docker20() {
    a_planted_inputs_tag_is_built_over_not_promoted(Engine::Docker20).await;
}

#[tokio::test]
async fn a_planted_inputs_tag_is_built_over_not_promoted_on_docker26() {
    a_planted_inputs_tag_is_built_over_not_promoted(Engine::Docker26).await;
}

async fn a_planted_inputs_tag_is_built_over_not_promoted(engine: Engine) {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let repository = format!("{}/{}/api", bed.plain_registry, unique("planted"));
    project(dir.path(), &repository, &bed.base_image);
    let sha = fake_sha();
    let inputs_tag = planned_inputs_tag(engine, dir.path(), &sha);
    let hex = inputs_tag.strip_prefix("wharf-inputs-").unwrap();
    let planted = plant(
        engine,
        &format!("{repository}:{inputs_tag}"),
        hex,
        &fake_sha(),
        &bed.base_image,
    )
    .await;

    let (out, events) = release(engine, dir.path(), &sha);
    let released = digests(&manifest_of(&out, "the release"));
    let has = |event: &str| events.iter().any(|(e, _)| e == event);
    assert!(has("building"), "the service is built: {events:?}");
    assert!(!has("unchanged"), "nothing is reused: {events:?}");
    assert!(
        events.iter().any(|(e, m)| e == "warning"
            && m.contains(&format!("{repository}:{inputs_tag}"))
            && m.contains("is not reused")
            && m.contains("does not exist")),
        "a warning names the planted tag and why: {events:?}"
    );
    assert_ne!(released["api"], planted, "the release is the build");
    for tag in [sha.as_str(), "latest"] {
        assert_eq!(
            served(&format!("{repository}:{tag}"), None).await.as_ref(),
            Some(&released["api"]),
            "{tag} names the built image, not the planted one"
        );
    }

    // The release wrote the inputs tag for its own image: the next commit with the same
    // inputs reuses that one, as before.
    let next = fake_sha();
    let (out, events) = release(engine, dir.path(), &next);
    let again = digests(&manifest_of(&out, "the next release"));
    assert!(
        events.iter().any(|(e, _)| e == "unchanged")
            && !events.iter().any(|(e, _)| e == "building"),
        "{events:?}"
    );
    assert_eq!(again["api"], released["api"]);
}
