//! Releases that go wrong: a registry that stops as the moving tags start, credentials from the
//! Docker config (right and wrong), an immutable repository. Each checks through the registry
//! API that `latest` stayed where it was. And a daemon whose answer to a build breaks off.

use crate::support::daemon_proxy::DaemonProxy;
use crate::support::proxy::{OnTrigger, Proxy};
use crate::support::{bed, ecr_login, fake_sha, run, served, stderr, unique, wharf, write};
use base64::Engine;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

fn project(dir: &Path, prefix: &str, base: &str) {
    write(
        dir,
        "compose.yaml",
        &format!("services:\n  a:\n    image: {prefix}/a\n    build: ./a\n  b:\n    image: {prefix}/b\n    build: ./b\n"),
    );
    for s in ["a", "b"] {
        write(
            dir,
            &format!("{s}/Dockerfile"),
            &format!("FROM {base}\nCOPY stamp /stamp\n"),
        );
    }
    restamp(dir);
}

/// New content, so the next build is a new image.
fn restamp(dir: &Path) {
    for s in ["a", "b"] {
        write(dir, &format!("{s}/stamp"), &unique(s));
    }
}

/// Runs wharf in `dir` for commit `sha` with `envs` added.
fn release(dir: &Path, sha: &str, envs: &[(&str, &str)], args: &[&str]) -> Output {
    run(wharf(dir)
        .args(args)
        .env("GITHUB_SHA", sha)
        .envs(envs.iter().copied()))
}

#[tokio::test]
async fn a_registry_stopping_as_moving_tags_start_leaves_latest_where_it_was() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("stop").replace('-', "");
    project(dir.path(), &prefix, &bed.base_image);
    let plain = bed.plain_registry.as_str();

    let first = fake_sha();
    let out = release(
        dir.path(),
        &first,
        &[],
        &["build", "--push", "--registry", plain],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut before = Vec::new();
    for s in ["a", "b"] {
        before.push(
            served(&format!("{plain}/{prefix}/{s}:latest"), None)
                .await
                .expect("latest exists"),
        );
    }

    // The same registry behind a proxy that goes away at the first write of a moving tag.
    let trigger = Arc::new(|chunk: &str| {
        chunk.starts_with("PUT /v2/") && chunk.contains("/manifests/latest ")
    });
    let proxy = Proxy::start(plain, Some(trigger));
    restamp(dir.path());
    let second = fake_sha();
    let out = release(
        dir.path(),
        &second,
        &[],
        &["build", "--push", "--registry", &proxy.addr],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("moving tags failed"), "{err}");
    for (i, s) in ["a", "b"].iter().enumerate() {
        let latest = served(&format!("{plain}/{prefix}/{s}:latest"), None).await;
        assert_eq!(
            latest.as_ref(),
            Some(&before[i]),
            "latest of {s} did not move"
        );
        let landed = served(&format!("{plain}/{prefix}/{s}:{second}"), None).await;
        assert!(
            landed.is_some_and(|d| d != before[i]),
            "phase 1 landed the new {s}"
        );
    }
}

#[tokio::test]
async fn docker_config_credentials_are_used_and_a_wrong_password_moves_nothing() {
    let bed = bed();
    // The ECR registry reached under another name, so wharf treats it as "any registry" and
    // takes its credentials from the Docker config, as docker does.
    let upstream = "127.0.0.2:443";
    let proxy = Proxy::start(upstream, None);
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("cfg").replace('-', "");
    project(dir.path(), &prefix, &bed.base_image);
    let config = tempfile::tempdir().unwrap();
    let write_config = |password: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
        let json = serde_json::json!({ "auths": { proxy.addr.clone(): { "auth": auth } } });
        std::fs::write(config.path().join("config.json"), json.to_string()).unwrap();
    };
    let docker_config = config.path().to_str().unwrap().to_string();
    let envs = [("DOCKER_CONFIG", docker_config.as_str())];
    let ecr = ecr_login(&bed);

    write_config(&bed.ecr_password);
    let sha = fake_sha();
    let out = release(
        dir.path(),
        &sha,
        &envs,
        &["build", "--push", "--registry", &proxy.addr],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let latest = served(
        &format!("{}/{prefix}/a:latest", bed.ecr_registry),
        Some(&ecr),
    )
    .await
    .expect("pushed with the config's credentials");

    write_config("wrong-password");
    restamp(dir.path());
    let out = release(
        dir.path(),
        &fake_sha(),
        &envs,
        &["build", "--push", "--registry", &proxy.addr],
    );
    let err = stderr(&out);
    // Found before any build: the registry is asked about every target repository first.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("refused the credentials") && err.contains(&proxy.addr),
        "names the registry: {err}"
    );
    assert!(err.contains("nothing was built or pushed"), "{err}");
    assert!(!err.contains("building"), "no build started: {err}");
    assert!(
        !err.contains("wrong-password"),
        "no password in messages: {err}"
    );
    let after = served(
        &format!("{}/{prefix}/a:latest", bed.ecr_registry),
        Some(&ecr),
    )
    .await;
    assert_eq!(after, Some(latest));
}

