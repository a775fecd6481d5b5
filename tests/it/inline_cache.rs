//! A changed service on a fresh runner does not build from nothing: images carry inline cache
//! metadata, and a build takes the service's last release (its moving tag, the previous
//! commit's identity tag) as a cache source, so an expensive step before `COPY src` is not run
//! again. `x-wharf: {cache: false}` turns this off, and `plan` names the cache sources.
//!
//! The runner is the bed's second engine (Docker 26), whose build cache is wiped and whose
//! images are removed between the releases (only this test's cache records), as a fresh runner has none: wiping the first
//! engine's cache would take it from every test running beside this one. (Across the two
//! engines the cache cannot be shared at all: their BuildKit versions key steps differently.)

use crate::support::{bed, bed_var, fake_sha, run, run_in, unique, wharf, write};
use std::path::Path;
use std::process::Command;

/// Removes the images under `prefix` and the build cache of `prefix`'s own steps (those whose
/// step names one of `markers`, and every record built on them), as a fresh runner has none.
/// Only these records: `builder prune -a` would take the cache of every other test using the
/// engine at the same time, in the middle of their builds.
fn wipe(host: &str, prefix: &str, markers: &[String]) {
    let docker = |args: &[&str]| {
        let out = Command::new("docker")
            .args(["-H", host])
            .args(args)
            .output()
            .expect("docker runs");
        assert!(out.status.success(), "docker {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let images = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let ours: Vec<&str> = images.lines().filter(|l| l.starts_with(prefix)).collect();
    assert!(!ours.is_empty(), "the first release built its images there");
    docker(&[&["rmi", "-f"][..], &ours].concat());

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Record {
        #[serde(rename = "ID")]
        id: String,
        parent: String,
        description: String,
    }
    let records: Vec<Record> = serde_json::from_str(&docker(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{json .BuildCache}}",
    ]))
    .expect("the engine lists its build cache as JSON");
    // Marked steps first, then each generation built on them; removed newest first, since a
    // record with children stays. The engine takes one `id` filter per prune.
    let mut doomed: Vec<&str> = records
        .iter()
        .filter(|r| markers.iter().any(|m| r.description.contains(m.as_str())))
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        doomed.len(),
        markers.len(),
        "each marked step is cached once"
    );
    let mut from = 0;
    while from < doomed.len() {
        let generation: Vec<&str> = records
            .iter()
            .filter(|r| {
                doomed[from..].contains(&r.parent.as_str()) && !doomed.contains(&r.id.as_str())
            })
            .map(|r| r.id.as_str())
            .collect();
        from = doomed.len();
        doomed.extend(generation);
    }
    for id in doomed.iter().rev() {
        docker(&["builder", "prune", "-af", "--filter", &format!("id={id}")]);
    }
    let left = docker(&["system", "df", "-v", "--format", "{{json .BuildCache}}"]);
    for id in &doomed {
        assert!(!left.contains(id), "build cache record {id} was removed");
    }
}

/// Whether the image `reference` (`repository:tag` on the plain registry, which needs no
/// login) carries BuildKit's inline cache metadata in its config (an index: its first
/// platform image's).
fn carries_inline_cache(reference: &str) -> bool {
    use wharf_pusher::{api::RegistryApi, index};
    let (repository, _) = reference.rsplit_once(':').expect("a tagged reference");
    let api = RegistryApi::default();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let api = &api;
        let get = |reference: String| async move {
            api.manifest(&reference, None)
                .await
                .expect("the registry answers")
                .unwrap_or_else(|| panic!("{reference} is not in the registry"))
        };
        let mut manifest = get(reference.to_string()).await;
        if [index::OCI_INDEX, index::DOCKER_LIST].contains(&manifest.media_type.as_str()) {
            let first = index::children(&manifest)
                .unwrap()
                .into_iter()
                .next()
                .expect("a platform image in the index");
            manifest = get(format!("{repository}@{}", first.digest)).await;
        }
        let doc: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
        let config = doc["config"]["digest"].as_str().expect("a config");
        let blob = api
            .blob(repository, config, 1 << 20, None)
            .await
            .expect("the config blob");
        let config: serde_json::Value = serde_json::from_slice(&blob).unwrap();
        config["moby.buildkit.cache.v0"].is_string()
    })
}

/// Two services of the same shape: a step that takes a while and writes when it ran, then
/// the sources. `nocache` opts out.
fn project(dir: &Path, prefix: &str, base: &str) -> Vec<String> {
    write(
        dir,
        "compose.yaml",
        &format!(
            "services:\n  api:\n    image: {prefix}/api\n    build: ./api\n  nocache:\n    image: {prefix}/nocache\n    build: ./nocache\n    x-wharf:\n      cache: false\n"
        ),
    );
    let mut markers = Vec::new();
    for service in ["api", "nocache"] {
        // A step of its own (no engine's cache holds it from an earlier run, and the two
        // services share none), which writes a value no second run writes again.
        let marker = unique(service);
        write(
            dir,
            &format!("{service}/Dockerfile"),
            &format!(
                "FROM {base}\nRUN echo {marker} && sleep 2 && cat /proc/sys/kernel/random/uuid > /deps\nCOPY src /src\n"
            ),
        );
        write(dir, &format!("{service}/src"), "v1\n");
        markers.push(marker);
    }
    markers
}

