//! In GitHub Actions no text from outside wharf runs as a workflow command: a tag rendered from
//! `{env:…}`, a registry's or the daemon's message, a build's output. The runner's own rules
//! decide here what a line does — `::NAME…::` at the start of a line (blanks skipped), or the
//! older `##[NAME…]` anywhere, none while `::stop-commands::TOKEN` holds, until `::TOKEN::` —
//! and of the commands the runner would run, only those wharf means are allowed.

use crate::support::{bed_var, github_step, unique, write};
use std::process::Output;

/// The commands GitHub's runner knows (it ignores any other name).
const RUNNER_COMMANDS: &[&str] = &[
    "add-mask",
    "add-matcher",
    "add-path",
    "debug",
    "echo",
    "endgroup",
    "error",
    "group",
    "notice",
    "remove-matcher",
    "save-state",
    "set-env",
    "set-output",
    "stop-commands",
    "warning",
];

/// The command `line` would be to the runner: its name and data.
fn parse(line: &str, resume: Option<&str>) -> Option<(String, String)> {
    let known = |name: &str| {
        RUNNER_COMMANDS.iter().any(|c| c.eq_ignore_ascii_case(name))
            || resume.is_some_and(|r| r.eq_ignore_ascii_case(name))
    };
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix("::") {
        if let Some(end) = rest.find("::") {
            let info = &rest[..end];
            let name = info.split(' ').next().unwrap_or("");
            if known(name) {
                return Some((name.to_ascii_lowercase(), rest[end + 2..].to_string()));
            }
            return None;
        }
    }
    let start = line.find("##[")?;
    let rest = &line[start + 3..];
    let end = rest.find(']')?;
    let name = rest[..end].split(' ').next().unwrap_or("");
    known(name).then(|| (name.to_ascii_lowercase(), rest[end + 1..].to_string()))
}

/// Every command the runner would run, reading `output` as it does.
fn executed(output: &str) -> Vec<(String, String)> {
    let mut run = Vec::new();
    let mut stopped: Option<String> = None;
    for line in output.lines() {
        let Some((name, data)) = parse(line, stopped.as_deref()) else {
            continue;
        };
        match &stopped {
            Some(token) => {
                if name.eq_ignore_ascii_case(token) {
                    stopped = None;
                }
            }
            None if name == "stop-commands" => stopped = Some(data),
            None => run.push((name, data)),
        }
    }
    run
}

/// Asserts that the runner would run only commands wharf means: groups, and annotations whose
/// text is not the planted text; returns both streams.
fn only_wharfs_commands(out: &Output, planted: &[&str]) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, data) in executed(&text) {
        let ours = matches!(name.as_str(), "group" | "endgroup" | "error" | "warning");
        assert!(ours, "the runner would run ::{name}::{data}\n{text}");
        if name == "error" || name == "warning" {
            continue;
        }
        for p in planted {
            assert!(
                !data.contains(p),
                "::{name}::{data} carries planted text\n{text}"
            );
        }
    }
    text
}

#[test]
fn a_tag_from_the_environment_cannot_issue_commands() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  api:\n    image: 127.0.0.1:5000/shop/api\n    build: .\n",
    );
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    let hostile = "v1\n::add-mask::abc\n  ::set-output name=x::y ##[add-mask]def";
    let out = github_step(dir.path())
        .args(["build", "--push", "--tag", "{git_sha}", "--tag", "{env:X}"])
        .env("X", hostile)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = only_wharfs_commands(&out, &["abc", "def", "name=x"]);
    assert!(
        text.contains("is not a valid tag"),
        "the error is still told:\n{text}"
    );
}

#[test]
fn a_build_log_cannot_issue_commands() {
    let registry = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let base = bed_var("WHARF_TEST_BASE_IMAGE");
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{registry}/{}", unique("ghacmd"));
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  api:\n    image: {prefix}/api\n    build: ./api\n  bad:\n    image: {prefix}/bad\n    build: ./bad\n"
        ),
    );
    // Both the log of a build that succeeds (folded into its group) and the tail of one that
    // fails (shown below its group) print command-like lines.
    let noisy = "RUN echo '::set-output name=x::y' && echo '  ::add-mask::abc' && echo 'step ##[add-mask]def' && echo '::warning::spoofed'";
    write(
        dir.path(),
        "api/Dockerfile",
        &format!("FROM {base}\n{noisy}\nCOPY stamp /stamp\n"),
    );
    write(dir.path(), "api/stamp", &unique("api"));
    write(
        dir.path(),
        "bad/Dockerfile",
        &format!("FROM {base}\n{noisy} && exit 3\n"),
    );
    let out = github_step(dir.path())
        .args(["build", "--push", "--keep-going", "--progress", "plain"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = only_wharfs_commands(&out, &["abc", "def", "name=x", "spoofed"]);
    for shown in [
        "::set-output name=x::y",
        "::add-mask::abc",
        "##[add-mask]def",
    ] {
        assert!(text.contains(shown), "the log still shows {shown}:\n{text}");
    }
    for (name, data) in executed(&text) {
        assert!(
            !(name == "warning" && data.contains("spoofed")),
            "a build printed a warning annotation:\n{text}"
        );
    }
}

#[test]
fn the_runner_model_finds_commands_where_the_runner_does() {
    let planted = "::add-mask::abc\n  ::set-output name=x::y\n[api] ##[add-mask]def\n[api] a::b";
    let run = executed(planted);
    assert_eq!(
        run,
        vec![
            ("add-mask".to_string(), "abc".to_string()),
            ("set-output".to_string(), "y".to_string()),
            ("add-mask".to_string(), "def".to_string()),
        ]
    );
    let stopped = format!("::stop-commands::t0k\n{planted}\n::t0k::\n::group::x");
    assert_eq!(
        executed(&stopped),
        vec![("group".to_string(), "x".to_string())]
    );
}