#[test]
fn immutable_repositories_refuse_moving_tags_before_anything_is_pushed() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("immut").replace('-', "");
    project(dir.path(), &prefix, &bed.base_image);
    let compose = std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap();
    write(
        dir.path(),
        "compose.yaml",
        &format!("x-wharf:\n  tag_mutability: IMMUTABLE\n{compose}"),
    );
    let sha = fake_sha();

    let out = release(
        dir.path(),
        &sha,
        &[],
        &[
            "build",
            "--push",
            "--registry",
            "ecr",
            "--create-repositories",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("immutable") && err.contains("--tag '{git_sha}'"),
        "says the fix: {err}"
    );
    assert!(!err.contains("pushing"), "nothing pushed: {err}");

    // Identity tags only: accepted, and pushing the same commit again is not an error.
    for _ in 0..2 {
        let out = release(
            dir.path(),
            &sha,
            &[],
            &["build", "--push", "--registry", "ecr", "--tag", "{git_sha}"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

#[tokio::test]
async fn credential_helpers_are_run_as_docker_runs_them() {
    use std::os::unix::fs::PermissionsExt;
    let bed = bed();
    let proxy = Proxy::start("127.0.0.2:443", None);
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("helper").replace('-', "");
    project(dir.path(), &prefix, &bed.base_image);
    let tools = tempfile::tempdir().unwrap();
    // A credential helper speaking docker's protocol: `get`, the server on stdin, JSON out.
    let helper = tools.path().join("docker-credential-wharftest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"AWS\",\"Secret\":\"{}\"}}' \"$server\"\n",
            bed.ecr_password
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = tempfile::tempdir().unwrap();
    let json = serde_json::json!({ "credHelpers": { proxy.addr.clone(): "wharftest" } });
    std::fs::write(config.path().join("config.json"), json.to_string()).unwrap();
    let path = format!(
        "{}:{}",
        tools.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let docker_config = config.path().to_str().unwrap().to_string();
    let envs = [
        ("DOCKER_CONFIG", docker_config.as_str()),
        ("PATH", path.as_str()),
    ];
    let out = release(
        dir.path(),
        &fake_sha(),
        &envs,
        &["build", "--push", "--registry", &proxy.addr],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ecr = ecr_login(&bed);
    assert!(served(
        &format!("{}/{prefix}/b:latest", bed.ecr_registry),
        Some(&ecr)
    )
    .await
    .is_some());
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let bed = bed();
    let plain = bed.plain_registry.as_str();
    let trigger =
        Arc::new(|chunk: &str| chunk.starts_with("PUT /v2/") && chunk.contains("/manifests/"));
    let proxy = Proxy::start_with(plain, Some(trigger), OnTrigger::DropOnce);
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("retry").replace('-', "");
    project(dir.path(), &prefix, &bed.base_image);
    let sha = fake_sha();
    let out = release(
        dir.path(),
        &sha,
        &[],
        &["build", "--push", "--registry", &proxy.addr],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("retrying"),
        "the dropped manifest write was retried: {err}"
    );
    for s in ["a", "b"] {
        assert!(served(&format!("{plain}/{prefix}/{s}:{sha}"), None)
            .await
            .is_some());
    }
}

/// The ID of the local image `reference`, if there is one.
fn local_image_id(reference: &str) -> Option<String> {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .expect("the docker client runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn a_build_whose_answer_breaks_off_is_built_again_and_a_second_break_fails_it() {
    let bed = bed();
    let base_id = local_image_id(&bed.base_image).expect("the bed imported its base image");
    for builder in ["buildkit", "classic"] {
        let dir = tempfile::tempdir().unwrap();
        let prefix = unique(&format!("broken-{builder}"));
        project(dir.path(), &prefix, &bed.base_image);
        let image = format!("{prefix}/a");
        let args = ["build", "--builder", builder, "--progress", "plain", "a"];

        // Once: the build is started again and its image replaces whatever held the tag.
        let tagged = std::process::Command::new("docker")
            .args(["tag", &bed.base_image, &image])
            .status()
            .unwrap();
        assert!(tagged.success());
        // wharf against a daemon whose first `cuts` build answers break off.
        let build_with_cuts = |cuts: usize| {
            let proxy = DaemonProxy::start(cuts);
            let out = release(
                dir.path(),
                &fake_sha(),
                &[("DOCKER_HOST", &proxy.host)],
                &args,
            );
            let err = stderr(&out);
            assert_eq!(proxy.cut(), cuts, "{builder}: answers broken off\n{err}");
            (out, err)
        };
        let (out, err) = build_with_cuts(1);
        assert!(
            out.status.success(),
            "{builder}: built on the second attempt\n{err}"
        );
        assert!(err.contains("broke off") && err.contains("again"), "{err}");
        let built = local_image_id(&image).expect("the image is tagged");
        assert_ne!(built, base_id, "{builder}: the tag names the new build");

        // Twice: a failed build, exit 1, whatever the tag held before is not presented as it.
        restamp(dir.path());
        let (out, err) = build_with_cuts(2);
        assert_eq!(out.status.code(), Some(1), "{builder}: {err}");
        assert!(
            err.contains("`a`") && err.contains("broke off") && err.contains("twice"),
            "{builder}: the failure says what happened\n{err}"
        );
        let _ = std::process::Command::new("docker")
            .args(["image", "rm", &image])
            .output();
    }
}

#[test]
fn a_registry_that_cannot_be_reached_stops_the_release_before_any_build() {
    let bed = bed();
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &unique("unreachable"), &bed.base_image);
    for extra in [None, Some("--no-skip")] {
        let mut args = vec!["build", "--push", "--registry", &closed];
        args.extend(extra);
        let out = release(dir.path(), &fake_sha(), &[], &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.contains(&format!("cannot reach the registry {closed}")),
            "{extra:?}: names the registry: {err}"
        );
        assert!(err.contains("`a`") && err.contains("`b`"), "{err}");
        assert!(
            !err.contains("building"),
            "{extra:?}: no build started: {err}"
        );
    }
}

#[test]
fn an_identity_tag_that_comes_to_name_another_image_is_said_out_loud() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("repoint");
    project(dir.path(), &prefix, &bed.base_image);
    let sha = fake_sha();
    let args = [
        "build",
        "--push",
        "--progress",
        "plain",
        "--registry",
        &bed.plain_registry,
    ];
    let out = release(dir.path(), &sha, &[], &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("now names"), "{}", stderr(&out));

    // The same commit released again with other bytes (here: another stamp, as a rebuild
    // without cache or from a newer base would make): the SHA tag moves, and wharf says so.
    restamp(dir.path());
    let out = release(dir.path(), &sha, &[], &args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for service in ["a", "b"] {
        let tag = format!(
            "{}/{prefix}/{service}:{sha} named sha256:",
            bed.plain_registry
        );
        assert!(
            err.contains(&tag) && err.contains("and now names sha256:"),
            "{service}: {err}"
        );
    }

    // Released again unchanged: nothing moves, nothing to say.
    let out = release(dir.path(), &sha, &[], &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("now names"), "{}", stderr(&out));

    // Built again on purpose: each build records its time, unless SOURCE_DATE_EPOCH fixes it,
    // and then a rebuild from the cache is the very same image.
    let mut again = args.to_vec();
    again.push("--no-skip");
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    let out = release(dir.path(), &sha, &epoch, &again);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("now names"),
        "a new created label: {}",
        stderr(&out)
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = release(dir.path(), &sha, &epoch, &again);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("now names"),
        "the same commit, the same time, the same image: {}",
        stderr(&out)
    );
}