/// Releases `sha`; returns what wharf said.
fn release(dir: &Path, sha: &str, docker_host: Option<&str>) -> String {
    let mut cmd = wharf(dir);
    cmd.args(["build", "--push"]).env("GITHUB_SHA", sha);
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    let out = run(&mut cmd);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "wharf failed:\n{said}");
    said
}

#[test]
fn a_fresh_runner_takes_the_expensive_step_from_the_last_release() {
    let bed = bed();
    let fresh = bed_var("WHARF_TEST_DOCKER26_HOST");
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}/{}", bed.plain_registry, unique("inline"));
    let markers = project(dir.path(), &prefix, &bed.base_image);
    let first = fake_sha();
    release(dir.path(), &first, Some(&fresh));

    // The plan names the last release as the cache source, except where opted out.
    let plan = run(wharf(dir.path())
        .args(["plan", "--format", "json"])
        .env("GITHUB_SHA", fake_sha()));
    assert!(plan.status.success(), "{plan:?}");
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let sources = |service: &str| {
        plan["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == service)
            .unwrap()["cache_from_release"]
            .clone()
    };
    assert_eq!(
        sources("api"),
        serde_json::json!([format!("{prefix}/api:latest")])
    );
    assert_eq!(sources("nocache"), serde_json::json!([]));

    // The sources change; a runner without the images and without build cache releases the
    // next commit. Its `api` must take the step from the release before it — unless the
    // engine wrote no cache into that release: BuildKit's inline cache exporter now and then
    // finds none of its cache among the image's layers when other builds share the engine
    // (it logs "failed to match any cache with layers" and exports the image without
    // `moby.buildkit.cache.v0`). Only then is the next commit tried, once, from the release
    // just made; a release that carries the cache and is not used fails the test.
    let deps =
        |service: &str, sha: &str| run_in(&format!("{prefix}/{service}:{sha}"), "cat /deps /src");
    let mut source = first.clone();
    let mut tries = 0;
    let (second, said) = loop {
        tries += 1;
        wipe(&fresh, &prefix, &markers);
        let sources = format!("v{}\n", tries + 1);
        for service in ["api", "nocache"] {
            write(dir.path(), &format!("{service}/src"), &sources);
        }
        let next = fake_sha();
        let said = release(dir.path(), &next, Some(&fresh));
        let (before, after) = (deps("api", &source), deps("api", &next));
        assert_eq!(
            after.lines().nth(1),
            Some(sources.trim_end()),
            "the new sources are in"
        );
        if before.lines().next() == after.lines().next() {
            break (next, said);
        }
        let reference = format!("{prefix}/api:{source}");
        assert!(
            !carries_inline_cache(&reference),
            "{reference} carries inline cache, yet the fresh runner ran the step before COPY src \
             again; wharf said:\n{said}"
        );
        assert!(
            tries < 2,
            "the engine wrote no inline cache into two releases in a row; wharf said:\n{said}"
        );
        println!(
            "the engine wrote no inline cache into {reference}: trying the next commit from {next}"
        );
        source = next;
    };
    assert!(said.contains("released 2 image(s)"), "{said}");
    assert!(
        carries_inline_cache(&format!("{prefix}/api:{source}")),
        "the release whose cache served the step carries it"
    );
    let (before, after) = (deps("nocache", &source), deps("nocache", &second));
    assert_ne!(
        before.lines().next(),
        after.lines().next(),
        "without cache sources the fresh runner runs the step again"
    );
}

#[test]
fn an_image_planted_under_the_moving_tag_is_no_cache_source() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}/{}", bed.plain_registry, unique("cacheplant"));
    let image = format!("{prefix}/api");
    write(
        dir.path(),
        "compose.yaml",
        &format!("services:\n  api:\n    image: {image}\n    build: ./api\n"),
    );
    write(
        dir.path(),
        "api/Dockerfile",
        &format!("FROM {}\nCOPY src /src\n", bed.base_image),
    );
    write(dir.path(), "api/src", &unique("src"));
    // Someone who may push puts an image no release made under `latest`.
    let planted = format!("{image}:latest");
    for args in [
        &["tag", bed.base_image.as_str(), planted.as_str()][..],
        &["push", planted.as_str()][..],
    ] {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {out:?}");
    }
    let out = run(wharf(dir.path())
        .args(["build", "--push"])
        .env("GITHUB_SHA", fake_sha()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("{planted} is not used as a cache source")),
        "{err}"
    );
}
