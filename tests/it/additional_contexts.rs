//! `build.additional_contexts` through the binary against the bed's engine.
//!
//! The reference cannot build these projects here: docker compose passes named contexts to
//! BuildKit's Dockerfile frontend, and the one built into this engine (Docker 20.10) lacks them
//! (`unsupported frontend capability moby.buildkit.frontend.contexts`; see
//! `compose_itself_cannot_build_named_contexts_here`). What a folder named context gives is
//! documented and visible in BuildKit's frontend source (`dockerui` `NamedContext.Load`, case
//! `local`): the folder is loaded through the client's session exactly as the main context is
//! (`.dockerignore` at its root read first, its patterns sent as excludes; no
//! `<Dockerfile>.dockerignore`, as for a main context whose Dockerfile is inline). So the
//! reference for a folder named context `files` is what docker compose puts in an image with
//! that folder as the main context and an inline `COPY . /ctx`: the files under `/ctx` (path,
//! type, mode, owner, link target, size, content) must be the same when wharf's image gets
//! them through `COPY --from=files`, `FROM files`, or `RUN --mount=from=files`.

use crate::support::{bed, compose, files_under, run, run_in, stderr, unique, wharf, write};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the reference docker compose in `dir` with BuildKit.
fn compose_build(dir: &Path, args: &[&str]) -> Output {
    compose(dir)
        .args(args)
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .expect("docker compose runs")
}

