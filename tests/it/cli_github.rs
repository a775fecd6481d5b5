//! wharf as a GitHub Actions step (`GITHUB_ACTIONS=true`): each service's log folded in its
//! own `::group::`, a job summary table in `$GITHUB_STEP_SUMMARY`, step outputs in
//! `$GITHUB_OUTPUT` (the manifest, and one image URI per service), errors as `::error::`
//! annotations. The releases run against the bed's daemon and plain registry.

use crate::support::{bed_var, github_step, run, stderr, two_service_project, unique, write, SHA};
use std::collections::BTreeMap;

/// The `name<<DELIMITER … DELIMITER` entries of a `$GITHUB_OUTPUT` file.
fn outputs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line
            .split_once("<<")
            .unwrap_or_else(|| panic!("multiline form expected: {line}"));
        let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
        out.insert(name.to_string(), value.join("\n"));
    }
    out
}

/// The log groups of `stderr`: title → lines. Fails on a group opened inside another, or one
/// left open. The `::stop-commands::TOKEN` … `::TOKEN::` lines around each group's body (the
/// build's output may issue no command) are not part of it.
fn groups(stderr: &str) -> Vec<(String, Vec<String>)> {
    let mut groups = Vec::new();
    let mut open: Option<(String, Vec<String>)> = None;
    let mut resume: Option<String> = None;
    for line in stderr.lines() {
        if let Some(token) = line.strip_prefix("::stop-commands::") {
            resume = Some(format!("::{token}::"));
        } else if resume.as_deref() == Some(line) {
            resume = None;
        } else if let Some(title) = line.strip_prefix("::group::") {
            assert!(open.is_none(), "a group opened inside another:\n{stderr}");
            open = Some((title.to_string(), Vec::new()));
        } else if line == "::endgroup::" {
            groups.push(open.take().expect("an ::endgroup:: closes an open group"));
        } else if let Some((_, lines)) = open.as_mut() {
            lines.push(line.to_string());
        }
    }
    assert!(open.is_none(), "a group was left open:\n{stderr}");
    groups
}

#[test]
fn a_release_writes_groups_summary_and_outputs() {
    let registry = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("gha");
    two_service_project(dir.path(), &prefix, 1, &bed_var("WHARF_TEST_BASE_IMAGE"));
    let out = run(github_step(dir.path()).args([
        "build",
        "--push",
        "--registry",
        &registry,
        "--manifest",
        "images.json",
    ]));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");

    // One group per service, holding that service's build output and nothing else.
    let groups = groups(&err);
    let titles: Vec<&str> = groups.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(titles.len(), 2, "{err}");
    for service in ["api", "worker"] {
        let (_, lines) = groups
            .iter()
            .find(|(t, _)| t == &format!("{service}: build log"))
            .unwrap_or_else(|| panic!("a group for {service}:\n{err}"));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{service} run"))),
            "{service}'s RUN output is in its group: {lines:?}"
        );
        let other = if service == "api" { "worker" } else { "api" };
        assert!(
            !lines.iter().any(|l| l.starts_with(&format!("{other} run"))),
            "{service}'s group holds only its own log: {lines:?}"
        );
    }

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("images.json")).unwrap())
            .unwrap();
    let images = manifest["images"].as_array().unwrap();

    let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(
        summary.contains("| service | image | tags | digest | duration |\n|---|---|---|---|---|\n"),
        "{summary}"
    );
    for image in images {
        let service = image["service"].as_str().unwrap();
        let digest = image["digest"].as_str().unwrap();
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| {service} |")))
            .unwrap_or_else(|| panic!("a row for {service}: {summary}"));
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(
            cells[1],
            format!("`{registry}/{prefix}/{service}`"),
            "{row}"
        );
        assert_eq!(cells[2], format!("`{SHA}` `latest`"), "{row}");
        assert_eq!(cells[3], format!("`{digest}`"), "{row}");
        assert!(cells[4].ends_with('s'), "a duration: {row}");
    }

    let outputs = outputs(&std::fs::read_to_string(dir.path().join("output.txt")).unwrap());
    let from_output: serde_json::Value =
        serde_json::from_str(&outputs["manifest"]).expect("the manifest output is JSON");
    assert_eq!(from_output, manifest, "the manifest output is the manifest");
    for image in images {
        let service = image["service"].as_str().unwrap();
        assert_eq!(
            outputs[&format!("image-{service}")],
            image["uri"].as_str().unwrap(),
            "{outputs:?}"
        );
    }
    assert_eq!(outputs.len(), 3, "{outputs:?}");
}

#[test]
fn a_failed_build_is_annotated_and_summarized() {
    let base = bed_var("WHARF_TEST_BASE_IMAGE");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("ghafail");
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  ok:\n    image: {prefix}/ok\n    build:\n      context: .\n      dockerfile_inline: |\n        FROM {base}\n        RUN echo fine\n  broken:\n    image: {prefix}/broken\n    build:\n      context: .\n      dockerfile_inline: |\n        FROM {base}\n        RUN echo about to fail {prefix} && exit 3\n"
        ),
    );
    let out = run(github_step(dir.path()).args(["build", "--keep-going"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let annotation = err
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("an ::error:: annotation:\n{err}"));
    assert!(
        annotation
            .starts_with("::error title=wharf%3A failed::1 of 2 service(s) did not build:%0A"),
        "{annotation}"
    );
    assert!(annotation.contains("`broken`"), "{annotation}");
    // The failing log is in its group, and its tail stays in view below it.
    let groups = groups(&err);
    let (_, broken) = groups
        .iter()
        .find(|(t, _)| t == "broken: build log")
        .expect("the failed service's log group");
    assert!(
        broken
            .iter()
            .any(|l| l.contains(&format!("about to fail {prefix}"))),
        "{broken:?}"
    );
    assert!(err.contains("[broken] build failed: "), "{err}");

    let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(
        summary.contains("failed: 1 of 2 service(s) did not build"),
        "{summary}"
    );
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("| broken |") && l.contains("build failed")),
        "{summary}"
    );
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("| ok |") && l.contains("built (not pushed)")),
        "{summary}"
    );
    assert!(
        !dir.path().join("output.txt").exists(),
        "no outputs without a release"
    );
}

#[test]
fn a_compose_error_annotates_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "deploy/compose.yaml",
        "services:\n  api:\n    build: .\n    imagee: x\n",
    );
    let out = run(github_step(dir.path()).args(["-f", "deploy/compose.yaml", "plan"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let annotation = err
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("an ::error:: annotation:\n{err}"));
    assert!(
        annotation.starts_with(
            "::error file=deploy/compose.yaml,line=4,col=5,title=wharf%3A configuration error::"
        ),
        "{annotation}"
    );
    assert!(annotation.contains("imagee"), "{annotation}");
    assert!(
        err.lines().any(|l| l.starts_with("error: ")),
        "the plain error stays in the log too: {err}"
    );
}
