//! BuildKit builds through wharf's session, against the test bed's daemon: build secrets, the
//! build cache across builds (the daemon only asks for what changed, and must see every
//! change), and the daemon's errors.
//!
//! These tests need the bed (`scripts/testbed up`, then `eval "$(scripts/testbed env)"`); they
//! fail, never skip, without it.

use std::fs;
use std::path::Path;
use std::process::Command;
use wharf_builder::build::{build, BuildError, BuildRequest, BuilderKind};
use wharf_builder::context::Context;
use wharf_compose::{BuildSecret, Dockerfile, SecretSource};

mod common;
use common::{base_image, cat, image_id, remove, test_image, unique, write, PrivateRegistry};

/// Builds `dir` with BuildKit, tagged `tag`.
async fn build_dir(
    dir: &Path,
    dockerfile: Option<&Dockerfile>,
    tag: &str,
    secrets: Vec<BuildSecret>,
) -> Result<Vec<String>, BuildError> {
    // Secrets are not part of BuildKit's cache keys: a build that reads them must not reuse an
    // earlier run's steps.
    let no_cache = !secrets.is_empty();
    let (docker, _) = wharf_builder::daemon::connect()
        .await
        .expect("the daemon answers: run scripts/testbed up");
    let ctx = Context::prepare(dir, dockerfile, BuilderKind::BuildKit).expect("a context");
    let request = BuildRequest {
        tag: tag.to_string(),
        builder: BuilderKind::BuildKit,
        secrets,
        no_cache,
        ..Default::default()
    };
    let mut lines = Vec::new();
    build(&docker, &request, &ctx, |l| lines.push(l.to_string()))
        .await
        .map(|()| lines)
}

#[tokio::test]
async fn secrets_from_a_file_and_the_environment_reach_run_mounts() {
    let base = base_image();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    fs::write(secret_file.path(), "from-a-file").unwrap();
    let var = format!("WHARF_SESSION_TEST_SECRET_{}", std::process::id());
    // SAFETY (edition 2021: a plain call): the variable is unique to this test.
    std::env::set_var(&var, "from-the-environment");
    write(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM {base}\n\
             RUN --mount=type=secret,id=file_secret --mount=type=secret,id=env_secret \
             cat /run/secrets/file_secret /run/secrets/env_secret > /seen\n"
        ),
    );
    let tag = test_image("session-secrets");
    let secrets = vec![
        BuildSecret {
            id: "file_secret".into(),
            source: SecretSource::File(secret_file.path().to_path_buf()),
        },
        BuildSecret {
            id: "env_secret".into(),
            source: SecretSource::Environment(var.clone()),
        },
    ];
    build_dir(dir.path(), None, &tag, secrets)
        .await
        .expect("the build succeeds");
    assert_eq!(cat(&tag, "/seen"), "from-a-filefrom-the-environment");
    remove(&[&tag]);

    // A secret the build does not provide is refused by the daemon, naming it.
    write(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM {base}\nRUN --mount=type=secret,id=absent,required cat /run/secrets/absent\n"
        ),
    );
    let err = build_dir(
        dir.path(),
        None,
        &test_image("session-no-secret"),
        Vec::new(),
    )
    .await
    .expect_err("a required secret is missing");
    assert!(err.to_string().contains("absent"), "{err}");
}

#[tokio::test]
async fn the_cache_holds_across_builds_and_every_change_is_seen() {
    let base = base_image();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data/a.txt", "aaaa");
    write(dir.path(), "data/b.txt", "bbbb");
    write(
        dir.path(),
        "Dockerfile",
        &format!("FROM {base}\nCOPY data /data\nRUN cat /proc/sys/kernel/random/uuid > /stamp\n"),
    );
    let first = test_image("session-cache-1");
    let second = test_image("session-cache-2");
    let third = test_image("session-cache-3");
    build_dir(dir.path(), None, &first, Vec::new())
        .await
        .expect("the first build succeeds");
    build_dir(dir.path(), None, &second, Vec::new())
        .await
        .expect("the second build succeeds");
    // Every step came from the cache: the same image, the same random stamp.
    assert_eq!(image_id(&first), image_id(&second));

    // Same size, new content: the daemon must ask for the file again.
    write(dir.path(), "data/a.txt", "AAAA");
    build_dir(dir.path(), None, &third, Vec::new())
        .await
        .expect("the third build succeeds");
    assert_eq!(cat(&third, "/data/a.txt"), "AAAA");
    assert_eq!(cat(&third, "/data/b.txt"), "bbbb");
    assert_ne!(cat(&first, "/stamp"), cat(&third, "/stamp"));
    remove(&[&first, &second, &third]);

    // An inline Dockerfile changed to one of the same length is read afresh.
    for word in ["left", "rite"] {
        let tag = test_image("session-inline");
        let df = Dockerfile::Inline(format!("FROM {base}\nRUN echo {word} > /word\n"));
        build_dir(dir.path(), Some(&df), &tag, Vec::new())
            .await
            .expect("the inline build succeeds");
        assert_eq!(cat(&tag, "/word"), format!("{word}\n"));
        remove(&[&tag]);
    }
}

#[tokio::test]
async fn a_failing_step_reports_the_daemon_message_and_output() {
    let base = base_image();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        &format!("FROM {base}\nRUN echo output-before-failing && exit 3\n"),
    );
    let err = build_dir(dir.path(), None, &test_image("session-fail"), Vec::new())
        .await
        .expect_err("the RUN step fails");
    let BuildError::Daemon { message, log_tail } = err;
    assert!(message.contains("exit code: 3"), "{message}");
    assert!(
        log_tail.iter().any(|l| l.contains("output-before-failing")),
        "{log_tail:?}"
    );
}

