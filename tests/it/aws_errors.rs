//! The AWS failures a new user meets first, exactly as wharf prints them (snapshots): one
//! error each, naming what was tried and the fix, no SDK warnings or debug dumps below -vv,
//! exit 2 with nothing built. None needs the bed: credentials come from nowhere (the metadata
//! service is a closed loopback port, so the chain fails at once) or AWS's answers come from a
//! loopback stub ([`AwsStub`]).

use crate::support::aws_stub::{closed_port, AwsStub};
use crate::support::{redact, run, stderr, stdout, wharf, write, SHA};
use std::path::Path;
use std::process::Command;

const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// A one-service project and wharf in it, with every AWS setting of the machine (the bed's
/// keys and endpoints) removed and none of the user's files reachable.
fn project() -> (tempfile::TempDir, Command) {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  api:\n    build: .\n    image: shop/api\n",
    );
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    let mut cmd = wharf(dir.path());
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("AWS_")) {
            cmd.env_remove(name);
        }
    }
    let nowhere = dir.path().join("no-aws-config");
    cmd.env("HOME", dir.path())
        .env("AWS_CONFIG_FILE", &nowhere)
        .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://127.0.0.1:{}", closed_port()),
        )
        .env("GITHUB_SHA", SHA);
    (dir, cmd)
}

/// Static keys and every AWS endpoint pointing at `stub`; one attempt, so throttling answers
/// at once.
fn against(cmd: &mut Command, stub: &AwsStub) {
    cmd.env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_ENDPOINT_URL", &stub.url)
        .env("AWS_MAX_ATTEMPTS", "1");
}

/// The run's stderr after checking the contract: exit 2, nothing on stdout, nothing built, one
/// `error:` and no SDK log line or debug structure.
fn failure(dir: &Path, cmd: &mut Command) -> String {
    let out = run(cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert_eq!(err.matches("error:").count(), 1, "one error: {err}");
    for noise in ["WARN", "DispatchFailure", "ConnectorError", "Some(", "{ "] {
        assert!(!err.contains(noise), "no SDK noise ({noise}): {err}");
    }
    assert!(!err.contains("building"), "nothing was built: {err}");
    redact(&err, dir)
}

#[test]
fn no_credentials_names_the_sources_tried_and_the_fix() {
    let (dir, mut cmd) = project();
    cmd.env("AWS_REGION", "us-east-1")
        .args(["build", "--push", "--registry", "ecr"]);
    let text = failure(dir.path(), &mut cmd);
    insta::assert_snapshot!(text);
    // -v shows more of wharf, still none of the SDK's warnings.
    let (dir, mut cmd) = project();
    cmd.env("AWS_REGION", "us-east-1")
        .args(["build", "--push", "--registry", "ecr", "-v"]);
    failure(dir.path(), &mut cmd);
}

#[test]
fn no_region_says_where_to_set_one() {
    let (dir, mut cmd) = project();
    cmd.env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .args(["build", "--push", "--registry", "ecr"]);
    insta::assert_snapshot!(failure(dir.path(), &mut cmd));
}

#[test]
fn a_region_without_an_endpoint_is_named() {
    let (dir, mut cmd) = project();
    cmd.env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_REGION", "not a region")
        .args(["build", "--push", "--registry", "ecr"]);
    insta::assert_snapshot!(failure(dir.path(), &mut cmd));
}

#[test]
fn an_expired_session_says_to_renew_it() {
    let stub = AwsStub::query_error(
        403,
        "ExpiredToken",
        "The security token included in the request is expired",
    );
    let (dir, mut cmd) = project();
    against(&mut cmd, &stub);
    cmd.env("AWS_SESSION_TOKEN", "expired-session")
        .env("AWS_REGION", "us-east-1")
        .args(["build", "--push", "--registry", "ecr"]);
    insta::assert_snapshot!(failure(dir.path(), &mut cmd));
    assert!(stub.requests() >= 1);
}

#[test]
fn a_denied_call_names_the_action_and_the_policy_command() {
    let stub = AwsStub::json_error(
        400,
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: \
         ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the \
         ecr:GetAuthorizationToken action",
    );
    let (dir, mut cmd) = project();
    against(&mut cmd, &stub);
    cmd.env("AWS_REGION", "us-east-1")
        .args(["build", "--push", "--registry", ECR_HOST]);
    let text = failure(dir.path(), &mut cmd);
    assert!(text.contains("`ecr:GetAuthorizationToken`") && text.contains("wharf iam-policy"));
    insta::assert_snapshot!(text);
}

#[test]
fn throttling_says_what_to_change() {
    let stub = AwsStub::json_error(400, "ThrottlingException", "Rate exceeded");
    let (dir, mut cmd) = project();
    against(&mut cmd, &stub);
    cmd.env("AWS_REGION", "us-east-1")
        .args(["build", "--push", "--registry", ECR_HOST]);
    insta::assert_snapshot!(failure(dir.path(), &mut cmd));
}
