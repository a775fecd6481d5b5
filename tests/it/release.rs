//! `wharf build --push`, `push` and `verify` driven through the binary against the bed: private
//! ECR (moto + TLS registry), ECR Public (its stand-in), the plain registry; missing
//! repositories, failed builds, dirty trees, and no credential anywhere in the output.

use crate::support::{
    bed, ecr_login, fake_sha, git, manifest_of, served, texts, unique, wharf, wharf_on, write,
    Engine,
};
use std::path::Path;
use std::process::{Command, Output};
use wharf_pusher::login::Login;

/// Runs wharf on `engine` in `dir` for commit `sha`.
fn run(engine: Engine, dir: &Path, sha: &str, args: &[&str]) -> Output {
    crate::support::run(wharf_on(engine, dir, sha).args(args))
}

/// A project of two services building FROM the bed's base image, with images named under
/// `prefix` (unique per test, so repositories are new).
fn two_service_project(dir: &Path, prefix: &str, base: &str) {
    write(
        dir,
        "compose.yaml",
        &format!(
            "services:\n  api:\n    image: {prefix}/api\n    build: ./api\n  worker:\n    image: {prefix}/worker\n    build:\n      context: ./worker\n      dockerfile_inline: |\n        FROM {base}\n        COPY . /w\n  db:\n    image: postgres:16\n"
        ),
    );
    write(
        dir,
        "api/Dockerfile",
        &format!("FROM {base}\nCOPY stamp /stamp\n"),
    );
    write(dir, "api/stamp", &unique("api"));
    write(dir, "worker/job", &unique("worker"));
}

/// [`two_service_project`] in a new folder, under a new prefix made of `name`: the folder and
/// the prefix.
fn new_project(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique(name).replace('-', "");
    two_service_project(dir.path(), &prefix, &bed().base_image);
    (dir, prefix)
}

/// `build --push` of commit `sha` to `registry`, creating its repositories; the run must
/// succeed: the manifest it printed and its stderr.
fn release_to(
    engine: Engine,
    dir: &Path,
    sha: &str,
    registry: &str,
) -> (serde_json::Value, String) {
    let out = run(
        engine,
        dir,
        sha,
        &[
            "build",
            "--push",
            "--registry",
            registry,
            "--create-repositories",
            "--manifest",
            "-",
        ],
    );
    (manifest_of(&out, "the release"), texts(&out).1)
}

#[tokio::test]
async fn private_ecr_release_with_manifest_matching_the_registry_on_docker20() {
    private_ecr_release_with_manifest_matching_the_registry(Engine::Docker20).await;
}

#[tokio::test]
async fn private_ecr_release_with_manifest_matching_the_registry_on_docker26() {
    private_ecr_release_with_manifest_matching_the_registry(Engine::Docker26).await;
}

async fn private_ecr_release_with_manifest_matching_the_registry(engine: Engine) {
    let bed = bed();
    let (dir, prefix) = new_project("rel");
    let sha = fake_sha();
    let (manifest, stderr) = release_to(engine, dir.path(), &sha, "ecr");
    let images = manifest["images"].as_array().unwrap();
    assert_eq!(
        images.len(),
        2,
        "db has no build section and is not released: {manifest}"
    );
    let login = ecr_login(&bed);
    for image in images {
        assert_eq!(image["registry"], bed.ecr_registry.as_str());
        let repo = image["repository"].as_str().unwrap();
        assert!(
            repo == format!("{prefix}/api") || repo == format!("{prefix}/worker"),
            "{repo}"
        );
        let digest = image["digest"].as_str().unwrap();
        assert_eq!(image["tags"], serde_json::json!([sha, "latest"]));
        assert_eq!(
            image["uri"],
            format!("{}/{repo}@{digest}", bed.ecr_registry)
        );
        for tag in [sha.as_str(), "latest"] {
            let got = served(&format!("{}/{repo}:{tag}", bed.ecr_registry), Some(&login)).await;
            assert_eq!(
                got.as_deref(),
                Some(digest),
                "{repo}:{tag} serves the manifest's digest"
            );
        }
    }
    // Phases show in order: every identity tag before any moving tag.
    let last_identity = stderr.rfind(&format!("pushed :{sha}")).unwrap();
    let first_moving = stderr.find("pushing :latest").unwrap();
    assert!(last_identity < first_moving, "{stderr}");

    // verify passes for what was released, and fails naming a tag that was not.
    let ok = run(engine, dir.path(), &sha, &["verify", "--registry", "ecr"]);
    assert_eq!(ok.status.code(), Some(0), "{}", texts(&ok).1);
    let other = fake_sha();
    let missing = run(engine, dir.path(), &other, &["verify", "--registry", "ecr"]);
    let (_, err) = texts(&missing);
    assert_eq!(missing.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{prefix}/api:{other}"))
            && err.contains(&format!("{prefix}/worker:{other}")),
        "{err}"
    );
}

