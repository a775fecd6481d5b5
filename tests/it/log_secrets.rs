//! No verbosity prints a credential or a build argument's value: a release to the bed's private
//! ECR (a token from the ECR API through moto, GetAuthorizationToken included) at
//! `RUST_LOG=trace` and at `-vv`, with a build argument holding a unique secret-looking value,
//! and neither the registry password, nor the token as ECR issues it (base64 of
//! `AWS:password`), nor the argument's value appears in the output. In GitHub Actions the
//! password and the token are masked (`::add-mask::`) before anything else is printed.

use crate::support::{bed_var, unique, wharf, write};
use base64::Engine;
use std::path::Path;
use std::process::{Command, Output};

struct Secrets {
    password: String,
    token: String,
    build_arg: String,
}

/// A service building from the bed's base image into a new repository of the private ECR,
/// with a build argument the Dockerfile uses without printing it. (It reads the argument from
/// the environment rather than as `$DEPLOY_TOKEN`: BuildKit writes a step's command into its
/// progress with the arguments it names expanded — the daemon's output, as `docker build`
/// shows it, and why secrets belong in `secrets:`.)
fn project(dir: &Path) -> Secrets {
    let registry = bed_var("WHARF_TEST_ECR_REGISTRY");
    let password = bed_var("WHARF_TEST_ECR_PASSWORD");
    let base = bed_var("WHARF_TEST_BASE_IMAGE");
    let build_arg = format!("ghp_{}", unique("S3cr3tArgValue").replace('-', ""));
    write(
        dir,
        "compose.yaml",
        &format!(
            "services:\n  api:\n    image: {registry}/{}\n    build:\n      context: ./api\n      args:\n        DEPLOY_TOKEN: {build_arg}\n",
            unique("wharf-test-logs")
        ),
    );
    write(
        dir,
        "api/Dockerfile",
        &format!(
            "FROM {base}\nARG DEPLOY_TOKEN\nRUN env | grep -q '^DEPLOY_TOKEN=ghp_' && echo the token is set\nCOPY stamp /stamp\n"
        ),
    );
    write(dir, "api/stamp", &unique("stamp"));
    Secrets {
        token: base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}")),
        password,
        build_arg,
    }
}

fn release(dir: &Path, configure: impl FnOnce(&mut Command)) -> Output {
    let mut c = wharf(dir);
    c.args([
        "build",
        "--push",
        "--create-repositories",
        "--progress",
        "plain",
    ])
    .env("GITHUB_SHA", crate::support::SHA)
    .env("AWS_ENDPOINT_URL", bed_var("AWS_ENDPOINT_URL"));
    configure(&mut c);
    c.output().expect("wharf runs")
}

fn leaks(out: &Output, secrets: &Secrets) -> Vec<&'static str> {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found = Vec::new();
    for (name, value) in [
        ("the registry password", &secrets.password),
        ("the registry token", &secrets.token),
        ("the build argument's value", &secrets.build_arg),
    ] {
        if text.contains(value.as_str()) {
            found.push(name);
        }
    }
    found
}

#[test]
fn trace_logging_prints_no_credential_and_no_build_argument() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = project(dir.path());
    let out = release(dir.path(), |c| {
        c.env("RUST_LOG", "trace");
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("TRACE") && err.contains("DEBUG"),
        "the run logs at trace level:\n{err}"
    );
    let found = leaks(&out, &secrets);
    assert!(found.is_empty(), "RUST_LOG=trace printed {found:?}");
}

#[test]
fn debug_verbosity_prints_no_credential_and_no_build_argument() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = project(dir.path());
    let out = release(dir.path(), |c| {
        c.arg("-vv");
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("DEBUG"), "the run logs at debug level:\n{err}");
    assert!(
        err.contains("the token is set"),
        "-vv shows the build's output:\n{err}"
    );
    let found = leaks(&out, &secrets);
    assert!(found.is_empty(), "-vv printed {found:?}");
}

#[test]
fn github_actions_masks_the_registry_token_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = project(dir.path());
    let out = release(dir.path(), |c| {
        c.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", dir.path().join("summary.md"))
            .env("GITHUB_OUTPUT", dir.path().join("output.txt"))
            .env("RUST_LOG", "trace");
    });
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let masks: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("::add-mask::"))
        .collect();
    for value in [&secrets.password, &secrets.token] {
        assert!(masks.contains(&value.as_str()), "{value} is masked:\n{err}");
    }
    let rest: String = err
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    for value in [&secrets.password, &secrets.token, &secrets.build_arg] {
        assert!(!rest.contains(value.as_str()), "{value} appears:\n{rest}");
    }
}
