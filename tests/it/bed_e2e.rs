//! The test bed is real: an ECR token from the ECR API, a build through the daemon, a push to
//! the TLS registry under the ECR host name with that token, the tag read back through the
//! registry API — and a wrong password refused, so the first test cannot pass by accident.
//! The other platform runs under emulation, and the second engine is the current one it says.

use crate::support::{bed, bed_var, run_in, unique, write};
use std::process::Command;
use wharf_builder::build::{build, BuildRequest, BuilderKind};
use wharf_builder::context::Context;
use wharf_pusher::api::RegistryApi;
use wharf_pusher::login::{self, Login};
use wharf_pusher::push::push_tag;
use wharf_pusher::Error;

/// Builds a one-file image unique to this run, tagged `image`.
async fn build_unique_image(docker: &bollard::Docker, image: &str, base: &str) {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        &format!("FROM {base}\nCOPY stamp /stamp\n"),
    );
    write(dir.path(), "stamp", &unique("stamp"));
    let ctx = Context::prepare(dir.path(), None, BuilderKind::BuildKit).unwrap();
    let request = BuildRequest {
        tag: image.to_string(),
        dockerfile: ctx.dockerfile().to_string(),
        builder: BuilderKind::BuildKit,
        ..Default::default()
    };
    build(docker, &request, &ctx, |_| {})
        .await
        .expect("the build succeeds");
}

#[tokio::test]
async fn ecr_token_build_push_and_read_back() {
    let bed = bed();
    let sdk = login::aws_config(&Default::default()).await;
    let login = login::ecr(&sdk, None)
        .await
        .expect("moto hands out an ECR token");
    // The host comes from the token's proxy endpoint, as in production.
    assert_eq!(login.host, bed.ecr_registry);
    assert_eq!(login.username, "AWS");

    let (docker, _) = wharf_builder::daemon::connect()
        .await
        .expect("the daemon answers");
    let repository = format!("{}/wharf-e2e/foundation", login.host);
    let tag = unique("t");
    build_unique_image(&docker, &format!("{repository}:{tag}"), &bed.base_image).await;

    let pushed = push_tag(
        &docker,
        &repository,
        &tag,
        Some(&login),
        std::time::Duration::from_secs(300),
        |_| {},
    )
    .await
    .expect("the push with the ECR token succeeds");
    let digest = pushed.digest.expect("the daemon reports the digest");
    assert!(digest.starts_with("sha256:"), "{digest}");

    let api = RegistryApi::default();
    let served = api
        .manifest_digest(&format!("{repository}:{tag}"), Some(&login))
        .await
        .expect("the registry answers");
    assert_eq!(
        served.as_deref(),
        Some(digest.as_str()),
        "the registry serves what was pushed"
    );

    let absent = api
        .manifest_digest(
            &format!("{repository}:{}", unique("never-pushed")),
            Some(&login),
        )
        .await
        .expect("the registry answers");
    assert_eq!(absent, None);
}

#[tokio::test]
async fn a_wrong_password_is_refused_by_the_registry() {
    let bed = bed();
    let wrong = Login {
        host: bed.ecr_registry.clone(),
        username: "AWS".into(),
        password: "not-the-token".to_string().into(),
        expires_at: None,
    };
    let (docker, _) = wharf_builder::daemon::connect()
        .await
        .expect("the daemon answers");
    let repository = format!("{}/wharf-e2e/refused", bed.ecr_registry);
    let tag = unique("t");
    build_unique_image(&docker, &format!("{repository}:{tag}"), &bed.base_image).await;

    let err = push_tag(
        &docker,
        &repository,
        &tag,
        Some(&wrong),
        std::time::Duration::from_secs(300),
        |_| {},
    )
    .await
    .expect_err("the registry refuses a wrong password");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(
        !err.to_string().contains("not-the-token"),
        "no password in errors: {err}"
    );

    let read = RegistryApi::default()
        .manifest_digest(&format!("{repository}:{tag}"), Some(&wrong))
        .await;
    assert!(matches!(read, Err(Error::Unauthorized { .. })), "{read:?}");
    // And the right password reads nothing there: the refused push left no tag.
    let right = Login {
        password: bed.ecr_password.clone().into(),
        ..wrong
    };
    let after = RegistryApi::default()
        .manifest_digest(&format!("{repository}:{tag}"), Some(&right))
        .await
        .expect("the registry answers the right password");
    assert_eq!(after, None);
}