#[test]
fn missing_repositories_are_all_named_before_anything_is_built() {
    let (dir, prefix) = new_project("miss");
    let out = run(
        Engine::Docker20,
        dir.path(),
        &fake_sha(),
        &["build", "--push", "--registry", "ecr"],
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains(&format!("{prefix}/api")) && stderr.contains(&format!("{prefix}/worker")),
        "{stderr}"
    );
    assert!(stderr.contains("--create-repositories"), "{stderr}");
    assert!(!stderr.contains("building"), "nothing was built: {stderr}");
    let inspect = Command::new("docker")
        .args(["image", "inspect", &format!("{prefix}/api")])
        .output()
        .unwrap();
    assert!(
        !inspect.status.success(),
        "the image must not have been built"
    );
}

#[tokio::test]
async fn a_failed_build_moves_no_tag_and_names_the_step_on_docker20() {
    a_failed_build_moves_no_tag_and_names_the_step(Engine::Docker20).await;
}

#[tokio::test]
async fn a_failed_build_moves_no_tag_and_names_the_step_on_docker26() {
    a_failed_build_moves_no_tag_and_names_the_step(Engine::Docker26).await;
}

async fn a_failed_build_moves_no_tag_and_names_the_step(engine: Engine) {
    let bed = bed();
    let (dir, prefix) = new_project("fail");
    write(
        dir.path(),
        "api/Dockerfile",
        &format!(
            "FROM {}\nRUN echo compiling && echo 'missing module' >&2 && exit 3\n",
            bed.base_image
        ),
    );
    let sha = fake_sha();
    let out = run(
        engine,
        dir.path(),
        &sha,
        &[
            "build",
            "--push",
            "--registry",
            "ecr",
            "--create-repositories",
            "--keep-going",
        ],
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`api`"), "names the service: {stderr}");
    assert!(
        stderr.contains("exit 3") || stderr.contains("exit code: 3"),
        "the failing step's status: {stderr}"
    );
    assert!(
        stderr.contains("missing module"),
        "the tail of the step's output: {stderr}"
    );
    // The worker built, so its identity tag may have landed while the api was building (a
    // push starts as each build ends); no moving tag moves, and the api has nothing.
    assert!(stderr.contains("no moving tag was moved"), "{stderr}");
    assert!(
        stderr.contains("landed (identity tags only): worker"),
        "{stderr}"
    );
    let login = ecr_login(&bed);
    let at = |svc: &str, tag: &str| format!("{}/{prefix}/{svc}:{tag}", bed.ecr_registry);
    for (svc, tag) in [
        ("api", sha.as_str()),
        ("api", "latest"),
        ("worker", "latest"),
    ] {
        assert_eq!(
            served(&at(svc, tag), Some(&login)).await,
            None,
            "{svc}:{tag}"
        );
    }
    assert!(served(&at("worker", &sha), Some(&login)).await.is_some());
}

#[tokio::test]
async fn ecr_public_and_the_plain_registry_on_docker20() {
    ecr_public_and_the_plain_registry(Engine::Docker20).await;
}

#[tokio::test]
async fn ecr_public_and_the_plain_registry_on_docker26() {
    ecr_public_and_the_plain_registry(Engine::Docker26).await;
}

async fn ecr_public_and_the_plain_registry(engine: Engine) {
    let bed = bed();
    let (dir, prefix) = new_project("pub");
    let sha = fake_sha();

    let (manifest, _) = release_to(engine, dir.path(), &sha, &bed.public_registry);
    let alias = bed.public_registry.trim_start_matches("public.ecr.aws/");
    let public = Login {
        host: "public.ecr.aws".into(),
        username: "AWS".into(),
        password: bed.public_password.clone().into(),
        expires_at: None,
    };
    for image in manifest["images"].as_array().unwrap() {
        let repo = image["repository"].as_str().unwrap();
        assert!(repo.starts_with(&format!("{alias}/{prefix}/")), "{repo}");
        let got = served(&format!("public.ecr.aws/{repo}:latest"), Some(&public)).await;
        assert_eq!(got.as_deref(), image["digest"].as_str());
    }

    let out = run(
        engine,
        dir.path(),
        &sha,
        &[
            "push",
            "--registry",
            &bed.plain_registry,
            "--tag",
            "{git_short_sha}",
            "--manifest",
            "-",
        ],
    );
    let manifest = manifest_of(&out, "push");
    for image in manifest["images"].as_array().unwrap() {
        assert_eq!(image["tags"], serde_json::json!([&sha[..7]]));
        let got = served(
            &format!(
                "{}/{}:{}",
                bed.plain_registry,
                image["repository"].as_str().unwrap(),
                &sha[..7]
            ),
            None,
        )
        .await;
        assert_eq!(got.as_deref(), image["digest"].as_str());
    }
}

#[test]
fn a_dirty_tree_is_refused_and_allow_dirty_marks_the_tags() {
    let bed = bed();
    let (dir, _) = new_project("dirty");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "init"]);
    write(dir.path(), "api/stamp", "changed");
    // No GITHUB_SHA: the commit is the checkout's.
    let wharf = |args: &[&str]| crate::support::run(wharf(dir.path()).args(args));

    let out = wharf(&["build", "--push", "--registry", &bed.plain_registry]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("uncommitted changes") && stderr.contains("--allow-dirty"),
        "{stderr}"
    );

    let out = wharf(&[
        "plan",
        "--registry",
        &bed.plain_registry,
        "--allow-dirty",
        "--format",
        "json",
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for s in plan["services"].as_array().unwrap() {
        let tag = s["identity_tags"][0].as_str().unwrap();
        assert!(tag.ends_with("-dirty") && tag.len() == 46, "{tag}");
    }
}

#[tokio::test]
async fn no_credential_in_output_or_files_on_docker20() {
    no_credential_in_output_or_files(Engine::Docker20).await;
}

#[tokio::test]
async fn no_credential_in_output_or_files_on_docker26() {
    no_credential_in_output_or_files(Engine::Docker26).await;
}

async fn no_credential_in_output_or_files(engine: Engine) {
    let bed = bed();
    let (dir, _) = new_project("cred");
    let docker_config = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("images.json");
    let out = wharf_on(engine, dir.path(), &fake_sha())
        .args([
            "-vv",
            "build",
            "--push",
            "--registry",
            "ecr",
            "--create-repositories",
            "--manifest",
        ])
        .arg(&manifest)
        .env("RUST_LOG", "trace")
        .env("DOCKER_CONFIG", docker_config.path())
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        &stderr[stderr.len().saturating_sub(3000)..]
    );
    assert!(
        stderr.len() > 1000,
        "trace logging produced output to search"
    );
    for (what, haystack) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !haystack.contains(&bed.ecr_password),
            "the ECR password appears in {what}"
        );
    }
    let mut files = vec![];
    for root in [dir.path(), docker_config.path()] {
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push(p);
                }
            }
        }
    }
    assert!(
        files.iter().any(|f| f == &manifest),
        "the manifest was written"
    );
    for f in files {
        let content = std::fs::read(&f).unwrap();
        let found = content
            .windows(bed.ecr_password.len())
            .any(|w| w == bed.ecr_password.as_bytes());
        assert!(!found, "the ECR password was written to {}", f.display());
    }
}

