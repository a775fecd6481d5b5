//! Reproducible by default: an image's `org.opencontainers.image.created` is the commit's time
//! (not the build's), so building one commit again from the daemon's cache gives the very same
//! image, and a `--no-skip` re-release of the commit moves no tag to another digest.
//! `SOURCE_DATE_EPOCH` still wins; `x-wharf: {created: build}` asks for the build's time.

use crate::support::{bed, git, run, served, unique, wharf, write};
use std::path::Path;
use std::process::Command;

/// The committer date the test's commit carries, and the label it must give.
const COMMIT_DATE: &str = "2024-01-02T03:04:05Z";

/// A one-service project, committed at [`COMMIT_DATE`].
fn committed_project(dir: &Path, image: &str, base: &str) {
    write(
        dir,
        "compose.yaml",
        &format!("services:\n  app:\n    image: {image}\n    build: ./app\n"),
    );
    write(
        dir,
        "app/Dockerfile",
        &format!("FROM {base}\nRUN echo built > /stamp\nCOPY . /app\n"),
    );
    write(dir, "app/main", &unique("app"));
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    let out = Command::new("git")
        .args(["commit", "-q", "-m", "one"])
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_AUTHOR_DATE", COMMIT_DATE)
        .env("GIT_COMMITTER_DATE", COMMIT_DATE)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "{out:?}");
}

fn release(dir: &Path, extra: &[&str]) -> String {
    let out = run(wharf(dir)
        .args(["build", "--push", "--no-skip", "--manifest", "-"])
        .args(extra));
    assert!(
        out.status.success(),
        "wharf failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a manifest");
    manifest["images"][0]["digest"]
        .as_str()
        .expect("a digest")
        .to_string()
}

fn created_label(image: &str) -> String {
    let out = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"org.opencontainers.image.created\"}}",
            image,
        ])
        .output()
        .expect("docker runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn a_no_skip_re_release_of_one_commit_gives_the_same_digest() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{}/{}/app", bed.plain_registry, unique("repro"));
    committed_project(dir.path(), &image, &bed.base_image);
    let sha = git(dir.path(), &["rev-parse", "HEAD"]);

    let first = release(dir.path(), &[]);
    assert_eq!(
        created_label(&image),
        COMMIT_DATE,
        "the image was made at the commit's time"
    );
    let second = release(dir.path(), &[]);
    assert_eq!(first, second, "the rebuilt image is the same image");
    for tag in [sha.as_str(), "latest"] {
        let r = format!("{image}:{tag}");
        assert_eq!(
            served(&r, None).await.as_deref(),
            Some(first.as_str()),
            "{r}"
        );
    }
}

#[test]
fn source_date_epoch_wins_and_build_time_is_an_opt_in() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let image = format!("wharf-test/{}", unique("created"));
    committed_project(dir.path(), &image, &bed.base_image);

    let out = run(wharf(dir.path())
        .args(["build"])
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(created_label(&image), "2023-11-14T22:13:20Z");

    // The build's own time, when the project asks for it.
    let compose = std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap();
    write(
        dir.path(),
        "compose.yaml",
        &format!("x-wharf:\n  created: build\n{compose}"),
    );
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let out = run(wharf(dir.path()).args(["build"]));
    assert!(out.status.success(), "{out:?}");
    let created =
        chrono::DateTime::parse_from_rfc3339(&created_label(&image)).expect("an RFC 3339 time");
    assert!(created >= before, "{created} is the build's time");
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}
