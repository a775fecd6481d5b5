//! Multi-platform images through the daemon's plain build endpoint, on both engines of the
//! bed (Docker 20.10 with its one-image-per-name store, Docker 26 with the containerd store):
//! each platform built on its own (foreign `RUN` steps through the bed's QEMU), pushed under
//! its platform identity tags, then an index under the identity and moving tags; a service
//! built FROM another uses the same platform's image of it.

use crate::support::{
    bed, bed_var, ecr_login, fake_sha, manifest_of, stderr, unique, wharf_on, write, Engine,
};
use std::path::Path;
use std::process::{Command, Output};
use wharf_pusher::api::{RawManifest, RegistryApi};
use wharf_pusher::login::Login;

fn release(engine: Engine, dir: &Path, sha: &str, extra: &[&str]) -> Output {
    crate::support::run(
        wharf_on(engine, dir, sha)
            .args([
                "build",
                "--push",
                "--registry",
                "ecr",
                "--create-repositories",
                "--progress",
                "json",
                "--manifest",
                "-",
            ])
            .args(extra),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A file of `image` as a container of `platform` on `engine` reads it.
fn cat_in(engine: Engine, image: &str, platform: &str, file: &str) -> String {
    let out = engine
        .docker()
        .args(["run", "--rm", "--platform", platform, image, "cat", file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{image} {platform}: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

/// `docker image inspect --format FORMAT name` on `engine`.
fn local_image(engine: Engine, name: &str, format: &str) -> String {
    let out = engine
        .docker()
        .args(["image", "inspect", "--format", format, name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// base (two platforms) ← api (two platforms, FROM base's image), and single (one platform).
/// Each `RUN uname -m` records the machine the step ran on.
fn project(dir: &Path, prefix: &str) {
    write(
        dir,
        "compose.yaml",
        &format!(
            "services:\n  base:\n    image: {prefix}/base\n    build:\n      context: ./base\n      platforms: [linux/amd64, linux/arm64]\n  api:\n    image: {prefix}/api\n    build:\n      context: ./api\n      platforms: [linux/amd64, linux/arm64]\n  single:\n    image: {prefix}/single\n    build: ./single\n"
        ),
    );
    write(
        dir,
        "base/Dockerfile",
        "ARG TARGETARCH\nFROM wharf-test/busybox:1-${TARGETARCH}\nRUN uname -m > /base-arch\n",
    );
    write(
        dir,
        "api/Dockerfile",
        &format!("FROM {prefix}/base\nRUN uname -m > /api-arch\nCOPY stamp /stamp\n"),
    );
    write(dir, "api/stamp", &unique("api"));
    write(
        dir,
        "single/Dockerfile",
        "FROM wharf-test/busybox:1\nCOPY stamp /stamp\n",
    );
    write(dir, "single/stamp", &unique("single"));
}

/// Adds `edge`, a single-platform linux/arm64 service, and routes linux/arm64 to `engine`.
fn route_arm64(dir: &Path, prefix: &str, engine: &str) {
    let compose = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    write(
        dir,
        "compose.yaml",
        &format!(
            "{compose}  edge:\n    image: {prefix}/edge\n    platform: linux/arm64\n    build: ./edge\nx-wharf:\n  engines:\n    linux/arm64: {engine}\n"
        ),
    );
    write(
        dir,
        "edge/Dockerfile",
        "FROM wharf-test/busybox:1-arm64\nRUN uname -m > /edge-arch\n",
    );
}

async fn get(api: &RegistryApi, reference: &str, login: &Login) -> RawManifest {
    api.manifest(reference, Some(login))
        .await
        .expect("the registry answers")
        .unwrap_or_else(|| panic!("{reference} is not in the registry"))
}

/// The content of `path` in the image `manifest` of `repository` names, read from its layers
/// (the last layer holding it wins).
async fn file_in_image(
    api: &RegistryApi,
    repository: &str,
    manifest: &RawManifest,
    path: &str,
    login: &Login,
) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let mut found = None;
    for layer in doc["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        let blob = api
            .blob(repository, digest, 64 << 20, Some(login))
            .await
            .expect("the layer is served");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &blob).unwrap();
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(file.path())
            .arg(path)
            .output()
            .expect("tar runs");
        if out.status.success() {
            found = Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
    }
    found
}

/// The architecture the config of `manifest` records.
async fn architecture(
    api: &RegistryApi,
    repository: &str,
    manifest: &RawManifest,
    login: &Login,
) -> String {
    let doc: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let config = doc["config"]["digest"].as_str().unwrap();
    let blob = api
        .blob(repository, config, 1 << 20, Some(login))
        .await
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&blob).unwrap();
    config["architecture"].as_str().unwrap().to_string()
}

const LISTS: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
];
const IMAGES: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
];

async fn two_platforms_one_tag(engine: Engine) {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mp").replace('-', "");
    project(dir.path(), &prefix);
    let sha = fake_sha();
    let out = release(engine, dir.path(), &sha, &[]);
    let manifest = manifest_of(&out, "the release");
    let api = RegistryApi::default();
    let login = ecr_login(&bed);

    for service in ["base", "api"] {
        let repository = format!("{}/{prefix}/{service}", bed.ecr_registry);
        let index = get(&api, &format!("{repository}:{sha}"), &login).await;
        assert!(
            LISTS.contains(&index.media_type.as_str()),
            "{service}: {}",
            index.media_type
        );
        let latest = get(&api, &format!("{repository}:latest"), &login).await;
        assert_eq!(latest.digest, index.digest, "latest names the index");
        let children = wharf_pusher::index::children(&index).unwrap();
        let platforms: Vec<String> = children.iter().map(|c| c.platform.to_string()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{service}");
        let entry = manifest["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["service"] == service)
            .unwrap();
        assert_eq!(entry["digest"], index.digest.as_str());
        for (child, (arch, machine)) in children
            .iter()
            .zip([("amd64", "x86_64"), ("arm64", "aarch64")])
        {
            // Each platform's image, also under its platform identity tag.
            let tag = format!("{sha}-linux-{arch}");
            let image = get(&api, &format!("{repository}:{tag}"), &login).await;
            assert_eq!(image.digest, child.digest, "{service} {tag}");
            assert!(IMAGES.contains(&image.media_type.as_str()));
            assert_eq!(architecture(&api, &repository, &image, &login).await, arch);
            assert_eq!(
                file_in_image(&api, &repository, &image, "base-arch", &login)
                    .await
                    .as_deref(),
                Some(machine),
                "{service} {arch}: base's RUN step ran on {arch} (api uses base's {arch} image)"
            );
            if service == "api" {
                assert_eq!(
                    file_in_image(&api, &repository, &image, "api-arch", &login)
                        .await
                        .as_deref(),
                    Some(machine)
                );
            }
            let listed = entry["platforms"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["platform"] == format!("linux/{arch}"))
                .unwrap_or_else(|| panic!("{entry}"));
            assert_eq!(listed["digest"], child.digest.as_str());
        }
    }
    // The single-platform service: a plain image manifest, as ever.
    let single = get(
        &api,
        &format!("{}/{prefix}/single:{sha}", bed.ecr_registry),
        &login,
    )
    .await;
    assert!(
        IMAGES.contains(&single.media_type.as_str()),
        "{}",
        single.media_type
    );

    // Locally: the containerd store (Docker 26) holds the released index under the compose
    // name, every platform runnable; the classic store (20.10) the engine's own platform.
    for service in ["base", "api"] {
        let name = format!("{prefix}/{service}");
        let repository = format!("{}/{prefix}/{service}", bed.ecr_registry);
        let index = get(&api, &format!("{repository}:{sha}"), &login).await;
        let id = local_image(engine, &name, "{{.Id}}");
        match engine {
            Engine::Docker26 => {
                assert_eq!(id, index.digest, "{name} is the released index");
                for (platform, machine) in [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")] {
                    let file = format!("/{service}-arch");
                    assert_eq!(
                        cat_in(engine, &name, platform, &file),
                        machine,
                        "{name} {platform}"
                    );
                }
            }
            Engine::Docker20 => {
                assert_ne!(id, index.digest);
                assert_eq!(local_image(engine, &name, "{{.Architecture}}"), "amd64");
            }
        }
    }

    // The pre-deploy gate: every platform of every index is there.
    let verified = crate::support::run(wharf_on(engine, dir.path(), &sha).args([
        "verify",
        "--registry",
        "ecr",
        "--manifest",
        "-",
    ]));
    let gate = manifest_of(&verified, "verify");
    assert_eq!(
        gate["images"], manifest["images"],
        "verify's manifest is the release's"
    );

    // The same commit again: nothing is built, every tag stays where it is.
    let again = release(engine, dir.path(), &sha, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let log = stderr(&again);
    assert!(!log.contains("\"event\":\"building\""), "{log}");
    let second: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(second["images"], manifest["images"]);

    // A new commit that changes nothing: nothing is built; its tags, platform identity tags
    // included, name the same images.
    let next = fake_sha();
    let unchanged = release(engine, dir.path(), &next, &[]);
    assert_eq!(unchanged.status.code(), Some(0), "{}", stderr(&unchanged));
    let log = stderr(&unchanged);
    assert!(!log.contains("\"event\":\"building\""), "{log}");
    for service in ["base", "api"] {
        let repository = format!("{}/{prefix}/{service}", bed.ecr_registry);
        for tag in ["", "-linux-amd64", "-linux-arm64"] {
            let old = get(&api, &format!("{repository}:{sha}{tag}"), &login).await;
            let new = get(&api, &format!("{repository}:{next}{tag}"), &login).await;
            assert_eq!(old.digest, new.digest, "{service} {tag}");
        }
    }

    // A failing arm64 build: no moving tag moves, for any service.
    write(
        dir.path(),
        "api/Dockerfile",
        &format!("FROM {prefix}/base\nRUN [ \"$(uname -m)\" != aarch64 ]\n"),
    );
    let failing = fake_sha();
    let out = release(engine, dir.path(), &failing, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no moving tag was moved"),
        "{}",
        stderr(&out)
    );
    for service in ["base", "api", "single"] {
        let repository = format!("{}/{prefix}/{service}", bed.ecr_registry);
        let latest = get(&api, &format!("{repository}:latest"), &login).await;
        let before = get(&api, &format!("{repository}:{next}"), &login).await;
        assert_eq!(
            latest.digest, before.digest,
            "{service}: latest did not move"
        );
    }
    let api_latest = format!("{}/{prefix}/api:{failing}", bed.ecr_registry);
    assert!(
        api.manifest(&api_latest, Some(&login))
            .await
            .unwrap()
            .is_none(),
        "no index of api for the failing commit"
    );
}

#[tokio::test]
async fn two_platforms_under_one_tag_on_docker20() {
    two_platforms_one_tag(Engine::Docker20).await;
}

#[tokio::test]
async fn two_platforms_under_one_tag_on_docker26() {
    two_platforms_one_tag(Engine::Docker26).await;
}

/// `wharf build` alone (no registry, no index written there): on the containerd store the
/// compose name still holds every platform; on the classic store, the engine's own.
fn build_alone_keeps_every_platform_it_can(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mpl").replace('-', "");
    project(dir.path(), &prefix);
    let out = crate::support::run(wharf_on(engine, dir.path(), &fake_sha()).arg("build"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for service in ["base", "api"] {
        let name = format!("{prefix}/{service}");
        let runs_as = |platform: &str| cat_in(engine, &name, platform, &format!("/{service}-arch"));
        match engine {
            Engine::Docker26 => {
                assert_eq!(runs_as("linux/amd64"), "x86_64", "{name}");
                assert_eq!(runs_as("linux/arm64"), "aarch64", "{name}");
            }
            Engine::Docker20 => {
                assert_eq!(local_image(engine, &name, "{{.Architecture}}"), "amd64");
            }
        }
        // Each platform keeps its own name too.
        assert_eq!(
            local_image(
                engine,
                &format!("{name}:latest-linux-arm64"),
                "{{.Architecture}}"
            ),
            "arm64"
        );
    }
}

#[test]
fn build_alone_keeps_every_platform_it_can_on_docker20() {
    build_alone_keeps_every_platform_it_can(Engine::Docker20);
}

#[test]
fn build_alone_keeps_every_platform_it_can_on_docker26() {
    build_alone_keeps_every_platform_it_can(Engine::Docker26);
}

/// Turns a binfmt_misc handler off while alive (as on a host without that emulator), and back
/// on when dropped, whatever the test did.
/// Tests of this binary that turn a handler off take turns.
static HANDLERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct HandlerOff(
    std::path::PathBuf,
    #[allow(dead_code)] std::sync::MutexGuard<'static, ()>,
);

impl HandlerOff {
    fn new(name: &str) -> HandlerOff {
        let turn = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
        let path = std::path::Path::new("/proc/sys/fs/binfmt_misc").join(name);
        let state = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (the bed registers QEMU)", path.display()));
        assert!(state.starts_with("enabled"), "{state}");
        std::fs::write(&path, "0").expect("binfmt_misc is writable (the bed runs as root)");
        HandlerOff(path, turn)
    }
}

impl Drop for HandlerOff {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "1");
    }
}

async fn unrunnable_platform_fails_before_any_push(engine: Engine) {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mpx").replace('-', "");
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  app:\n    image: {prefix}/app\n    build:\n      context: .\n      platforms: [linux/amd64, linux/s390x]\n"
        ),
    );
    write(
        dir.path(),
        "Dockerfile",
        "FROM wharf-test/busybox:1\nRUN true\n",
    );
    let sha = fake_sha();
    let out = {
        let _off = HandlerOff::new("qemu-s390x");
        release(engine, dir.path(), &sha, &[])
    };
    let err = stderr(&out);
    // Found before building: the engine's environment, like the other pre-build refusals.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("linux/s390x") && err.contains("qemu-s390x"),
        "{err}"
    );
    assert!(
        err.contains("register QEMU") && err.contains("x-wharf.engines"),
        "{err}"
    );
    assert!(
        !err.contains("\"event\":\"building\""),
        "nothing was built: {err}"
    );
    let login = ecr_login(&bed);
    let reference = format!("{}/{prefix}/app:{sha}-linux-amd64", bed.ecr_registry);
    let api = RegistryApi::default();
    assert!(
        api.manifest(&reference, Some(&login))
            .await
            .map(|m| m.is_none())
            .unwrap_or(true),
        "nothing was pushed"
    );
}

#[tokio::test]
async fn unrunnable_platform_fails_before_any_push_on_docker20() {
    unrunnable_platform_fails_before_any_push(Engine::Docker20).await;
}

#[tokio::test]
async fn unrunnable_platform_fails_before_any_push_on_docker26() {
    unrunnable_platform_fails_before_any_push(Engine::Docker26).await;
}

/// The routing map: linux/arm64 builds (and is pushed) on the second engine, linux/amd64 on the
/// default one; a build FROM another service's image finds it on the same engine; a
/// single-platform arm64 service is built and pushed there too.
#[tokio::test]
async fn platforms_routed_to_another_engine_build_there() {
    routed_to_the_second_engine(&bed_var("WHARF_TEST_DOCKER26_HOST")).await;
}

/// The same, with linux/arm64 routed to the second engine through the bed's sshd
/// (`ssh://…`): builds (with their BuildKit sessions), image inspection, tagging and pushes
/// of the routed platform all go through `docker system dial-stdio` over ssh.
#[tokio::test]
async fn platforms_routed_to_an_ssh_engine_build_there() {
    routed_to_the_second_engine(&bed_var("WHARF_TEST_SSH_ENGINE")).await;
}

/// Releases [`project`] and [`route_arm64`]'s `edge` with linux/arm64 routed to `endpoint`,
/// one of the second engine's: the arm64 images are built there, and only there.
async fn routed_to_the_second_engine(endpoint: &str) {
    let bed = bed();
    let d26 = bed_var("WHARF_TEST_DOCKER26_HOST");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mpr").replace('-', "");
    project(dir.path(), &prefix);
    route_arm64(dir.path(), &prefix, endpoint);
    let sha = fake_sha();
    let plan = crate::support::run(wharf_on(Engine::Docker20, dir.path(), &sha).args([
        "plan",
        "--registry",
        "ecr",
    ]));
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains(&format!(
            "linux/amd64 (default engine), linux/arm64 (engine {endpoint})"
        )),
        "{text}{}",
        stderr(&plan)
    );
    let out = release(Engine::Docker20, dir.path(), &sha, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let on = |host: Option<&str>, image: &str| {
        let mut c = Command::new("docker");
        if let Some(h) = host {
            c.args(["-H", h]);
        }
        c.args(["image", "inspect", "--format", "{{.Architecture}}", image])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap()
    };
    for service in ["base", "api"] {
        let arm = format!("{prefix}/{service}:latest-linux-arm64");
        let amd = format!("{prefix}/{service}:latest-linux-amd64");
        assert_eq!(
            on(Some(&d26), &arm),
            "arm64",
            "{arm} was built on the second engine"
        );
        assert_eq!(
            on(None, &arm),
            "",
            "{arm} was not built on the default engine"
        );
        assert_eq!(on(None, &amd), "amd64");
        let api = RegistryApi::default();
        let login = ecr_login(&bed);
        let repository = format!("{}/{prefix}/{service}", bed.ecr_registry);
        let index = get(&api, &format!("{repository}:latest"), &login).await;
        let children = wharf_pusher::index::children(&index).unwrap();
        assert_eq!(children.len(), 2);
        let arm_image = get(&api, &format!("{repository}:{sha}-linux-arm64"), &login).await;
        assert_eq!(
            file_in_image(&api, &repository, &arm_image, "base-arch", &login)
                .await
                .as_deref(),
            Some("aarch64")
        );
    }
    // A single-platform service of a routed platform is built and pushed there too.
    let api = RegistryApi::default();
    let login = ecr_login(&bed);
    let repository = format!("{}/{prefix}/edge", bed.ecr_registry);
    let edge = get(&api, &format!("{repository}:{sha}"), &login).await;
    assert_eq!(
        file_in_image(&api, &repository, &edge, "edge-arch", &login)
            .await
            .as_deref(),
        Some("aarch64")
    );
}

/// `--platform` narrower than a service's platforms: only that platform's identity tags, no
/// index, no moving tag; services that declare none of them are left out.
async fn a_narrowed_run_writes_no_index(engine: Engine) {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mpn").replace('-', "");
    project(dir.path(), &prefix);
    let sha = fake_sha();
    let out = release(engine, dir.path(), &sha, &["--platform", "linux/arm64"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("no index and no moving tag"), "{err}");
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services: Vec<&str> = manifest["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        ["api", "base"],
        "single declares no platform: {manifest}"
    );
    let api = RegistryApi::default();
    let login = ecr_login(&bed);
    for service in ["base", "api"] {
        let repository = format!("{}/{prefix}/{service}", bed.ecr_registry);
        let arm = get(&api, &format!("{repository}:{sha}-linux-arm64"), &login).await;
        assert!(IMAGES.contains(&arm.media_type.as_str()));
        for absent in [sha.clone(), "latest".into(), format!("{sha}-linux-amd64")] {
            let r = format!("{repository}:{absent}");
            assert!(
                api.manifest(&r, Some(&login)).await.unwrap().is_none(),
                "{r}"
            );
        }
        let entry = manifest["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["service"] == service)
            .unwrap();
        assert_eq!(
            entry["tags"],
            serde_json::json!([format!("{sha}-linux-arm64")])
        );
        assert_eq!(entry["platforms"][0]["digest"], arm.digest.as_str());
    }

    // The run with every platform (another runner, say) builds only what is missing: the
    // arm64 images are taken from the registry, the index written.
    let full = release(engine, dir.path(), &sha, &[]);
    let log = stderr(&full);
    assert_eq!(full.status.code(), Some(0), "{log}");
    for service in ["base", "api"] {
        let building = |platform: &str| {
            format!("\"event\":\"building\",\"service\":\"{service} ({platform})\"")
        };
        assert!(
            !log.contains(&building("linux/arm64")),
            "{service} arm64 is reused: {log}"
        );
        assert!(log.contains(&building("linux/amd64")), "{log}");
        let repository = format!("{}/{prefix}/{service}", bed.ecr_registry);
        let arm = get(&api, &format!("{repository}:{sha}-linux-arm64"), &login).await;
        let index = get(&api, &format!("{repository}:latest"), &login).await;
        let children = wharf_pusher::index::children(&index).unwrap();
        assert_eq!(children.len(), 2);
        assert_eq!(
            children[1].digest, arm.digest,
            "{service}: the narrowed run's arm64 image"
        );
    }
}

#[tokio::test]
async fn a_narrowed_run_writes_no_index_on_docker20() {
    a_narrowed_run_writes_no_index(Engine::Docker20).await;
}

#[tokio::test]
async fn a_narrowed_run_writes_no_index_on_docker26() {
    a_narrowed_run_writes_no_index(Engine::Docker26).await;
}

/// A Lambda image (x-wharf.lambda): a plain image manifest of its one platform, checked by
/// `verify`; more than one platform for it is a configuration error.
#[tokio::test]
async fn lambda_images_are_plain_manifests_of_one_platform() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mpl").replace('-', "");
    let compose = |platforms: &str| {
        format!(
            "services:\n  fn:\n    image: {prefix}/fn\n    build:\n      context: .\n      platforms: [{platforms}]\n    x-wharf:\n      lambda: true\n"
        )
    };
    write(
        dir.path(),
        "compose.yaml",
        &compose("linux/amd64, linux/arm64"),
    );
    write(
        dir.path(),
        "Dockerfile",
        "FROM wharf-test/busybox:1-arm64\nCOPY stamp /stamp\n",
    );
    write(dir.path(), "stamp", &unique("fn"));
    let sha = fake_sha();
    let refused = release(Engine::Docker20, dir.path(), &sha, &[]);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("x-wharf.lambda") && err.contains("plain image manifest"),
        "{err}"
    );

    write(dir.path(), "compose.yaml", &compose("linux/arm64"));
    let out = release(Engine::Docker20, dir.path(), &sha, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let api = RegistryApi::default();
    let login = ecr_login(&bed);
    let repository = format!("{}/{prefix}/fn", bed.ecr_registry);
    let image = get(&api, &format!("{repository}:{sha}"), &login).await;
    assert!(
        IMAGES.contains(&image.media_type.as_str()),
        "{}",
        image.media_type
    );
    assert_eq!(
        architecture(&api, &repository, &image, &login).await,
        "arm64"
    );
    let verified = crate::support::run(wharf_on(Engine::Docker20, dir.path(), &sha).args([
        "verify",
        "--registry",
        "ecr",
    ]));
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
}

/// `wharf build`, then `wharf push`: each platform's image, kept under its own local name, is
/// pushed under its platform identity tags and the index written, as `build --push` does.
#[tokio::test]
async fn push_after_build_writes_the_index() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mpp").replace('-', "");
    project(dir.path(), &prefix);
    let sha = fake_sha();
    let built = crate::support::run(wharf_on(Engine::Docker20, dir.path(), &sha).args(["build"]));
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let pushed = crate::support::run(wharf_on(Engine::Docker20, dir.path(), &sha).args([
        "push",
        "--registry",
        "ecr",
        "--create-repositories",
    ]));
    assert_eq!(pushed.status.code(), Some(0), "{}", stderr(&pushed));
    let api = RegistryApi::default();
    let login = ecr_login(&bed);
    let repository = format!("{}/{prefix}/api", bed.ecr_registry);
    let index = get(&api, &format!("{repository}:latest"), &login).await;
    assert!(
        LISTS.contains(&index.media_type.as_str()),
        "{}",
        index.media_type
    );
    let arm = get(&api, &format!("{repository}:{sha}-linux-arm64"), &login).await;
    assert_eq!(
        file_in_image(&api, &repository, &arm, "api-arch", &login)
            .await
            .as_deref(),
        Some("aarch64")
    );
}

/// `wharf build`, then `wharf push`, with linux/arm64 routed to the second engine: the images
/// built there (each arm64 platform image, and a single-platform arm64 service's image) are
/// pushed from that engine, as `build --push` pushes them.
#[tokio::test]
async fn push_takes_routed_platforms_from_their_engine() {
    let bed = bed();
    let d26 = bed_var("WHARF_TEST_DOCKER26_HOST");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mppr").replace('-', "");
    project(dir.path(), &prefix);
    route_arm64(dir.path(), &prefix, &d26);
    let sha = fake_sha();
    let built = crate::support::run(wharf_on(Engine::Docker20, dir.path(), &sha).args(["build"]));
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let on_default = Engine::Docker20
        .docker()
        .args(["image", "inspect", &format!("{prefix}/edge")])
        .output()
        .unwrap();
    assert!(
        !on_default.status.success(),
        "the arm64 service was built on the second engine only"
    );
    let pushed = crate::support::run(wharf_on(Engine::Docker20, dir.path(), &sha).args([
        "push",
        "--registry",
        "ecr",
        "--create-repositories",
    ]));
    assert_eq!(pushed.status.code(), Some(0), "{}", stderr(&pushed));
    let api = RegistryApi::default();
    let login = ecr_login(&bed);
    let repository = format!("{}/{prefix}/api", bed.ecr_registry);
    let index = get(&api, &format!("{repository}:latest"), &login).await;
    assert_eq!(wharf_pusher::index::children(&index).unwrap().len(), 2);
    let arm = get(&api, &format!("{repository}:{sha}-linux-arm64"), &login).await;
    assert_eq!(
        file_in_image(&api, &repository, &arm, "api-arch", &login)
            .await
            .as_deref(),
        Some("aarch64")
    );
    let repository = format!("{}/{prefix}/edge", bed.ecr_registry);
    let edge = get(&api, &format!("{repository}:latest"), &login).await;
    assert!(
        IMAGES.contains(&edge.media_type.as_str()),
        "{}",
        edge.media_type
    );
    assert_eq!(
        file_in_image(&api, &repository, &edge, "edge-arch", &login)
            .await
            .as_deref(),
        Some("aarch64")
    );
}

/// The default engine itself behind ssh: `wharf build` with `DOCKER_HOST=ssh://…`, then
/// `wharf push` with a docker context whose host is that endpoint, build, inspect, tag and
/// push every image on the second engine through the bed's sshd.
#[tokio::test]
async fn the_default_engine_over_ssh_builds_and_pushes() {
    let bed = bed();
    let ssh = bed_var("WHARF_TEST_SSH_ENGINE");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mpssh").replace('-', "");
    project(dir.path(), &prefix);
    let sha = fake_sha();
    let over_ssh = |args: &[&str]| {
        crate::support::run(
            wharf_on(Engine::Docker20, dir.path(), &sha)
                .env("DOCKER_HOST", &ssh)
                .args(args),
        )
    };
    let built = over_ssh(&["build"]);
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let has = |engine: Engine, image: &str| {
        engine
            .docker()
            .args(["image", "inspect", image])
            .output()
            .unwrap()
            .status
            .success()
    };
    for service in ["single", "api"] {
        let image = format!("{prefix}/{service}");
        assert!(has(Engine::Docker26, &image), "{image} was built over ssh");
        assert!(
            !has(Engine::Docker20, &image),
            "{image} was not built on the local engine"
        );
    }
    // A Docker context, selected in the config, naming the ssh endpoint.
    let config = tempfile::tempdir().unwrap();
    let id = {
        use sha2::{Digest, Sha256};
        format!("{:x}", Sha256::digest(b"graviton"))
    };
    let meta = serde_json::json!({"Name": "graviton", "Endpoints": {"docker": {"Host": ssh}}});
    write(
        config.path(),
        &format!("contexts/meta/{id}/meta.json"),
        &meta.to_string(),
    );
    write(
        config.path(),
        "config.json",
        r#"{"currentContext": "graviton"}"#,
    );
    let pushed = crate::support::run(
        wharf_on(Engine::Docker20, dir.path(), &sha)
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", config.path())
            .args(["push", "--registry", "ecr", "--create-repositories"]),
    );
    assert_eq!(pushed.status.code(), Some(0), "{}", stderr(&pushed));
    let api = RegistryApi::default();
    let login = ecr_login(&bed);
    let repository = format!("{}/{prefix}/api", bed.ecr_registry);
    let index = get(&api, &format!("{repository}:{sha}"), &login).await;
    assert!(
        LISTS.contains(&index.media_type.as_str()),
        "{}",
        index.media_type
    );
    assert_eq!(wharf_pusher::index::children(&index).unwrap().len(), 2);
    for (platform, machine) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        let image = get(
            &api,
            &format!("{repository}:{sha}-linux-{platform}"),
            &login,
        )
        .await;
        assert_eq!(
            architecture(&api, &repository, &image, &login).await,
            platform
        );
        assert_eq!(
            file_in_image(&api, &repository, &image, "api-arch", &login)
                .await
                .as_deref(),
            Some(machine)
        );
    }
    let repository = format!("{}/{prefix}/single", bed.ecr_registry);
    let single = get(&api, &format!("{repository}:latest"), &login).await;
    assert!(
        IMAGES.contains(&single.media_type.as_str()),
        "{}",
        single.media_type
    );

    // A release of a changed commit (`build --push`) over ssh: the engine behind it keeps the
    // containerd store, so the released index is loaded there under the compose name.
    write(dir.path(), "api/stamp", &unique("api"));
    let next = fake_sha();
    let released = crate::support::run(
        wharf_on(Engine::Docker20, dir.path(), &next)
            .env("DOCKER_HOST", &ssh)
            .args(["build", "--push", "--registry", "ecr"]),
    );
    assert_eq!(released.status.code(), Some(0), "{}", stderr(&released));
    let repository = format!("{}/{prefix}/api", bed.ecr_registry);
    let index = get(&api, &format!("{repository}:{next}"), &login).await;
    assert_eq!(
        local_image(Engine::Docker26, &format!("{prefix}/api"), "{{.Id}}"),
        index.digest,
        "the released index is the compose name's image on the engine behind ssh"
    );
}

/// An ssh engine that cannot be used stops the run before anything is built or pushed, with
/// ssh's reason and the endpoint, never a debug dump: a port nobody listens on (routed), a
/// user whose key the server refuses, and a remote without the docker CLI (the default
/// engine).
#[tokio::test]
async fn an_unusable_ssh_engine_is_a_clear_error() {
    let bed = bed();
    let ssh = bed_var("WHARF_TEST_SSH_ENGINE");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mpsshx").replace('-', "");
    project(dir.path(), &prefix);
    route_arm64(dir.path(), &prefix, &format!("{ssh}:1"));
    let sha = fake_sha();
    let out = release(Engine::Docker20, dir.path(), &sha, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach the engine at ssh://")
            && err.contains("wharf-ssh-engine:1 (for linux/arm64)")
            && err.contains("Connection refused")
            && err.contains("docker system dial-stdio"),
        "{err}"
    );
    assert!(
        !err.contains("Error {") && !err.contains("panicked"),
        "{err}"
    );
    let api = RegistryApi::default();
    let login = ecr_login(&bed);
    let single = format!("{}/{prefix}/single:{sha}", bed.ecr_registry);
    assert!(
        api.manifest(&single, Some(&login))
            .await
            .unwrap_or(None)
            .is_none(),
        "nothing was pushed"
    );

    let stranger = ssh.replacen("ssh://root@", "ssh://nobody@", 1);
    assert_ne!(stranger, ssh, "the bed's ssh engine names its user");
    let out = crate::support::run(
        wharf_on(Engine::Docker20, dir.path(), &sha)
            .env("DOCKER_HOST", &stranger)
            .args(["build"]),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach the Docker daemon at ssh://")
            && err.contains("Permission denied (publickey)"),
        "{err}"
    );
    assert!(
        !err.contains("Error {") && !err.contains("panicked"),
        "{err}"
    );

    let out = crate::support::run(
        wharf_on(Engine::Docker20, dir.path(), &sha)
            .env("DOCKER_HOST", bed_var("WHARF_TEST_SSH_NO_DOCKER"))
            .args(["build"]),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach the Docker daemon at ssh://")
            && err.contains("docker: command not found")
            && err.contains("the docker CLI on its PATH"),
        "{err}"
    );
    assert!(
        !err.contains("Error {") && !err.contains("panicked"),
        "{err}"
    );
}

/// A multi-platform service with a folder named context, used by `COPY --from=` and by a stage
/// `FROM` it: each platform's image gets the folder's files, on top of its own platform's
/// base, and the context's image of each platform is made where that platform builds (and
/// removed there afterwards). `routed`: linux/arm64 built on the second engine.
async fn folder_context_on_two_platforms(engine: Engine, routed: bool) {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("mpctx").replace('-', "");
    let routes = if routed {
        format!(
            "x-wharf:\n  engines:\n    linux/arm64: {}\n",
            bed_var("WHARF_TEST_DOCKER26_HOST")
        )
    } else {
        String::new()
    };
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "name: {prefix}\nservices:\n  app:\n    image: {prefix}/app\n    build:\n      context: ./app\n      platforms: [linux/amd64, linux/arm64]\n      additional_contexts:\n        files: ./files\n{routes}"
        ),
    );
    write(
        dir.path(),
        "app/Dockerfile",
        "ARG TARGETARCH\nFROM files AS payload\nFROM wharf-test/busybox:1-${TARGETARCH}\nCOPY --from=files /copied.txt /copied.txt\nCOPY --from=payload /staged/ /staged/\nRUN uname -m > /arch && cat /copied.txt /staged/inner.txt > /seen\n",
    );
    let copied = unique("copied");
    write(dir.path(), "files/copied.txt", &copied);
    write(dir.path(), "files/staged/inner.txt", "inner\n");
    let sha = fake_sha();
    let out = release(engine, dir.path(), &sha, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let api = RegistryApi::default();
    let login = ecr_login(&bed);
    let repository = format!("{}/{prefix}/app", bed.ecr_registry);
    let index = get(&api, &format!("{repository}:latest"), &login).await;
    assert_eq!(wharf_pusher::index::children(&index).unwrap().len(), 2);
    for (platform, machine) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        let image = get(
            &api,
            &format!("{repository}:{sha}-linux-{platform}"),
            &login,
        )
        .await;
        assert_eq!(
            architecture(&api, &repository, &image, &login).await,
            platform
        );
        let file = |path: &'static str| {
            let (api, repository, image, login) = (&api, &repository, &image, &login);
            async move { file_in_image(api, repository, image, path, login).await }
        };
        assert_eq!(file("arch").await.as_deref(), Some(machine), "{platform}");
        assert_eq!(
            file("copied.txt").await.as_deref(),
            Some(copied.as_str()),
            "{platform}"
        );
        assert_eq!(file("staged/inner.txt").await.as_deref(), Some("inner"));
        assert_eq!(
            file("seen").await.as_deref(),
            Some(format!("{copied}inner").as_str()),
            "{platform}: the RUN step saw the context's files"
        );
    }
    // The context's images are gone from every engine that made them.
    let mut engines = vec![engine];
    if routed {
        engines.push(Engine::Docker26);
    }
    for e in engines {
        let out = e
            .docker()
            .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
            .unwrap();
        let left: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(&format!("wharf-context/{prefix}")))
            .map(str::to_string)
            .collect();
        assert!(left.is_empty(), "left on {e:?}: {left:?}");
    }
}

#[tokio::test]
async fn a_folder_context_on_two_platforms_on_docker20() {
    folder_context_on_two_platforms(Engine::Docker20, false).await;
}

#[tokio::test]
async fn a_folder_context_on_two_platforms_on_docker26() {
    folder_context_on_two_platforms(Engine::Docker26, false).await;
}

#[tokio::test]
async fn a_folder_context_on_a_routed_platform() {
    folder_context_on_two_platforms(Engine::Docker20, true).await;
}