/// A service built FROM an image in the private ECR it releases to: the daemon pulls it with
/// wharf's in-memory ECR login (served through the build's session), with no `docker login`
/// and an empty Docker config.
#[tokio::test]
async fn builds_pull_from_ecr_with_the_release_login_on_docker20() {
    builds_pull_from_ecr_with_the_release_login(Engine::Docker20).await;
}

#[tokio::test]
async fn builds_pull_from_ecr_with_the_release_login_on_docker26() {
    builds_pull_from_ecr_with_the_release_login(Engine::Docker26).await;
}

async fn builds_pull_from_ecr_with_the_release_login(engine: Engine) {
    let bed = bed();
    let prefix = unique("pull").replace('-', "");
    let docker_config = tempfile::tempdir().unwrap();

    // The base: released to ECR by wharf, then forgotten by the daemon.
    let base_dir = tempfile::tempdir().unwrap();
    write(
        base_dir.path(),
        "compose.yaml",
        &format!("services:\n  base:\n    image: {prefix}/base\n    build: .\n"),
    );
    write(
        base_dir.path(),
        "Dockerfile",
        &format!("FROM {}\nCOPY stamp /stamp\n", bed.base_image),
    );
    write(base_dir.path(), "stamp", &unique("base"));
    let base_sha = fake_sha();
    let release = |dir: &Path, sha: &str| {
        wharf_on(engine, dir, sha)
            .args([
                "build",
                "--push",
                "--registry",
                "ecr",
                "--create-repositories",
            ])
            .env("DOCKER_CONFIG", docker_config.path())
            .output()
            .expect("wharf runs")
    };
    let out = release(base_dir.path(), &base_sha);
    assert!(out.status.success(), "{}", texts(&out).1);
    let base_ref = format!("{}/{prefix}/base:{base_sha}", bed.ecr_registry);
    engine.forget_images(&prefix);

    // The app, FROM the base in ECR.
    let app_dir = tempfile::tempdir().unwrap();
    write(
        app_dir.path(),
        "compose.yaml",
        &format!("services:\n  app:\n    image: {prefix}/app\n    build: .\n"),
    );
    write(
        app_dir.path(),
        "Dockerfile",
        &format!("FROM {base_ref}\nRUN test -f /stamp\n"),
    );
    let out = release(app_dir.path(), &fake_sha());
    let (_, stderr) = texts(&out);
    assert!(
        out.status.success(),
        "the pull used wharf's login:\n{stderr}"
    );
    assert!(
        std::fs::read_dir(docker_config.path())
            .unwrap()
            .next()
            .is_none(),
        "nothing was written to the Docker config"
    );
}
