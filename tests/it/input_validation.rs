//! Hostile or careless names are refused before anything is built (exit 2), and what is
//! printed about them can neither leak a password nor forge a line: registry addresses with
//! line breaks, credentials, `#`, `?` or capitals; repository names and tags outside the
//! distribution grammar; credentials in a remote build context's URL.

use crate::support::{run, stderr, stdout, wharf, write, SHA};
use std::path::Path;
use std::process::Command;

fn project(dir: &Path) {
    write(
        dir,
        "compose.yaml",
        "services:\n  api:\n    image: shop/api\n    build: ./api\n",
    );
    write(dir, "api/Dockerfile", "FROM scratch\nCOPY app /app\n");
    write(dir, "api/app", "app\n");
}

/// `build --push` with `args`: refused with exit 2 before any build; returns stderr.
fn refused_before_building(
    dir: &Path,
    args: &[&str],
    configure: impl FnOnce(&mut Command),
) -> String {
    let mut c = wharf(dir);
    c.args(["build", "--push", "--progress", "plain"])
        .args(args)
        .env("GITHUB_SHA", SHA)
        // A daemon that is not there: reaching for it would be a different error.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    configure(&mut c);
    let out = run(&mut c);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        !err.contains("building"),
        "{args:?}: nothing is built: {err}"
    );
    err
}

#[test]
fn hostile_registry_addresses_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let cases = [
        (
            "registry.example.com\n::add-mask::x",
            "holds the character '\\n'",
        ),
        (
            "user:s3cret@registry.example.com",
            "credentials do not belong",
        ),
        (
            "https://user:s3cret@registry.example.com/team",
            "credentials do not belong",
        ),
        ("registry.example.com#x", "`#` has no place"),
        ("registry.example.com/team?x=1", "`?` has no place"),
        (
            "Registry.Example.com",
            "write the host in lower case (`registry.example.com`)",
        ),
    ];
    for (registry, why) in cases {
        for through_env in [false, true] {
            let flag = ["--registry", registry];
            let err =
                refused_before_building(dir.path(), if through_env { &[] } else { &flag }, |c| {
                    if through_env {
                        c.env("WHARF_REGISTRY", registry);
                    }
                });
            assert!(
                err.contains("is not a registry") && err.contains(why),
                "{registry:?}: {err}"
            );
            assert!(
                !err.contains("s3cret"),
                "the password is not printed: {err}"
            );
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        }
    }
}

#[test]
fn repositories_and_tags_outside_the_grammar_are_refused_naming_the_service() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let long = format!("shop/{}", "a".repeat(240));
    let cases: [(&[&str], &str); 7] = [
        (
            &["--repository", "Shop/API"],
            "`Shop/API` is not a valid repository name",
        ),
        (
            &["--repository", "shop//api"],
            "`shop//api` is not a valid repository name",
        ),
        (
            &["--repository", "shop/api..v2"],
            "`shop/api..v2` is not a valid repository name",
        ),
        (
            &["--repository", "shop/api-"],
            "`shop/api-` is not a valid repository name",
        ),
        (&["--repository", &long], "registries accept at most 255"),
        (&["--tag", ".hidden"], "`.hidden` is not a valid tag"),
        (
            &["--tag", "{git_sha}", "--tag", "{env:STAGE}"],
            "`a b\\n` is not a valid tag",
        ),
    ];
    for (args, why) in cases {
        let mut all = vec!["--registry", "registry.example.com"];
        all.extend_from_slice(args);
        let err = refused_before_building(dir.path(), &all, |c| {
            c.env("STAGE", "a b\n");
        });
        assert!(
            err.contains("service `api`") && err.contains(why),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn plan_never_prints_the_credentials_of_a_remote_context() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  api:\n    image: registry.example.com/shop/api\n    build:\n      context: https://deploy:t0ken-s3cret@git.example.com/shop/api.git#main\n",
    );
    for format in ["text", "json"] {
        let out = run(wharf(dir.path())
            .args(["plan", "--format", format])
            .env("GITHUB_SHA", SHA));
        assert!(out.status.success(), "{}", stderr(&out));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!text.contains("t0ken-s3cret"), "{format}: {text}");
        assert!(
            text.contains("https://***@git.example.com/shop/api.git#main"),
            "{format}: the context is shown, credentials cut out: {text}"
        );
    }
}

#[test]
fn credentials_written_into_an_image_name_are_refused_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  api:\n    image: deploy:s3cretpw@registry.example.com/shop/api\n    build: ./api\n",
    );
    let err = refused_before_building(dir.path(), &[], |_| {});
    assert!(
        err.contains("services.api") || err.contains("`api`"),
        "{err}"
    );
    assert!(err.contains("***@registry.example.com"), "{err}");
    for command in [&["build"][..], &["plan"][..]] {
        let out = run(wharf(dir.path())
            .args(command)
            .env("GITHUB_SHA", SHA)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(2), "{command:?}: {all}");
        assert!(!all.contains("s3cretpw"), "{command:?}: {all}");
    }
}
