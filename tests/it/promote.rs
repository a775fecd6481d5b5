//! One release across several runs: `build --push --shard K/N` on two engines at once, then
//! `wharf promote` as the fan-in; a failed shard that promote refuses and a second run that
//! finishes it; rollback and forward again; `promote --to` another registry. Driven through
//! the binary against the bed's private ECR, ECR Public stand-in and plain registry; every
//! tag checked through the registry API.

use crate::support::{
    bed, digests, fake_sha, manifest_of, progress_events, served, unique, wharf, wharf_on, write,
    Engine,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;
use wharf_pusher::api::{RawManifest, RegistryApi};
use wharf_pusher::login::Login;

const SERVICES: [&str; 4] = ["base", "app", "web", "jobs"];

/// Four services under `prefix`: `app` is built FROM `base`'s image; `jobs` fails its build
/// unless the variable FAIL is 0.
fn project(dir: &Path, prefix: &str) {
    let busybox = bed().base_image;
    write(
        dir,
        "compose.yaml",
        &format!(
            "name: fleet\nx-wharf:\n  create_repositories: true\nservices:\n  base:\n    image: {prefix}/base\n    build: ./base\n  app:\n    image: {prefix}/app\n    build: ./app\n  web:\n    image: {prefix}/web\n    build: ./web\n  jobs:\n    image: {prefix}/jobs\n    build:\n      context: ./jobs\n      args:\n        FAIL: ${{FAIL:-0}}\n"
        ),
    );
    write(
        dir,
        "base/Dockerfile",
        &format!("FROM {busybox}\nCOPY stamp /base-stamp\n"),
    );
    write(
        dir,
        "app/Dockerfile",
        &format!("FROM {prefix}/base\nCOPY stamp /app-stamp\n"),
    );
    write(
        dir,
        "web/Dockerfile",
        &format!("FROM {busybox}\nCOPY stamp /web-stamp\n"),
    );
    write(
        dir,
        "jobs/Dockerfile",
        &format!("FROM {busybox}\nARG FAIL\nRUN test \"$FAIL\" = 0\nCOPY stamp /jobs-stamp\n"),
    );
    restamp(dir);
}

/// [`project`] in a new folder, under a new prefix made of `name`: the folder and the prefix.
fn new_project(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique(name).replace('-', "");
    project(dir.path(), &prefix);
    (dir, prefix)
}

/// New content for every service, so the next commit's images differ.
fn restamp(dir: &Path) {
    for s in SERVICES {
        write(dir, &format!("{s}/stamp"), &unique(s));
    }
}

fn wharf_at(engine: Engine, dir: &Path, sha: &str, args: &[&str]) -> std::process::Command {
    let mut c = wharf_on(engine, dir, sha);
    c.args(args).args(["--progress", "json"]);
    c
}

/// `build --push --registry ecr` of commit `sha` on `engine`, with `extra` arguments.
fn release_to_ecr(engine: Engine, dir: &Path, sha: &str, extra: &[&str]) -> std::process::Command {
    let mut c = wharf_at(engine, dir, sha, &["build", "--push", "--registry", "ecr"]);
    c.args(extra);
    c
}

/// The events of one kind (`pushed`, `building`, `unchanged` …) of a JSON-progress run, as
/// (service, tag) pairs.
fn events(out: &Output, kind: &str) -> Vec<(String, String)> {
    progress_events(out)
        .into_iter()
        .filter(|v| v["event"] == kind)
        .map(|v| {
            (
                v["service"].as_str().unwrap_or_default().to_string(),
                v["tag"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn ecr(prefix: &str, service: &str, tag: &str) -> String {
    format!("{}/{prefix}/{service}:{tag}", bed().ecr_registry)
}

fn ecr_login() -> Login {
    crate::support::ecr_login(&bed())
}

async fn ecr_served(prefix: &str, service: &str, tag: &str) -> Option<String> {
    served(&ecr(prefix, service, tag), Some(&ecr_login())).await
}

/// The manifest `service`'s `tag` names in the bed's private ECR, if any.
async fn ecr_manifest(prefix: &str, service: &str, tag: &str) -> Option<RawManifest> {
    RegistryApi::default()
        .manifest(&ecr(prefix, service, tag), Some(&ecr_login()))
        .await
        .unwrap()
}

/// Puts the manifest `service`'s tag `from` names under the tag `to` too, through the
/// registry API, as anyone who may push to the repository could.
async fn ecr_retag(prefix: &str, service: &str, from: &str, to: &str) {
    let manifest = ecr_manifest(prefix, service, from)
        .await
        .unwrap_or_else(|| panic!("{service}:{from} is in the registry"));
    let repository = format!("{}/{prefix}/{service}", bed().ecr_registry);
    RegistryApi::default()
        .put_manifest(&repository, to, &manifest, Some(&ecr_login()))
        .await
        .unwrap();
}

#[tokio::test]
async fn two_shards_on_two_engines_then_promote_moves_every_moving_tag_once() {
    let (dir, prefix) = new_project("shard");
    let sha = fake_sha();
    let shard = |k: &str| {
        let engine = if k == "2/2" {
            Engine::Docker26
        } else {
            Engine::Docker20
        };
        let mut c = release_to_ecr(engine, dir.path(), &sha, &["--manifest", "-", "--shard", k]);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("wharf starts")
    };
    let (one, two) = (shard("1/2"), shard("2/2"));
    let (one, two) = (
        one.wait_with_output().unwrap(),
        two.wait_with_output().unwrap(),
    );
    let (m1, m2) = (
        manifest_of(&one, "shard 1/2"),
        manifest_of(&two, "shard 2/2"),
    );
    let (d1, d2) = (digests(&m1), digests(&m2));
    let s1: BTreeSet<&String> = d1.keys().collect();
    let s2: BTreeSet<&String> = d2.keys().collect();
    assert!(s1.is_disjoint(&s2), "{s1:?} {s2:?}");
    assert_eq!(s1.len() + s2.len(), 4, "{s1:?} {s2:?}");
    assert!(
        d1.contains_key("base") == d1.contains_key("app"),
        "app is built FROM base: one shard builds both ({s1:?} / {s2:?})"
    );
    for (out, m) in [(&one, &m1), (&two, &m2)] {
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("phase 2 left to `wharf promote`"), "{text}");
        for image in m["images"].as_array().unwrap() {
            assert_eq!(image["tags"], serde_json::json!([sha]), "{image}");
        }
        assert!(
            events(out, "pushed").iter().all(|(_, t)| t != "latest"),
            "a shard never moves a moving tag"
        );
    }
    let released: BTreeMap<String, String> = d1.into_iter().chain(d2).collect();
    for (service, digest) in &released {
        assert_eq!(
            ecr_served(&prefix, service, &sha).await.as_ref(),
            Some(digest)
        );
        assert_eq!(
            ecr_served(&prefix, service, "latest").await,
            None,
            "`latest` of {service} before promote"
        );
    }

    let github = tempfile::tempdir().unwrap();
    let summary = github.path().join("summary.md");
    let outputs = github.path().join("output.txt");
    let out = wharf_at(
        Engine::Docker20,
        dir.path(),
        &sha,
        &["promote", "--registry", "ecr", "--manifest", "-"],
    )
    .env("GITHUB_ACTIONS", "true")
    .env("GITHUB_STEP_SUMMARY", &summary)
    .env("GITHUB_OUTPUT", &outputs)
    .output()
    .unwrap();
    let promoted = digests(&manifest_of(&out, "promote"));
    assert_eq!(promoted, released);
    let summary = std::fs::read_to_string(&summary).expect("a job summary");
    let outputs = std::fs::read_to_string(&outputs).expect("step outputs");
    for (service, digest) in &released {
        assert!(
            summary.contains(service.as_str()) && summary.contains(&digest[7..19]),
            "the job summary lists the release: {summary}"
        );
        assert!(outputs.contains(&format!("image-{service}")), "{outputs}");
    }
    let moved = events(&out, "pushed");
    for service in SERVICES {
        assert_eq!(
            moved
                .iter()
                .filter(|(s, t)| s == service && t == "latest")
                .count(),
            1,
            "{service}: {moved:?}"
        );
        assert_eq!(
            ecr_served(&prefix, service, "latest").await.as_ref(),
            Some(&released[service])
        );
    }
    assert!(events(&out, "building").is_empty(), "promote never builds");
}

#[tokio::test]
async fn a_failed_shard_stops_promote_and_its_second_run_skips_what_landed_on_docker20() {
    a_failed_shard_stops_promote_and_its_second_run_skips_what_landed(Engine::Docker20).await;
}

#[tokio::test]
async fn a_failed_shard_stops_promote_and_its_second_run_skips_what_landed_on_docker26() {
    a_failed_shard_stops_promote_and_its_second_run_skips_what_landed(Engine::Docker26).await;
}

async fn a_failed_shard_stops_promote_and_its_second_run_skips_what_landed(engine: Engine) {
    let (dir, prefix) = new_project("refan");
    let sha = fake_sha();
    let shard = |fail: &str| {
        release_to_ecr(
            engine,
            dir.path(),
            &sha,
            &["--keep-going", "--manifest", "-", "--shard", "1/1"],
        )
        .env("FAIL", fail)
        .output()
        .unwrap()
    };
    let failed = shard("1");
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );

    let out = wharf_at(engine, dir.path(), &sha, &["promote", "--registry", "ecr"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("`jobs`: no identity tag {sha}")),
        "{stderr}"
    );
    for landed in ["base", "app", "web"] {
        assert!(!stderr.contains(&format!("`{landed}`:")), "{stderr}");
    }
    assert!(stderr.contains("no moving tag was moved"), "{stderr}");
    for service in SERVICES {
        assert_eq!(
            ecr_served(&prefix, service, "latest").await,
            None,
            "{service}"
        );
    }

    let again = shard("0");
    let manifest = manifest_of(&again, "the shard's second run");
    let built: BTreeSet<String> = events(&again, "building")
        .into_iter()
        .map(|e| e.0)
        .collect();
    let unchanged: BTreeSet<String> = events(&again, "unchanged")
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(built, BTreeSet::from(["jobs".to_string()]));
    assert_eq!(
        unchanged,
        ["app", "base", "web"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let out = wharf_at(
        engine,
        dir.path(),
        &sha,
        &["promote", "--registry", "ecr", "--manifest", "-"],
    )
    .output()
    .unwrap();
    assert_eq!(digests(&manifest_of(&out, "promote")), digests(&manifest));
}

#[tokio::test]
async fn rollback_to_the_previous_commit_and_forward_again_on_docker20() {
    rollback_to_the_previous_commit_and_forward_again(Engine::Docker20).await;
}

#[tokio::test]
async fn rollback_to_the_previous_commit_and_forward_again_on_docker26() {
    rollback_to_the_previous_commit_and_forward_again(Engine::Docker26).await;
}

async fn rollback_to_the_previous_commit_and_forward_again(engine: Engine) {
    let (dir, prefix) = new_project("roll");
    let release = |sha: &str| {
        let out = release_to_ecr(engine, dir.path(), sha, &["--manifest", "-"])
            .output()
            .unwrap();
        digests(&manifest_of(&out, "release"))
    };
    let (old, new) = (fake_sha(), fake_sha());
    let before = release(&old);
    restamp(dir.path());
    let after = release(&new);
    for s in SERVICES {
        assert_ne!(before[s], after[s], "{s}: two commits, two images");
        assert_eq!(
            ecr_served(&prefix, s, "latest").await.as_ref(),
            Some(&after[s])
        );
    }

    for (commit, expected) in [(&old, &before), (&new, &after)] {
        let out = wharf_at(
            engine,
            dir.path(),
            &new,
            &["promote", "--registry", "ecr", "--commit", commit],
        )
        .output()
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for s in SERVICES {
            assert_eq!(
                ecr_served(&prefix, s, "latest").await.as_ref(),
                Some(&expected[s]),
                "{s} after promoting {commit}"
            );
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Replaces `web`'s release with an index of two platform images (its image, and the same
/// image written out again so that its digest differs), as a multi-platform release stores
/// it. Returns the index's digest and its children's.
async fn make_web_an_index(prefix: &str, sha: &str) -> (String, Vec<String>) {
    let api = RegistryApi::default();
    let login = ecr_login();
    let repository = format!("{}/{prefix}/web", bed().ecr_registry);
    let image = ecr_manifest(prefix, "web", sha)
        .await
        .expect("web's release");
    let doc: serde_json::Value = serde_json::from_slice(&image.bytes).unwrap();
    let again = serde_json::to_vec_pretty(&doc).unwrap();
    let second = RawManifest {
        digest: sha256(&again),
        bytes: again.into(),
        media_type: image.media_type.clone(),
    };
    api.put_manifest_by_digest(&repository, &second, Some(&login))
        .await
        .unwrap();
    // Both images are amd64 (their config says so, and promote checks it): the second stands
    // for an amd64/v3 build, as some projects publish beside the baseline.
    let baseline = serde_json::json!({"os": "linux", "architecture": "amd64"});
    let v3 = serde_json::json!({"os": "linux", "architecture": "amd64", "variant": "v3"});
    let entry = |m: &RawManifest, platform: &serde_json::Value| {
        serde_json::json!({"mediaType": m.media_type, "size": m.bytes.len(), "digest": m.digest,
            "platform": platform})
    };
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [entry(&image, &baseline), entry(&second, &v3)],
    }))
    .unwrap();
    let index = RawManifest {
        digest: sha256(&list),
        bytes: list.into(),
        media_type: "application/vnd.docker.distribution.manifest.list.v2+json".into(),
    };
    api.put_manifest(&repository, sha, &index, Some(&login))
        .await
        .unwrap();
    (index.digest, vec![image.digest, second.digest])
}

#[tokio::test]
async fn promote_to_another_registry_copies_every_image_with_the_same_digests_on_docker20() {
    promote_to_another_registry_copies_every_image_with_the_same_digests(Engine::Docker20).await;
}

#[tokio::test]
async fn promote_to_another_registry_copies_every_image_with_the_same_digests_on_docker26() {
    promote_to_another_registry_copies_every_image_with_the_same_digests(Engine::Docker26).await;
}

async fn promote_to_another_registry_copies_every_image_with_the_same_digests(engine: Engine) {
    let bed = bed();
    let (dir, prefix) = new_project("copy");
    let sha = fake_sha();
    let out = release_to_ecr(
        engine,
        dir.path(),
        &sha,
        &["--shard", "1/1", "--manifest", "-"],
    )
    .output()
    .unwrap();
    let mut released = digests(&manifest_of(&out, "the release"));
    let (index, children) = make_web_an_index(&prefix, &sha).await;
    released.insert("web".into(), index);

    let namespace = unique("promoted").replace('-', "");
    let plain = format!("{}/{namespace}", bed.plain_registry);
    let public = Login {
        host: "public.ecr.aws".into(),
        username: "AWS".into(),
        password: bed.public_password.clone().into(),
        expires_at: None,
    };
    let alias = bed.public_registry.trim_start_matches("public.ecr.aws/");
    let destinations: [(&str, String, Option<&Login>); 2] = [
        (plain.as_str(), plain.clone(), None),
        (
            bed.public_registry.as_str(),
            format!("public.ecr.aws/{alias}"),
            Some(&public),
        ),
    ];
    for (to, root, login) in destinations {
        let out = wharf_at(
            engine,
            dir.path(),
            &sha,
            &[
                "promote",
                "--registry",
                "ecr",
                "--to",
                to,
                "--manifest",
                "-",
            ],
        )
        .output()
        .unwrap();
        let promoted = manifest_of(&out, &format!("promote --to {to}"));
        assert_eq!(digests(&promoted), released, "{to}");
        for (service, digest) in &released {
            let repository = format!("{root}/{prefix}/{service}");
            for tag in [sha.as_str(), "latest"] {
                assert_eq!(
                    served(&format!("{repository}:{tag}"), login).await.as_ref(),
                    Some(digest),
                    "{repository}:{tag}"
                );
            }
        }
        for child in &children {
            let reference = format!("{root}/{prefix}/web@{child}");
            assert_eq!(
                served(&reference, login).await.as_ref(),
                Some(child),
                "every platform image of the index: {reference}"
            );
        }
    }
    for service in SERVICES {
        assert_eq!(
            ecr_served(&prefix, service, "latest").await,
            None,
            "the source's moving tags stay where they were"
        );
    }

    // Within one registry, from one namespace to another: blobs are mounted, not copied.
    let sibling = format!(
        "{}/{}",
        bed.plain_registry,
        unique("sibling").replace('-', "")
    );
    let out = wharf_at(
        engine,
        dir.path(),
        &sha,
        &[
            "promote",
            "--registry",
            &plain,
            "--to",
            &sibling,
            "--manifest",
            "-",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        digests(&manifest_of(&out, "promote within a registry")),
        released
    );
    for (service, digest) in &released {
        let reference = format!("{sibling}/{prefix}/{service}:latest");
        assert_eq!(
            served(&reference, None).await.as_ref(),
            Some(digest),
            "{reference}"
        );
    }
}

#[test]
fn shards_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "checked");
    for bad in ["0/2", "3/2", "junk"] {
        let out = wharf(dir.path())
            .args(["build", "--push", "--registry", "ecr", "--shard", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("K/N"), "{bad}: {stderr}");
    }
    let out = wharf(dir.path())
        .args(["plan", "--registry", "ecr"])
        .env("WHARF_SHARD", "2/1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plan_shows_what_each_shard_releases() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "planned");
    let plan = |k: &str| -> serde_json::Value {
        let out = wharf(dir.path())
            .args([
                "plan",
                "--format",
                "json",
                "--registry",
                "ecr",
                "--shard",
                k,
            ])
            .env("GITHUB_SHA", crate::support::SHA)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let mut seen = BTreeSet::new();
    let mut estimates = Vec::new();
    for k in ["1/2", "2/2"] {
        let p = plan(k);
        estimates.push((
            p["shard"]["estimate"].as_u64().unwrap(),
            p["shard"]["estimate_of_release"].as_u64().unwrap(),
        ));
        let services: Vec<String> = p["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s["moving_tags"], serde_json::json!([]), "{s}");
                s["service"].as_str().unwrap().to_string()
            })
            .collect();
        assert!(!services.is_empty(), "{k}");
        assert_eq!(
            services.contains(&"base".to_string()),
            services.contains(&"app".to_string()),
            "{k}: {services:?}"
        );
        assert_eq!(
            plan(k)["services"],
            p["services"],
            "the same split every time"
        );
        seen.extend(services);
    }
    assert_eq!(seen.len(), 4);
    assert_eq!(
        estimates[0].0 + estimates[1].0,
        estimates[0].1,
        "{estimates:?}"
    );
    assert_eq!(estimates[0].1, estimates[1].1);
}

#[test]
fn promote_refuses_what_it_cannot_do_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "refused");
    let cases: [(&[&str], &str); 5] = [
        (
            &["--registry", "127.0.0.1:9/nothing"],
            "the registry cannot be read",
        ),
        (
            &["--registry", "127.0.0.1:9/x", "--commit", "not-a-commit"],
            "--commit not-a-commit",
        ),
        (
            &[
                "--registry",
                "127.0.0.1:9/x",
                "--tag",
                "{git_sha}-{timestamp}",
            ],
            "{timestamp}",
        ),
        (
            &["--registry", "127.0.0.1:9/x", "--tag", "latest"],
            "no identity tag",
        ),
        (
            &["--registry", "127.0.0.1:9/x", "--platform", "linux/amd64"],
            "promote releases every platform a service declares",
        ),
    ];
    for (args, says) in cases {
        let out = wharf(dir.path())
            .arg("promote")
            .args(args)
            .env("GITHUB_SHA", crate::support::SHA)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn an_identity_tag_put_on_another_commits_image_is_not_promoted_on_docker20() {
    an_identity_tag_put_on_another_commits_image_is_not_promoted(Engine::Docker20).await;
}

#[tokio::test]
async fn an_identity_tag_put_on_another_commits_image_is_not_promoted_on_docker26() {
    an_identity_tag_put_on_another_commits_image_is_not_promoted(Engine::Docker26).await;
}

async fn an_identity_tag_put_on_another_commits_image_is_not_promoted(engine: Engine) {
    let (dir, prefix) = new_project("forged");
    let (built, forged) = (fake_sha(), fake_sha());
    let out = release_to_ecr(
        engine,
        dir.path(),
        &built,
        &["--shard", "1/1", "--manifest", "-", "web"],
    )
    .output()
    .unwrap();
    manifest_of(&out, "the release");
    ecr_retag(&prefix, "web", &built, &forged).await;

    let out = wharf_at(
        engine,
        dir.path(),
        &forged,
        &["promote", "--registry", "ecr", "web"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`web`: the image its identity tag names is not trusted")
            && stderr.contains(&format!("names commit {built}, not {forged}")),
        "{stderr}"
    );
    assert_eq!(ecr_served(&prefix, "web", "latest").await, None);
}

/// A project of one service, `multi`, for linux/amd64 and linux/arm64 under a new prefix. No
/// RUN step: the arm64 image is made without emulation.
fn two_platform_project(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique(name).replace('-', "");
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "name: fleet\nx-wharf:\n  create_repositories: true\nservices:\n  multi:\n    image: {prefix}/multi\n    build:\n      context: ./multi\n      platforms: [linux/amd64, linux/arm64]\n"
        ),
    );
    write(
        dir.path(),
        "multi/Dockerfile",
        "ARG TARGETARCH\nFROM wharf-test/busybox:1-${TARGETARCH}\nCOPY stamp /stamp\n",
    );
    write(dir.path(), "multi/stamp", &unique("multi"));
    (dir, prefix)
}

/// A platform identity tag put by hand on another platform's image (here: the amd64 image
/// under `-linux-arm64`, with the right commit and everything else in place) must not make an
/// index that sends arm64 hosts an amd64 image.
#[tokio::test]
async fn an_image_under_another_platforms_tag_is_not_promoted() {
    let (dir, prefix) = two_platform_project("mislabel");
    let sha = fake_sha();
    let out = release_to_ecr(
        Engine::Docker20,
        dir.path(),
        &sha,
        &["--shard", "1/1", "--platform", "linux/amd64"],
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::support::stderr(&out)
    );
    ecr_retag(
        &prefix,
        "multi",
        &format!("{sha}-linux-amd64"),
        &format!("{sha}-linux-arm64"),
    )
    .await;

    let out = wharf_at(
        Engine::Docker20,
        dir.path(),
        &sha,
        &["promote", "--registry", "ecr"],
    )
    .output()
    .unwrap();
    let stderr = crate::support::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`multi`")
            && stderr.contains("it is an image for linux/amd64, not linux/arm64"),
        "promote names the image's real platform: {stderr}"
    );
    for tag in [sha.as_str(), "latest"] {
        assert_eq!(
            ecr_served(&prefix, "multi", tag).await,
            None,
            "{tag}: no index written, nothing moved"
        );
    }
}

#[tokio::test]
async fn a_rollback_that_cannot_move_one_tag_puts_back_the_others_on_docker20() {
    a_rollback_that_cannot_move_one_tag_puts_back_the_others(Engine::Docker20).await;
}

#[tokio::test]
async fn a_rollback_that_cannot_move_one_tag_puts_back_the_others_on_docker26() {
    a_rollback_that_cannot_move_one_tag_puts_back_the_others(Engine::Docker26).await;
}

async fn a_rollback_that_cannot_move_one_tag_puts_back_the_others(engine: Engine) {
    use crate::support::registry_proxy::{Fault as ProxyFault, Method, RegistryProxy};
    let bed = bed();
    let (dir, prefix) = new_project("undo");
    let plain = format!("{}/{prefix}", bed.plain_registry);
    let release = |sha: &str| {
        let out = wharf_at(
            engine,
            dir.path(),
            sha,
            &["build", "--push", "--registry", &plain, "--manifest", "-"],
        )
        .output()
        .unwrap();
        digests(&manifest_of(&out, "release"))
    };
    let old = fake_sha();
    release(&old);
    restamp(dir.path());
    let current = release(&fake_sha());

    let proxy = RegistryProxy::start(&bed.plain_registry);
    let refused = proxy.fault(
        Method::PUT,
        &format!(r"/{prefix}/{prefix}/web/manifests/latest$"),
        ProxyFault::refuse_tag(),
    );
    let through = format!("{}/{prefix}", proxy.addr);
    let out = wharf_at(
        engine,
        dir.path(),
        &old,
        &["promote", "--registry", &through, "--commit", &old],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(refused.hits() >= 1, "{stderr}");
    assert!(stderr.contains("`web`"), "{stderr}");
    assert!(
        stderr.contains("the registry holds the whole previous release"),
        "{stderr}"
    );
    for s in SERVICES {
        let reference = format!("{plain}/{prefix}/{s}:latest");
        assert_eq!(
            served(&reference, None).await.as_ref(),
            Some(&current[s]),
            "{reference}: still the current release"
        );
    }
}

/// A service of two platforms split across two engines: each shard (`--platform`) pushes its
/// platform identity tags only. With one platform missing, promote exits 1 naming the service
/// and the platform, and writes nothing; once both are there, it writes the index under the
/// identity tag and moves `latest` onto it.
#[tokio::test]
async fn platforms_built_by_two_shards_are_joined_into_an_index_by_promote() {
    let (dir, prefix) = two_platform_project("plat");
    let sha = fake_sha();
    let shard = |platform: &str| {
        // arm64 is built by the second engine, as a native arm64 runner would.
        let engine = if platform == "linux/arm64" {
            Engine::Docker26
        } else {
            Engine::Docker20
        };
        let mut c = release_to_ecr(
            engine,
            dir.path(),
            &sha,
            &["--shard", "1/1", "--platform", platform],
        );
        c.output().unwrap()
    };
    let promote = || {
        wharf_at(
            Engine::Docker20,
            dir.path(),
            &sha,
            &["promote", "--registry", "ecr", "--manifest", "-"],
        )
        .output()
        .unwrap()
    };
    let amd = shard("linux/amd64");
    assert_eq!(
        amd.status.code(),
        Some(0),
        "{}",
        crate::support::stderr(&amd)
    );
    let amd_tag = format!("{sha}-linux-amd64");
    let arm_tag = format!("{sha}-linux-arm64");
    let amd_image = ecr_served(&prefix, "multi", &amd_tag).await;
    assert!(amd_image.is_some(), "{amd_tag} after the amd64 shard");
    for tag in [sha.as_str(), "latest", arm_tag.as_str()] {
        assert_eq!(ecr_served(&prefix, "multi", tag).await, None, "{tag}");
    }

    let out = promote();
    let text = crate::support::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("`multi`") && text.contains("linux/arm64"),
        "promote names the service and its missing platform: {text}"
    );
    assert!(!text.contains("linux/amd64"), "amd64 is there: {text}");
    for tag in [sha.as_str(), "latest"] {
        assert_eq!(
            ecr_served(&prefix, "multi", tag).await,
            None,
            "{tag}: nothing moved, no index written"
        );
    }

    let arm = shard("linux/arm64");
    assert_eq!(
        arm.status.code(),
        Some(0),
        "{}",
        crate::support::stderr(&arm)
    );
    let arm_image = ecr_served(&prefix, "multi", &arm_tag).await;
    assert!(arm_image.is_some(), "{arm_tag} after the arm64 shard");
    for tag in [sha.as_str(), "latest"] {
        assert_eq!(ecr_served(&prefix, "multi", tag).await, None, "{tag}");
    }

    let out = promote();
    let promoted = digests(&manifest_of(&out, "promote"));
    let index = ecr_manifest(&prefix, "multi", &sha)
        .await
        .expect("promote wrote the index under the identity tag");
    let listed = wharf_pusher::index::children(&index).unwrap();
    for c in &listed {
        assert!(
            [
                wharf_pusher::index::DOCKER_MANIFEST,
                wharf_pusher::index::OCI_MANIFEST
            ]
            .contains(&c.media_type.as_str()),
            "{}: an image manifest, not an index: {}",
            c.platform,
            c.media_type
        );
    }
    let children: BTreeMap<String, String> = listed
        .into_iter()
        .map(|c| (c.platform.to_string(), c.digest))
        .collect();
    assert_eq!(
        children,
        BTreeMap::from([
            ("linux/amd64".to_string(), amd_image.unwrap()),
            ("linux/arm64".to_string(), arm_image.unwrap()),
        ]),
        "the index names both platforms' images"
    );
    assert_eq!(promoted["multi"], index.digest);
    assert_eq!(
        ecr_served(&prefix, "multi", "latest").await.as_ref(),
        Some(&index.digest),
        "`latest` names the index"
    );
    let pushed = events(&out, "pushed");
    for tag in [sha.as_str(), "latest"] {
        assert_eq!(
            pushed
                .iter()
                .filter(|(s, t)| s == "multi" && t == tag)
                .count(),
            1,
            "{tag}: {pushed:?}"
        );
    }
    assert!(events(&out, "building").is_empty(), "promote never builds");
}