/// A folder with what `.dockerignore` and modes can make differ: an ignored file and folder,
/// an exception, an executable, a restrictive folder, a symlink, an empty folder.
fn files_folder(dir: &Path) {
    write(dir, ".dockerignore", "*.log\ncache\n!keep.log\n");
    write(dir, "a.txt", "alpha\n");
    write(dir, "skip.log", "ignored\n");
    write(dir, "keep.log", "kept\n");
    write(dir, "cache/big.bin", "ignored folder\n");
    write(dir, "bin/tool.sh", "#!/bin/sh\necho tool\n");
    write(dir, "private/secret.txt", "s\n");
    std::fs::set_permissions(
        dir.join("bin/tool.sh"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    std::fs::set_permissions(dir.join("private"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
}

/// What an image holds under `/ctx`: the entries below it, not the folder itself.
fn files_under_ctx(image: &str) -> BTreeMap<String, String> {
    files_under(image, "ctx", false)
}

/// The reference: docker compose building the folder as the main context, inline `COPY`.
fn reference_listing(files: &Path) -> BTreeMap<String, String> {
    let bed = bed();
    let project = tempfile::tempdir().unwrap();
    let name = unique("acref");
    write(
        project.path(),
        "compose.yaml",
        &format!(
            "services:\n  ref:\n    image: {name}\n    build:\n      context: {}\n      dockerfile_inline: |\n        FROM {}\n        COPY . /ctx\n",
            files.display(),
            bed.base_image
        ),
    );
    let out = compose_build(project.path(), &["-p", &name, "build"]);
    assert!(out.status.success(), "reference build: {}", stderr(&out));
    let listing = files_under_ctx(&name);
    let _ = Command::new("docker").args(["image", "rm", &name]).output();
    listing
}

fn helper_images() -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "wharf-context/*",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A project `app` whose Dockerfile uses the folder context `files` in `uses`.
fn folder_project(dockerfile: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    files_folder(&dir.path().join("files"));
    let image = unique("ac-app");
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  app:\n    image: {image}\n    build:\n      context: ./app\n      additional_contexts:\n        files: ./files\n"
        ),
    );
    write(dir.path(), "app/Dockerfile", dockerfile);
    write(dir.path(), "app/unrelated.txt", "the main context\n");
    (dir, image)
}

fn folder_context_matches_the_reference(builder: &str, dockerfile: &str) {
    let bed = bed();
    let dockerfile = dockerfile.replace("BASE", &bed.base_image);
    let (dir, image) = folder_project(&dockerfile);
    let reference = reference_listing(&dir.path().join("files"));
    assert!(
        reference.contains_key("ctx/keep.log") && !reference.contains_key("ctx/skip.log"),
        "{reference:#?}"
    );
    let out = run(wharf(dir.path()).args(["build", "--builder", builder]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listing = files_under_ctx(&image);
    assert_eq!(listing, reference, "{dockerfile}");
    // The project is named after the folder (lowercase, without the leading dot).
    let project = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase()
        .trim_start_matches('.')
        .to_string();
    assert!(
        !helper_images()
            .iter()
            .any(|i| i.starts_with(&format!("wharf-context/{project}-"))),
        "the helper image is removed after the build: {:?}",
        helper_images()
    );
    let _ = Command::new("docker")
        .args(["image", "rm", &image])
        .output();
}

const COPY_FROM: &str = "FROM BASE\nCOPY --from=files / /ctx/\n";
const FROM_STAGE: &str = "FROM files AS f\nFROM BASE\nCOPY --from=f / /ctx/\n";

#[test]
fn copy_from_a_folder_context_gives_what_a_named_context_gives() {
    folder_context_matches_the_reference("buildkit", COPY_FROM);
}

#[test]
fn from_a_folder_context_gives_what_a_named_context_gives() {
    folder_context_matches_the_reference("buildkit", FROM_STAGE);
}

#[test]
fn run_mount_from_a_folder_context_sees_its_files() {
    // `cp -a` keeps what is compared (type, mode, owner, link target, size, content).
    folder_context_matches_the_reference(
        "buildkit",
        "FROM BASE\nRUN --mount=type=bind,from=files,target=/m cp -a /m /ctx\n",
    );
}

#[test]
fn the_classic_builder_gets_the_same_files() {
    folder_context_matches_the_reference("classic", COPY_FROM);
    folder_context_matches_the_reference("classic", FROM_STAGE);
}

#[test]
fn a_stage_named_like_a_context_is_replaced_by_it() {
    let bed = bed();
    // The stage's own steps never run: `false` would fail the build.
    let (dir, image) = folder_project(&format!(
        "FROM {0} AS files\nRUN false\nFROM {0}\nCOPY --from=files /a.txt /a.txt\n",
        bed.base_image
    ));
    let out = run(wharf(dir.path()).args(["build"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(run_in(&image, "cat /a.txt"), "alpha");
}

#[test]
fn a_docker_image_context_names_that_image() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let image = unique("ac-img");
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  app:\n    image: {image}\n    build:\n      context: .\n      additional_contexts:\n        base: docker-image://{}\n        tools: docker-image://{}\n",
            bed.base_image, bed.base_image
        ),
    );
    write(
        dir.path(),
        "Dockerfile",
        "ARG FLAVOR=base\nFROM ${FLAVOR}\nCOPY --from=tools /bin/busybox /copied-busybox\nRUN echo ok > /ok\n",
    );
    for builder in ["buildkit", "classic"] {
        let out = run(wharf(dir.path()).args(["build", "--builder", builder]));
        assert_eq!(out.status.code(), Some(0), "{builder}: {}", stderr(&out));
        assert_eq!(
            run_in(
                &image,
                "cat /ok; cmp /bin/busybox /copied-busybox && echo same"
            ),
            "ok\nsame"
        );
    }
    let _ = Command::new("docker")
        .args(["image", "rm", &image])
        .output();
}

#[test]
fn a_service_context_is_built_first_and_used() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("ac-svc");
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  app:\n    image: {prefix}-app\n    build:\n      context: ./app\n      additional_contexts:\n        basectx: service:base\n  base:\n    image: {prefix}-base\n    build: ./base\n"
        ),
    );
    write(
        dir.path(),
        "base/Dockerfile",
        &format!(
            "FROM {}\nRUN sleep 2 && echo {prefix} > /base.txt\n",
            bed.base_image
        ),
    );
    write(
        dir.path(),
        "app/Dockerfile",
        &format!(
            "FROM {}\nCOPY --from=basectx /base.txt /from-base.txt\n",
            bed.base_image
        ),
    );
    for builder in ["buildkit", "classic"] {
        let _ = Command::new("docker")
            .args(["image", "rm", &format!("{prefix}-base")])
            .output();
        let out = run(wharf(dir.path()).args(["build", "--builder", builder, "--parallel", "4"]));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{builder}: {err}");
        let base_built = err.find("[base] built").expect("base built");
        let app_started = err.find("[app] building").expect("app built");
        assert!(base_built < app_started, "base first: {err}");
        assert_eq!(
            run_in(&format!("{prefix}-app"), "cat /from-base.txt"),
            prefix
        );
    }
    for s in ["app", "base"] {
        let _ = Command::new("docker")
            .args(["image", "rm", &format!("{prefix}-{s}")])
            .output();
    }
}

fn refused(compose_yaml: &str, key: &str, words: &[&str]) {
    bed();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "compose.yaml", compose_yaml);
    write(
        dir.path(),
        "Dockerfile",
        "FROM scratch\nCOPY --from=files / /\n",
    );
    let out = run(wharf(dir.path()).args(["build"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(key), "{key}: {err}");
    for w in words {
        assert!(err.contains(w), "{w}: {err}");
    }
    assert!(!err.contains("building"), "nothing was built: {err}");
}

#[test]
fn a_missing_folder_is_refused_by_name_before_any_build() {
    refused(
        "services:\n  app:\n    build:\n      context: .\n      additional_contexts:\n        files: ./nope\n",
        "services.app.build.additional_contexts.files",
        &["does not exist", "nope"],
    );
}

#[test]
fn an_unknown_service_is_refused_by_name_before_any_build() {
    refused(
        "services:\n  app:\n    build:\n      context: .\n      additional_contexts:\n        files: service:nosuch\n",
        "additional_contexts",
        &["nosuch"],
    );
}

#[test]
fn remote_contexts_are_refused_with_the_reason() {
    refused(
        "services:\n  app:\n    build:\n      context: .\n      additional_contexts:\n        files: https://github.com/docker/buildx.git\n",
        "services.app.build.additional_contexts.files",
        &["remote named contexts", "folder"],
    );
}

#[test]
fn pull_with_a_folder_context_is_refused() {
    // The daemon would look the folder's image up in a registry; a named context is never
    // pulled.
    refused(
        "services:\n  app:\n    build:\n      context: .\n      pull: true\n      additional_contexts:\n        files: .\n",
        "services.app.build.additional_contexts.files",
        &["pull: true"],
    );
}

#[test]
fn compose_itself_cannot_build_named_contexts_here() {
    // Why the reference above is the main-context build: this engine's frontend refuses
    // named contexts (if it ever accepts them, compare with docker compose directly).
    let (dir, _) = folder_project(&format!(
        "FROM {}\nCOPY --from=files / /ctx/\n",
        bed().base_image
    ));
    let out = compose_build(dir.path(), &["-p", &unique("acref"), "build"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("moby.buildkit.frontend.contexts"),
        "{}",
        stderr(&out)
    );
}
