//! Registry credentials handed to the builder in memory (as wharf does with its ECR logins)
//! reach the daemon's pulls, before the Docker config's: BuildKit through the session's Auth
//! service, the classic builder through the request. Against the test bed's TLS registry,
//! which wants a password.
//!
//! One test, as it points DOCKER_CONFIG (process-wide) at a config of its own.
//! It needs the bed (`scripts/testbed up`, then `eval "$(scripts/testbed env)"`); it fails,
//! never skips, without it.

use secrecy::SecretString;
use std::fs;
use std::path::Path;
use wharf_builder::build::{build, BuildError, BuildRequest, BuilderKind};
use wharf_builder::context::Context;
use wharf_builder::session::RegistryCredentials;

mod common;
use common::{bed_var, cat, remove, test_image, PrivateRegistry};

async fn build_from(
    docker: &bollard::Docker,
    dir: &Path,
    builder: BuilderKind,
    credentials: &RegistryCredentials,
    tag: &str,
) -> Result<(), BuildError> {
    let ctx = Context::prepare(dir, None, builder).expect("a context");
    let request = BuildRequest {
        tag: tag.to_string(),
        builder,
        // Resolve the base image in the registry, whatever the daemon has.
        pull: true,
        no_cache: true,
        credentials: credentials.clone(),
        ..Default::default()
    };
    build(docker, &request, &ctx, |_| {}).await
}

/// The build failed on the registry's refusal. (The classic builder, refused over HTTPS,
/// retries the bed's loopback registry over plain HTTP, as it does for insecure registries,
/// and reports that last attempt.)
fn refused(result: Result<(), BuildError>, builder: BuilderKind, what: &str) {
    let err = result.expect_err(what);
    let text = err.to_string();
    let auth = text.contains("401") || text.contains("authoriz") || text.contains("denied");
    let classic_fallback = builder == BuilderKind::Classic && text.contains("http://");
    assert!(auth || classic_fallback, "{what}: {text}");
}

#[tokio::test]
async fn pulls_use_credentials_handed_in_before_the_docker_config() {
    let base = bed_var("WHARF_TEST_BASE_IMAGE");
    let private = PrivateRegistry::from_bed();
    let (registry, username, password) = (&private.host, &private.username, &private.password);
    let (docker, _) = wharf_builder::daemon::connect()
        .await
        .expect("the daemon answers: run scripts/testbed up");

    // A base image only the registry has, behind its password.
    let pushed = private.push(&docker, &base, "wharf-credentials/base").await;
    remove(&[&pushed]);

    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {pushed}\nRUN echo pulled > /pulled\n"),
    )
    .unwrap();
    let config = tempfile::tempdir().unwrap();
    fs::write(config.path().join("config.json"), "{}").unwrap();
    std::env::set_var("DOCKER_CONFIG", config.path());

    let none = RegistryCredentials::new();
    let handed = RegistryCredentials::new();
    handed.insert(registry, username, SecretString::from(password.clone()));
    for builder in [BuilderKind::BuildKit, BuilderKind::Classic] {
        // Nothing in the Docker config, nothing handed in: the registry refuses.
        refused(
            build_from(&docker, dir.path(), builder, &none, &test_image("anon")).await,
            builder,
            &format!("{builder:?}: the registry wants credentials"),
        );
        // Handed in, with an empty Docker config: the pull succeeds.
        let image = test_image("handed");
        build_from(&docker, dir.path(), builder, &handed, &image)
            .await
            .unwrap_or_else(|e| panic!("{builder:?}: the handed-in credentials work: {e}"));
        assert_eq!(cat(&image, "/pulled"), "pulled\n");
        remove(&[&image]);
        remove(&[&pushed]);
    }

    // Handed-in credentials come before the Docker config's: a wrong password handed in is
    // used even though the config has the right one.
    private.write_docker_config(config.path());
    let wrong = RegistryCredentials::new();
    wrong.insert(
        registry,
        username,
        SecretString::from("not-the-token".to_string()),
    );
    refused(
        build_from(
            &docker,
            dir.path(),
            BuilderKind::BuildKit,
            &wrong,
            &test_image("wrong"),
        )
        .await,
        BuilderKind::BuildKit,
        "the handed-in password is the one used",
    );
    // Replaced credentials take effect.
    wrong.insert(registry, username, SecretString::from(password.clone()));
    let image = test_image("replaced");
    build_from(&docker, dir.path(), BuilderKind::BuildKit, &wrong, &image)
        .await
        .expect("the replaced credentials work");
    std::env::remove_var("DOCKER_CONFIG");
    remove(&[&image]);
    remove(&[&pushed]);
}
