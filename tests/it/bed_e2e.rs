//! The test bed is real: an ECR token from the ECR API, a build through the daemon, a push to
//! the TLS registry under the ECR host name with that token, the tag read back through the
//! registry API — and a wrong password refused, so the first test cannot pass by accident.

use crate::support::{bed, unique, write};
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
    let sdk = login::aws_config().await;
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

    let pushed = push_tag(&docker, &repository, &tag, Some(&login), |_| {})
        .await
        .expect("the push with the ECR token succeeds");
    let digest = pushed.digest.expect("the daemon reports the digest");
    assert!(digest.starts_with("sha256:"), "{digest}");

    let api = RegistryApi::new();
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

    let err = push_tag(&docker, &repository, &tag, Some(&wrong), |_| {})
        .await
        .expect_err("the registry refuses a wrong password");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(
        !err.to_string().contains("not-the-token"),
        "no password in errors: {err}"
    );

    let read = RegistryApi::new()
        .manifest_digest(&format!("{repository}:{tag}"), Some(&wrong))
        .await;
    assert!(matches!(read, Err(Error::Unauthorized { .. })), "{read:?}");
    // And the right password reads nothing there: the refused push left no tag.
    let right = Login {
        password: bed.ecr_password.clone().into(),
        ..wrong
    };
    let after = RegistryApi::new()
        .manifest_digest(&format!("{repository}:{tag}"), Some(&right))
        .await
        .expect("the registry answers the right password");
    assert_eq!(after, None);
}