/// Builds `FROM base` a step that records `uname -m`, for `platform`, on the bed's default
/// engine (Docker 20.10) with BuildKit; returns what the step recorded.
async fn built_arch(base: &str, platform: &str) -> String {
    let (docker, _) = wharf_builder::daemon::connect()
        .await
        .expect("the daemon answers");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM {base}\nRUN echo {} && uname -m > /arch\n",
            unique("run")
        ),
    );
    let image = unique("bed-arch");
    let ctx = Context::prepare(dir.path(), None, BuilderKind::BuildKit).unwrap();
    let request = BuildRequest {
        tag: image.clone(),
        dockerfile: ctx.dockerfile().to_string(),
        builder: BuilderKind::BuildKit,
        platform: Some(platform.to_string()),
        ..Default::default()
    };
    build(&docker, &request, &ctx, |_| {})
        .await
        .unwrap_or_else(|e| panic!("the {platform} build of {base} succeeds: {e}"));
    let inspected = docker
        .inspect_image(&image)
        .await
        .expect("the image exists");
    let arch = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--platform",
            platform,
            &image,
            "cat",
            "/arch",
        ])
        .output()
        .expect("docker runs");
    let _ = Command::new("docker")
        .args(["image", "rm", &image])
        .output();
    assert!(
        arch.status.success(),
        "{}",
        String::from_utf8_lossy(&arch.stderr)
    );
    let recorded = String::from_utf8_lossy(&arch.stdout).trim().to_string();
    assert_eq!(
        inspected.architecture.as_deref(),
        platform.strip_prefix("linux/"),
        "the image's platform"
    );
    recorded
}

#[tokio::test]
async fn the_arm64_base_runs_under_emulation_on_the_default_engine() {
    let arm64 = bed_var("WHARF_TEST_BASE_IMAGE_ARM64");
    let amd64 = bed_var("WHARF_TEST_BASE_IMAGE_AMD64");
    let index = bed_var("WHARF_TEST_BASE_INDEX");
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--platform",
            "linux/arm64",
            &arm64,
            "uname",
            "-m",
        ])
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "aarch64");
    assert_eq!(run_in(&amd64, "uname -m"), "x86_64");

    // A RUN step of a linux/arm64 build, FROM the local arm64 base and FROM the index in the
    // plain registry (which gives each platform its own image).
    assert_eq!(built_arch(&arm64, "linux/arm64").await, "aarch64");
    assert_eq!(built_arch(&index, "linux/arm64").await, "aarch64");
    assert_eq!(built_arch(&index, "linux/amd64").await, "x86_64");
}

#[tokio::test]
async fn the_second_engine_is_current_and_on_the_containerd_store() {
    let host = bed_var("WHARF_TEST_DOCKER26_HOST");
    let socket = host
        .strip_prefix("unix://")
        .unwrap_or_else(|| panic!("WHARF_TEST_DOCKER26_HOST is a unix socket: {host}"));
    let docker = bollard::Docker::connect_with_unix(socket, 60, bollard::API_DEFAULT_VERSION)
        .expect("a client for the second engine")
        .negotiate_version()
        .await
        .unwrap_or_else(|e| panic!("the second engine answers at {host}: {e}"));
    let version = docker.version().await.expect("its version");
    let api = version.api_version.expect("an API version");
    let (major, minor) = api.split_once('.').expect("MAJOR.MINOR");
    let api_number = (major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap());
    assert!(api_number >= (1, 45), "API {api}");
    let info = docker.info().await.expect("its info");
    let driver = info.driver_status.unwrap_or_default();
    assert!(
        driver.iter().any(|kv| kv.len() == 2
            && kv[0] == "driver-type"
            && kv[1] == "io.containerd.snapshotter.v1"),
        "the containerd image store: {driver:?}"
    );
    for (name, arch) in [
        (bed_var("WHARF_TEST_BASE_IMAGE"), None),
        (bed_var("WHARF_TEST_BASE_IMAGE_AMD64"), Some("amd64")),
        (bed_var("WHARF_TEST_BASE_IMAGE_ARM64"), Some("arm64")),
    ] {
        let image = docker
            .inspect_image(&name)
            .await
            .unwrap_or_else(|e| panic!("{name} is loaded into the second engine: {e}"));
        if let Some(arch) = arch {
            assert_eq!(image.architecture.as_deref(), Some(arch), "{name}");
        }
    }
}