#[tokio::test]
async fn a_context_that_cannot_be_read_fails_the_build_naming_the_file() {
    // The Dockerfile is removed after the context was prepared: the daemon reads the session's
    // `dockerfile` folder and says it cannot.
    let base = base_image();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", &format!("FROM {base}\n"));
    let (docker, _) = wharf_builder::daemon::connect()
        .await
        .expect("the daemon answers: run scripts/testbed up");
    let ctx = Context::prepare(dir.path(), None, BuilderKind::BuildKit).unwrap();
    fs::remove_file(dir.path().join("Dockerfile")).unwrap();
    let request = BuildRequest {
        tag: test_image("session-gone"),
        builder: BuilderKind::BuildKit,
        ..Default::default()
    };
    let err = build(&docker, &request, &ctx, |_| {})
        .await
        .expect_err("the Dockerfile is gone");
    assert!(err.to_string().contains("Dockerfile"), "{err}");
}

#[tokio::test]
async fn compose_build_secrets_match_docker_compose() {
    let base = base_image();
    let compose = match std::env::var("WHARF_TEST_COMPOSE") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("WHARF_TEST_COMPOSE is not set: run scripts/testbed up and its env"),
    };
    let dir = tempfile::tempdir().unwrap();
    let var = format!("WHARF_SESSION_COMPOSE_SECRET_{}", std::process::id());
    std::env::set_var(&var, "env-value");
    write(dir.path(), "token.txt", "file-value");
    write(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM {base}\n\
             RUN --mount=type=secret,id=token --mount=type=secret,id=env_token \
             cat /run/secrets/token /run/secrets/env_token > /seen\n"
        ),
    );
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  app:\n    build:\n      context: .\n      secrets:\n        - token\n        - source: envtok\n          target: env_token\n\
             secrets:\n  token:\n    file: ./token.txt\n  envtok:\n    environment: {var}\n"
        ),
    );
    let project_name = unique("secrets").to_lowercase();

    let reference = Command::new(&compose)
        .args(["-p", &project_name, "build"])
        .current_dir(dir.path())
        .output()
        .expect("docker compose runs");
    assert!(
        reference.status.success(),
        "docker compose build: {}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let reference_image = format!("{project_name}-app");

    let project = wharf_compose::load(&wharf_compose::ProjectOptions {
        project_name: Some(project_name.clone()),
        working_dir: dir.path().to_path_buf(),
        environment: std::env::vars().collect(),
        ..Default::default()
    })
    .expect("the project loads");
    let service = &project.services["app"];
    let mut prepared = wharf_builder::service::prepare(
        &project,
        &[service],
        &wharf_builder::service::Options::default(),
    )
    .expect("the service is accepted");
    let mut b = prepared.builds.remove(0);
    let wharf_image = format!("{project_name}-wharf");
    b.image = wharf_image.clone();
    b.request.tag = wharf_image.clone();
    let (docker, _) = wharf_builder::daemon::connect().await.expect("the daemon");
    let outcomes = wharf_builder::schedule::run(
        &wharf_builder::engines::Engines::single(docker.clone()),
        vec![b],
        1,
        false,
        None,
        std::sync::Arc::new(|_| {}),
    )
    .await;
    assert!(
        matches!(outcomes[0], wharf_builder::schedule::Outcome::Built { .. }),
        "{outcomes:?}"
    );
    assert_eq!(cat(&wharf_image, "/seen"), "file-valueenv-value");
    assert_eq!(cat(&wharf_image, "/seen"), cat(&reference_image, "/seen"));
    remove(&[&wharf_image, &reference_image]);
}

#[tokio::test]
async fn pulls_use_the_docker_config_credentials_through_the_session() {
    let base = base_image();
    let private = PrivateRegistry::from_bed();
    let (docker, _) = wharf_builder::daemon::connect()
        .await
        .expect("the daemon answers: run scripts/testbed up");

    // A base image only the registry has, behind its password.
    let pushed = private.push(&docker, &base, "wharf-session/base").await;

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        &format!("FROM {pushed}\nRUN echo pulled > /pulled\n"),
    );
    let config = tempfile::tempdir().unwrap();
    let build_from_registry = |tag: String| {
        let dir = dir.path().to_path_buf();
        let docker = docker.clone();
        async move {
            let ctx = Context::prepare(&dir, None, BuilderKind::BuildKit).unwrap();
            let request = BuildRequest {
                tag,
                builder: BuilderKind::BuildKit,
                // Resolve the base image in the registry even though the daemon has it.
                pull: true,
                no_cache: true,
                ..Default::default()
            };
            build(&docker, &request, &ctx, |_| {}).await
        }
    };

    // No credentials in the Docker config: the registry refuses the pull.
    fs::write(config.path().join("config.json"), "{}").unwrap();
    std::env::set_var("DOCKER_CONFIG", config.path());
    let refused = build_from_registry(test_image("session-anonymous")).await;
    let err = refused.expect_err("the registry wants credentials");
    assert!(
        err.to_string().contains("401") || err.to_string().contains("authoriz"),
        "{err}"
    );

    // With them, the daemon gets them from the session and pulls.
    private.write_docker_config(config.path());
    let image = test_image("session-pulled");
    build_from_registry(image.clone())
        .await
        .expect("the pull with the Docker config's credentials succeeds");
    std::env::remove_var("DOCKER_CONFIG");
    assert_eq!(cat(&image, "/pulled"), "pulled\n");
    remove(&[&image, &pushed]);
}
