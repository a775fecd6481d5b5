//! The command line as users meet it: `--help` of wharf and of every command (snapshots, so a
//! change of wording is a reviewed change), `--version` with the commit, shell completions.

use crate::support::{run, stderr, stdout, wharf};

fn help(args: &[&str]) -> String {
    let dir = std::env::temp_dir();
    let out = run(wharf(&dir).args(args));
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    assert!(
        stderr(&out).is_empty(),
        "help goes to stdout: {}",
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn help_of_wharf_and_every_command() {
    insta::assert_snapshot!("wharf", help(&["--help"]));
    for command in [
        "config",
        "plan",
        "build",
        "push",
        "verify",
        "render",
        "completions",
        "promote",
    ] {
        let text = help(&[command, "--help"]);
        assert!(
            text.contains("Examples:\n  wharf "),
            "`wharf {command} --help` shows examples:\n{text}"
        );
        insta::assert_snapshot!(command, text);
    }
    insta::assert_snapshot!(
        "render-ecs-task-definition",
        help(&["render", "ecs-task-definition", "--help"])
    );
}

#[test]
fn short_help_is_the_summary() {
    let text = help(&["-h"]);
    assert!(
        text.starts_with("Build every docker compose service"),
        "{text}"
    );
    assert!(text.contains("completions"), "{text}");
}

#[test]
fn version_names_the_commit_when_built_from_a_checkout() {
    let text = help(&["--version"]);
    let line = text.trim_end();
    let version = env!("CARGO_PKG_VERSION");
    let rest = line
        .strip_prefix(&format!("wharf {version}"))
        .unwrap_or_else(|| panic!("`{line}` starts with the version"));
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        // Built from this checkout: the commit is named (the build may predate the latest
        // commit, so only its shape is checked).
        Some(_) => {
            let inner = rest
                .strip_prefix(" (")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("`{line}` names the commit in parentheses"));
            let (commit, date) = inner.split_once(' ').expect("commit and date");
            assert!(
                commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
                "{line}"
            );
            assert!(date.len() == 10 && date.as_bytes()[4] == b'-', "{line}");
        }
        None => assert!(rest.is_empty(), "no git, no commit: {line}"),
    }
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let bash = help(&["completions", "bash"]);
    assert!(
        bash.contains("_wharf()") && bash.contains("complete -F _wharf"),
        "{bash}"
    );
    for word in [
        "build",
        "plan",
        "verify",
        "--registry",
        "--progress",
        "--create-repositories",
    ] {
        assert!(bash.contains(word), "bash completes {word}");
    }
    let check = std::process::Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(bash.as_bytes())?;
            child.wait()
        })
        .expect("bash runs");
    assert!(check.success(), "the bash script parses");

    let zsh = help(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef wharf"), "{zsh}");
    assert!(zsh.contains("--registry"), "{zsh}");

    let fish = help(&["completions", "fish"]);
    assert!(fish.contains("complete -c wharf"), "{fish}");
    assert!(fish.contains("-l registry"), "{fish}");
}

#[test]
fn typos_are_answered_with_the_fix() {
    let dir = std::env::temp_dir();
    let out = run(wharf(&dir).args(["biuld"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("a similar subcommand exists: 'build'"),
        "{}",
        stderr(&out)
    );
    let out = run(wharf(&dir).args(["build", "--pussh"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'--push'"), "{}", stderr(&out));
    let out = run(wharf(&dir).args(["completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("possible values"), "{}", stderr(&out));
}

// The policy and onboarding commands.
#[test]
fn help_of_iam_policy_and_init() {
    for command in ["iam-policy", "init"] {
        let text = help(&[command, "--help"]);
        assert!(
            text.contains("Examples:\n  wharf "),
            "`wharf {command} --help` shows examples:\n{text}"
        );
        insta::assert_snapshot!(command, text);
    }
}
