//! Credential helpers are real programs found on `PATH` and run as docker runs them: `get`,
//! the server address on stdin, JSON on stdout; a non-zero exit with docker's "not found"
//! message means anonymous access, any other failure is an error.
//!
//! One test, as it puts its helpers on `PATH` (process-wide).

use secrecy::ExposeSecret;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use wharf_docker::{Credentials, CredentialsError, DockerConfig};

/// Writes `docker-credential-<name>` into `dir`: a shell script speaking the helpers' protocol.
fn helper(dir: &Path, name: &str, body: &str) {
    let path = dir.join(format!("docker-credential-{name}"));
    let script = format!("#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread server\n{body}\n");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn basic(c: Result<Option<Credentials>, CredentialsError>) -> (String, String) {
    match c {
        Ok(Some(Credentials::Basic { username, password })) => {
            (username, password.expose_secret().to_string())
        }
        other => panic!("expected a user and password, got {other:?}"),
    }
}

#[test]
fn helpers_answer_as_docker_asks_them() {
    let tools = tempfile::tempdir().unwrap();
    // The secret says which server the helper was asked for.
    helper(
        tools.path(),
        "wharfstore",
        r#"printf '{"ServerURL":"%s","Username":"store-user","Secret":"from-store-%s"}' "$server" "$server""#,
    );
    helper(
        tools.path(),
        "wharfhost",
        r#"printf '{"ServerURL":"%s","Username":"host-user","Secret":"from-host"}' "$server""#,
    );
    helper(
        tools.path(),
        "wharftoken",
        r#"printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh"}' "$server""#,
    );
    helper(
        tools.path(),
        "wharfnone",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    helper(
        tools.path(),
        "wharflocked",
        "echo 'the keychain is locked'; echo 'details' >&2; exit 1",
    );
    helper(tools.path(), "wharfgarbled", "echo 'not json'");
    let path = format!(
        "{}:{}",
        tools.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);

    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{
            "credsStore": "wharfstore",
            "credHelpers": {
                "per-host.example": "wharfhost",
                "token.example": "wharftoken",
                "none.example": "wharfnone",
                "locked.example": "wharflocked",
                "garbled.example": "wharfgarbled",
                "missing.example": "wharfmissing"
            },
            "auths": {"inline.example": {"auth": "aW5saW5lOnB3"}}
        }"#,
    )
    .unwrap();
    let docker = DockerConfig::at(config.path());

    // A host's own helper before the store; the store for every other host.
    assert_eq!(
        basic(docker.credentials("per-host.example")),
        ("host-user".into(), "from-host".into())
    );
    assert_eq!(
        basic(docker.credentials("127.0.0.1:5000")),
        ("store-user".into(), "from-store-127.0.0.1:5000".into())
    );
    // Docker Hub is asked for under its index address.
    assert_eq!(
        basic(docker.credentials("docker.io")).1,
        "from-store-https://index.docker.io/v1/"
    );
    // With a store, docker asks the store even where `auths` holds credentials.
    assert_eq!(
        basic(docker.credentials("inline.example")).1,
        "from-store-inline.example"
    );
    match docker.credentials("token.example") {
        Ok(Some(Credentials::IdentityToken(t))) => assert_eq!(t.expose_secret(), "refresh"),
        other => panic!("a `<token>` user is an identity token: {other:?}"),
    }
    // "Not found" is anonymous, as for docker; any other failure is an error with the
    // helper's own message.
    assert!(docker.credentials("none.example").unwrap().is_none());
    assert_eq!(
        docker.credentials("locked.example").unwrap_err(),
        CredentialsError::Helper {
            helper: "docker-credential-wharflocked".into(),
            message: "the keychain is locked".into()
        }
    );
    assert_eq!(
        docker.credentials("garbled.example").unwrap_err(),
        CredentialsError::HelperAnswer
    );
    let missing = docker.credentials("missing.example").unwrap_err();
    assert_eq!(missing, CredentialsError::HelperNotRun);
    assert!(missing.to_string().contains("on PATH"), "{missing}");
}
