//! Building a project's services: a service whose `FROM` names another one's image, under
//! any name docker gives that image (one of its `build.tags`, written with Docker Hub's
//! `docker.io/` and `:latest`), is built after it; `build.tags` name the built image; a
//! tag docker would refuse fails the build by name. Against the test bed's daemon.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use wharf_builder::schedule::{self, Outcome};

mod common;
use common::{base_image, cat, image_id, load_project, remove, unique, write};

fn prepare(dir: &Path, name: &str) -> wharf_builder::service::Prepared {
    let project = load_project(dir, name);
    let services: Vec<_> = project.services.values().collect();
    wharf_builder::service::prepare(
        &project,
        &services,
        &wharf_builder::service::Options::default(),
    )
    .expect("the services are accepted")
}

async fn build_all(prepared: wharf_builder::service::Prepared) -> HashMap<String, Outcome> {
    let (docker, _) = wharf_builder::daemon::connect()
        .await
        .expect("the daemon answers: run scripts/testbed up");
    let engines = wharf_builder::engines::Engines::single(docker);
    schedule::run(&engines, prepared.builds, 2, true, None, Arc::new(|_| {}))
        .await
        .into_iter()
        .map(|(unit, outcome)| (unit.service, outcome))
        .collect()
}

#[tokio::test]
async fn extra_tags_name_the_image_and_order_the_builds_that_use_them() {
    let name = unique("sched");
    let base = format!("wharf-test/{name}-base");
    let alias = format!("wharf-test/{name}-alias");
    let registry_tag = format!("localhost:5000/{name}/extra:t1");
    let app = format!("wharf-test/{name}-app");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "base/f", "from-base");
    write(
        dir.path(),
        "base/Dockerfile",
        &format!("FROM {}\nCOPY f /f\n", base_image()),
    );
    // The base image by its extra tag, as docker normalizes it.
    write(
        dir.path(),
        "app/Dockerfile",
        &format!("FROM docker.io/{alias}:latest\nRUN cp /f /g\n"),
    );
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  app:\n    image: {app}\n    build: app\n  base:\n    image: {base}\n    build:\n      context: base\n      tags: [\"{alias}\", \"{registry_tag}\"]\n"
        ),
    );
    let prepared = prepare(dir.path(), &name);
    let after: HashMap<&str, &[String]> = prepared
        .builds
        .iter()
        .map(|b| (b.service.as_str(), b.after.as_slice()))
        .collect();
    assert_eq!(after["app"], ["base".to_string()]);
    assert!(after["base"].is_empty());

    let outcomes = build_all(prepared).await;
    for service in ["base", "app"] {
        assert!(
            matches!(outcomes[service], Outcome::Built { .. }),
            "{service}: {:?}",
            outcomes[service]
        );
    }
    let id = image_id(&base);
    assert_eq!(image_id(&alias), id);
    assert_eq!(image_id(&registry_tag), id);
    assert_eq!(cat(&app, "/g"), "from-base");
    remove(&[&app, &base, &alias, &registry_tag]);
}

#[tokio::test]
async fn an_extra_tag_with_a_digest_fails_the_build_by_name() {
    let name = unique("sched-digest");
    let image = format!("wharf-test/{name}");
    let pinned = format!("wharf-test/{name}-pinned@sha256:{}", "f".repeat(64));
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        &format!("FROM {}\n", base_image()),
    );
    write(
        dir.path(),
        "compose.yaml",
        &format!("services:\n  one:\n    image: {image}\n    build:\n      context: .\n      tags: [\"{pinned}\"]\n"),
    );
    let outcomes = build_all(prepare(dir.path(), &name)).await;
    match &outcomes["one"] {
        Outcome::Failed { message, .. } => assert!(
            message.contains(&pinned) && message.contains("digest"),
            "{message}"
        ),
        other => panic!("the tag is refused: {other:?}"),
    }
    remove(&[&image]);
}
