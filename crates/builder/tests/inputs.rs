//! Input digests react to exactly what changes an image: content, modes, link targets, the
//! Dockerfile, build fields, a base service — and not to modification times, files the ignore
//! rules exclude, or cache settings. No daemon needed.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use wharf_builder::inputs::{self, Inputs};

mod common;
use common::{load_project, write};

/// Every service's digest (`None`: not known before building, with the reason).
fn digests(dir: &Path) -> HashMap<String, Result<String, String>> {
    let project = load_project(dir, "inputs");
    let services: Vec<_> = project.services.values().collect();
    let mut prepared = wharf_builder::service::prepare(
        &project,
        &services,
        &wharf_builder::service::Options::default(),
    )
    .expect("the services are accepted");
    // What `wharf build` asks the daemon: the platform a service without one is built for.
    prepared.use_daemon_platform(Ok(
        wharf_builder::platform::Platform::parse("linux/amd64").unwrap()
    ));
    let compose: HashMap<String, &wharf_compose::Build> = project
        .services
        .values()
        .filter_map(|s| Some((s.name.clone(), s.build.as_ref()?)))
        .collect();
    inputs::digest_all(&prepared.builds, &compose, 2)
        .expect("the contexts are readable")
        .into_iter()
        .map(|(s, i)| {
            (
                s,
                match i {
                    Inputs::Known(d) => Ok(d.hex),
                    Inputs::Unknown { reason } => Err(reason),
                },
            )
        })
        .collect()
}

fn project(dir: &Path) {
    write(
        dir,
        "compose.yaml",
        "services:\n  base:\n    image: shop/base\n    build: ./base\n  app:\n    image: shop/app\n    build:\n      context: ./app\n      args:\n        MODE: release\n  solo:\n    build: ./solo\n",
    );
    write(dir, "base/Dockerfile", "FROM scratch\nCOPY lib /lib\n");
    write(dir, "base/lib", "v1\n");
    write(
        dir,
        "app/Dockerfile",
        "FROM shop/base\nARG MODE\nCOPY . /app\n",
    );
    write(dir, "app/.dockerignore", "*.log\n");
    write(dir, "app/main", "main v1\n");
    write(dir, "solo/Dockerfile", "FROM scratch\nCOPY . /\n");
    write(dir, "solo/file", "solo\n");
}

#[test]
fn what_changes_the_image_changes_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let first = digests(d);
    assert!(first.values().all(Result::is_ok), "{first:?}");
    assert_eq!(first, digests(d), "stable");

    let changed = |before: &HashMap<String, Result<String, String>>| {
        let now = digests(d);
        let mut names: Vec<String> = now
            .iter()
            .filter(|(s, v)| before.get(*s) != Some(*v))
            .map(|(s, _)| s.clone())
            .collect();
        names.sort();
        (names, now)
    };

    // Nothing that leaves the image alone.
    std::process::Command::new("touch")
        .args(["-d", "2001-01-01"])
        .arg(d.join("app/main"))
        .status()
        .unwrap();
    write(d, "app/debug.log", "excluded by .dockerignore\n");
    let (names, now) = changed(&first);
    assert!(
        names.is_empty(),
        "times and ignored files change nothing: {names:?}"
    );

    // Content, in a service another one builds FROM: both change.
    write(d, "base/lib", "v2\n");
    let (names, now) = changed(&now);
    assert_eq!(names, ["app", "base"]);

    // A mode.
    std::fs::set_permissions(d.join("solo/file"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (names, now) = changed(&now);
    assert_eq!(names, ["solo"]);

    // A symlink's target.
    std::os::unix::fs::symlink("file", d.join("solo/link")).unwrap();
    let (names, now) = changed(&now);
    assert_eq!(names, ["solo"]);
    std::fs::remove_file(d.join("solo/link")).unwrap();
    std::os::unix::fs::symlink("elsewhere", d.join("solo/link")).unwrap();
    let (names, now) = changed(&now);
    assert_eq!(names, ["solo"]);

    // The Dockerfile, and a build arg.
    write(d, "solo/Dockerfile", "FROM scratch\nCOPY . /srv\n");
    let (names, now) = changed(&now);
    assert_eq!(names, ["solo"]);
    let compose = std::fs::read_to_string(d.join("compose.yaml")).unwrap();
    write(
        d,
        "compose.yaml",
        &compose.replace("MODE: release", "MODE: debug"),
    );
    let (names, now) = changed(&now);
    assert_eq!(names, ["app"]);

    // An ignore file is part of the context.
    write(d, "app/.dockerignore", "*.log\n*.tmp\n");
    let (names, now) = changed(&now);
    assert_eq!(names, ["app"]);

    // Cache settings change nothing.
    let compose = std::fs::read_to_string(d.join("compose.yaml")).unwrap();
    write(
        d,
        "compose.yaml",
        &compose.replace(
            "    build: ./solo\n",
            "    build:\n      context: ./solo\n      cache_from: [shop/solo:cache]\n",
        ),
    );
    let (names, _) = changed(&now);
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn fresh_builds_are_never_matched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let compose = std::fs::read_to_string(d.join("compose.yaml")).unwrap();
    write(
        d,
        "compose.yaml",
        &compose.replace(
            "    build: ./base\n",
            "    build:\n      context: ./base\n      pull: true\n",
        ),
    );
    let all = digests(d);
    let reason = all["base"].as_ref().unwrap_err();
    assert!(reason.contains("pull"), "{reason}");
    let reason = all["app"].as_ref().unwrap_err();
    assert!(reason.contains("`base`"), "built FROM an unknown: {reason}");
    assert!(all["solo"].is_ok());
}

#[test]
fn a_folder_context_counts_by_content_not_by_where_it_is() {
    let write_project = |d: &Path, lib: &str| {
        write(
            d,
            "compose.yaml",
            "services:\n  app:\n    build:\n      context: ./app\n      additional_contexts:\n        shared: ./shared\n",
        );
        write(
            d,
            "app/Dockerfile",
            "FROM scratch\nCOPY --from=shared / /shared\n",
        );
        write(d, "shared/lib", lib);
    };
    let here = tempfile::tempdir().unwrap();
    let there = tempfile::tempdir().unwrap();
    write_project(here.path(), "v1\n");
    write_project(there.path(), "v1\n");
    let a = digests(here.path());
    assert!(a["app"].is_ok(), "{a:?}");
    assert_eq!(
        a,
        digests(there.path()),
        "another checkout, the same inputs"
    );
    write(there.path(), "shared/lib", "v2\n");
    assert_ne!(a, digests(there.path()), "the folder's content counts");
}
